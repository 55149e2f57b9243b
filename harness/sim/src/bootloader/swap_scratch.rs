//! Swap-using-scratch (`swap_scratch.c`, design.md "Swap using scratch"): regions of as many
//! sectors as fit in the scratch area are swapped top-down through it, three status records per
//! region. While the region holding the primary trailer is swapped, the status lives in a small
//! trailer at the end of the scratch area (`boot_scratch_trailer_sz`: one region's records plus
//! the info block), and the status source table decides on resume which of the two to trust.
//!
//! As in [`crate::bootloader::swap_move`], every erase and write is one [`FlashMap`] operation in MCUboot's
//! order so a power cut can land before any of them.

use crate::bootloader::swap_status::{Status, STATE_0, STATE_1, STATE_2};
use crate::bootloader::{Bootloader, Pair, Stop};
use crate::device::flash_map::FlashMap;
use dfu_hil_mcuboot::trailer::{
    Field, Flag, MagicState, SwapType, Trailer, TrailerLayout, UpgradeMode,
};

/// Name of the scratch partition (Zephyr `scratch_partition`, `FLASH_AREA_IMAGE_SCRATCH`).
pub const SCRATCH: &str = "scratch";

/// Status records per region (`BOOT_STATUS_STATE_COUNT` in scratch mode).
const STATES: u32 = 3;

/// Where `swap_status_source` says the status of an interrupted swap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    None,
    Primary,
    Scratch,
}

/// `swap_read_status_bytes` for scratch mode: the first erased record after the written ones
/// gives the next (idx, state). A written record after a gap is an inconsistent status.
/// Returns `None` when nothing is written, and whether the status is inconsistent.
fn read_records(t: &Trailer) -> (Option<(u32, u8)>, bool) {
    let erased = t.erased;
    let mut found = false;
    let mut found_idx: Option<usize> = None;
    let mut invalid = false;
    for (i, &b) in t.status.iter().enumerate() {
        if b == erased {
            if found && found_idx.is_none() {
                found_idx = Some(i);
            }
        } else if !found {
            found = true;
        } else if found_idx.is_some() {
            invalid = true;
            break;
        }
    }
    if !found {
        return (None, invalid);
    }
    let n = found_idx.unwrap_or(t.status.len()) as u32;
    (
        Some((n / STATES + 1, (n % STATES) as u8 + STATE_0)),
        invalid,
    )
}

impl Bootloader<'_> {
    /// The scratch trailer's geometry: same constants as the slots', one region of status.
    pub(crate) fn scratch_layout(
        &self,
        flash: &FlashMap,
        pair: &Pair,
    ) -> Result<TrailerLayout, Stop> {
        let p = flash.partition(SCRATCH).map_err(|_| {
            Stop::Halt(format!(
                "Failed to open flash area ID {} (image {} scratch): -19",
                2 * flash.layout.images.len() + 1,
                pair.image
            ))
        })?;
        let dev = flash.layout.device_of(p);
        Ok(TrailerLayout {
            slot_size: p.size,
            erased: dev.erased,
            max_sectors: 1,
            mode: UpgradeMode::SwapScratch,
            ..pair.pri_layout
        })
    }

    /// `swap_read_status` with the scratch-mode `boot_status_tables` (rows in order, first
    /// match wins).
    pub(crate) fn read_status_scratch(
        &mut self,
        flash: &FlashMap,
        pair: &Pair,
        pri: &Trailer,
    ) -> Result<Status, Stop> {
        let sl = self.scratch_layout(flash, pair)?;
        let scr = self.read_trailer(flash, SCRATCH, &sl)?;
        self.log_state("Primary image", pri);
        self.log_state("Scratch", &scr);
        let mut source = if pri.magic == MagicState::Good
            && scr.magic != MagicState::Good
            && pri.copy_done == Flag::Set
        {
            Source::None
        } else if pri.magic == MagicState::Good
            && scr.magic != MagicState::Good
            && pri.copy_done == Flag::Unset
        {
            Source::Primary
        } else if scr.magic == MagicState::Good {
            Source::Scratch
        } else if pri.magic == MagicState::Unset && pri.copy_done == Flag::Unset {
            Source::Primary
        } else {
            Source::None
        };
        // Multi-image: a scratch status belongs to the image its swap_info names.
        if source == Source::Scratch
            && flash.layout.images.len() > 1
            && scr.image_num().unwrap_or(0) as usize != pair.image
        {
            source = Source::None;
        }
        self.info(match source {
            Source::None => "Boot source: none",
            Source::Primary => "Boot source: primary slot",
            Source::Scratch => "Boot source: scratch",
        });
        let mut bs = Status::reset();
        let t = match source {
            Source::None => return Ok(bs),
            Source::Primary => pri,
            Source::Scratch => &scr,
        };
        let (records, invalid) = read_records(t);
        if invalid {
            self.err("Detected inconsistent status!");
            if !self.build.validate_primary {
                return Err(Stop::Halt("assert: inconsistent swap status".into()));
            }
        }
        bs.swap_type = t.swap_type();
        // boot_read_swap_size via boot_find_status: scratch first if its magic is good.
        bs.swap_size = if scr.magic == MagicState::Good {
            scr.swap_size
        } else {
            pri.swap_size
        }
        .unwrap_or(0);
        if let Some((idx, state)) = records {
            bs.op_move = false;
            bs.idx = idx;
            bs.state = state;
        }
        Ok(bs)
    }

    /// `boot_slots_compatible` (scratch and overwrite-only): sectors of one slot must tile the
    /// other's, every swapped group must fit in scratch, and both slots must end together.
    pub(crate) fn slots_compatible_scratch(
        &mut self,
        flash: &FlashMap,
        pair: &Pair,
        with_scratch: bool,
    ) -> Result<bool, Stop> {
        let (s0, s1) = (pair.sector, flash.sector_size(&pair.secondary)?);
        let n0 = pair.pri_layout.slot_size / s0;
        let n1 = pair.sec_layout.slot_size / s1;
        if n0 > self.build.max_sectors || n1 > self.build.max_sectors {
            self.warn("Cannot upgrade: more sectors than allowed");
            return Ok(false);
        }
        let scratch_sz = if with_scratch {
            flash.size(SCRATCH).unwrap_or(0)
        } else {
            u32::MAX
        };
        let (mut i, mut j, mut sz0, mut sz1) = (0u32, 0u32, 0u32, 0u32);
        let (mut tot0, mut tot1) = (0u32, 0u32);
        let mut smaller = 0;
        while i < n0 || j < n1 {
            if sz0 == sz1 {
                sz0 += s0;
                sz1 += s1;
                i += 1;
                j += 1;
            } else if sz0 < sz1 {
                sz0 += s0;
                if smaller == 2 {
                    self.warn("Cannot upgrade: slots have non-compatible sectors");
                    return Ok(false);
                }
                smaller = 1;
                i += 1;
            } else {
                sz1 += s1;
                if smaller == 1 {
                    self.warn("Cannot upgrade: slots have non-compatible sectors");
                    return Ok(false);
                }
                smaller = 2;
                j += 1;
            }
            if with_scratch && sz0 == sz1 {
                tot0 += sz0;
                tot1 += sz1;
                if sz0 > scratch_sz || sz1 > scratch_sz {
                    self.warn("Cannot upgrade: not all sectors fit inside scratch");
                    return Ok(false);
                }
                smaller = 0;
                sz0 = 0;
                sz1 = 0;
            }
        }
        if i != n0 || j != n1 || tot0 != tot1 {
            self.warn("Cannot upgrade: slots are not compatible");
            return Ok(false);
        }
        Ok(true)
    }

    /// `bootutil_max_image_size` for scratch: up to the trailer, minus padding when the part of
    /// the trailer in its first sector is smaller than the scratch trailer.
    pub(crate) fn max_image_size_scratch(&self, flash: &FlashMap, pair: &Pair) -> u32 {
        let l = &pair.pri_layout;
        let trailer_off = l.slot_size - l.trailer_size();
        let first_end = |sector: u32| {
            // End of the first sector holding trailer data (uniform sectors).
            (trailer_off / sector + 1) * sector
        };
        let sec_sector = flash.sector_size(&pair.secondary).unwrap_or(pair.sector);
        let in_first = first_end(pair.sector).max(first_end(sec_sector)) - trailer_off;
        let scratch_trailer = l.write_size * STATES + l.info_size();
        trailer_off - scratch_trailer.saturating_sub(in_first)
    }

    /// `boot_write_status` in scratch mode: record `(idx-1)*3 + state-1` in the primary's status
    /// area, or in the scratch trailer while `use_scratch`.
    fn write_status_scratch(
        &self,
        flash: &mut FlashMap,
        pair: &Pair,
        bs: &Status,
        use_scratch: bool,
    ) -> Result<(), Stop> {
        let record = (bs.idx - 1) * STATES + (bs.state - STATE_0) as u32;
        if use_scratch {
            let sl = self.scratch_layout(flash, pair)?;
            self.write(flash, SCRATCH, sl.status_record_write(record, bs.state))
        } else {
            let l = &pair.pri_layout;
            self.write(
                flash,
                &pair.primary,
                l.status_record_write(record, bs.state),
            )
        }
    }

    /// `swap_run` for swap-using-scratch: find the last primary sector the swap covers, then
    /// swap groups of sectors that fit in scratch from the top down, skipping groups already
    /// done according to `bs`.
    pub(crate) fn swap_run_scratch(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        bs: &mut Status,
    ) -> Result<(), Stop> {
        self.info("Starting swap using scratch algorithm.");
        let s0 = pair.sector;
        let s1 = flash.sector_size(&pair.secondary)?;
        let scratch_sz = flash.size(SCRATCH)?;
        let copy_size = bs.swap_size;
        let (mut pri_sz, mut sec_sz) = (0u32, 0u32);
        let mut last: i64 = 0;
        loop {
            if pri_sz < copy_size || pri_sz < sec_sz {
                pri_sz += s0;
            }
            if sec_sz < copy_size || sec_sz < pri_sz {
                sec_sz += s1;
            }
            if pri_sz >= copy_size && sec_sz >= copy_size && pri_sz == sec_sz {
                break;
            }
            last += 1;
        }
        let mut swap_idx = 0u32;
        while last >= 0 {
            // boot_copy_sz: as many sectors below `last` as fit in scratch.
            let mut sz = 0u32;
            let mut i = last;
            while i >= 0 && sz + s0 <= scratch_sz {
                sz += s0;
                i -= 1;
            }
            let first = (i + 1) as u32;
            if swap_idx + 1 >= bs.idx {
                self.swap_sectors_scratch(flash, pair, bs, first, sz)?;
            }
            last = first as i64 - 1;
            swap_idx += 1;
        }
        Ok(())
    }

    /// `boot_swap_sectors` (scratch): secondary→scratch, primary→secondary, scratch→primary,
    /// one status record after each step.
    fn swap_sectors_scratch(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        bs: &mut Status,
        first_sector: u32,
        sz: u32,
    ) -> Result<(), Stop> {
        let l = pair.pri_layout;
        let sl = self.scratch_layout(flash, pair)?;
        let scratch_size = sl.slot_size;
        let img_off = first_sector * pair.sector;
        let trailer_sz = l.trailer_size();
        // First sector holding trailer data (uniform sectors).
        let n = l.slot_size / pair.sector;
        let last_sector = n - trailer_sz.div_ceil(pair.sector).max(1);
        let copy_sz = if img_off + sz > last_sector * pair.sector {
            sz - trailer_sz
        } else {
            sz
        };
        let use_scratch = bs.idx == 1 && copy_sz != sz;

        if bs.state == STATE_0 {
            self.erase_region(flash, SCRATCH, 0, scratch_size, false)?;
            if bs.idx == 1 {
                // A temporary home for swap_type while the primary trailer is erased.
                self.status_init_on(flash, pair, SCRATCH, &sl, bs, None)?;
                if !use_scratch {
                    self.erase_trailer_sectors(flash, &pair.primary, &l)?;
                    self.status_init_on(flash, pair, &pair.primary, &l, bs, None)?;
                    self.erase_region(flash, SCRATCH, 0, scratch_size, true)?;
                }
            }
            self.copy_region(flash, (&pair.secondary, img_off), (SCRATCH, 0), copy_sz)?;
            self.write_status_scratch(flash, pair, bs, use_scratch)?;
            bs.state = STATE_1;
        }
        if bs.state == STATE_1 {
            self.erase_region(flash, &pair.secondary, img_off, sz, false)?;
            self.copy_region(
                flash,
                (&pair.primary, img_off),
                (&pair.secondary, img_off),
                copy_sz,
            )?;
            if bs.idx == 1 && !use_scratch {
                self.erase_trailer_sectors(flash, &pair.secondary, &pair.sec_layout)?;
            }
            self.write_status_scratch(flash, pair, bs, use_scratch)?;
            bs.state = STATE_2;
        }
        if bs.state == STATE_2 {
            self.erase_region(flash, &pair.primary, img_off, sz, false)?;
            self.copy_region(flash, (SCRATCH, 0), (&pair.primary, img_off), copy_sz)?;
            if use_scratch {
                // Carry the region's first two records and the info block over from scratch.
                let w = l.write_size;
                self.copy_region(
                    flash,
                    (SCRATCH, sl.status_off()),
                    (&pair.primary, img_off + copy_sz),
                    (STATES - 1) * w,
                )?;
                let scr = self.read_trailer(flash, SCRATCH, &sl)?;
                if scr.image_ok == Flag::Set {
                    self.write(flash, &pair.primary, l.flag_write(Field::ImageOk, 1))?;
                }
                if scr.swap_type() != SwapType::None {
                    self.write(
                        flash,
                        &pair.primary,
                        l.swap_info_write(pair.image as u8, scr.swap_type()),
                    )?;
                }
                self.write(flash, &pair.primary, l.swap_size_write(bs.swap_size))?;
                self.write(flash, &pair.primary, l.magic_write())?;
            }
            self.write_status_scratch(flash, pair, bs, false)?;
            bs.idx += 1;
            bs.state = STATE_0;
            if use_scratch {
                // Erased last, top sector first, so a stale scratch status is never read.
                self.erase_region(flash, SCRATCH, 0, scratch_size, true)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer_with(records: &[u32]) -> Trailer {
        let l = TrailerLayout {
            max_sectors: 4,
            ..TrailerLayout::new(0x8000, UpgradeMode::SwapScratch)
        };
        let mut slot = vec![0xff; l.slot_size as usize];
        for &r in records {
            let w = l.status_record_write(r, 1);
            slot[w.offset as usize..w.offset as usize + w.data.len()].copy_from_slice(&w.data);
        }
        l.decode(&slot).unwrap()
    }

    #[test]
    fn scratch_records_decode_like_swap_read_status_bytes() {
        assert_eq!(read_records(&trailer_with(&[])), (None, false));
        assert_eq!(
            read_records(&trailer_with(&[0])),
            (Some((1, STATE_1)), false)
        );
        assert_eq!(
            read_records(&trailer_with(&[0, 1, 2])),
            (Some((2, STATE_0)), false)
        );
        assert_eq!(
            read_records(&trailer_with(&[0, 1, 2, 3, 4])),
            (Some((2, STATE_2)), false)
        );
        assert!(read_records(&trailer_with(&[0, 2])).1, "gap = inconsistent");
    }
}
