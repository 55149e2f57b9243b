//! NOR flash with the semantics that make MCUboot's algorithms necessary: erase by sector to the
//! erased value, programming can only move bits away from the erased value, writes aligned to the
//! write size, and every erase/write counted so a power cut can be injected before operation N.
//!
//! Like MCUboot's own simulator (simflash) a cut happens *before* the operation, so a cut never
//! leaves a half-written word; a write over non-erased bytes is an error, not a silent AND.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlashError {
    #[error("{device}: access 0x{offset:x}+0x{len:x} outside the device (0x{size:x} bytes)")]
    OutOfRange {
        device: String,
        offset: u32,
        len: u32,
        size: u32,
    },
    #[error("{device}: {what} at 0x{offset:x}+0x{len:x} not aligned to {align} bytes")]
    Misaligned {
        device: String,
        what: &'static str,
        offset: u32,
        len: u32,
        align: u32,
    },
    #[error("{device}: write to non-erased location 0x{offset:x} (has 0x{old:02x}, writing 0x{new:02x})")]
    NotErased {
        device: String,
        offset: u32,
        old: u8,
        new: u8,
    },
    /// Power was cut before this operation (flash operation number `op`, 1-based).
    #[error("power cut before flash operation {op}")]
    PowerCut { op: u64 },
}

/// Kind of a counted flash operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Erase,
    Write,
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::Erase => "erase",
            OpKind::Write => "write",
        })
    }
}

/// One NOR flash device.
#[derive(Debug, Clone)]
pub struct NorFlash {
    pub name: String,
    pub sector_size: u32,
    pub write_size: u32,
    pub erased: u8,
    data: Vec<u8>,
    /// Erase count per sector, for wear figures.
    erase_counts: Vec<u32>,
}

impl NorFlash {
    pub fn new(name: &str, size: u32, sector_size: u32, write_size: u32, erased: u8) -> Self {
        assert!(
            sector_size > 0 && size % sector_size == 0,
            "{name}: bad geometry"
        );
        NorFlash {
            name: name.to_owned(),
            sector_size,
            write_size: write_size.max(1),
            erased,
            data: vec![erased; size as usize],
            erase_counts: vec![0; (size / sector_size) as usize],
        }
    }

    pub fn size(&self) -> u32 {
        self.data.len() as u32
    }

    pub fn contents(&self) -> &[u8] {
        &self.data
    }

    /// Replace the whole contents (loading a persisted flash file); sizes must match.
    pub fn load(&mut self, bytes: &[u8]) -> Result<(), FlashError> {
        self.range(0, bytes.len() as u32)?;
        if bytes.len() != self.data.len() {
            return Err(FlashError::OutOfRange {
                device: self.name.clone(),
                offset: 0,
                len: bytes.len() as u32,
                size: self.size(),
            });
        }
        self.data.copy_from_slice(bytes);
        Ok(())
    }

    pub fn erase_count(&self, sector: usize) -> u32 {
        self.erase_counts[sector]
    }

    fn range(&self, offset: u32, len: u32) -> Result<std::ops::Range<usize>, FlashError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(offset as usize..end as usize),
            _ => Err(FlashError::OutOfRange {
                device: self.name.clone(),
                offset,
                len,
                size: self.size(),
            }),
        }
    }

    pub fn read(&self, offset: u32, len: u32) -> Result<&[u8], FlashError> {
        let r = self.range(offset, len)?;
        Ok(&self.data[r])
    }

    pub fn erase(&mut self, offset: u32, len: u32) -> Result<(), FlashError> {
        let r = self.range(offset, len)?;
        if offset % self.sector_size != 0 || len % self.sector_size != 0 {
            return Err(FlashError::Misaligned {
                device: self.name.clone(),
                what: "erase",
                offset,
                len,
                align: self.sector_size,
            });
        }
        self.data[r].fill(self.erased);
        for s in offset / self.sector_size..(offset + len) / self.sector_size {
            self.erase_counts[s as usize] += 1;
        }
        Ok(())
    }

    pub fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let len = bytes.len() as u32;
        let r = self.range(offset, len)?;
        if offset % self.write_size != 0 || len % self.write_size != 0 {
            return Err(FlashError::Misaligned {
                device: self.name.clone(),
                what: "write",
                offset,
                len,
                align: self.write_size,
            });
        }
        // Programming only moves bits away from the erased state; MCUboot relies on never
        // writing twice, and the simulator enforces it as simflash does.
        for (i, (&old, &new)) in self.data[r.clone()].iter().zip(bytes).enumerate() {
            if old != self.erased && old != new {
                return Err(FlashError::NotErased {
                    device: self.name.clone(),
                    offset: offset + i as u32,
                    old,
                    new,
                });
            }
        }
        self.data[r].copy_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> NorFlash {
        NorFlash::new("internal", 0x4000, 0x1000, 4, 0xff)
    }

    #[test]
    fn erase_sets_erased_value_by_sector() {
        let mut f = dev();
        f.write(0x1000, &[0, 1, 2, 3]).unwrap();
        f.erase(0x1000, 0x1000).unwrap();
        assert!(f.read(0x1000, 0x1000).unwrap().iter().all(|&b| b == 0xff));
        assert_eq!(f.erase_count(1), 1);
        assert!(matches!(
            f.erase(0x1800, 0x1000),
            Err(FlashError::Misaligned { .. })
        ));
    }

    #[test]
    fn write_rules() {
        let mut f = dev();
        assert!(matches!(
            f.write(2, &[0; 4]),
            Err(FlashError::Misaligned { .. })
        ));
        assert!(matches!(
            f.write(0, &[0; 3]),
            Err(FlashError::Misaligned { .. })
        ));
        f.write(0, &[1, 2, 3, 4]).unwrap();
        // Same bytes again is harmless (no bit changes); different bytes are refused.
        f.write(0, &[1, 2, 3, 4]).unwrap();
        assert_eq!(
            f.write(0, &[1, 2, 3, 5]),
            Err(FlashError::NotErased {
                device: "internal".into(),
                offset: 3,
                old: 4,
                new: 5
            })
        );
        assert!(matches!(
            f.write(0x3ffc, &[0; 8]),
            Err(FlashError::OutOfRange { .. })
        ));
    }

    #[test]
    fn erased_zero_devices() {
        let mut f = NorFlash::new("ext", 0x2000, 0x1000, 1, 0x00);
        assert!(f.read(0, 4).unwrap().iter().all(|&b| b == 0));
        f.write(0, &[0xaa]).unwrap();
        f.erase(0, 0x1000).unwrap();
        assert_eq!(f.read(0, 1).unwrap(), &[0]);
    }
}
