//! The MCUboot image trailer at the end of every slot: field offsets, the bytes MCUboot and the
//! application write, and decoding of what a probe reads back.
//!
//! Offsets follow MCUboot's `boot/bootutil/src/bootutil_misc.h` (`boot_magic_off`,
//! `boot_image_ok_off`, `boot_copy_done_off`, `boot_swap_size_off`), `bootutil_public.c`
//! (`boot_swap_info_off`) and `bootutil_area.c` (`boot_trailer_sz`, `boot_status_sz`): fields are
//! laid out downwards from the slot end, each in its own `max_align` cell, so a bootloader and an
//! application built with different `BOOT_MAX_ALIGN` disagree about every field — which is exactly
//! the class of bug a harness must be able to show byte by byte.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Upgrade strategy the bootloader was built with (`MCUBOOT_*` mode). It decides the status area
/// size (states per sector) and whether the swap-using-offset extra trailer field exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    SwapScratch,
    SwapMove,
    SwapOffset,
    OverwriteOnly,
    DirectXip,
}

impl UpgradeMode {
    /// Status records per sector index (`BOOT_STATUS_STATE_COUNT`); 0 where there is no status area.
    pub fn status_states(self) -> u32 {
        match self {
            UpgradeMode::SwapScratch | UpgradeMode::SwapMove => 3,
            UpgradeMode::SwapOffset => 2,
            UpgradeMode::OverwriteOnly | UpgradeMode::DirectXip => 0,
        }
    }

    /// The name MCUboot logs and Kconfig uses.
    pub fn name(self) -> &'static str {
        match self {
            UpgradeMode::SwapScratch => "swap-scratch",
            UpgradeMode::SwapMove => "swap-move",
            UpgradeMode::SwapOffset => "swap-offset",
            UpgradeMode::OverwriteOnly => "overwrite-only",
            UpgradeMode::DirectXip => "direct-xip",
        }
    }
}

impl fmt::Display for UpgradeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Decoded state of the 16-byte trailer magic (`BOOT_MAGIC_GOOD/BAD/UNSET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MagicState {
    Good,
    Bad,
    Unset,
}

/// Decoded state of a one-byte trailer flag (`BOOT_FLAG_SET/BAD/UNSET`): only exactly 0x01 is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    Set,
    Bad,
    Unset,
}

impl fmt::Display for MagicState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MagicState::Good => "good",
            MagicState::Bad => "bad",
            MagicState::Unset => "unset",
        })
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flag::Set => "set",
            Flag::Bad => "bad",
            Flag::Unset => "unset",
        })
    }
}

/// MCUboot's swap types (`BOOT_SWAP_TYPE_*`, values as in `bootutil_public.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SwapType {
    None,
    Test,
    Perm,
    Revert,
    Fail,
    Panic,
}

impl SwapType {
    pub fn code(self) -> u8 {
        match self {
            SwapType::None => 1,
            SwapType::Test => 2,
            SwapType::Perm => 3,
            SwapType::Revert => 4,
            SwapType::Fail => 5,
            SwapType::Panic => 0xff,
        }
    }

    /// Only TEST/PERM/REVERT are ever written to `swap_info`; anything else read back (erased,
    /// zero, > 4) is treated as NONE, as `boot_read_swap_state` does.
    pub fn from_swap_info(code: u8) -> SwapType {
        match code {
            2 => SwapType::Test,
            3 => SwapType::Perm,
            4 => SwapType::Revert,
            _ => SwapType::None,
        }
    }

    /// Lower-case name as MCUboot logs it ("Swap type: test").
    pub fn name(self) -> &'static str {
        match self {
            SwapType::None => "none",
            SwapType::Test => "test",
            SwapType::Perm => "perm",
            SwapType::Revert => "revert",
            SwapType::Fail => "fail",
            SwapType::Panic => "panic",
        }
    }
}

impl fmt::Display for SwapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The 16 magic bytes for a `BOOT_MAX_ALIGN` (MCUboot `bootutil_public.c`, `boot_img_magic`;
/// imgtool `image.py`, `Image.__init__`): the classic pattern for 8, and for 16/32 the alignment as
/// a little-endian u16 followed by a fixed 14-byte pattern.
pub fn magic_for(max_align: u32) -> [u8; 16] {
    if max_align <= 8 {
        [
            0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6,
            0x79, 0x80,
        ]
    } else {
        let mut m = [
            0x00, 0x00, 0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f,
            0x1f, 0x8a,
        ];
        m[..2].copy_from_slice(&(max_align as u16).to_le_bytes());
        m
    }
}

/// Alignment helpers saturate instead of wrapping: a layout whose numbers do not fit is reported
/// by [`TrailerLayout::check`], and until then no offset helper may panic on it.
fn align_up(v: u32, a: u32) -> u32 {
    let a = a.max(1);
    v.div_ceil(a).saturating_mul(a)
}

fn align_down(v: u32, a: u32) -> u32 {
    let a = a.max(1);
    v / a * a
}

/// Everything needed to place trailer fields in one slot: the slot size and the bootloader's
/// build-time constants. All offsets are from the start of the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailerLayout {
    pub slot_size: u32,
    /// `BOOT_MAX_ALIGN` (8, 16 or 32).
    pub max_align: u32,
    /// `BOOT_WRITE_SZ`: the flash write alignment; every flag write is padded to it.
    pub write_size: u32,
    /// Erased value of the flash device holding the slot (0xff on NOR, 0x00 on some devices).
    pub erased: u8,
    /// `BOOT_MAX_IMG_SECTORS`: sizes the status area whatever the real sector count.
    pub max_sectors: u32,
    pub mode: UpgradeMode,
}

/// A trailer field, for error messages and evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Magic,
    ImageOk,
    CopyDone,
    SwapInfo,
    SwapSize,
}

impl TrailerLayout {
    /// A layout with the NCS defaults (max-align 8, write size 4, erased 0xff, 128 sectors).
    pub fn new(slot_size: u32, mode: UpgradeMode) -> Self {
        TrailerLayout {
            slot_size,
            max_align: 8,
            write_size: 4,
            erased: 0xff,
            max_sectors: 128,
            mode,
        }
    }

    /// Size of the magic cell: `align_up(16, max_align)`; for max-align 32 the first 16 bytes are
    /// padding with the erased value.
    pub fn magic_cell(&self) -> u32 {
        align_up(16, self.max_align)
    }

    pub fn magic_off(&self) -> u32 {
        self.slot_size.saturating_sub(16)
    }

    pub fn image_ok_off(&self) -> u32 {
        align_down(
            self.slot_size
                .saturating_sub(16)
                .saturating_sub(self.max_align),
            self.max_align,
        )
    }

    pub fn copy_done_off(&self) -> u32 {
        self.image_ok_off().saturating_sub(self.max_align)
    }

    pub fn swap_info_off(&self) -> u32 {
        self.copy_done_off().saturating_sub(self.max_align)
    }

    /// Swap-using-offset only: both slots' unprotected TLV sizes.
    pub fn tlv_sizes_off(&self) -> Option<u32> {
        (self.mode == UpgradeMode::SwapOffset)
            .then(|| self.swap_info_off().saturating_sub(self.max_align))
    }

    pub fn swap_size_off(&self) -> u32 {
        self.tlv_sizes_off()
            .unwrap_or(self.swap_info_off())
            .saturating_sub(self.max_align)
    }

    /// The info block: flags, swap size and magic (`boot_trailer_info_sz`), without encryption keys.
    pub fn info_size(&self) -> u32 {
        self.slot_size.saturating_sub(self.swap_size_off())
    }

    /// Length of the swap status area (`N * STATES * W`); saturates at `u32::MAX` for numbers
    /// [`check`](Self::check) rejects.
    pub fn status_size(&self) -> u32 {
        self.max_sectors
            .saturating_mul(self.mode.status_states())
            .saturating_mul(self.write_size)
    }

    /// `boot_trailer_sz`: status area plus info block.
    pub fn trailer_size(&self) -> u32 {
        self.status_size().saturating_add(self.info_size())
    }

    /// The bytes a reader needs to decode this trailer: `(offset, len)` of the whole trailer,
    /// or of the whole slot when the slot is smaller than a full status area.
    pub fn tail(&self) -> (u32, u32) {
        let len = self.trailer_size().min(self.slot_size);
        (self.slot_size - len, len)
    }

    /// Offset of the first status record (0 when the trailer does not fit in the slot).
    pub fn status_off(&self) -> u32 {
        self.slot_size.saturating_sub(self.trailer_size())
    }

    /// Whether every offset of this layout is representable: the slot holds the info block
    /// (magic, flags, swap size) and the status area size fits in 32 bits. The offset helpers
    /// saturate rather than panic, so a caller holding numbers from a user or a device must call
    /// this before trusting them; [`decode`](Self::decode) does.
    pub fn check(&self) -> Result<(), TrailerError> {
        if self.max_align == 0 {
            return Err(TrailerError::OutOfRange {
                what: "max-align",
                value: 0,
                why: "must be at least 1 (MCUboot uses 8, 16 or 32)".into(),
            });
        }
        // A zero write size makes the status area zero bytes long whatever the sector count, so
        // the record count (sectors x states) would escape the 32-bit bound below.
        if self.write_size == 0 {
            return Err(TrailerError::OutOfRange {
                what: "write-size",
                value: 0,
                why: "must be at least 1 (the flash write block, e.g. 4 on nRF)".into(),
            });
        }
        // Info block: magic cell + image_ok + copy_done + swap_info (+ tlv sizes) + swap_size.
        let cells = if self.mode == UpgradeMode::SwapOffset {
            5
        } else {
            4
        };
        let info = u64::from(align_up(16, self.max_align)) + cells * u64::from(self.max_align);
        if u64::from(self.slot_size) < info {
            return Err(TrailerError::OutOfRange {
                what: "slot-size",
                value: self.slot_size.into(),
                why: format!(
                    "smaller than the {info:#x}-byte trailer info block (magic and flags at max-align {})",
                    self.max_align
                ),
            });
        }
        let status = u64::from(self.max_sectors)
            * u64::from(self.mode.status_states())
            * u64::from(self.write_size);
        if status + u64::from(self.info_size()) > u64::from(u32::MAX) {
            return Err(TrailerError::OutOfRange {
                what: "max-sectors",
                value: self.max_sectors.into(),
                why: format!(
                    "a status area of {status:#x} bytes ({} states x write size {}) does not fit in 32 bits",
                    self.mode.status_states(),
                    self.write_size
                ),
            });
        }
        Ok(())
    }

    pub fn field_off(&self, field: Field) -> u32 {
        match field {
            Field::Magic => self.magic_off(),
            Field::ImageOk => self.image_ok_off(),
            Field::CopyDone => self.copy_done_off(),
            Field::SwapInfo => self.swap_info_off(),
            Field::SwapSize => self.swap_size_off(),
        }
    }

    /// The write MCUboot (`boot_write_magic`) and the app (`boot_set_pending`) do for the magic:
    /// one `magic_cell()`-sized chunk ending at the slot end.
    pub fn magic_write(&self) -> TrailerWrite {
        let cell = self.magic_cell() as usize;
        let mut data = vec![self.erased; cell];
        data[cell - 16..].copy_from_slice(&magic_for(self.max_align));
        TrailerWrite {
            offset: self.slot_size.saturating_sub(cell as u32),
            data,
        }
    }

    /// A one-byte flag write padded to the write size with the erased value (`boot_write_trailer`).
    pub fn flag_write(&self, field: Field, value: u8) -> TrailerWrite {
        let mut data = vec![self.erased; self.write_size.max(1) as usize];
        data[0] = value;
        TrailerWrite {
            offset: self.field_off(field),
            data,
        }
    }

    /// `swap_info` = image number in the high nibble, swap type in the low nibble.
    pub fn swap_info_write(&self, image: u8, swap_type: SwapType) -> TrailerWrite {
        self.flag_write(Field::SwapInfo, (image << 4) | (swap_type.code() & 0x0f))
    }

    pub fn swap_size_write(&self, swap_size: u32) -> TrailerWrite {
        let len = align_up(4, self.write_size.max(1)) as usize;
        let mut data = vec![self.erased; len];
        data[..4].copy_from_slice(&swap_size.to_le_bytes());
        TrailerWrite {
            offset: self.swap_size_off(),
            data,
        }
    }

    /// Offset of status record `n` (0-based, in swap order) in the status area.
    pub fn status_record_off(&self, n: u32) -> u32 {
        self.status_off()
            .saturating_add(n.saturating_mul(self.write_size))
    }

    pub fn status_record_write(&self, n: u32, state: u8) -> TrailerWrite {
        let mut data = vec![self.erased; self.write_size.max(1) as usize];
        data[0] = state;
        TrailerWrite {
            offset: self.status_record_off(n),
            data,
        }
    }

    fn classify_flag(&self, b: u8) -> Flag {
        if b == self.erased {
            Flag::Unset
        } else if b == 0x01 {
            Flag::Set
        } else {
            Flag::Bad
        }
    }

    /// Decode a trailer from bytes that end at the slot end (the whole slot, or just its last
    /// `trailer_size()` bytes as a probe would read them).
    pub fn decode(&self, tail: &[u8]) -> Result<Trailer, TrailerError> {
        self.check()?;
        let needed = self.trailer_size() as usize;
        if tail.len() < self.info_size() as usize {
            return Err(TrailerError::TooShort {
                got: tail.len(),
                needed,
            });
        }
        let Some(base) = (self.slot_size as usize).checked_sub(tail.len()) else {
            return Err(TrailerError::LongerThanSlot {
                got: tail.len(),
                slot_size: self.slot_size,
            });
        };
        // Every field lies inside the tail once `check` passed and the tail holds the info block;
        // the lookups stay checked so a mistake here is an error, never a panic.
        let bytes = |off: u32, len: usize| -> Result<&[u8], TrailerError> {
            (off as usize)
                .checked_sub(base)
                .and_then(|at| tail.get(at..at.checked_add(len)?))
                .ok_or(TrailerError::TooShort {
                    got: tail.len(),
                    needed,
                })
        };
        let byte = |off: u32| bytes(off, 1).map(|b| b[0]);
        let mut magic_raw = [0u8; 16];
        magic_raw.copy_from_slice(bytes(self.magic_off(), 16)?);
        let magic = if magic_raw.iter().all(|&b| b == self.erased) {
            MagicState::Unset
        } else if magic_raw == magic_for(self.max_align) {
            MagicState::Good
        } else {
            MagicState::Bad
        };
        let image_ok_raw = byte(self.image_ok_off())?;
        let copy_done_raw = byte(self.copy_done_off())?;
        let swap_info_raw = byte(self.swap_info_off())?;
        let mut ss = [0u8; 4];
        ss.copy_from_slice(bytes(self.swap_size_off(), 4)?);
        let swap_size = if ss.iter().all(|&b| b == self.erased) {
            None
        } else {
            Some(u32::from_le_bytes(ss))
        };
        let swap_info = if swap_info_raw == self.erased {
            None
        } else {
            Some(swap_info_raw)
        };
        let mut status = Vec::new();
        if tail.len() >= needed {
            // `check` bounds sectors x states x write size (write size >= 1) to 32 bits.
            let n = self.max_sectors.saturating_mul(self.mode.status_states());
            for i in 0..n {
                status.push(byte(self.status_record_off(i))?);
            }
        }
        Ok(Trailer {
            magic,
            magic_raw,
            image_ok: self.classify_flag(image_ok_raw),
            image_ok_raw,
            copy_done: self.classify_flag(copy_done_raw),
            copy_done_raw,
            swap_info,
            swap_size,
            status,
            erased: self.erased,
        })
    }
}

/// One write into a slot, offsets from the slot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailerWrite {
    pub offset: u32,
    pub data: Vec<u8>,
}

/// A decoded trailer, raw bytes kept beside the classification for evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trailer {
    pub magic: MagicState,
    #[serde(with = "hex_bytes")]
    pub magic_raw: [u8; 16],
    pub image_ok: Flag,
    pub image_ok_raw: u8,
    pub copy_done: Flag,
    pub copy_done_raw: u8,
    /// Raw `swap_info` byte, `None` when erased.
    pub swap_info: Option<u8>,
    /// Bytes to swap, `None` when erased.
    pub swap_size: Option<u32>,
    /// First byte of every status record, in swap order (empty when not read).
    #[serde(skip)]
    pub status: Vec<u8>,
    #[serde(skip)]
    pub erased: u8,
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(b: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
}

impl Trailer {
    /// Swap type recorded in `swap_info` (only meaningful while resuming or as evidence).
    pub fn swap_type(&self) -> SwapType {
        self.swap_info
            .map(|b| SwapType::from_swap_info(b & 0x0f))
            .unwrap_or(SwapType::None)
    }

    pub fn image_num(&self) -> Option<u8> {
        self.swap_info.map(|b| b >> 4)
    }

    /// Number of status records written (not erased).
    pub fn status_written(&self) -> usize {
        self.status.iter().filter(|&&b| b != self.erased).count()
    }

    /// The (magic, image_ok, copy_done) triple the swap-type table reads.
    pub fn state(&self) -> crate::swap::SlotSwapState {
        crate::swap::SlotSwapState {
            magic: self.magic,
            image_ok: self.image_ok,
            copy_done: self.copy_done,
        }
    }
}

impl fmt::Display for Trailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "magic={} image_ok={} (0x{:02x}) copy_done={} (0x{:02x}) swap_info=",
            self.magic, self.image_ok, self.image_ok_raw, self.copy_done, self.copy_done_raw
        )?;
        match self.swap_info {
            Some(b) => write!(f, "0x{b:02x} ({})", self.swap_type())?,
            None => f.write_str("unset")?,
        }
        match self.swap_size {
            Some(s) => write!(f, " swap_size=0x{s:x}"),
            None => f.write_str(" swap_size=unset"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrailerError {
    #[error("trailer read too short: got {got} bytes, the trailer needs {needed}")]
    TooShort { got: usize, needed: usize },
    #[error("trailer read of {got} bytes is longer than the {slot_size:#x}-byte slot")]
    LongerThanSlot { got: usize, slot_size: u32 },
    /// A build constant or slot size for which the trailer offsets cannot be computed.
    #[error("{what} {value:#x} is out of range: {why}")]
    OutOfRange {
        what: &'static str,
        value: u64,
        why: String,
    },
}

#[cfg(test)]
mod tests {
    // rstest's generated case functions take one argument per column of the offset table below.
    #![allow(clippy::too_many_arguments)]
    use super::*;
    use rstest::rstest;

    /// Distances back from the slot end, worked out from MCUboot's offset helpers
    /// (`bootutil_misc.h`) and `boot_trailer_sz` / `boot_status_sz` (`bootutil_area.c`).
    #[rstest]
    #[case(8, 4, UpgradeMode::SwapMove, 0x18, 0x20, 0x28, 0x30, 0x600, 0x630)]
    #[case(8, 4, UpgradeMode::SwapScratch, 0x18, 0x20, 0x28, 0x30, 0x600, 0x630)]
    #[case(8, 4, UpgradeMode::SwapOffset, 0x18, 0x20, 0x28, 0x38, 0x400, 0x438)]
    #[case(8, 8, UpgradeMode::SwapMove, 0x18, 0x20, 0x28, 0x30, 0xC00, 0xC30)]
    #[case(8, 8, UpgradeMode::SwapOffset, 0x18, 0x20, 0x28, 0x38, 0x800, 0x838)]
    #[case(16, 16, UpgradeMode::SwapMove, 0x20, 0x30, 0x40, 0x50, 0x1800, 0x1850)]
    #[case(
        16,
        16,
        UpgradeMode::SwapOffset,
        0x20,
        0x30,
        0x40,
        0x60,
        0x1000,
        0x1060
    )]
    #[case(16, 4, UpgradeMode::SwapScratch, 0x20, 0x30, 0x40, 0x50, 0x600, 0x650)]
    #[case(32, 32, UpgradeMode::SwapMove, 0x40, 0x60, 0x80, 0xA0, 0x3000, 0x30A0)]
    #[case(
        32,
        32,
        UpgradeMode::SwapOffset,
        0x40,
        0x60,
        0x80,
        0xC0,
        0x2000,
        0x20C0
    )]
    #[allow(clippy::too_many_arguments)]
    fn offsets_match_reference_table(
        #[case] ma: u32,
        #[case] w: u32,
        #[case] mode: UpgradeMode,
        #[case] image_ok: u32,
        #[case] copy_done: u32,
        #[case] swap_info: u32,
        #[case] swap_size: u32,
        #[case] status_len: u32,
        #[case] total: u32,
    ) {
        let s = 0x7a000;
        let l = TrailerLayout {
            slot_size: s,
            max_align: ma,
            write_size: w,
            erased: 0xff,
            max_sectors: 128,
            mode,
        };
        assert_eq!(s - l.magic_off(), 0x10);
        assert_eq!(s - l.image_ok_off(), image_ok);
        assert_eq!(s - l.copy_done_off(), copy_done);
        assert_eq!(s - l.swap_info_off(), swap_info);
        assert_eq!(s - l.swap_size_off(), swap_size);
        assert_eq!(l.status_size(), status_len);
        assert_eq!(l.trailer_size(), total);
    }

    #[test]
    fn ncs_worked_example_absolute_offsets() {
        // mcuboot_secondary at 0x86000, size 0x7A000 (docs/protocol-facts.md, "Trailer offsets:
        // the NCS nRF52840 example").
        let l = TrailerLayout::new(0x7a000, UpgradeMode::SwapMove);
        let base = 0x86000;
        assert_eq!(base + l.magic_off(), 0xFFFF0);
        assert_eq!(base + l.image_ok_off(), 0xFFFE8);
        assert_eq!(base + l.copy_done_off(), 0xFFFE0);
        assert_eq!(base + l.swap_info_off(), 0xFFFD8);
    }

    #[test]
    fn magic_variants() {
        assert_eq!(magic_for(8)[0], 0x77);
        assert_eq!(&magic_for(16)[..4], &[0x10, 0x00, 0x2d, 0xe1]);
        assert_eq!(&magic_for(32)[..4], &[0x20, 0x00, 0x2d, 0xe1]);
    }

    fn apply(slot: &mut [u8], w: &TrailerWrite) {
        slot[w.offset as usize..w.offset as usize + w.data.len()].copy_from_slice(&w.data);
    }

    #[rstest]
    #[case(8, 0xff)]
    #[case(16, 0xff)]
    #[case(32, 0xff)]
    #[case(8, 0x00)]
    #[case(32, 0x00)]
    fn encode_decode_round_trip(#[case] ma: u32, #[case] erased: u8) {
        let l = TrailerLayout {
            slot_size: 0x20000,
            max_align: ma,
            write_size: 4.min(ma),
            erased,
            max_sectors: 32,
            mode: UpgradeMode::SwapMove,
        };
        let mut slot = vec![erased; l.slot_size as usize];
        let t = l.decode(&slot).unwrap();
        assert_eq!(t.magic, MagicState::Unset);
        assert_eq!(t.image_ok, Flag::Unset);
        assert_eq!(t.swap_info, None);
        apply(&mut slot, &l.magic_write());
        apply(&mut slot, &l.flag_write(Field::ImageOk, 1));
        apply(&mut slot, &l.swap_info_write(0, SwapType::Perm));
        apply(&mut slot, &l.swap_size_write(0x1234));
        apply(&mut slot, &l.status_record_write(0, 1));
        let t = l.decode(&slot).unwrap();
        assert_eq!(t.magic, MagicState::Good);
        assert_eq!(t.image_ok, Flag::Set);
        assert_eq!(t.copy_done, Flag::Unset);
        assert_eq!(t.swap_type(), SwapType::Perm);
        assert_eq!(t.swap_size, Some(0x1234));
        assert_eq!(t.status_written(), 1);
        // Decoding only the tail a probe reads gives the same answer.
        let tail = &slot[(l.slot_size - l.trailer_size()) as usize..];
        assert_eq!(l.decode(tail).unwrap(), t);
        // Another max-align's magic is BAD to this bootloader.
        let other = if ma == 8 { 16 } else { 8 };
        let mut slot2 = slot.clone();
        slot2[(l.slot_size - 16) as usize..].copy_from_slice(&magic_for(other));
        assert_eq!(l.decode(&slot2).unwrap().magic, MagicState::Bad);
    }

    #[test]
    fn flag_classification() {
        let l = TrailerLayout::new(0x1000 * 16, UpgradeMode::SwapMove);
        let mut slot = vec![0xff; l.slot_size as usize];
        slot[l.image_ok_off() as usize] = 0x00;
        slot[l.copy_done_off() as usize] = 0x01;
        let t = l.decode(&slot).unwrap();
        assert_eq!(t.image_ok, Flag::Bad);
        assert_eq!(t.copy_done, Flag::Set);
        assert_eq!(
            l.decode(&slot[slot.len() - 8..]),
            Err(TrailerError::TooShort {
                got: 8,
                needed: l.trailer_size() as usize
            })
        );
    }

    /// Regression (issue #16): numbers a user types used to overflow the offset arithmetic
    /// (debug panic) or index out of bounds in `decode` (release); now `check` names the value.
    #[rstest]
    #[case(0x7a000, 8, 0xffff_ffff, "max-sectors")]
    #[case(16, 8, 128, "slot-size")]
    #[case(0, 8, 128, "slot-size")]
    #[case(0x7a000, 0, 128, "max-align")]
    // Found by the fuzz smoke (harness/fuzzing, target `trailer`): write size 0 made the status
    // area empty, so `check` passed a sector count whose record count overflowed in `decode`.
    #[case(0xe008_d500, 32, 0xbc47_cc94, "write-size")]
    fn out_of_range_numbers_are_errors_not_panics(
        #[case] slot_size: u32,
        #[case] max_align: u32,
        #[case] max_sectors: u32,
        #[case] what: &str,
    ) {
        for mode in [
            UpgradeMode::SwapMove,
            UpgradeMode::SwapOffset,
            UpgradeMode::OverwriteOnly,
        ] {
            let l = TrailerLayout {
                slot_size,
                max_align,
                max_sectors,
                write_size: if what == "write-size" { 0 } else { 4 },
                ..TrailerLayout::new(slot_size, mode)
            };
            if mode == UpgradeMode::OverwriteOnly && what == "max-sectors" {
                // No status area: any sector count is representable.
                assert_eq!(l.check(), Ok(()));
                continue;
            }
            match l.check() {
                Err(TrailerError::OutOfRange { what: w, .. }) => assert_eq!(w, what),
                other => panic!("{mode}: expected {what} out of range, got {other:?}"),
            }
            // Every helper stays total and decode reports instead of indexing out of bounds.
            let _ = (l.tail(), l.status_off(), l.swap_size_off(), l.magic_write());
            let _ = (l.status_record_write(u32::MAX, 1), l.swap_size_write(1));
            let slot = vec![0xffu8; 12];
            assert!(l.decode(&slot).is_err());
            let tail = vec![0xffu8; (l.trailer_size() as usize).min(0x1000)];
            assert!(l.decode(&tail).is_err());
        }
    }

    #[test]
    fn decode_of_more_bytes_than_the_slot_is_an_error() {
        let l = TrailerLayout::new(0x1000, UpgradeMode::OverwriteOnly);
        assert!(matches!(
            l.decode(&vec![0xff; 0x2000]),
            Err(TrailerError::LongerThanSlot { .. })
        ));
    }
}
