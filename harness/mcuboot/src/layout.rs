//! Flash layouts: the flash devices of a board and the partitions MCUboot uses on them
//! (`partitions/*.yaml`).
//!
//! Scenarios name regions by partition (`slot0`, `slot1`, `scratch`, …), never by address, so one
//! scenario runs on an internal-flash layout and on one with the secondary slot on external QSPI.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};

/// One flash device: internal NVMC flash, or an external NOR (QSPI/SPI).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FlashDevice {
    pub name: String,
    /// `internal` or `external` (external NOR behind QSPI/SPI: MCUboot needs a driver for it).
    #[serde(default = "default_kind")]
    pub kind: DeviceKind,
    /// Address of the device in the CPU's (or the probe's) view; for external flash the XIP base
    /// if there is one, else a harness-local base used only to keep addresses unique.
    pub base: u32,
    pub size: u32,
    /// Erase unit (page/sector).
    pub sector_size: u32,
    /// Program unit: writes must be aligned to it in offset and length.
    pub write_size: u32,
    #[serde(default = "default_erased")]
    pub erased: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    Internal,
    External,
    /// RAM standing in for flash (NCS `region: ram_flash`, Zephyr flash simulator): the nRF5340
    /// network-core primary slot `mcuboot_primary_1`, which the app core cannot reach. Its
    /// contents (trailer included) do not survive a reset, so a probe cannot read it back.
    RamEmulated,
}

fn default_kind() -> DeviceKind {
    DeviceKind::Internal
}

fn default_erased() -> u8 {
    0xff
}

/// A named region of one device.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub name: String,
    pub device: String,
    /// Offset inside the device.
    pub offset: u32,
    pub size: u32,
    /// The flash area ID the application's `flash_area_open()` knows this partition by: in NCS
    /// builds the Partition Manager ID (`PM_<NAME>_ID` in `pm.config`, assigned by
    /// `scripts/partition_manager_output.py` in address order), so a device log line such as
    /// `Failed to open flash area ID 2: -2` can be traced back to a partition. `None` when the
    /// layout does not say.
    #[serde(default)]
    pub id: Option<u32>,
}

/// The primary/secondary pair of one updatable image (MCUboot image number = index).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePair {
    pub primary: String,
    pub secondary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub flash: Vec<FlashDevice>,
    pub partitions: Vec<Partition>,
    /// Defaults to one pair, `slot0`/`slot1`.
    #[serde(default = "default_images")]
    pub images: Vec<ImagePair>,
}

fn default_images() -> Vec<ImagePair> {
    vec![ImagePair {
        primary: "slot0".into(),
        secondary: "slot1".into(),
    }]
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// `at` is `:line:col` of the partition's entry when the text was parsed, else empty.
    #[error("{path}{at}: partition `{partition}`: {message}")]
    Invalid {
        path: PathBuf,
        at: String,
        partition: String,
        message: String,
    },
    /// `at` is `:line:col` of the device's entry when the text was parsed, else empty.
    #[error("{path}{at}: flash device `{device}`: {message}")]
    InvalidDevice {
        path: PathBuf,
        at: String,
        device: String,
        message: String,
    },
    #[error("{path}: not UTF-8 text: invalid byte {byte:#04x} at byte offset {offset}")]
    NotUtf8 {
        path: PathBuf,
        offset: usize,
        byte: u8,
    },
}

/// Where each flash device and partition entry starts in the text, read beside the layout
/// itself so that a check made after parsing can still point at the line.
#[derive(Default, Deserialize)]
struct Spans {
    #[serde(default)]
    flash: Vec<Spanned<serde::de::IgnoredAny>>,
    #[serde(default)]
    partitions: Vec<Spanned<serde::de::IgnoredAny>>,
}

impl Spans {
    fn at(list: &[Spanned<serde::de::IgnoredAny>], i: usize) -> String {
        list.get(i)
            .map(|s| format!(":{}:{}", s.referenced.line(), s.referenced.column()))
            .unwrap_or_default()
    }
}

/// Highest address a device may end at (exclusive end): every `base + offset + size` the
/// harness computes stays a `u32`, so an end address of exactly 4 GiB is refused too.
const ADDRESS_END: u64 = u32::MAX as u64;

impl Layout {
    pub fn load(path: &Path) -> Result<Layout, LayoutError> {
        let bytes = std::fs::read(path).map_err(|source| LayoutError::Io {
            path: path.to_owned(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| LayoutError::NotUtf8 {
            path: path.to_owned(),
            offset: e.valid_up_to(),
            byte: bytes.get(e.valid_up_to()).copied().unwrap_or(0),
        })?;
        Self::parse(text, path)
    }

    /// Parse and check a layout; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Layout, LayoutError> {
        let layout: Layout = serde_saphyr::from_str(text).map_err(|e| LayoutError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let spans: Spans = serde_saphyr::from_str(text).unwrap_or_default();
        layout.check_at(path, &spans)?;
        Ok(layout)
    }

    /// Check a layout built in code (no text, so errors carry no line).
    pub fn check(&self, path: &Path) -> Result<(), LayoutError> {
        self.check_at(path, &Spans::default())
    }

    fn check_at(&self, path: &Path, spans: &Spans) -> Result<(), LayoutError> {
        for (i, d) in self.flash.iter().enumerate() {
            let invalid = |message: String| LayoutError::InvalidDevice {
                path: path.to_owned(),
                at: Spans::at(&spans.flash, i),
                device: d.name.clone(),
                message,
            };
            if d.sector_size == 0 {
                return Err(invalid(
                    "sector-size 0: the erase unit must be at least 1 byte".into(),
                ));
            }
            if d.write_size == 0 {
                return Err(invalid(
                    "write-size 0: the program unit must be at least 1 byte".into(),
                ));
            }
            if u64::from(d.base) + u64::from(d.size) > ADDRESS_END {
                return Err(invalid(format!(
                    "base {:#x} + size {:#x} does not end below 4 GiB (the 32-bit address space)",
                    d.base, d.size
                )));
            }
            if self.flash[..i].iter().any(|e| e.name == d.name) {
                return Err(invalid("defined twice".into()));
            }
        }
        for (i, p) in self.partitions.iter().enumerate() {
            let invalid = |p: &str, message: String| LayoutError::Invalid {
                path: path.to_owned(),
                at: Spans::at(&spans.partitions, i),
                partition: p.to_owned(),
                message,
            };
            if self.partitions[..i].iter().any(|q| q.name == p.name) {
                return Err(invalid(&p.name, "defined twice".into()));
            }
            let Some(dev) = self.device(&p.device) else {
                return Err(invalid(
                    &p.name,
                    format!("unknown flash device `{}`", p.device),
                ));
            };
            if p.size == 0
                || p.offset
                    .checked_add(p.size)
                    .is_none_or(|end| end > dev.size)
            {
                return Err(invalid(
                    &p.name,
                    format!(
                        "0x{:x}+0x{:x} does not fit device `{}` (0x{:x} bytes)",
                        p.offset, p.size, dev.name, dev.size
                    ),
                ));
            }
            // Only what MCUboot erases sector by sector must sit on sector boundaries: the
            // slots of every image pair and the scratch area (`boot_erase_region` over
            // `flash_area_get_sectors`, bootutil/src/loader.c and swap_*.c). Other partitions are
            // placed by Partition Manager at the alignment their owner asks for: NSIB's `s0` at
            // 0x9000 with size 0xc200 is valid NCS output (b0 erases and writes s1 through its
            // own page-granular code), and `mcuboot` sits inside it behind `s0_pad`.
            if self.erased_by_sector(&p.name)
                && (p.offset % dev.sector_size != 0 || p.size % dev.sector_size != 0)
            {
                return Err(invalid(
                    &p.name,
                    format!(
                        "offset 0x{:x} / size 0x{:x} not on {}-byte sector boundaries of `{}`",
                        p.offset, p.size, dev.sector_size, dev.name
                    ),
                ));
            }
            let end = |x: &Partition| u64::from(x.offset) + u64::from(x.size);
            for q in &self.partitions {
                if q.name != p.name
                    && q.device == p.device
                    && u64::from(p.offset) < end(q)
                    && u64::from(q.offset) < end(p)
                {
                    return Err(invalid(&p.name, format!("overlaps partition `{}`", q.name)));
                }
            }
        }
        for (i, pair) in self.images.iter().enumerate() {
            for name in [&pair.primary, &pair.secondary] {
                if self.partition(name).is_none() {
                    return Err(LayoutError::Invalid {
                        path: path.to_owned(),
                        at: String::new(),
                        partition: name.clone(),
                        message: format!("image {i} names a partition the layout does not define"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Partitions MCUboot erases by sector: every image pair's slots, and `scratch`.
    pub fn erased_by_sector(&self, partition: &str) -> bool {
        partition == "scratch"
            || self
                .images
                .iter()
                .any(|i| i.primary == partition || i.secondary == partition)
    }

    /// Render in the `partitions/*.yaml` format (what [`Layout::load`] reads back).
    pub fn to_yaml(&self) -> String {
        use std::fmt::Write as _;
        let mut y = String::new();
        let _ = writeln!(y, "name: {:?}", self.name);
        if !self.description.is_empty() {
            let _ = writeln!(y, "description: {:?}", self.description);
        }
        y.push_str("flash:\n");
        for d in &self.flash {
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
        for p in &self.partitions {
            let id = p.id.map(|i| format!(", id: {i}")).unwrap_or_default();
            let _ = writeln!(
                y,
                "  - {{ name: {:?}, device: {:?}, offset: {:#x}, size: {:#x}{id} }}",
                p.name, p.device, p.offset, p.size
            );
        }
        if self.images.is_empty() {
            y.push_str("images: []\n");
        } else {
            y.push_str("images:\n");
            for i in &self.images {
                let _ = writeln!(
                    y,
                    "  - {{ primary: {:?}, secondary: {:?} }}",
                    i.primary, i.secondary
                );
            }
        }
        y
    }

    pub fn device(&self, name: &str) -> Option<&FlashDevice> {
        self.flash.iter().find(|d| d.name == name)
    }

    pub fn partition(&self, name: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == name)
    }

    /// The device a partition lives on.
    pub fn device_of(&self, p: &Partition) -> &FlashDevice {
        self.device(&p.device)
            .expect("checked at load: every partition names a device")
    }

    /// Absolute address of a partition (device base + offset); the load check keeps every
    /// device inside 32 bits, so this saturates only for a layout built in code and unchecked.
    pub fn address(&self, p: &Partition) -> u32 {
        self.device_of(p).base.saturating_add(p.offset)
    }

    pub fn partition_names(&self) -> Vec<&str> {
        self.partitions.iter().map(|p| p.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: t
flash:
  - { name: internal, base: 0x0, size: 0x100000, sector-size: 0x1000, write-size: 4 }
partitions:
  - { name: mcuboot, device: internal, offset: 0x0, size: 0xc000 }
  - { name: slot0, device: internal, offset: 0xc000, size: 0x7a000 }
  - { name: slot1, device: internal, offset: 0x86000, size: 0x7a000 }
"#;

    #[test]
    fn loads_and_resolves() {
        let l = Layout::parse(GOOD, Path::new("t.yaml")).unwrap();
        let s1 = l.partition("slot1").unwrap();
        assert_eq!(l.address(s1), 0x86000);
        assert_eq!(l.device_of(s1).erased, 0xff);
        assert_eq!(l.images[0].secondary, "slot1");
    }

    #[test]
    fn overlap_is_named() {
        let bad = GOOD.replace("offset: 0x86000", "offset: 0x85000");
        let e = Layout::parse(&bad, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.yaml"), "{e}");
        assert!(e.contains("overlaps"), "{e}");
    }

    #[test]
    fn unknown_key_has_line() {
        let bad = GOOD.replace("write-size: 4", "write-size: 4, wirte: 1");
        let e = Layout::parse(&bad, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.yaml") && e.contains("wirte"), "{e}");
        assert!(e.contains("line 4"), "{e}");
    }

    /// Regression (issue #16): `sector-size: 0` divided by zero; a device or partition ending
    /// past 4 GiB overflowed (debug panic, a wrong address in release); duplicate names were
    /// accepted. Each is an error at the entry's line.
    #[test]
    fn out_of_range_geometry_is_an_error_at_its_line() {
        let cases = [
            (GOOD.replace("sector-size: 0x1000", "sector-size: 0"), "t.yaml:4:", "sector-size 0"),
            (GOOD.replace("write-size: 4", "write-size: 0"), "t.yaml:4:", "write-size 0"),
            (GOOD.replace("base: 0x0", "base: 0xffff0000"), "t.yaml:4:", "32-bit"),
            // Ending exactly at 4 GiB would make the end address wrap to 0 in u32 arithmetic.
            (GOOD.replace("base: 0x0", "base: 0xfff00000"), "t.yaml:4:", "32-bit"),
            (
                GOOD.replace("size: 0x100000,", "size: 0xffffffff,")
                    .replace("offset: 0x86000, size: 0x7a000", "offset: 0xfffff000, size: 0x1000"),
                "t.yaml:8:",
                "does not fit",
            ),
            (
                GOOD.replace("size: 0x100000,", "size: 0xffffffff,")
                    .replace("offset: 0x86000, size: 0x7a000", "offset: 0xffffe000, size: 0x1000"),
                "",
                "",
            ),
            (GOOD.replace("name: slot1", "name: slot0"), "t.yaml:8:", "defined twice"),
            (
                GOOD.replace("partitions:", "  - { name: internal, base: 0x100000, size: 0x1000, sector-size: 0x1000, write-size: 4 }\npartitions:"),
                "t.yaml:5:",
                "defined twice",
            ),
        ];
        for (text, at, what) in cases {
            let r = Layout::parse(&text, Path::new("t.yaml"));
            if what.is_empty() {
                // A partition near the top of a 4 GiB device is fine and addressable.
                let l = r.unwrap();
                assert_eq!(l.address(l.partition("slot1").unwrap()), 0xffffe000);
                continue;
            }
            let e = r.unwrap_err().to_string();
            assert!(e.starts_with(at) && e.contains(what), "{e}");
        }
    }

    /// NSIB's `s0` at 0x9000 with size 0xc200 is valid NCS output: only the slots and scratch
    /// must be on sector boundaries.
    #[test]
    fn only_slots_and_scratch_must_be_sector_aligned() {
        let nsib = GOOD.replace(
            "  - { name: mcuboot, device: internal, offset: 0x0, size: 0xc000 }",
            "  - { name: s0, device: internal, offset: 0x0, size: 0xbe00 }",
        );
        Layout::parse(&nsib, Path::new("t.yaml")).unwrap();
        let slot = GOOD.replace(
            "offset: 0x86000, size: 0x7a000",
            "offset: 0x86000, size: 0x79e00",
        );
        let e = Layout::parse(&slot, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("slot1") && e.contains("sector"), "{e}");
        let scratch = GOOD.replace(
            "  - { name: mcuboot, device: internal, offset: 0x0, size: 0xc000 }",
            "  - { name: scratch, device: internal, offset: 0x0, size: 0xb800 }",
        );
        let e = Layout::parse(&scratch, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("scratch") && e.contains("sector"), "{e}");
    }

    #[test]
    fn to_yaml_reads_back() {
        let l = Layout::parse(GOOD, Path::new("t.yaml")).unwrap();
        assert_eq!(Layout::parse(&l.to_yaml(), Path::new("x.yaml")).unwrap(), l);
    }

    #[test]
    fn non_utf8_layout_names_the_byte_offset() {
        let dir = std::env::temp_dir().join(format!("dfu-hil-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.yaml");
        std::fs::write(&p, b"name: \xc3\x28\n").unwrap();
        let e = Layout::load(&p).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains("byte offset 6") && e.contains("0xc3"), "{e}");
    }
}
