//! The nRF Secure Immutable Bootloader's state in `trailers.txt`: what b0 reads at boot — the
//! provision data (slot addresses, key hashes, the monotonic counter of versions it accepted)
//! and each of `s0`/`s1`'s `fw_info` (version, and whether b0 marked it invalid after a failed
//! validation). NSIB keeps no MCUboot trailer; these are its status areas.

use super::FlashImages;
use dfu_hil_firmware::fw_info::{FwInfo, FW_INFO_INVALID_VAL, FW_INFO_OFFSET, FW_INFO_SIZE};
use dfu_hil_firmware::nsib::SLOTS;
use dfu_hil_firmware::provision::{Counter, Provision, PROVISION_PARTITION};
use dfu_hil_mcuboot::layout::Layout;
use std::fmt::Write as _;

/// Lines for `trailers.txt`; empty when the layout has no provision partition.
pub fn describe(images: &FlashImages, layout: &Layout) -> String {
    let Some(raw) = images.partition(layout, PROVISION_PARTITION) else {
        return if layout.partition(PROVISION_PARTITION).is_some() {
            "provision: not read through the probe\n".into()
        } else {
            String::new()
        };
    };
    let Some(p) = Provision::parse(raw) else {
        return "provision: erased or not NSIB provision data (b0 would not boot)\n".into();
    };
    let mut s = String::new();
    let start = p.counter_off as usize;
    let counter = raw
        .get(start..start + 2 * p.counter_slots as usize)
        .map(|c| Counter::decode(c, p.counter_slots));
    let _ = write!(
        s,
        "provision: s0 image at 0x{:08x}, s1 image at 0x{:08x}, {} key hash(es)",
        p.s0,
        p.s1,
        p.key_hashes.len()
    );
    match counter {
        Some(c) => {
            let _ = writeln!(
                s,
                "; monotonic counter {} of {} slots used, last version {}",
                c.used,
                c.total,
                c.version()
            );
        }
        None => s.push_str("; monotonic counter beyond the partition\n"),
    }
    for (i, slot) in SLOTS.iter().enumerate() {
        let addr = if i == 0 { p.s0 } else { p.s1 };
        let _ = writeln!(s, "{slot}: {}", slot_info(images, layout, slot, addr));
    }
    s
}

/// `fw_info` of the image b0 expects at `addr` in `slot`.
fn slot_info(images: &FlashImages, layout: &Layout, slot: &str, addr: u32) -> String {
    let (Some(part), Some(bytes)) = (layout.partition(slot), images.partition(layout, slot)) else {
        return "not read through the probe".into();
    };
    let base = layout.address(part);
    let Some(off) = addr
        .checked_sub(base)
        .filter(|o| *o < part.size)
        .map(|o| (o + FW_INFO_OFFSET) as usize)
    else {
        return format!("provision points outside it (0x{addr:08x})");
    };
    match bytes.get(off..off + FW_INFO_SIZE).and_then(FwInfo::parse) {
        Some(info) => format!(
            "fw_info version {}, {} bytes, {}",
            info.version,
            info.size,
            if info.valid == FW_INFO_INVALID_VAL {
                "marked invalid by b0"
            } else {
                "not invalidated"
            }
        ),
        None => "no fw_info (erased or no image)".into(),
    }
}
