//! Diagnosis: name the likely cause of a failure in plain words, from the evidence alone
//! (core state, MCUboot's log, trailers, the device's SMP error, the image header).
//!
//! Rules are ordered from the most specific evidence to the least; the first that matches wins.
//! Each rule states the evidence it used, so the engineer can check the reasoning.

use dfu_hil_board::CoreState;
use dfu_hil_mcuboot::trailer::{Flag, MagicState, Trailer};

/// What the runner knows when a step fails.
#[derive(Debug, Default)]
pub struct Facts<'a> {
    pub core: Option<CoreState>,
    /// Device log since the scenario started (UART: MCUboot and app).
    pub log: &'a [String],
    /// Trailers read through the probe, by region (primary first).
    pub trailers: Vec<(String, Trailer)>,
    /// First bytes of the primary slot (image header and what follows).
    pub primary_head: Option<Vec<u8>>,
    /// Name of the SMP error the device answered, if that is how the step failed.
    pub device_error: Option<String>,
    /// The step that failed was an upload.
    pub during_upload: bool,
}

fn logged(log: &[String], needle: &str) -> bool {
    log.iter().any(|l| l.contains(needle))
}

/// After the last boot: the log since the last reset banner — NSIB's (b0) when the chain
/// starts there, else MCUboot's.
fn last_boot(log: &[String]) -> &[String] {
    let start = log
        .iter()
        .rposition(|l| l.contains("Booting nRF Secure Immutable Bootloader"))
        .or_else(|| log.iter().rposition(|l| l.contains("Booting MCUboot")))
        .unwrap_or(0);
    &log[start..]
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

pub fn diagnose(f: &Facts<'_>) -> Option<String> {
    let boot = last_boot(f.log);
    if let Some(CoreState::FaultLoop { symbol, .. }) = &f.core {
        let sym = symbol.as_deref().unwrap_or("an unknown place");
        if logged(boot, "Jumping to the first image slot") {
            let mut msg =
                format!("CPU stuck in {sym} right after MCUboot jumped to the application");
            if let Some(h) = &f.primary_head {
                if let Some(hdr) = h.get(8..10).map(|b| u16::from_le_bytes([b[0], b[1]])) {
                    let sp = le32(h, hdr as usize);
                    let pc = le32(h, hdr as usize + 4);
                    msg.push_str(&format!(": hdr_size 0x{hdr:x} in the image header"));
                    if sp == Some(0) && pc == Some(0) {
                        // Look for where the vector table really is: the first non-zero word pair.
                        let vt = (hdr as usize..h.len().saturating_sub(8))
                            .step_by(4)
                            .find(|&o| le32(h, o).unwrap_or(0) != 0);
                        msg.push_str(", but the words there are zero (no vector table)");
                        if let Some(vt) = vt {
                            msg.push_str(&format!(
                                "; the vector table is at 0x{vt:x} — the image was signed with \
                                 --header-size 0x{hdr:x} for an app linked with ROM_START_OFFSET 0x{vt:x}"
                            ));
                        }
                    }
                }
            }
            return Some(msg);
        }
        if logged(boot, "Unable to find bootable image") {
            return Some(format!(
                "MCUboot found no bootable image and stopped ({sym}): the primary slot failed \
                 validation (signature key, hash, or size)"
            ));
        }
        if logged(boot, "Failed to open flash area") {
            return Some(
                "MCUboot could not open a flash area and halted: a partition's flash device is \
                 missing from MCUboot's build (e.g. the external NOR not enabled in its devicetree)"
                    .into(),
            );
        }
        return Some(format!("CPU stuck in {sym}"));
    }
    if f.core == Some(CoreState::Off) {
        return Some(
            "the board is powered off (a power cut was armed or happened); power it on with \
             `reset: { how: probe }`"
                .into(),
        );
    }
    if let Some(e) = &f.device_error {
        let e = e.to_ascii_uppercase();
        if e.contains("NOT_SUPPORTED") || e.contains("ENOTSUP") {
            return Some(
                "the device answered NOT_SUPPORTED (rc 8): the running firmware has no handler \
                 for this command — the image management group (CONFIG_MCUMGR_GRP_IMG) is not \
                 compiled in, or the device sits in MCUboot serial recovery"
                    .into(),
            );
        }
        if e.contains("NO_FREE_SLOT") {
            return Some(
                "no free slot for the upload: slot1 holds a pending image, or the image a revert \
                 will restore while an unconfirmed test image runs — confirm or erase first"
                    .into(),
            );
        }
        if e.contains("ALREADY_PENDING") {
            return Some(
                "an update is already scheduled (test or revert pending); reset first, or confirm \
                 the running image"
                    .into(),
            );
        }
    }
    if logged(boot, "Image in the secondary slot is not valid!") {
        return Some(
            "MCUboot rejected the image in the secondary slot and erased it: its signature does \
             not verify with MCUboot's key, its hash does not match, or it is too large"
                .into(),
        );
    }
    if logged(boot, "erased due to downgrade prevention")
        || logged(boot, "Insufficient version in secondary slot")
    {
        return Some(
            "MCUboot refused the update as a downgrade (its version is lower than the running \
             image's) and erased it"
                .into(),
        );
    }
    if logged(boot, "Image in slot is for wrong s0/s1 image") {
        return Some(
            "the MCUboot update was built for the s0/s1 slot NSIB is running from; MCUboot erased \
             it — upload the variant for the inactive slot (s1 when s0 runs, and back)"
                .into(),
        );
    }
    if logged(boot, "monotonic counter slots used") {
        return Some(
            "NSIB's monotonic counter has no free slot left: a newer MCUboot can no longer be \
             recorded and b0 keeps booting the old one — provision more counter slots \
             (CONFIG_SB_MONOTONIC_COUNTER_SLOTS) on new devices"
                .into(),
        );
    }
    if logged(boot, "Failed reading sectors") {
        return Some(
            "MCUboot could not read the slot's sector list: BOOT_MAX_IMG_SECTORS is smaller than \
             the number of sectors in a slot (typical after moving slot1 to external flash); \
             raise CONFIG_BOOT_MAX_IMG_SECTORS"
                .into(),
        );
    }
    let secondary_pending = f.trailers.get(1).is_some_and(|(_, t)| {
        t.magic == MagicState::Good && t.image_ok == Flag::Unset && t.copy_done == Flag::Unset
    });
    if secondary_pending && (logged(boot, "unreachable") || logged(boot, "Swap type: none")) {
        let region = &f.trailers[1].0;
        return Some(format!(
            "{region} was marked for test (magic good, image_ok unset) but after reset the swap \
             type stayed NONE and the trailer is unchanged: the bootloader did not see the \
             secondary slot — is it on external flash without the driver in MCUboot?"
        ));
    }
    if logged(boot, "Swap type: revert") {
        return Some(
            "MCUboot reverted: the test image was not confirmed before the reset \
             (image confirm, or boot_write_img_confirmed() in the app)"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn header_size_mismatch() {
        let mut head = vec![0u8; 0x300];
        head[8] = 0x20; // hdr_size 0x20
        head[0x200..0x204].copy_from_slice(&0x2004_0000u32.to_le_bytes());
        let l = log(&[
            "*** Booting MCUboot ***",
            "I: Jumping to the first image slot",
        ]);
        let f = Facts {
            core: Some(CoreState::FaultLoop {
                pc: 0x1a2c,
                symbol: Some("arch_system_halt".into()),
            }),
            log: &l,
            primary_head: Some(head),
            ..Facts::default()
        };
        let d = diagnose(&f).unwrap();
        assert!(d.contains("arch_system_halt"), "{d}");
        assert!(d.contains("hdr_size 0x20"), "{d}");
        assert!(d.contains("vector table is at 0x200"), "{d}");
    }

    #[test]
    fn not_supported_upload() {
        let f = Facts {
            device_error: Some("NOT_SUPPORTED".into()),
            ..Facts::default()
        };
        assert!(diagnose(&f).unwrap().contains("CONFIG_MCUMGR_GRP_IMG"));
    }

    #[test]
    fn invalid_secondary_only_from_last_boot() {
        let l = log(&[
            "*** Booting MCUboot ***",
            "E: Image in the secondary slot is not valid!",
            "*** Booting MCUboot ***",
            "I: Image index: 0, Swap type: none",
        ]);
        let f = Facts {
            log: &l,
            ..Facts::default()
        };
        assert_eq!(diagnose(&f), None);
    }
}
