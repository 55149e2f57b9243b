//! Swap-using-offset (`swap_offset.c`): the update is uploaded one sector into the secondary
//! slot, so each primary sector can be saved into the secondary sector just freed below it — one
//! erase per sector per slot, two status records per index. A revert walks the same steps
//! mirror-wise from the top and finally scrubs the secondary's first sector and trailer.
//!
//! As in [`crate::bootloader::swap_move`], every erase and write is one [`FlashMap`] operation in MCUboot's
//! order so a power cut can land before any of them.

use crate::bootloader::sectors::trailer_sectors;
use crate::bootloader::swap_status::{Status, STATE_0, STATE_1};
use crate::bootloader::{Bootloader, Pair, Stop};
use crate::device::flash_map::FlashMap;
use dfu_hil_mcuboot::image::{Image, ImageHeader, IMAGE_MAGIC};
use dfu_hil_mcuboot::trailer::{Field, Flag, MagicState, SwapType, Trailer};

/// Status records per index in swap-using-offset.
const STATES: u32 = 2;

/// `find_last_idx`: 0-based index of the last sector the swap covers.
fn find_last_idx(swap_size: u32, sector: u32) -> u32 {
    swap_size.div_ceil(sector).max(1) - 1
}

/// `swap_read_status_bytes` (offset): the highest written record decides. (MCUboot's
/// "inconsistent status" check in this function cannot fire as written, so none is modelled.)
fn read_records(t: &Trailer) -> Option<(u32, u8)> {
    let found = t.status.iter().rposition(|&b| b != t.erased)? as u32 + 1;
    Some((found / STATES + 1, (found % STATES) as u8 + STATE_0))
}

/// Unprotected TLV block size of a parsed image (the swap-offset trailer records both).
fn unprotected_tlv_size(img: &Image) -> u32 {
    (img.total_size - img.tlv_off - img.header.protect_tlv_size as usize) as u32
}

impl Bootloader<'_> {
    /// `swap_status_source` for swap-using-offset (same rule as move).
    pub(crate) fn read_status_offset(&mut self, pri: &Trailer, sec: Option<&Trailer>) -> Status {
        let mut bs = Status::reset();
        self.log_state("Primary image", pri);
        if let Some(s) = sec {
            self.log_state("Secondary image", s);
        }
        let source_primary = pri.magic == MagicState::Good
            && pri.copy_done == Flag::Unset
            && sec.is_some_and(|s| s.magic != MagicState::Good);
        self.info(if source_primary {
            "Boot source: primary slot"
        } else {
            "Boot source: none"
        });
        if source_primary {
            bs.source_primary = true;
            bs.swap_type = pri.swap_type();
            bs.swap_size = pri.swap_size.unwrap_or(0);
            if let Some((idx, state)) = read_records(pri) {
                bs.op_move = false;
                bs.idx = idx;
                bs.state = state;
            }
        }
        bs
    }

    /// `boot_slots_compatible` for swap-using-offset.
    pub(crate) fn slots_compatible_offset(&mut self, pri: u32, sec: u32, s0: u32, s1: u32) -> bool {
        if pri != sec && pri + 1 != sec {
            self.warn("Cannot upgrade: not a compatible amount of sectors");
            return false;
        }
        if pri > self.build.max_sectors {
            self.warn("Cannot upgrade: more sectors than allowed");
            return false;
        }
        if s0 != s1 {
            self.warn("Cannot upgrade: not same sector layout");
            return false;
        }
        true
    }

    /// `bootutil_max_image_size` for swap-using-offset: up to the sector holding the status
    /// area; the secondary loses its first sector.
    pub(crate) fn max_image_size_offset(&self, pair: &Pair, secondary: bool) -> u32 {
        let sz = pair.sector;
        if secondary {
            (pair.sec_layout.status_off() / sz * sz).saturating_sub(sz)
        } else {
            pair.pri_layout.status_off() / sz * sz
        }
    }

    /// The space check at the start of a new swap-using-offset swap.
    pub(crate) fn enough_space_offset(&mut self, pair: &Pair, copy_size: u32) -> bool {
        let sz = pair.sector;
        let last = find_last_idx(copy_size, sz);
        let n = pair.pri_layout.slot_size / sz;
        let first_trailer_idx = n - trailer_sectors(&pair.pri_layout, sz).max(1);
        if last >= first_trailer_idx {
            self.warn("Not enough free space to run swap upgrade");
            self.warn(format!(
                "required {} bytes but only {} are available",
                (last + 1) * sz,
                first_trailer_idx * sz
            ));
            return false;
        }
        true
    }

    /// Where the secondary image header is for a swap of type `st` that has not started
    /// (`boot_read_image_header` without status): one sector in, except for a revert, with the
    /// fallback to the other position when there is no header there.
    pub(crate) fn offset_secondary_start(
        &self,
        flash: &FlashMap,
        pair: &Pair,
        st: SwapType,
    ) -> Result<u32, Stop> {
        let sz = flash.sector_size(&pair.secondary)?;
        let (first, other) = if st == SwapType::Revert {
            (0, sz)
        } else {
            (sz, 0)
        };
        let magic = |off: u32| -> Result<bool, Stop> {
            let b = flash.read(&pair.secondary, off, 4)?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == IMAGE_MAGIC)
        };
        Ok(if magic(first)? || !magic(other)? {
            first
        } else {
            other
        })
    }

    /// `boot_read_image_header` with a status: where each slot's header is in the middle of a
    /// swap. `None` when no header can be read there.
    fn offset_header_during_swap(
        &self,
        flash: &FlashMap,
        pair: &Pair,
        bs: &Status,
        slot: u32,
        revert: bool,
    ) -> Option<ImageHeader> {
        let sz = pair.sector;
        let last = find_last_idx(bs.swap_size, sz);
        let done = bs.idx - 1;
        let (part, off) = if revert {
            if slot == 0 {
                if done > last || (done == last && bs.state == STATE_1) {
                    (&pair.secondary, sz)
                } else {
                    (&pair.primary, 0)
                }
            } else if done > last {
                (&pair.primary, 0)
            } else {
                (&pair.secondary, 0)
            }
        } else if slot == 0 {
            if (bs.idx > 1 || bs.state == STATE_1) && bs.idx <= last {
                (&pair.secondary, 0)
            } else {
                (&pair.primary, 0)
            }
        } else if bs.idx > 1 {
            (&pair.primary, 0)
        } else {
            (&pair.secondary, sz)
        };
        let b = flash.read(part, off, 32).ok()?;
        ImageHeader::parse(&b)
            .ok()
            .filter(|h| h.magic == IMAGE_MAGIC)
    }

    /// Both slots' unprotected TLV sizes as the trailer field stores them.
    fn tlv_sizes(&self, flash: &FlashMap, pair: &Pair, sec_off: u32) -> Result<u32, Stop> {
        let size = |part: &str, off: u32, total: u32| -> Result<u32, Stop> {
            Ok(Image::parse(&flash.read(part, off, total - off)?)
                .map(|i| unprotected_tlv_size(&i))
                .unwrap_or(0))
        };
        let p = size(&pair.primary, 0, pair.pri_layout.slot_size)?;
        let s = size(&pair.secondary, sec_off, pair.sec_layout.slot_size)?;
        Ok((p & 0xffff) | (s << 16))
    }

    fn write_status_offset(
        &self,
        flash: &mut FlashMap,
        pair: &Pair,
        bs: &Status,
    ) -> Result<(), Stop> {
        let l = &pair.pri_layout;
        let record = (bs.idx - 1) * STATES + (bs.state - STATE_0) as u32;
        self.write(
            flash,
            &pair.primary,
            l.status_record_write(record, bs.state),
        )
    }

    /// `swap_run` for swap-using-offset (the space check was done by the caller).
    pub(crate) fn swap_run_offset(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        bs: &mut Status,
        table_revert: bool,
    ) -> Result<(), Stop> {
        self.info("Starting swap using offset algorithm.");
        let sz = pair.sector;
        let last = find_last_idx(bs.swap_size, sz);
        let revert = bs.swap_type == SwapType::Revert || table_revert;
        // Headers as boot_read_image_headers left them: before the swap, or mid-swap.
        let (h0, h1) = if bs.is_reset() {
            let sec_off = if revert { 0 } else { sz };
            let rd = |part: &str, off: u32| {
                flash
                    .read(part, off, 32)
                    .ok()
                    .and_then(|b| ImageHeader::parse(&b).ok())
            };
            (rd(&pair.primary, 0), rd(&pair.secondary, sec_off))
        } else {
            (
                self.offset_header_during_swap(flash, pair, bs, 0, revert),
                self.offset_header_during_swap(flash, pair, bs, 1, revert),
            )
        };
        let used = |h: Option<ImageHeader>| {
            h.map(|h| (h.hdr_size as u32 + h.protect_tlv_size as u32 + h.img_size).div_ceil(sz))
                .unwrap_or(u32::MAX)
        };
        let (used_pri, used_sec) = (used(h0), used(h1));

        self.fixup_revert_offset(flash, pair, bs)?;
        if bs.idx == 1 {
            if !bs.source_primary {
                let sec_off = if revert { 0 } else { sz };
                let sizes = self.tlv_sizes(flash, pair, sec_off)?;
                self.erase_trailer_sectors(flash, &pair.primary, &pair.pri_layout)?;
                self.status_init_on(
                    flash,
                    pair,
                    &pair.primary,
                    &pair.pri_layout,
                    bs,
                    Some(sizes),
                )?;
            }
            self.erase_trailer_sectors(flash, &pair.secondary, &pair.sec_layout)?;
        }
        bs.op_move = false;
        for idx in 0..=last {
            if idx + 1 < bs.idx {
                continue;
            }
            let i = if revert { last - idx } else { idx };
            let (pri_off, sec_off, sec_up_off) = if revert {
                (i * sz, (i + 1) * sz, i * sz)
            } else {
                (i * sz, i * sz, (i + 1) * sz)
            };
            if bs.state == STATE_0 {
                if i <= used_pri {
                    flash.erase(&pair.secondary, sec_off, sz)?;
                    self.copy_region(
                        flash,
                        (&pair.primary, pri_off),
                        (&pair.secondary, sec_off),
                        sz,
                    )?;
                }
                self.write_status_offset(flash, pair, bs)?;
                bs.state = STATE_1;
            }
            if bs.state == STATE_1 {
                if i <= used_sec {
                    flash.erase(&pair.primary, pri_off, sz)?;
                    self.copy_region(
                        flash,
                        (&pair.secondary, sec_up_off),
                        (&pair.primary, pri_off),
                        sz,
                    )?;
                }
                self.write_status_offset(flash, pair, bs)?;
                bs.idx += 1;
                bs.state = STATE_0;
            }
        }
        if revert {
            // The old first sector must not look like an upload at the wrong address, and the
            // trailer must allow the next upload.
            flash.erase(&pair.secondary, 0, flash.sector_size(&pair.secondary)?)?;
            self.erase_trailer_sectors(flash, &pair.secondary, &pair.sec_layout)?;
        }
        Ok(())
    }

    /// `fixup_revert` (offset): make a just-started revert recognisable (row I: secondary GOOD,
    /// copy_done set, image_ok unset) until the primary status exists.
    fn fixup_revert_offset(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        bs: &Status,
    ) -> Result<(), Stop> {
        if bs.swap_type != SwapType::Revert || bs.idx != 1 {
            return Ok(());
        }
        let l = pair.sec_layout;
        let sec = self.read_trailer(flash, &pair.secondary, &l)?;
        self.log_state("Secondary image", &sec);
        if sec.magic == MagicState::Unset {
            self.erase_trailer_sectors(flash, &pair.secondary, &l)?;
            self.write(flash, &pair.secondary, l.flag_write(Field::CopyDone, 1))?;
            let sizes = self.tlv_sizes(flash, pair, 0)?;
            self.status_init_on(flash, pair, &pair.secondary, &l, bs, Some(sizes))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfu_hil_mcuboot::trailer::{TrailerLayout, UpgradeMode};

    #[test]
    fn offset_records_decode() {
        let l = TrailerLayout {
            max_sectors: 8,
            ..TrailerLayout::new(0x8000, UpgradeMode::SwapOffset)
        };
        let mut slot = vec![0xff; l.slot_size as usize];
        let t = l.decode(&slot).unwrap();
        assert_eq!(read_records(&t), None);
        for r in 0..3 {
            let w = l.status_record_write(r, 1);
            slot[w.offset as usize..w.offset as usize + w.data.len()].copy_from_slice(&w.data);
        }
        // Three records: index 1 done, index 2 state 0 done → continue idx 2 state 1.
        assert_eq!(read_records(&l.decode(&slot).unwrap()), Some((2, STATE_1)));
        assert_eq!(find_last_idx(0x1000, 0x1000), 0);
        assert_eq!(find_last_idx(0x1001, 0x1000), 1);
    }
}
