//! When the layout import refuses a build's `partitions.yml`, say *why* in DFU terms where the
//! refusal is a defect of the build rather than of the file: an MCUboot slot that is not on the
//! chip's erase boundaries, or a partition past the end of the chip's flash. The file is read as
//! the block-style text NCS writes (`address:`, `size:`, `region:` under each top-level entry).
//!
//! Why an unaligned slot breaks an update: Zephyr's `flash_area_get_sectors`
//! (`subsys/storage/flash_map/flash_map_layout.c`, `get_sectors_cb`) lists the pages that *start*
//! inside the area, so a slot ending mid-page gets a last sector reaching into the next
//! partition, and one starting mid-page loses its first half page; MCUboot's swap then erases
//! whole sectors (`boot_erase_region`, `bootutil_misc.c`), which `flash_area_erase` refuses past
//! the area's end — the swap stops half done. A partition past the chip's end is never
//! programmed: the write fails at flash time or the data is gone.

use super::text::{parse_int, pm_entry_line, pm_field};
use super::{Evidence, Finding, Severity};
use crate::build::Build;
use crate::chip::{self, Chip};
use std::path::Path;

pub const UNALIGNED: &str = "slot-not-sector-aligned";
pub const BEYOND_FLASH: &str = "partition-beyond-flash";

/// Top-level entry names of a Partition Manager file.
fn entries(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.starts_with([' ', '\t', '#', '-']) && l.trim_end().ends_with(':'))
        .map(|l| l.trim_end().trim_end_matches(':').to_owned())
        .collect()
}

/// The chip of the build: the application's `.config` (most specific part symbol), else
/// `CONFIG_SOC` as the build names it.
fn chip_of(build: &Build) -> Option<&'static Chip> {
    build
        .app
        .as_ref()
        .and_then(|a| std::fs::read_to_string(&a.config).ok())
        .and_then(|t| chip::from_config(&t))
        .or_else(|| build.soc().and_then(|s| chip::lookup(&s)))
}

fn is_slot(name: &str) -> bool {
    (name.starts_with("mcuboot_primary") || name.starts_with("mcuboot_secondary"))
        && !name.ends_with("_app")
        || name == "mcuboot_scratch"
}

/// Specific findings for a `partitions.yml` the layout import refused.
pub fn check(build: &Build, pm: &Path) -> Vec<Finding> {
    let Some(chip) = chip_of(build) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in entries(pm) {
        let region = pm_field(pm, &name, "region").map(|(_, v)| v);
        if region.as_deref().is_some_and(|r| r != "flash_primary") {
            continue; // external flash, RAM, OTP: not the chip's flash
        }
        let (Some((aline, a)), Some((sline, s))) =
            (pm_field(pm, &name, "address"), pm_field(pm, &name, "size"))
        else {
            continue;
        };
        let (Some(addr), Some(size)) = (parse_int(&a), parse_int(&s)) else {
            continue;
        };
        let unit = u64::from(chip.erase_unit.max(1));
        // The pages Zephyr lists for the area: those that start inside it.
        let n = addr
            .saturating_add(size)
            .div_ceil(unit)
            .saturating_sub(addr.div_ceil(unit));
        if is_slot(&name) && size > 0 && (addr % unit != 0 || size % unit != 0) {
            out.push(Finding {
                id: UNALIGNED,
                severity: Severity::Error,
                title: format!(
                    "`{name}` ({addr:#x}+{size:#x}) is not on the {}'s {unit}-byte erase boundaries",
                    chip.name
                ),
                cause: format!(
                    "MCUboot works sector by sector: {n} sectors start inside the slot, covering \
                     {:#x} bytes of a {size:#x}-byte slot, and a swap erases whole sectors across \
                     the slot's edge, which the flash map refuses — the update stops half done",
                    n.saturating_mul(unit)
                ),
                evidence: vec![
                    Evidence::new(pm, Some(aline), format!("{name}: address {a}")),
                    Evidence::new(pm, Some(sline), format!("{name}: size {s}")),
                ],
                fix: format!(
                    "align the slots to {unit} bytes in pm_static.yml (or let Partition Manager \
                     place them: NCS aligns slots itself unless a static file pins them off the \
                     boundary)"
                ),
            });
        }
        let end = u64::from(chip.flash_base) + u64::from(chip.flash_size);
        if addr.saturating_add(size) > end {
            out.push(Finding {
                id: BEYOND_FLASH,
                severity: Severity::Error,
                title: format!(
                    "`{name}` ({addr:#x}..{:#x}) ends past the {}'s flash ({:#x} bytes)",
                    addr.saturating_add(size),
                    chip.name,
                    chip.flash_size
                ),
                cause: "what is written there never reaches flash: programming fails, or the data \
                        (settings, storage) is silently gone"
                    .into(),
                evidence: vec![
                    Evidence::new(
                        pm,
                        pm_entry_line(pm, &name),
                        format!("{name}: address {a}, size {s}"),
                    ),
                    Evidence::new(
                        Path::new(chip.dtsi),
                        None,
                        format!("{}: {:#x} bytes of flash", chip.name, chip.flash_size),
                    ),
                ],
                fix: "shrink or move the partition in pm_static.yml; check the board's SoC \
                      variant (e.g. nRF52832 QFAA 512 KiB vs QFAB 256 KiB)"
                    .into(),
            });
        }
    }
    out
}
