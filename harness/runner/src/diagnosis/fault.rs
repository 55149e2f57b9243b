//! Diagnoses of a CPU stuck in a fault loop (what MCUboot logged before, the image header).

use super::*;
use dfu_hil_board::CoreState;

pub(super) fn diagnose(f: &Facts<'_>, boot: &[String]) -> Option<String> {
    if let Some(CoreState::FaultLoop { symbol, .. }) = &f.core {
        let sym = symbol.as_deref().unwrap_or("an unknown place");
        if logged(boot, "Jumping to the first image slot") {
            let mut msg =
                format!("CPU stuck in {sym} right after MCUboot jumped to the application");
            if let Some(h) = &f.primary_head {
                if let Some(hdr) = h.get(8..10).map(|b| u16::from_le_bytes([b[0], b[1]])) {
                    msg.push_str(&format!(": hdr_size 0x{hdr:x} in the image header"));
                    msg.push_str(&header_cause(f, h, u32::from(hdr)));
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
    None
}

/// Why the jump to `slot + hdr_size` (MCUboot `do_boot`) faulted, from the words there and
/// from where the app was linked when that is known (the fixture's or build's header room).
fn header_cause(f: &Facts<'_>, h: &[u8], hdr: u32) -> String {
    let sp = le32(h, hdr as usize);
    let pc = le32(h, hdr as usize + 4);
    let revert = " A plain reset recovers: the test swap was never confirmed, so MCUboot \
                  reverts it (boot_swap_type: primary magic good, image_ok unset, copy_done set \
                  → REVERT) and the previous app runs again (not in overwrite-only mode, which \
                  keeps no copy).";
    if sp == Some(0) && pc == Some(0) {
        // Where the vector table really is: the first non-zero word after the header.
        let vt = (hdr as usize..h.len().saturating_sub(8))
            .step_by(4)
            .find(|&o| le32(h, o).unwrap_or(0) != 0);
        let mut out = String::from(", but the words there are zero (no vector table)");
        if let Some(vt) = vt {
            out.push_str(&format!(
                "; the vector table is at 0x{vt:x} — the binary already holds 0x{vt:x} bytes of \
                 header room (linked with ROM_START_OFFSET 0x{vt:x}) and was signed with \
                 --header-size 0x{hdr:x}. Fix: sign with --header-size 0x{vt:x} (no \
                 --pad-header: the room is in the binary).{revert}"
            ));
        }
        return out;
    }
    match &f.link_offset {
        Some((linked, src)) if *linked != hdr => format!(
            ", but the application was linked for a 0x{linked:x}-byte header room ({src}): \
             MCUboot loads SP 0x{:08x} and reset vector 0x{:08x} from slot + 0x{hdr:x} (the \
             image was signed with --pad-header, so the vector table is there and looks valid) \
             and jumps to code linked to run 0x{:x} bytes {} from where it is. Cause: the \
             image was signed with --header-size 0x{hdr:x} for an app linked for 0x{linked:x}. \
             Fix: sign with --header-size 0x{linked:x} --pad-header (west sign -t imgtool -- \
             --header-size {linked} --pad-header), the header room the app was linked for.{revert}",
            sp.unwrap_or(0),
            pc.unwrap_or(0),
            linked.abs_diff(hdr),
            if *linked > hdr {
                "further on"
            } else {
                "earlier"
            },
        ),
        Some(_) => String::new(),
        None => format!(
            "; the vector table there (SP 0x{:08x}, reset 0x{:08x}) looks valid, and where the \
             app was linked is not known here: if it was linked for another header room (NCS: \
             mcuboot_pad, 0x200 by default) the jump lands in misplaced code — check with \
             `dfu-hil image inspect --build <dir>` or `--elf zephyr.elf`",
            sp.unwrap_or(0),
            pc.unwrap_or(0)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{diagnose, Facts};
    use dfu_hil_board::CoreState;

    /// A `--pad-header` image signed with `hdr` for an app whose vector table sits right after.
    fn padded_head(hdr: usize) -> Vec<u8> {
        let mut head = vec![0u8; 0x400];
        head[8..10].copy_from_slice(&(hdr as u16).to_le_bytes());
        head[hdr..hdr + 4].copy_from_slice(&0x2004_0000u32.to_le_bytes());
        head[hdr + 4..hdr + 8].copy_from_slice(&0x0001_0301u32.to_le_bytes());
        head
    }

    fn facts<'a>(log: &'a [String], hdr: usize, link: Option<u32>) -> Facts<'a> {
        Facts {
            core: Some(CoreState::FaultLoop {
                pc: 0x1a2c,
                symbol: Some("arch_system_halt".into()),
            }),
            log,
            primary_head: Some(padded_head(hdr)),
            link_offset: link.map(|l| (l, "fixture `app-v2`".into())),
            ..Facts::default()
        }
    }

    fn boot_log() -> Vec<String> {
        [
            "*** Booting MCUboot ***",
            "I: Jumping to the first image slot",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn padded_header_for_an_app_linked_for_0x200() {
        let l = boot_log();
        let d = diagnose(&facts(&l, 0x20, Some(0x200))).unwrap();
        assert!(d.contains("hdr_size 0x20"), "{d}");
        assert!(d.contains("linked for a 0x200-byte header room"), "{d}");
        assert!(d.contains("--header-size 0x200 --pad-header"), "{d}");
        assert!(d.contains("--header-size 512 --pad-header"), "{d}");
        assert!(d.contains("REVERT"), "{d}");
        assert!(!d.contains("0x220"), "{d}");
    }

    #[test]
    fn near_miss_header_matches_the_link_offset() {
        let l = boot_log();
        let d = diagnose(&facts(&l, 0x200, Some(0x200))).unwrap();
        assert!(!d.contains("Fix:"), "{d}");
        assert!(!d.contains("linked for a"), "{d}");
    }

    #[test]
    fn near_miss_link_offset_unknown_says_so() {
        let l = boot_log();
        let d = diagnose(&facts(&l, 0x20, None)).unwrap();
        assert!(d.contains("not known here"), "{d}");
        assert!(!d.contains("Fix:"), "{d}");
    }

    #[test]
    fn unpadded_zero_words_advise_the_room_in_the_binary() {
        let l = boot_log();
        let mut f = facts(&l, 0x20, None);
        let mut head = vec![0u8; 0x300];
        head[8] = 0x20;
        head[0x200..0x204].copy_from_slice(&0x2004_0000u32.to_le_bytes());
        f.primary_head = Some(head);
        let d = diagnose(&f).unwrap();
        assert!(d.contains("sign with --header-size 0x200 (no"), "{d}");
        assert!(!d.contains("0x220"), "{d}");
    }
}
