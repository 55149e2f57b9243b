//! Import nRF Connect SDK Partition Manager maps (`pm_static.yml`, a build's `partitions.yml`)
//! as harness [`Layout`]s, so a scenario can run against the exact partitioning a product ships.
//!
//! PM names (NCS `scripts/partition_manager/partition_manager.rst`) are mapped to the harness's:
//! `mcuboot_primary` → `slot0`, `mcuboot_secondary` → `slot1`, `mcuboot_scratch` → `scratch`;
//! `mcuboot_primary_N` / `mcuboot_secondary_N` keep their names and form image pair N; `mcuboot`,
//! `b0`, `provision`, `s0`, `s1` and other plain partitions keep theirs. Containers (`span`) other
//! than the slots and NSIB's s0/s1, and parts nested inside a kept slot (`mcuboot_pad`,
//! `mcuboot_primary_app`, `s0_pad`, `s0_image`, …) are dropped: the harness addresses whole slots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::layout::{DeviceKind, FlashDevice, ImagePair, Layout, LayoutError, Partition};

/// One PM entry; unknown keys (`placement`, `share_size`, `inside`, …) are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct PmEntry {
    pub address: u64,
    pub size: u64,
    pub end_address: Option<u64>,
    pub region: Option<String>,
    pub device: Option<String>,
    pub span: Option<IgnoredAny>,
}

/// Device geometry for the regions a PM map can use.
#[derive(Debug, Clone)]
pub struct PmOptions {
    /// Layout name (default: the file stem).
    pub name: Option<String>,
    /// `flash_primary`: nRF52840 NVMC by default (1 MiB, 4 KiB pages, 4-byte writes).
    pub internal: FlashDevice,
    /// `external_flash`: MX25R64 behind QSPI by default (8 MiB, 4 KiB sectors); `base` is where
    /// the harness places it (0 unless given: the PM addresses are device offsets).
    pub external: FlashDevice,
    /// `ram_flash`: the RAM-emulated netcore primary on nRF5340.
    pub ram_flash: FlashDevice,
}

impl Default for PmOptions {
    fn default() -> Self {
        PmOptions {
            name: None,
            internal: FlashDevice {
                name: "internal".into(),
                kind: DeviceKind::Internal,
                base: 0,
                size: 0x10_0000,
                sector_size: 0x1000,
                write_size: 4,
                erased: 0xff,
            },
            external: FlashDevice {
                name: "external".into(),
                kind: DeviceKind::External,
                base: 0,
                size: 0x80_0000,
                sector_size: 0x1000,
                write_size: 4,
                erased: 0xff,
            },
            ram_flash: FlashDevice {
                name: "ram_flash".into(),
                kind: DeviceKind::RamEmulated,
                base: 0,
                size: 0x4_0000,
                sector_size: 0x800,
                write_size: 4,
                erased: 0xff,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PmError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a Partition Manager map: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: partition `{name}`: {message}")]
    Invalid {
        path: String,
        name: String,
        message: String,
    },
    #[error("{path}: no flash partitions found")]
    Empty { path: String },
    #[error("imported layout is invalid: {0}")]
    Layout(#[from] LayoutError),
}

/// The harness name of a PM partition.
pub fn harness_name(pm: &str) -> &str {
    match pm {
        "mcuboot_primary" => "slot0",
        "mcuboot_secondary" => "slot1",
        "mcuboot_scratch" => "scratch",
        other => other,
    }
}

/// Partitions that are whole units even though PM describes them as containers.
fn is_unit(pm: &str) -> bool {
    pm.starts_with("mcuboot_primary") && !pm.starts_with("mcuboot_primary_app")
        || pm.starts_with("mcuboot_secondary")
        || pm == "s0"
        || pm == "s1"
}

struct Part {
    name: String,
    region: String,
    offset: u64,
    size: u64,
    unit: bool,
}

/// Import a PM map; `path` names the file in errors and gives the default layout name.
pub fn import(text: &str, path: &Path, opts: &PmOptions) -> Result<Layout, PmError> {
    let p = path.display().to_string();
    let map: BTreeMap<String, PmEntry> =
        serde_saphyr::from_str(text).map_err(|e| PmError::Parse {
            path: p.clone(),
            message: e.to_string(),
        })?;
    let mut parts = Vec::new();
    for (name, e) in &map {
        let invalid = |message: String| PmError::Invalid {
            path: p.clone(),
            name: name.clone(),
            message,
        };
        // PM maps are 32-bit address spaces; a larger number is a broken map, and letting it
        // through would truncate it to a wrong partition (or wrap and hide `slot0`).
        let Some(e_end) = e.address.checked_add(e.size).filter(|&x| x <= 1 << 32) else {
            return Err(invalid(format!(
                "address {:#x} + size {:#x} ends past the 32-bit address space",
                e.address, e.size
            )));
        };
        if let Some(end) = e.end_address {
            if end != e_end {
                return Err(invalid(format!(
                    "end_address {end:#x} != address {:#x} + size {:#x}",
                    e.address, e.size
                )));
            }
        }
        let region = e.region.clone().unwrap_or_else(|| "flash_primary".into());
        if !matches!(
            region.as_str(),
            "flash_primary" | "external_flash" | "ram_flash"
        ) {
            continue; // sram_primary, otp, …: not flash the harness addresses
        }
        // Free-space fillers and the region placeholders PM emits.
        if name.starts_with("EMPTY_") || *name == region || e.size == 0 {
            continue;
        }
        let unit = is_unit(name);
        if e.span.is_some() && !unit {
            continue;
        }
        parts.push(Part {
            name: name.clone(),
            region,
            offset: e.address,
            size: e.size,
            unit,
        });
    }
    // Drop anything nested inside a kept unit (pads, images, the mcuboot inside s0).
    let nested = |q: &Part| {
        parts.iter().any(|u| {
            u.unit
                && u.name != q.name
                && u.region == q.region
                && u.offset <= q.offset
                && q.offset + q.size <= u.offset + u.size
                && !(q.unit && u.offset == q.offset && u.size == q.size)
        })
    };
    let mut kept: Vec<&Part> = parts.iter().filter(|q| !nested(q)).collect();
    if kept.is_empty() {
        return Err(PmError::Empty { path: p });
    }
    let rank = |r: &str| match r {
        "flash_primary" => 0,
        "external_flash" => 1,
        _ => 2,
    };
    kept.sort_by_key(|q| (rank(&q.region), q.offset));

    let mut devices: Vec<FlashDevice> = Vec::new();
    for (region, dev) in [
        ("flash_primary", &opts.internal),
        ("external_flash", &opts.external),
        ("ram_flash", &opts.ram_flash),
    ] {
        let end = kept
            .iter()
            .filter(|q| q.region == region)
            .map(|q| q.offset + q.size)
            .max();
        if let Some(end) = end {
            let mut d = dev.clone();
            // `end` is at most 4 GiB (checked per entry above); a device of exactly 4 GiB is
            // capped one byte short and the layout check then names the partition that does not fit.
            d.size = d.size.max(u32::try_from(end).unwrap_or(u32::MAX));
            devices.push(d);
        }
    }
    let dev_name = |region: &str| match region {
        "flash_primary" => &opts.internal.name,
        "external_flash" => &opts.external.name,
        _ => &opts.ram_flash.name,
    };
    let name = opts.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pm".into())
    });

    let partitions = kept
        .iter()
        .map(|q| Partition {
            name: harness_name(&q.name).to_string(),
            device: dev_name(&q.region).clone(),
            // Both fit: every kept entry ends at or below 4 GiB (checked above).
            offset: u32::try_from(q.offset).unwrap_or(u32::MAX),
            size: u32::try_from(q.size).unwrap_or(u32::MAX),
        })
        .collect();
    let has = |n: &str| kept.iter().any(|q| q.name == n);
    let images = (0..4)
        .map(|i| {
            if i == 0 {
                (
                    "mcuboot_primary".to_string(),
                    "mcuboot_secondary".to_string(),
                )
            } else {
                (
                    format!("mcuboot_primary_{i}"),
                    format!("mcuboot_secondary_{i}"),
                )
            }
        })
        .filter(|(a, b)| has(a) && has(b))
        .map(|(a, b)| ImagePair {
            primary: harness_name(&a).to_string(),
            secondary: harness_name(&b).to_string(),
        })
        .collect();
    let layout = Layout {
        name,
        description: format!("imported from {p}"),
        flash: devices,
        partitions,
        images,
    };
    // Validate exactly as a partitions/*.yaml file is validated.
    Ok(Layout::parse(&to_yaml(&layout), path)?)
}

/// Read and import a PM file.
pub fn import_file(path: &Path, opts: &PmOptions) -> Result<Layout, PmError> {
    let text = std::fs::read_to_string(path).map_err(|source| PmError::Io {
        path: path.display().to_string(),
        source,
    })?;
    import(&text, path, opts)
}

/// Render a layout in the `partitions/*.yaml` format (what `Layout::load` reads).
pub fn to_yaml(l: &Layout) -> String {
    let mut y = String::new();
    let _ = writeln!(y, "name: {:?}", l.name);
    if !l.description.is_empty() {
        let _ = writeln!(y, "description: {:?}", l.description);
    }
    y.push_str("flash:\n");
    for d in &l.flash {
        let kind = match d.kind {
            DeviceKind::Internal => "internal",
            DeviceKind::External => "external",
            DeviceKind::RamEmulated => "ram-emulated",
        };
        let _ = writeln!(
            y,
            "  - {{ name: {:?}, kind: {kind}, base: {:#x}, size: {:#x}, sector-size: {:#x}, write-size: {}, erased: {:#x} }}",
            d.name, d.base, d.size, d.sector_size, d.write_size, d.erased
        );
    }
    y.push_str("partitions:\n");
    for p in &l.partitions {
        let _ = writeln!(
            y,
            "  - {{ name: {:?}, device: {:?}, offset: {:#x}, size: {:#x} }}",
            p.name, p.device, p.offset, p.size
        );
    }
    if l.images.is_empty() {
        y.push_str("images: []\n");
    } else {
        y.push_str("images:\n");
        for i in &l.images {
            let _ = writeln!(
                y,
                "  - {{ primary: {:?}, secondary: {:?} }}",
                i.primary, i.secondary
            );
        }
    }
    y
}
