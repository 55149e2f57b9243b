//! Flash layouts: the flash devices of a board and the partitions MCUboot uses on them
//! (`partitions/*.yaml`).
//!
//! Scenarios name regions by partition (`slot0`, `slot1`, `scratch`, …), never by address, so one
//! scenario runs on an internal-flash layout and on one with the secondary slot on external QSPI.

use serde::Deserialize;
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
    #[error("{path}: partition `{partition}`: {message}")]
    Invalid {
        path: PathBuf,
        partition: String,
        message: String,
    },
}

impl Layout {
    pub fn load(path: &Path) -> Result<Layout, LayoutError> {
        let text = std::fs::read_to_string(path).map_err(|source| LayoutError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and check a layout; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Layout, LayoutError> {
        let layout: Layout = serde_saphyr::from_str(text).map_err(|e| LayoutError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        layout.check(path)?;
        Ok(layout)
    }

    fn check(&self, path: &Path) -> Result<(), LayoutError> {
        let invalid = |p: &str, message: String| LayoutError::Invalid {
            path: path.to_owned(),
            partition: p.to_owned(),
            message,
        };
        for p in &self.partitions {
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
            if p.offset % dev.sector_size != 0 || p.size % dev.sector_size != 0 {
                return Err(invalid(
                    &p.name,
                    format!(
                        "offset 0x{:x} / size 0x{:x} not on {}-byte sector boundaries of `{}`",
                        p.offset, p.size, dev.sector_size, dev.name
                    ),
                ));
            }
            for q in &self.partitions {
                if q.name != p.name
                    && q.device == p.device
                    && p.offset < q.offset + q.size
                    && q.offset < p.offset + p.size
                {
                    return Err(invalid(&p.name, format!("overlaps partition `{}`", q.name)));
                }
            }
        }
        for (i, pair) in self.images.iter().enumerate() {
            for name in [&pair.primary, &pair.secondary] {
                if self.partition(name).is_none() {
                    return Err(invalid(
                        name,
                        format!("image {i} names a partition the layout does not define"),
                    ));
                }
            }
        }
        Ok(())
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

    /// Absolute address of a partition (device base + offset).
    pub fn address(&self, p: &Partition) -> u32 {
        self.device_of(p).base + p.offset
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
}
