//! Diagnosis: name the likely cause of a failure in plain words, from the evidence alone
//! (core state, MCUboot's log, trailers, the device's SMP error, the image header).
//!
//! Rules are ordered from the most specific evidence to the least; the first that matches wins.
//! Each rule states the evidence it used, so the engineer can check the reasoning.
//!
//! The rules live by the evidence they read: [`fault`] (a CPU stuck in a fault loop),
//! [`smp`] (the device's SMP answer), [`boot`] (MCUboot's log and the trailers after a reset).
//! Every rule has a test where it must fire and a near miss where it must not.

use dfu_hil_board::CoreState;
use dfu_hil_mcuboot::trailer::Trailer;

mod boot;
mod fault;
mod smp;

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
    /// The SMP exchanges of the run, oldest first: which request got which answer.
    pub smp: Vec<SmpFact>,
    /// Where the app in the primary slot was linked to start, from the slot's start, and what
    /// says so (the fixture's `rom-start-offset`, the build's `mcuboot_pad`).
    pub link_offset: Option<(u32, String)>,
}

/// One SMP request and the kind of answer it got (from the client's transcript).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmpFact {
    pub group: u16,
    pub command: u8,
    pub write: bool,
    /// A bare `{"rc": N}` with N != 0.
    pub rc: Option<u32>,
    /// A group error `{"err": {"group", "rc"}}`.
    pub group_err: Option<(u16, u32)>,
    /// Any answer came back (a timeout has none).
    pub answered: bool,
}

impl SmpFact {
    /// Answered without any error.
    pub fn ok(&self) -> bool {
        self.answered && self.rc.is_none() && self.group_err.is_none()
    }
}

pub(crate) fn logged(log: &[String], needle: &str) -> bool {
    log.iter().any(|l| l.contains(needle))
}

/// After the last boot: the log since the last reset banner — NSIB's (b0) when the chain
/// starts there, else MCUboot's.
pub(crate) fn last_boot(log: &[String]) -> &[String] {
    let start = log
        .iter()
        .rposition(|l| l.contains("Booting nRF Secure Immutable Bootloader"))
        .or_else(|| log.iter().rposition(|l| l.contains("Booting MCUboot")))
        .unwrap_or(0);
    &log[start..]
}

pub(crate) fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

pub fn diagnose(f: &Facts<'_>) -> Option<String> {
    let boot = last_boot(f.log);
    if let Some(d) = boot::nsib_mcuboot_in_app_slot(f) {
        return Some(d);
    }
    if let Some(d) = fault::diagnose(f, boot) {
        return Some(d);
    }
    if f.core == Some(CoreState::Off) {
        return Some(
            "the board is powered off (a power cut was armed or happened); power it on with \
             `reset: { how: probe }`"
                .into(),
        );
    }
    if let Some(d) = smp::diagnose(f, boot) {
        return Some(d);
    }
    boot::diagnose(f, boot)
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
        // The transcript says it was the image state read that got rc 8, with no image-group
        // answer before: the image group is missing.
        let f = Facts {
            device_error: Some("NOT_SUPPORTED".into()),
            smp: vec![fact(1, 0, false, Some(8))],
            ..Facts::default()
        };
        assert!(diagnose(&f).unwrap().contains("CONFIG_MCUMGR_GRP_IMG"));
    }

    fn fact(group: u16, command: u8, write: bool, rc: Option<u32>) -> SmpFact {
        SmpFact {
            group,
            command,
            write,
            rc,
            group_err: None,
            answered: true,
        }
    }

    #[test]
    fn not_supported_erase_storage_names_zbasic_not_img() {
        // Case 4: the image list answered, then g63/c0 got rc 8.
        let f = Facts {
            device_error: Some("NOT_SUPPORTED".into()),
            smp: vec![
                fact(0, 6, false, None),
                fact(1, 0, false, None),
                fact(63, 0, true, Some(8)),
            ],
            ..Facts::default()
        };
        let d = diagnose(&f).unwrap();
        assert!(d.contains("CONFIG_MCUMGR_GRP_ZBASIC_STORAGE_ERASE"), "{d}");
        assert!(!d.contains("is not compiled in"), "{d}");
        assert!(d.contains("CONFIG_MCUMGR_GRP_IMG is set"), "{d}");
        assert!(d.contains("group 63"), "{d}");
    }

    #[test]
    fn not_supported_img_command_when_img_group_answered() {
        // Near miss for the missing-group rule: the image group answered before, so only this
        // command is missing.
        let f = Facts {
            device_error: Some("NOT_SUPPORTED".into()),
            smp: vec![fact(1, 0, false, None), fact(1, 5, true, Some(8))],
            ..Facts::default()
        };
        let d = diagnose(&f).unwrap();
        assert!(d.contains("answered earlier"), "{d}");
        assert!(!d.contains("is not compiled in"), "{d}");
    }

    #[test]
    fn rc_8_only_counts_when_the_error_was_not_supported() {
        // Near miss: an rc 8 earlier in the run, but the step failed with another error.
        let f = Facts {
            device_error: Some("HASH_NOT_FOUND".into()),
            smp: vec![fact(63, 0, true, Some(8))],
            ..Facts::default()
        };
        assert_eq!(diagnose(&f), None);
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
