//! `trailers.txt`: every area of the flash where MCUboot keeps swap state, decoded — each
//! slot's trailer and, for swap-using-scratch, the scratch area's own small trailer, which
//! after a power cut can hold the only record of how far the swap got.
//!
//! The scratch trailer (MCUboot `boot/bootutil/src/bootutil_misc.c`, `boot_scratch_trailer_sz`
//! and `boot_status_entries`) sits at the end of the scratch area like a slot's, but its status
//! area has room for one sector's records only (`BOOT_STATUS_STATE_COUNT` entries): the scratch
//! holds the status only while the region holding the primary slot's trailer is swapped, the
//! first region of the swap. Which of the two MCUboot trusts on resume is decided by the
//! table in `boot/bootutil/src/swap_scratch.c` (`swap_status_source`); [`status_source`] says
//! the same in words for the engineer reading the dump.

use crate::expect;
use crate::scenario::BootloaderSpec;
use dfu_hil_board::Probe;
use dfu_hil_mcuboot::layout::{DeviceKind, Layout};
use dfu_hil_mcuboot::trailer::{Flag, MagicState, Trailer, TrailerLayout, UpgradeMode};
use std::fmt::Write as _;

/// Name of the scratch partition in layouts (Zephyr's `scratch_partition`).
pub const SCRATCH: &str = "scratch";

/// One decoded area: its raw tail (for `trailer-<region>.bin`) and its text.
pub struct Decoded {
    pub region: String,
    pub raw: Option<Vec<u8>>,
    pub text: String,
}

/// The scratch trailer's geometry: the primary slot's constants (`BOOT_MAX_ALIGN`,
/// `BOOT_WRITE_SZ`), the scratch area's size and erased value, one sector's status records.
pub fn scratch_layout(
    layout: &Layout,
    boot: &BootloaderSpec,
    primary: &str,
) -> Option<TrailerLayout> {
    let slot = expect::trailer_layout(layout, boot, primary)?;
    let p = layout.partition(SCRATCH)?;
    Some(TrailerLayout {
        slot_size: p.size,
        erased: layout.device_of(p).erased,
        max_sectors: 1,
        mode: UpgradeMode::SwapScratch,
        ..slot
    })
}

/// Where MCUboot's swap-scratch resume reads the status of an interrupted swap from, given the
/// primary slot's and the scratch area's trailers (the rows of `swap_status_source`, in order).
pub fn status_source(primary: &Trailer, scratch: &Trailer) -> &'static str {
    let pri_good = primary.magic == MagicState::Good;
    let scr_good = scratch.magic == MagicState::Good;
    if pri_good && !scr_good && primary.copy_done == Flag::Set {
        "none (the primary's swap is complete)"
    } else if pri_good && !scr_good && primary.copy_done == Flag::Unset {
        "primary slot (a swap is in progress; its status is in the primary trailer)"
    } else if scr_good {
        "scratch (the region holding the primary trailer was being swapped)"
    } else if primary.magic == MagicState::Unset && primary.copy_done == Flag::Unset {
        "primary slot (nothing written yet)"
    } else {
        "none"
    }
}

/// Decode every slot trailer, and the scratch trailer in swap-scratch mode, through `probe`.
pub fn decode_all(probe: &mut dyn Probe, layout: &Layout, boot: &BootloaderSpec) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut primaries = Vec::new();
    for pair in &layout.images {
        for region in [&pair.primary, &pair.secondary] {
            let Some(l) = expect::trailer_layout(layout, boot, region) else {
                continue;
            };
            if layout
                .partition(region)
                .is_some_and(|p| layout.device_of(p).kind == DeviceKind::RamEmulated)
            {
                // The network core's primary: RAM the probe cannot read, emptied at reset.
                out.push(Decoded {
                    region: region.clone(),
                    raw: None,
                    text: format!(
                        "{region}: no trailer to read (RAM-emulated network-core slot, NCS \
                         `ram_flash`, gone at reset; see expect-boot-chain netcore-version)\n"
                    ),
                });
                continue;
            }
            let (d, t) = decode_one(probe, region, &l);
            if *region == pair.primary {
                primaries.push((region.clone(), t));
            }
            out.push(d);
        }
    }
    if boot.mode == UpgradeMode::SwapScratch && layout.partition(SCRATCH).is_some() {
        let first = layout.images.first().map(|p| p.primary.as_str());
        if let Some(l) = first.and_then(|p| scratch_layout(layout, boot, p)) {
            let (mut d, t) = decode_one(probe, SCRATCH, &l);
            d.text.insert_str(0, "scratch trailer, ");
            d.text.push_str(&scratch_body(probe, &l));
            if let Some(scr) = &t {
                for (region, pri) in &primaries {
                    if let Some(pri) = pri {
                        let _ = writeln!(
                            d.text,
                            "  resume status source for {region} (swap_status_source): {}",
                            status_source(pri, scr)
                        );
                    }
                }
                if let Some(n) = scr.image_num().filter(|_| layout.images.len() > 1) {
                    let _ = writeln!(d.text, "  belongs to image {n} (swap-info)");
                }
            }
            out.push(d);
        }
    }
    out
}

/// What the scratch area holds before its trailer: erased, or a sector in flight (written
/// bytes), the copy a resume needs when the power was cut mid-swap.
fn scratch_body(probe: &mut dyn Probe, l: &TrailerLayout) -> String {
    let (trailer_off, _) = l.tail();
    match probe.read(SCRATCH, 0, trailer_off) {
        Ok(body) => {
            let first = body.iter().position(|b| *b != l.erased);
            let last = body.iter().rposition(|b| *b != l.erased);
            match (first, last) {
                (Some(a), Some(b)) => format!(
                    "  scratch contents: written between 0x{a:x} and 0x{b:x} (data of the region being swapped, which a resume copies back; see partition-scratch.bin)\n"
                ),
                _ => "  scratch contents: erased before the trailer\n".into(),
            }
        }
        Err(e) => format!("  scratch contents: unreadable ({e})\n"),
    }
}

fn decode_one(
    probe: &mut dyn Probe,
    region: &str,
    l: &TrailerLayout,
) -> (Decoded, Option<Trailer>) {
    let (off, len) = l.tail();
    match probe.read(region, off, len) {
        Ok(raw) => {
            let (text, t) = match l.decode(&raw) {
                Ok(t) => (
                    format!(
                        "{region} (trailer at 0x{off:x}, {len} bytes): {t}\n  status records written: {}\n",
                        t.status_written()
                    ),
                    Some(t),
                ),
                Err(e) => (format!("{region}: {e}\n"), None),
            };
            (
                Decoded {
                    region: region.to_owned(),
                    raw: Some(raw),
                    text,
                },
                t,
            )
        }
        Err(e) => (
            Decoded {
                region: region.to_owned(),
                raw: None,
                text: format!("{region}: unreadable through the probe: {e}\n"),
            },
            None,
        ),
    }
}

/// The text of `trailers.txt`: the decoded areas, then the partitions that have no MCUboot
/// trailer (dumped whole beside it, not decoded here).
pub fn text(decoded: &[Decoded], layout: &Layout) -> String {
    let mut s: String = decoded.iter().map(|d| d.text.as_str()).collect();
    let others: Vec<&str> = layout
        .partitions
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| !decoded.iter().any(|d| d.region == *n))
        .collect();
    if !others.is_empty() {
        let _ = writeln!(
            s,
            "no MCUboot trailer (dumped whole as partition-<name>.bin): {}",
            others.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfu_hil_mcuboot::trailer::{Field, TrailerWrite};

    /// A trailer of `l` with these writes applied to an erased tail, decoded.
    fn trailer(l: &TrailerLayout, writes: &[TrailerWrite]) -> Trailer {
        let (off, len) = l.tail();
        let mut tail = vec![l.erased; len as usize];
        for w in writes {
            let at = (w.offset - off) as usize;
            tail[at..at + w.data.len()].copy_from_slice(&w.data);
        }
        l.decode(&tail).expect("decodes")
    }

    fn layout() -> Layout {
        Layout::parse(
            "name: t\n\
             flash:\n\
             \x20 - { name: int, base: 0, size: 0x30000, sector-size: 0x1000, write-size: 4 }\n\
             partitions:\n\
             \x20 - { name: slot0, device: int, offset: 0, size: 0x10000 }\n\
             \x20 - { name: slot1, device: int, offset: 0x10000, size: 0x10000 }\n\
             \x20 - { name: scratch, device: int, offset: 0x20000, size: 0x2000 }\n",
            std::path::Path::new("t.yaml"),
        )
        .expect("test layout")
    }

    /// The scratch trailer is the end of the scratch area with one sector's three status
    /// records (`boot_scratch_trailer_sz`), and the status source follows MCUboot's table.
    #[test]
    fn scratch_trailer_geometry_and_status_source() {
        let l = layout();
        let boot = BootloaderSpec {
            mode: UpgradeMode::SwapScratch,
            ..BootloaderSpec::default()
        };
        let sl = scratch_layout(&l, &boot, "slot0").expect("scratch layout");
        assert_eq!(sl.slot_size, 0x2000);
        assert_eq!(sl.status_size(), 3 * 4, "one sector of records");
        let (off, len) = sl.tail();
        assert_eq!(off + len, 0x2000);
        assert_eq!(len, 3 * 4 + sl.info_size());

        let pl = expect::trailer_layout(&l, &boot, "slot0").expect("slot0 layout");
        let erased_scr = trailer(&sl, &[]);
        let good_scr = trailer(&sl, &[sl.magic_write()]);
        let pri_running = trailer(&pl, &[pl.magic_write()]);
        let pri_done = trailer(&pl, &[pl.magic_write(), pl.flag_write(Field::CopyDone, 1)]);
        let pri_erased = trailer(&pl, &[]);
        assert!(status_source(&pri_done, &erased_scr).starts_with("none"));
        assert!(status_source(&pri_running, &erased_scr).starts_with("primary slot (a swap"));
        assert!(status_source(&pri_running, &good_scr).starts_with("scratch"));
        assert!(status_source(&pri_erased, &good_scr).starts_with("scratch"));
        assert!(status_source(&pri_erased, &erased_scr).starts_with("primary slot (nothing"));
    }
}
