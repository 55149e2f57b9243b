//! Whole-device flash images: every flash device of the layout as one file, read partition by
//! partition through the probe, so an engineer can load the board's state into their own tools
//! or boot it again (`dfu-hil replay`, native_sim's `--flash=FILE`, `sim serve --flash-file`).
//!
//! `flash.bin` is the devices end to end in layout order — the format of the native-sim flash
//! file and of `sim serve --flash-file` — and `flash-<device>.bin` each device alone. Bytes the
//! probe cannot read (outside every partition, or a partition it cannot reach) hold the device's
//! erased value, and the folder's `README.txt` says which.

use dfu_hil_board::Probe;
use dfu_hil_mcuboot::layout::Layout;
use std::fmt::Write as _;
use std::path::Path;

/// One flash device's bytes as read through the probe.
#[derive(Debug, Clone)]
pub struct DeviceImage {
    pub device: String,
    pub erased: u8,
    pub bytes: Vec<u8>,
    /// Partitions of this device the probe could not read, with why (their bytes are erased
    /// filler in `bytes`, not what the device holds).
    pub unread: Vec<(String, String)>,
    /// Whether every byte of the device lies in some partition (otherwise the gaps are filler).
    pub fully_covered: bool,
}

/// Every flash device of a layout, in layout order.
#[derive(Debug, Clone, Default)]
pub struct FlashImages {
    pub devices: Vec<DeviceImage>,
}

/// Read every partition of `layout` through `probe` into per-device images. Never fails: what
/// cannot be read is recorded in [`DeviceImage::unread`] and left erased.
pub fn capture(probe: &mut dyn Probe, layout: &Layout) -> FlashImages {
    let mut devices = Vec::new();
    for d in &layout.flash {
        let mut img = DeviceImage {
            device: d.name.clone(),
            erased: d.erased,
            bytes: vec![d.erased; d.size as usize],
            unread: Vec::new(),
            fully_covered: false,
        };
        let mut covered = vec![false; d.size as usize];
        for p in layout.partitions.iter().filter(|p| p.device == d.name) {
            let start = p.offset as usize;
            let end = start.saturating_add(p.size as usize).min(img.bytes.len());
            if start >= end {
                continue;
            }
            match probe.read(&p.name, 0, (end - start) as u32) {
                Ok(raw) if raw.len() == end - start => {
                    img.bytes[start..end].copy_from_slice(&raw);
                    covered[start..end].iter_mut().for_each(|c| *c = true);
                }
                Ok(raw) => img.unread.push((
                    p.name.clone(),
                    format!("the probe returned {} of {} bytes", raw.len(), end - start),
                )),
                Err(e) => img.unread.push((p.name.clone(), e.to_string())),
            }
        }
        img.fully_covered = covered.iter().all(|c| *c);
        devices.push(img);
    }
    FlashImages { devices }
}

impl FlashImages {
    /// The bytes of partition `name` as captured, if its device was read.
    pub fn partition<'a>(&'a self, layout: &Layout, name: &str) -> Option<&'a [u8]> {
        let p = layout.partition(name)?;
        let d = self.devices.iter().find(|d| d.device == p.device)?;
        if d.unread.iter().any(|(n, _)| n == name) {
            return None;
        }
        let start = p.offset as usize;
        d.bytes.get(start..start.checked_add(p.size as usize)?)
    }

    /// All devices end to end, in layout order (the flash-file format).
    pub fn concatenated(&self) -> Vec<u8> {
        self.devices
            .iter()
            .flat_map(|d| d.bytes.iter().copied())
            .collect()
    }

    /// Write `flash-<device>.bin` per device, `flash.bin` and `README.txt` into `dir`.
    pub fn write(&self, dir: &Path, layout: &Layout) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for d in &self.devices {
            std::fs::write(dir.join(format!("flash-{}.bin", d.device)), &d.bytes)?;
        }
        match self.devices.as_slice() {
            // One device: flash.bin is the same bytes; a second name, not a second copy.
            [d] => link_or_write(
                &dir.join(format!("flash-{}.bin", d.device)),
                &dir.join("flash.bin"),
                &d.bytes,
            )?,
            _ => std::fs::write(dir.join("flash.bin"), self.concatenated())?,
        }
        std::fs::write(dir.join("README.txt"), self.readme(layout))?;
        Ok(())
    }

    /// What the image files are, and what in them is filler rather than read from the device.
    pub fn readme(&self, layout: &Layout) -> String {
        let mut s = String::from(
            "Flash images of this evidence folder\n\n\
             flash.bin: every flash device below, end to end in this order, each at its full size.\n\
             It is the flash file `dfu-hil sim serve --flash-file FILE` and native_sim's\n\
             `--flash=FILE` read (board: native-sim), and what `dfu-hil replay` boots.\n\n",
        );
        let mut at = 0u64;
        for d in &self.devices {
            let dev = layout.device(&d.device);
            let _ = writeln!(
                s,
                "flash-{0}.bin: device `{0}`, {1} bytes (0x{1:x}), at 0x{2:x} in flash.bin{3}; erased value 0x{4:02x}",
                d.device,
                d.bytes.len(),
                at,
                dev.map(|f| format!(", base address 0x{:08x}", f.base))
                    .unwrap_or_default(),
                d.erased
            );
            at += d.bytes.len() as u64;
            if !d.fully_covered {
                let _ = writeln!(
                    s,
                    "  bytes outside every partition were not read: they hold 0x{:02x} here, not \
                     necessarily what the device holds",
                    d.erased
                );
            }
            for (p, why) in &d.unread {
                let _ = writeln!(
                    s,
                    "  partition `{p}` could not be read ({why}): 0x{:02x} filler here",
                    d.erased
                );
            }
        }
        s
    }
}

/// `to` as a hard link to `from` (which holds `bytes`), so an evidence folder does not keep the
/// same megabytes twice; a plain copy where links are not possible.
pub(crate) fn link_or_write(from: &Path, to: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::write(to, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfu_hil_board::{BoardError, CoreState, ResetKind};

    /// A probe over a map of partition contents; `None` = unreadable.
    struct Fake(Vec<(String, Option<Vec<u8>>)>);

    impl Probe for Fake {
        fn flash(&mut self, _: &str, _: &[u8]) -> Result<(), BoardError> {
            Ok(())
        }
        fn read(&mut self, region: &str, offset: u32, len: u32) -> Result<Vec<u8>, BoardError> {
            match self.0.iter().find(|(n, _)| n == region) {
                Some((_, Some(b))) => Ok(b[offset as usize..(offset + len) as usize].to_vec()),
                Some((_, None)) => Err(BoardError::Unsupported("not readable".into())),
                None => Err(BoardError::NoRegion(region.into())),
            }
        }
        fn erase(&mut self, _: &str, _: u32, _: u32) -> Result<(), BoardError> {
            Ok(())
        }
        fn region_size(&self, _: &str) -> Result<u32, BoardError> {
            Ok(0)
        }
        fn reset(&mut self, _: ResetKind) -> Result<(), BoardError> {
            Ok(())
        }
        fn core_state(&mut self) -> Result<CoreState, BoardError> {
            Ok(CoreState::Off)
        }
    }

    fn layout() -> Layout {
        Layout::parse(
            "name: t\n\
             flash:\n\
             \x20 - { name: int, base: 0, size: 0x40, sector-size: 0x10, write-size: 4 }\n\
             \x20 - { name: ext, kind: external, base: 0x1000, size: 0x20, sector-size: 0x10, write-size: 4, erased: 0 }\n\
             partitions:\n\
             \x20 - { name: mcuboot, device: int, offset: 0, size: 0x10 }\n\
             \x20 - { name: slot0, device: int, offset: 0x20, size: 0x20 }\n\
             \x20 - { name: slot1, device: ext, offset: 0, size: 0x20 }\n",
            Path::new("t.yaml"),
        )
        .expect("test layout")
    }

    #[test]
    fn devices_end_to_end_with_gaps_and_unreadable_parts_erased() {
        let l = layout();
        let mut probe = Fake(vec![
            ("mcuboot".into(), Some(vec![1; 0x10])),
            ("slot0".into(), Some(vec![2; 0x20])),
            ("slot1".into(), None),
        ]);
        let img = capture(&mut probe, &l);
        let all = img.concatenated();
        assert_eq!(all.len(), 0x60);
        assert_eq!(&all[..0x10], &[1; 0x10]);
        assert_eq!(&all[0x10..0x20], &[0xff; 0x10], "the gap is erased");
        assert_eq!(&all[0x20..0x40], &[2; 0x20]);
        assert_eq!(&all[0x40..], &[0; 0x20], "ext erases to 0");
        assert!(!img.devices[0].fully_covered);
        assert_eq!(img.devices[1].unread.len(), 1);
        assert_eq!(img.partition(&l, "slot0"), Some(&[2u8; 0x20][..]));
        assert_eq!(img.partition(&l, "slot1"), None);
        let readme = img.readme(&l);
        assert!(readme.contains("outside every partition"), "{readme}");
        assert!(readme.contains("`slot1` could not be read"), "{readme}");
    }
}
