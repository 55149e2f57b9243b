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
    None
}
