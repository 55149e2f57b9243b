//! Partition Manager entries → a harness [`Layout`]: flash devices with the chip's geometry,
//! the partitions a scenario can name (non-overlapping), image pairs, and notes on the rest.
//!
//! A PM map is a tree written flat: containers (`span`) hold other partitions, and the slots
//! themselves are containers (`mcuboot_primary` spans `mcuboot_pad` + `app`, NSIB's `s0` spans
//! `s0_pad` + `mcuboot`). Nesting is not an overlap. The harness keeps:
//!
//! - the *units* MCUboot and NSIB address as a whole — `mcuboot_primary[_N]`,
//!   `mcuboot_secondary[_N]`, `mcuboot_scratch`, `s0`, `s1` — even though PM writes them as spans;
//! - every plain partition that does not lie inside a unit (`mcuboot`, `b0`, `provision`,
//!   `settings_storage`, `nvs_storage`, `app` of a build without MCUboot, …).
//!
//! Everything else is said in `notes`: containers other than the units (`tfm_nonsecure`,
//! `app_image`, `b0_container`), the pieces inside a unit, `EMPTY_*` gap fillers, and partitions
//! in regions that are not flash the harness addresses (`sram_primary`, `otp`, `bootconf`).
//! Names follow NCS `scripts/partition_manager.rst`; `mcuboot_primary` → `slot0`,
//! `mcuboot_secondary` → `slot1`, `mcuboot_scratch` → `scratch`, the rest keep their names.

use super::yaml::PmEntry;
use super::{ImportOptions, PmError, PmImport};
use crate::chip::{self, Chip};
use dfu_hil_mcuboot::layout::{DeviceKind, FlashDevice, ImagePair, Layout, Partition};
use std::collections::BTreeMap;
use std::path::Path;

/// The harness name of a PM partition.
pub fn harness_name(pm: &str) -> &str {
    match pm {
        "mcuboot_primary" => "slot0",
        "mcuboot_secondary" => "slot1",
        "mcuboot_scratch" => "scratch",
        other => other,
    }
}

/// `mcuboot_primary`, `mcuboot_secondary_1`, …: the slot of image `N` (0 without a suffix).
pub fn slot_image(pm: &str) -> Option<(bool, u32)> {
    let (primary, rest) = if let Some(r) = pm.strip_prefix("mcuboot_primary") {
        (true, r)
    } else {
        (false, pm.strip_prefix("mcuboot_secondary")?)
    };
    if rest.is_empty() {
        return Some((primary, 0));
    }
    let n = rest.strip_prefix('_')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None; // mcuboot_primary_app, mcuboot_primary_1_pad, …
    }
    Some((primary, n.parse().ok()?))
}

/// Partitions MCUboot or NSIB address as a whole, kept even though PM writes them as spans.
fn is_unit(pm: &str) -> bool {
    slot_image(pm).is_some() || matches!(pm, "mcuboot_scratch" | "s0" | "s1")
}

/// The flash regions the harness models, and the device each becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dev {
    Internal,
    External,
    Ram,
}

impl Dev {
    fn of(region: &str) -> Option<Dev> {
        match region {
            "flash_primary" => Some(Dev::Internal),
            "external_flash" => Some(Dev::External),
            "ram_flash" => Some(Dev::Ram),
            _ => None,
        }
    }
    fn region(self) -> &'static str {
        match self {
            Dev::Internal => "flash_primary",
            Dev::External => "external_flash",
            Dev::Ram => "ram_flash",
        }
    }
    fn device_name(self) -> &'static str {
        match self {
            Dev::Internal => "internal",
            Dev::External => "external",
            Dev::Ram => "ram_flash",
        }
    }
}

struct Placed<'a> {
    e: &'a PmEntry,
    dev: Dev,
    /// Offset inside the device (address minus the region's base).
    offset: u64,
}

fn list(v: &[String]) -> String {
    v.join(", ")
}

/// Turn entries into a layout; see the module doc for what is kept.
pub fn flatten(
    entries: &[PmEntry],
    path: &Path,
    opts: &ImportOptions,
) -> Result<PmImport, PmError> {
    let f = path.display().to_string();
    let at = |e: &PmEntry| format!("{f}:{}", e.line);
    let mut notes: Vec<String> = Vec::new();

    // The chip: given, or the default with a note.
    let (chip, chip_assumed): (&'static Chip, bool) = match &opts.soc {
        Some(s) => match chip::lookup(s) {
            Some(c) => (c, false),
            None => {
                return Err(PmError::Invalid {
                    at: f.clone(),
                    message: format!(
                        "unknown SoC `{s}`: known are {}",
                        chip::ALL
                            .iter()
                            .map(|c| c.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
        },
        None => {
            // The nRF5340 network core's map sits at 0x0100_0000: that is the chip it is for.
            let net = entries.iter().any(|e| {
                e.region.as_deref().unwrap_or("flash_primary") == "flash_primary"
                    && e.address >= u64::from(chip::NRF5340_NET.flash_base)
                    && e.address < 0x0200_0000
            });
            let c = if net {
                &chip::NRF5340_NET
            } else {
                chip::DEFAULT
            };
            notes.push(format!(
                "no SoC given: assumed the {} ({:#x} bytes of flash at {:#x}, {}-byte erase unit, \
                 {}-byte writes); pass --soc (CONFIG_SOC) for the build's chip",
                c.name, c.flash_size, c.flash_base, c.erase_unit, c.write_unit
            ));
            (c, true)
        }
    };
    if chip.rram {
        notes.push(format!(
            "{} internal memory is RRAM: no real erase; Zephyr presents {}-byte erase blocks and \
             {}-byte writes ({})",
            chip.name, chip.erase_unit, chip.write_unit, chip.dtsi
        ));
    }
    let regions = opts.regions.as_ref();
    if let Some(r) = &opts.regions_file {
        notes.push(format!("regions read from {}", r.display()));
    }

    // Classify every entry.
    let mut placed: Vec<Placed> = Vec::new();
    let mut not_flash: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut containers: Vec<String> = Vec::new();
    let mut gaps: Vec<&PmEntry> = Vec::new();
    let mut placeholders: BTreeMap<Dev, u64> = BTreeMap::new();
    for e in entries {
        if let Some(end) = e.end_address {
            if end != e.address + e.size {
                notes.push(format!(
                    "{}: `{}` has end_address {end:#x} but address {:#x} + size {:#x} = {:#x}; \
                     Partition Manager places partitions by address and size \
                     (partition_manager.py), so this import does too",
                    at(e),
                    e.name,
                    e.address,
                    e.size,
                    e.address + e.size
                ));
            }
        }
        // No `region`: Partition Manager's default is flash_primary, but an entry in the
        // Cortex-M SRAM window (0x2000_0000..0x4000_0000, where every Nordic SoC has its RAM and
        // none its flash) is RAM written by an older PM that did not tag it.
        let region = match e.region.as_deref() {
            Some(r) => r,
            None if (0x2000_0000..0x4000_0000).contains(&e.address) => {
                notes.push(format!(
                    "{}: `{}` has no region and sits at {:#x}, in SRAM: read as sram_primary",
                    at(e),
                    e.name,
                    e.address
                ));
                "sram_primary"
            }
            None => "flash_primary",
        };
        let Some(dev) = Dev::of(region) else {
            not_flash
                .entry(region.to_string())
                .or_default()
                .push(e.name.clone());
            continue;
        };
        if let Some(rs) = regions {
            if !rs.contains_key(region) {
                notes.push(format!(
                    "{}: `{}` is in region `{region}`, which regions.yml does not list",
                    at(e),
                    e.name
                ));
            }
        }
        let base = match (regions.and_then(|r| r.get(region)), dev) {
            (Some(r), _) => r.base_address,
            (None, Dev::Internal) => u64::from(chip.flash_base),
            (None, _) => 0,
        };
        let Some(offset) = e.address.checked_sub(base) else {
            return Err(PmError::Invalid {
                at: at(e),
                message: format!(
                    "partition `{}`: address {:#x} is below the start of {region} ({base:#x})",
                    e.name, e.address
                ),
            });
        };
        if e.name == region {
            // PM's free-space placeholder of a region (`external_flash`, `ram_flash`).
            placeholders.insert(dev, offset + e.size);
            notes.push(format!(
                "{}: `{}` is the free space of region {region} ({:#x}+{:#x}), not a partition",
                at(e),
                e.name,
                e.address,
                e.size
            ));
            continue;
        }
        if e.name.starts_with("EMPTY_") {
            gaps.push(e);
            continue;
        }
        if e.size == 0 {
            notes.push(format!("{}: `{}` has size 0 and is skipped", at(e), e.name));
            continue;
        }
        if !e.span.is_empty() && !is_unit(&e.name) {
            containers.push(format!("{} = [{}]", e.name, list(&e.span)));
            continue;
        }
        placed.push(Placed { e, dev, offset });
    }
    for (region, names) in &not_flash {
        notes.push(format!(
            "not flash the harness addresses (region {region}): {}",
            list(names)
        ));
    }
    if !containers.is_empty() {
        notes.push(format!(
            "containers (span) not kept as partitions: {}",
            containers.join("; ")
        ));
    }
    if !gaps.is_empty() {
        notes.push(format!(
            "gap fillers: {}",
            gaps.iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    // Pieces inside a unit are not partitions of their own; a partial overlap is an error.
    let end = |p: &Placed| p.offset + p.e.size;
    let mut inside: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut kept: Vec<&Placed> = Vec::new();
    for p in &placed {
        let unit_of = placed.iter().find(|u| {
            is_unit(&u.e.name)
                && u.e.name != p.e.name
                && u.dev == p.dev
                && u.offset <= p.offset
                && end(p) <= end(u)
                && !(is_unit(&p.e.name) && u.offset == p.offset && u.e.size == p.e.size)
        });
        match unit_of {
            Some(u) if is_unit(&p.e.name) && u.e.size > p.e.size => {
                // A slot inside another slot: the nRF5340 non-simultaneous network-core update
                // stages image 1 in image 0's secondary slot. One flash range, one partition.
                notes.push(format!(
                    "{}: `{}` ({:#x}+{:#x}) lies inside `{}` and shares its flash; the harness \
                     keeps `{}` (a scenario cannot address both at once)",
                    at(p.e),
                    p.e.name,
                    p.e.address,
                    p.e.size,
                    u.e.name,
                    harness_name(&u.e.name)
                ));
            }
            Some(u) if !is_unit(&p.e.name) => {
                inside
                    .entry(u.e.name.clone())
                    .or_default()
                    .push(p.e.name.clone());
            }
            _ => kept.push(p),
        }
    }
    for (u, names) in &inside {
        notes.push(format!("inside `{u}`: {}", list(names)));
    }
    for p in &kept {
        for q in &kept {
            if p.e.name < q.e.name && p.dev == q.dev && p.offset < end(q) && q.offset < end(p) {
                let (a, b) = if p.e.line <= q.e.line { (p, q) } else { (q, p) };
                return Err(PmError::Invalid {
                    at: at(b.e),
                    message: format!(
                        "partition `{}` ({:#x}+{:#x}) overlaps `{}` ({:#x}+{:#x}, line {}) \
                         without one containing the other",
                        b.e.name, b.e.address, b.e.size, a.e.name, a.e.address, a.e.size, a.e.line
                    ),
                });
            }
        }
    }
    kept.sort_by_key(|p| (p.dev, p.offset));

    // Devices, sized by the chip, regions.yml, or what the partitions reach.
    let mut devices: Vec<FlashDevice> = Vec::new();
    for dev in [Dev::Internal, Dev::External, Dev::Ram] {
        let on: Vec<&&Placed> = kept.iter().filter(|p| p.dev == dev).collect();
        if on.is_empty() {
            continue;
        }
        let reach = on
            .iter()
            .map(|p| end(p))
            .chain(placeholders.get(&dev).copied())
            .max()
            .unwrap_or(0);
        let region = regions.and_then(|r| r.get(dev.region()));
        let (base, size, sector, write, kind) = match dev {
            // Without a SoC, the build's own regions.yml (CONFIG_FLASH_SIZE) is the better
            // witness of the size than the assumed chip.
            Dev::Internal if chip_assumed && region.is_some() => {
                let r = region.map(|r| (r.size, r.line)).unwrap_or_default();
                notes.push(format!(
                    "flash_primary size {:#x} taken from regions.yml:{} (no SoC given)",
                    r.0, r.1
                ));
                (
                    chip.flash_base,
                    r.0,
                    chip.erase_unit,
                    chip.write_unit,
                    DeviceKind::Internal,
                )
            }
            Dev::Internal => {
                if let Some(r) = region {
                    if r.size != u64::from(chip.flash_size) {
                        notes.push(format!(
                            "regions.yml:{}: flash_primary is {:#x} bytes, the {} has {:#x} ({}): \
                             the chip's size is used",
                            r.line, r.size, chip.name, chip.flash_size, chip.dtsi
                        ));
                    }
                }
                (
                    chip.flash_base,
                    u64::from(chip.flash_size),
                    chip.erase_unit,
                    chip.write_unit,
                    DeviceKind::Internal,
                )
            }
            // External NOR: 4 KiB sectors (the erase unit of every SPI/QSPI NOR NCS boards
            // carry, e.g. MX25R64) and 4-byte writes (the QSPI driver's unit,
            // drivers/flash/nrf_qspi_nor.c).
            Dev::External => {
                let size = match region {
                    Some(r) => r.size,
                    None => {
                        notes.push(format!(
                            "external flash size {reach:#x} taken from the partitions on it (no \
                             regions.yml)"
                        ));
                        reach
                    }
                };
                (opts.external_base, size, 0x1000, 4, DeviceKind::External)
            }
            // RAM standing in for the nRF5340 network core's flash: 2 KiB units like the
            // network core's pages (nrf5340_cpunet.dtsi), which it is copied into.
            Dev::Ram => {
                let size = region.map(|r| r.size).filter(|&s| s > 0).unwrap_or(reach);
                (0, size, 0x800, 4, DeviceKind::RamEmulated)
            }
        };
        if let Some(p) = on.iter().find(|p| end(p) > size) {
            let whose = match dev {
                Dev::Internal if !(chip_assumed && region.is_some()) => {
                    format!("the {}'s flash ({size:#x} bytes, {})", chip.name, chip.dtsi)
                }
                _ => format!("{} ({size:#x} bytes)", dev.region()),
            };
            return Err(PmError::Invalid {
                at: at(p.e),
                message: format!(
                    "partition `{}` ({:#x}+{:#x}) ends at {:#x}, past the end of {whose}{}",
                    p.e.name,
                    p.e.address,
                    p.e.size,
                    end(p),
                    if chip_assumed && dev == Dev::Internal {
                        "; no SoC was given: pass --soc"
                    } else {
                        ""
                    }
                ),
            });
        }
        // MCUboot erases the slots and scratch sector by sector (boot_erase_region over the
        // sectors flash_area_get_sectors reports): one that does not start and end on the
        // device's erase unit cannot be updated, whatever Partition Manager wrote.
        if let Some(p) = on.iter().find(|p| {
            (slot_image(&p.e.name).is_some() || p.e.name == "mcuboot_scratch")
                && (p.offset % u64::from(sector) != 0 || p.e.size % u64::from(sector) != 0)
        }) {
            return Err(PmError::Invalid {
                at: at(p.e),
                message: format!(
                    "partition `{}` ({:#x}+{:#x}) is not on the {sector}-byte erase units of {}: \
                     MCUboot erases its slots and scratch sector by sector, so an update into it \
                     cannot work",
                    p.e.name,
                    p.e.address,
                    p.e.size,
                    match dev {
                        Dev::Internal => format!("the {} ({})", chip.name, chip.dtsi),
                        _ => dev.region().to_string(),
                    }
                ),
            });
        }
        let size = u32::try_from(size).map_err(|_| PmError::Invalid {
            at: f.clone(),
            message: format!("{} of {size:#x} bytes does not fit 32 bits", dev.region()),
        })?;
        devices.push(FlashDevice {
            name: dev.device_name().into(),
            kind,
            base,
            size,
            sector_size: sector,
            write_size: write,
            erased: chip.erased,
        });
    }

    // Image pairs, and what a scenario would miss.
    let has = |n: &str| kept.iter().any(|p| p.e.name == n);
    let max_image = kept
        .iter()
        .filter_map(|p| slot_image(&p.e.name).map(|(_, n)| n))
        .max();
    let mut images = Vec::new();
    let mut missing = Vec::new();
    for n in 0..=max_image.unwrap_or(0) {
        let (p, s) = if n == 0 {
            (
                "mcuboot_primary".to_string(),
                "mcuboot_secondary".to_string(),
            )
        } else {
            (
                format!("mcuboot_primary_{n}"),
                format!("mcuboot_secondary_{n}"),
            )
        };
        match (has(&p), has(&s)) {
            (true, true) => images.push(ImagePair {
                primary: harness_name(&p).into(),
                secondary: harness_name(&s).into(),
            }),
            (false, false) if n > 0 => {}
            (a, b) => {
                if !a {
                    missing.push(p);
                }
                if !b {
                    missing.push(s);
                }
            }
        }
    }
    // A map Partition Manager generated always has `app` and covers flash_primary end to end;
    // a pm_static.yml that pins a few partitions does neither.
    let has_app = entries.iter().any(|e| e.name == "app");
    let internal = devices.iter().find(|d| d.kind == DeviceKind::Internal);
    let hole = internal.and_then(|d| {
        let mut spans: Vec<(u64, u64)> = placed
            .iter()
            .filter(|p| p.dev == Dev::Internal)
            .map(|p| (p.offset, end(p)))
            .chain(gaps.iter().filter_map(|g| {
                let region = g.region.as_deref().unwrap_or("flash_primary");
                (region == "flash_primary").then(|| {
                    let o = g.address.saturating_sub(u64::from(d.base));
                    (o, o + g.size)
                })
            }))
            .collect();
        spans.sort_unstable();
        let mut at = 0u64;
        for (s, e) in spans {
            if s > at {
                return Some((at, s));
            }
            at = at.max(e);
        }
        (at < u64::from(d.size)).then_some((at, u64::from(d.size)))
    });
    let partial = !has_app || hole.is_some();
    if partial {
        let mut why = Vec::new();
        if !has_app {
            why.push("no `app` partition".to_string());
        }
        if let Some((a, b)) = hole {
            why.push(format!(
                "flash_primary {a:#x}..{b:#x} is not covered by any partition"
            ));
        }
        notes.push(format!(
            "partial map (a pm_static.yml pins only some partitions; Partition Manager places \
             the rest at build time): {}",
            why.join("; ")
        ));
    }

    // Partition IDs, from the pm.config that belongs to this map.
    let mut ids = BTreeMap::new();
    if let Some(cfg) = &opts.pm_config {
        let cf = opts
            .pm_config_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "pm.config".into());
        for e in entries {
            let Some(c) = cfg.get(&e.name) else { continue };
            if let Some(id) = c.id {
                ids.insert(e.name.clone(), id);
            }
            let differs =
                c.address.is_some_and(|a| a != e.address) || c.size.is_some_and(|s| s != e.size);
            if differs {
                notes.push(format!(
                    "{cf}:{}: `{}` is {:#x}+{:#x} there but {:#x}+{:#x} in {f}: that pm.config \
                     is from another build of the map",
                    c.line,
                    e.name,
                    c.address.unwrap_or(0),
                    c.size.unwrap_or(0),
                    e.address,
                    e.size
                ));
            }
        }
    }

    let name = opts.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pm".into())
    });
    let partitions = kept
        .iter()
        .map(|p| Partition {
            name: harness_name(&p.e.name).to_string(),
            device: p.dev.device_name().into(),
            // Both fit: checked against the device size (a u32) above.
            offset: u32::try_from(p.offset).unwrap_or(u32::MAX),
            size: u32::try_from(p.e.size).unwrap_or(u32::MAX),
            id: ids.get(&p.e.name).copied(),
        })
        .collect();
    let layout = Layout {
        name,
        description: format!("imported from {f}"),
        flash: devices,
        partitions,
        images,
    };
    layout.check(path).map_err(|e| PmError::Invalid {
        at: f.clone(),
        message: format!("the imported layout is not valid: {e}"),
    })?;
    Ok(PmImport {
        layout,
        ids,
        partial,
        missing,
        notes,
        chip,
        chip_assumed,
    })
}
