//! nRF Connect Device Manager's firmware update, request by request, in the order of the
//! Android library (`mcumgr-core` `FirmwareUpgradeManager`, task priorities in
//! `FirmwareUpgradeTask.java`: RESET_INITIAL 0 (not modelled), VALIDATE 1, UPLOAD 2,
//! ERASE_SETTINGS 3, TEST_AFTER_UPLOAD 4 / CONFIRM_AFTER_UPLOAD 4,
//! RESET 10, CONFIRM_AFTER_RESET 11):
//!
//! - `Validate`: bootloader info (os group; errors ignored), then the image list. No upload
//!   when slot1 already holds the image's hash; nothing at all when slot0 runs it confirmed.
//! - `Upload` of the image.
//! - `EraseStorage` (option "Erase application settings"): group 63 command 0; NOT_SUPPORTED
//!   and any group error are ignored ("If Erase is not supported, proceed with the update").
//! - test-and-confirm / test-only: image test; confirm-only: image confirm of the hash.
//! - `Reset`; test-and-confirm: confirm of the hash after the reset.
//!
//! Every request and answer is in the SMP transcript of the evidence.

use super::Ctx;
use crate::event::EventSink;
use crate::raw_smp::{RawOp, SmpStep};
use crate::result::Failure;
use crate::scenario::{
    ConfirmStep, DeviceManagerMode, DeviceManagerStep, ResetStep, Step, UploadStep,
};

impl Ctx<'_> {
    pub(super) fn device_manager(
        &mut self,
        d: &DeviceManagerStep,
        events: &mut dyn EventSink,
    ) -> Result<String, Failure> {
        let mut done = Vec::new();
        // Validate: bootloader info, errors ignored.
        let info = self.raw_smp(&raw(0, 8, RawOp::Read));
        done.push(format!(
            "bootloader info: {}",
            info.unwrap_or_else(|e| format!("{e:?} (ignored)"))
        ));
        let hash = self.image_hash(&d.image)?;
        let slots = self.smp().image_state()?;
        done.push("image list".into());
        let running_it = slots
            .iter()
            .any(|s| s.image == 0 && s.slot == 0 && s.hash == hash && s.confirmed);
        if running_it {
            done.push("slot0 runs it confirmed: nothing to do".into());
            return Ok(done.join("; "));
        }
        let in_slot1 = slots
            .iter()
            .any(|s| s.image == 0 && s.slot == 1 && s.hash == hash);
        if in_slot1 {
            done.push("slot1 holds the hash: no upload".into());
        } else {
            let up = Step::Upload(UploadStep {
                image: d.image.clone(),
                image_number: 0,
                window: None,
                buf_size: None,
            });
            done.push(self.step(&up, events)?);
        }
        if d.erase_settings {
            // Without `expect` an error answer is recorded, not failed: the app goes on.
            let r = match self.raw_smp(&raw(63, 0, RawOp::Write)) {
                Ok(m) => format!("erase settings: {m}"),
                // EraseStorage.java ignores NOT_SUPPORTED and group errors.
                Err(Failure::Device(e)) => format!("erase settings: {} (ignored)", e.name()),
                Err(e) => return Err(e),
            };
            done.push(r);
        }
        match d.mode {
            DeviceManagerMode::TestAndConfirm | DeviceManagerMode::TestOnly => {
                self.smp().image_test(&hash)?;
                done.push("test".into());
            }
            DeviceManagerMode::ConfirmOnly => {
                self.smp().image_confirm(Some(&hash))?;
                done.push("confirm".into());
            }
        }
        done.push(self.step(&Step::Reset(ResetStep::default()), events)?);
        if d.mode == DeviceManagerMode::TestAndConfirm {
            let c = Step::Confirm(ConfirmStep {
                image: Some(d.image.clone()),
            });
            done.push(self.step(&c, events)?);
        }
        Ok(done.join("; "))
    }
}

fn raw(group: u16, command: u8, op: RawOp) -> SmpStep {
    SmpStep {
        group,
        command,
        op,
        body: None,
        version: None,
        expect: None,
    }
}
