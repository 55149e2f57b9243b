//! Swap-using-move (`swap_move.c`): the region loop, its status records and how an interrupted
//! swap is found again.
//!
//! The order of every erase and write here is the contract: a power cut may land before any one
//! of them, and the next boot must be able to tell from the status records and trailers where it
//! was. So each step is one [`FlashMap`] operation, in MCUboot's order, and nothing is batched.

use crate::bootloader::sectors::trailer_sectors;
use crate::bootloader::swap_status::{Status, STATE_0, STATE_1};
use crate::bootloader::{Bootloader, Pair, Stop};
use crate::device::flash_map::FlashMap;
use dfu_hil_mcuboot::trailer::{Field, SwapType, Trailer};

/// `swap_read_status_bytes`: the last written record gives (op, idx, state) of the *next* step.
/// The move records and the swap records are separate regions, so only the highest written
/// record counts. `None` when no record is written.
pub(crate) fn read_status_records(pri: &Trailer, max_sectors: u32) -> Option<(bool, u32, u8)> {
    let erased = pri.erased;
    // 1-based position of the highest written record, as MCUboot's found_idx.
    let found = pri.status.iter().rposition(|&b| b != erased)? as u32 + 1;
    Some(if found < max_sectors {
        (true, found + 1, STATE_0)
    } else {
        let n = found - max_sectors;
        (false, n / 2 + 1, (n % 2) as u8 + STATE_0)
    })
}

/// `find_last_idx`: number of sectors the swap covers (at least one).
pub(crate) fn last_idx(swap_size: u32, sector: u32) -> u32 {
    swap_size.div_ceil(sector).max(1)
}

impl Bootloader<'_> {
    /// `app_max_size` for swap-using-move: the primary needs one spare sector for the move, both
    /// slots lose the sectors holding the trailer.
    pub(crate) fn max_image_size_move(&self, pair: &Pair) -> u32 {
        let pri_n = pair.pri_layout.slot_size / pair.sector;
        let sec_n = pair.sec_layout.slot_size / pair.sector;
        let t = trailer_sectors(&pair.pri_layout, pair.sector);
        let pri = pri_n.saturating_sub(t + 1) * pair.sector;
        let sec = sec_n.saturating_sub(t) * pair.sector;
        pri.min(sec)
    }

    /// `swap_read_status` for swap-using-move: the status is in the primary when the primary
    /// trailer is initialised (GOOD, copy_done unset) and the secondary's is not.
    pub(crate) fn read_status_move(&mut self, pri: &Trailer, sec: Option<&Trailer>) -> Status {
        let mut bs = Status::reset();
        self.log_state("Primary image", pri);
        if let Some(s) = sec {
            self.log_state("Secondary image", s);
        }
        let source_primary = pri.magic == dfu_hil_mcuboot::trailer::MagicState::Good
            && pri.copy_done == dfu_hil_mcuboot::trailer::Flag::Unset
            && sec.is_some_and(|s| s.magic != dfu_hil_mcuboot::trailer::MagicState::Good);
        self.info(if source_primary {
            "Boot source: primary slot"
        } else {
            "Boot source: none"
        });
        if source_primary {
            bs.source_primary = true;
            bs.swap_type = pri.swap_type();
            bs.swap_size = pri.swap_size.unwrap_or(0);
            if let Some((op_move, idx, state)) = read_status_records(pri, self.build.max_sectors) {
                bs.op_move = op_move;
                bs.idx = idx;
                bs.state = state;
            }
        }
        bs
    }

    /// The space check at the start of a new swap in `swap_run`.
    pub(crate) fn enough_space(&mut self, pair: &Pair, copy_size: u32) -> bool {
        let last = last_idx(copy_size, pair.sector);
        let n = pair.pri_layout.slot_size / pair.sector;
        let first_trailer_idx = n - trailer_sectors(&pair.pri_layout, pair.sector);
        if last >= first_trailer_idx {
            self.warn("Not enough free space to run swap upgrade");
            self.warn(format!(
                "required {} bytes but only {} are available",
                (last + 1) * pair.sector,
                first_trailer_idx * pair.sector
            ));
            return false;
        }
        true
    }

    /// `swap_status_init` on the primary: swap_info, image_ok (if the secondary asked for
    /// permanent), swap_size, magic last — so a cut before the magic leaves no status at all.
    fn status_init(&self, flash: &mut FlashMap, pair: &Pair, bs: &Status) -> Result<(), Stop> {
        self.status_init_on(flash, pair, &pair.primary, &pair.pri_layout, bs, None)
    }

    /// `boot_write_status`: one record (state number padded to the write size) at
    /// `boot_status_internal_off`.
    fn write_status(&self, flash: &mut FlashMap, pair: &Pair, bs: &Status) -> Result<(), Stop> {
        let l = &pair.pri_layout;
        let record = if bs.op_move {
            bs.idx - 1
        } else {
            self.build.max_sectors + (bs.idx - 1) * 2 + (bs.state - STATE_0) as u32
        };
        self.write(
            flash,
            &pair.primary,
            l.status_record_write(record, bs.state),
        )
    }

    /// `swap_run` for swap-using-move: move the primary up by one sector (top-down), then for
    /// each index copy secondary→primary and primary(moved)→secondary, a status record after each
    /// step. Resumes from `bs`. The space check has been done by the caller for new swaps.
    pub(crate) fn swap_run_move(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        bs: &mut Status,
    ) -> Result<(), Stop> {
        self.info("Starting swap using move algorithm.");
        let sz = pair.sector;
        let last = last_idx(bs.swap_size, sz);
        self.fixup_revert(flash, pair, bs)?;
        if bs.op_move {
            let mut idx = last;
            while idx > 0 {
                if idx + bs.idx <= last + 1 {
                    // boot_move_sector_up(idx)
                    if bs.idx == 1 {
                        if !bs.source_primary {
                            self.erase_trailer_sectors(flash, &pair.primary, &pair.pri_layout)?;
                            self.status_init(flash, pair, bs)?;
                        }
                        self.erase_trailer_sectors(flash, &pair.secondary, &pair.sec_layout)?;
                    }
                    flash.erase(&pair.primary, idx * sz, sz)?;
                    self.copy_region(
                        flash,
                        (&pair.primary, (idx - 1) * sz),
                        (&pair.primary, idx * sz),
                        sz,
                    )?;
                    self.write_status(flash, pair, bs)?;
                    bs.idx += 1;
                }
                idx -= 1;
            }
            bs.idx = 1;
        }
        bs.op_move = false;
        for idx in bs.idx.max(1)..=last {
            let pri_off = (idx - 1) * sz;
            let pri_up_off = idx * sz;
            let sec_off = (idx - 1) * sz;
            if bs.state == STATE_0 {
                flash.erase(&pair.primary, pri_off, sz)?;
                self.copy_region(
                    flash,
                    (&pair.secondary, sec_off),
                    (&pair.primary, pri_off),
                    sz,
                )?;
                self.write_status(flash, pair, bs)?;
                bs.state = STATE_1;
            }
            if bs.state == STATE_1 {
                flash.erase(&pair.secondary, sec_off, sz)?;
                self.copy_region(
                    flash,
                    (&pair.primary, pri_up_off),
                    (&pair.secondary, sec_off),
                    sz,
                )?;
                self.write_status(flash, pair, bs)?;
                bs.idx += 1;
                bs.state = STATE_0;
            }
        }
        Ok(())
    }

    /// `fixup_revert`: make a just-started revert look like a permanent upgrade (secondary
    /// image_ok, swap_size, magic) so a cut before the first status record can be resumed.
    fn fixup_revert(&mut self, flash: &mut FlashMap, pair: &Pair, bs: &Status) -> Result<(), Stop> {
        if bs.swap_type != SwapType::Revert || !bs.op_move || bs.idx != 1 {
            return Ok(());
        }
        let sec = self.read_trailer(flash, &pair.secondary, &pair.sec_layout)?;
        self.log_state("Secondary image", &sec);
        if sec.magic == dfu_hil_mcuboot::trailer::MagicState::Unset {
            let l = &pair.sec_layout;
            self.erase_trailer_sectors(flash, &pair.secondary, l)?;
            self.write(flash, &pair.secondary, l.flag_write(Field::ImageOk, 1))?;
            self.write(flash, &pair.secondary, l.swap_size_write(bs.swap_size))?;
            self.write(flash, &pair.secondary, l.magic_write())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfu_hil_mcuboot::trailer::{TrailerLayout, UpgradeMode};

    fn trailer_with(records: &[u32]) -> Trailer {
        let l = TrailerLayout {
            max_sectors: 16,
            ..TrailerLayout::new(0x20000, UpgradeMode::SwapMove)
        };
        let mut slot = vec![0xff; l.slot_size as usize];
        for &r in records {
            let w = l.status_record_write(r, 1);
            slot[w.offset as usize..w.offset as usize + w.data.len()].copy_from_slice(&w.data);
        }
        l.decode(&slot).unwrap()
    }

    #[test]
    fn status_records_decode_like_swap_read_status_bytes() {
        assert_eq!(read_status_records(&trailer_with(&[]), 16), None);
        // Two moves done: the next move is index 3.
        assert_eq!(
            read_status_records(&trailer_with(&[0, 1]), 16),
            Some((true, 3, STATE_0))
        );
        // All moves done, first swap record (idx 1, state 0) written: continue idx 1 state 1.
        assert_eq!(
            read_status_records(&trailer_with(&[0, 1, 16]), 16),
            Some((false, 1, STATE_1))
        );
        // Both records of index 1 written: continue at idx 2, state 0.
        assert_eq!(
            read_status_records(&trailer_with(&[0, 1, 16, 17]), 16),
            Some((false, 2, STATE_0))
        );
    }

    #[test]
    fn last_idx_is_at_least_one() {
        assert_eq!(last_idx(0, 0x1000), 1);
        assert_eq!(last_idx(0x1000, 0x1000), 1);
        assert_eq!(last_idx(0x1001, 0x1000), 2);
    }

    /// The simulated MCUboot and `image inspect` / the build doctor must agree on the largest
    /// image at the boundary, per mode: both follow `bootutil_max_image_size`.
    #[test]
    fn max_image_size_agrees_with_the_fit_check() {
        use crate::bootloader::loader::{Bootloader, Pair};
        use dfu_hil_firmware::BootloaderBuild;
        use dfu_hil_mcuboot::fit::{max_image_size, SlotGeometry};
        for mode in [
            UpgradeMode::SwapMove,
            UpgradeMode::SwapOffset,
            UpgradeMode::OverwriteOnly,
        ] {
            for (slot, sector, write, align, sectors) in [
                (0x7a000u32, 0x1000u32, 4u32, 8u32, 128u32),
                (0x76000, 0x1000, 4, 8, 128),
                (0x40000, 0x2000, 8, 8, 64),
                (0x20000, 0x1000, 16, 16, 32),
                (0xdb000, 0x1000, 1, 8, 256),
            ] {
                let layout = TrailerLayout {
                    slot_size: slot,
                    max_align: align,
                    write_size: write,
                    erased: 0xff,
                    max_sectors: sectors,
                    mode,
                };
                let pair = Pair {
                    image: 0,
                    primary: "slot0".into(),
                    secondary: "slot1".into(),
                    pri_layout: layout,
                    sec_layout: layout,
                    sector,
                    sec_readable: true,
                };
                let build = BootloaderBuild {
                    mode,
                    max_align: align,
                    max_sectors: sectors,
                    ..BootloaderBuild::default()
                };
                let boot = Bootloader::new(&build);
                let sim = match mode {
                    UpgradeMode::SwapMove => boot.max_image_size_move(&pair),
                    UpgradeMode::SwapOffset => boot
                        .max_image_size_offset(&pair, false)
                        .min(boot.max_image_size_offset(&pair, true)),
                    _ => boot.max_image_size_overwrite(&pair),
                };
                let fit = max_image_size(
                    mode,
                    &SlotGeometry {
                        primary_size: slot,
                        primary_sector: sector,
                        secondary_size: slot,
                        secondary_sector: sector,
                        write_size: write,
                        max_align: align,
                        max_sectors: sectors,
                    },
                );
                assert_eq!(
                    sim, fit,
                    "{mode:?} slot {slot:#x} sector {sector:#x} write {write}: sim {sim:#x} vs fit {fit:#x}"
                );
            }
        }
    }

    /// Swap-scratch reads the secondary's sector size from the flash map: checked on the
    /// bundled scratch layout, whose trailer spills into a second sector's worth of scratch.
    #[test]
    fn scratch_max_image_size_agrees_with_the_fit_check() {
        use crate::bootloader::loader::{Bootloader, Pair};
        use crate::device::flash_map::FlashMap;
        use dfu_hil_firmware::BootloaderBuild;
        use dfu_hil_mcuboot::fit::{max_image_size, SlotGeometry};
        use dfu_hil_mcuboot::layout::Layout;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../partitions/nrf52840-scratch.yaml");
        for (write, align, sectors) in [(4u32, 8u32, 128u32), (8, 8, 256), (16, 16, 64)] {
            let mut layout = Layout::load(&path).unwrap();
            for d in &mut layout.flash {
                d.write_size = write;
            }
            let slot = layout.partition("slot0").unwrap().size;
            let sector = layout.flash[0].sector_size;
            let flash = FlashMap::new(layout);
            let trailer = TrailerLayout {
                slot_size: slot,
                max_align: align,
                write_size: write,
                erased: 0xff,
                max_sectors: sectors,
                mode: UpgradeMode::SwapScratch,
            };
            let pair = Pair {
                image: 0,
                primary: "slot0".into(),
                secondary: "slot1".into(),
                pri_layout: trailer,
                sec_layout: trailer,
                sector,
                sec_readable: true,
            };
            let build = BootloaderBuild {
                mode: UpgradeMode::SwapScratch,
                max_align: align,
                max_sectors: sectors,
                ..BootloaderBuild::default()
            };
            let sim = Bootloader::new(&build).max_image_size_scratch(&flash, &pair);
            let fit = max_image_size(
                UpgradeMode::SwapScratch,
                &SlotGeometry {
                    primary_size: slot,
                    primary_sector: sector,
                    secondary_size: slot,
                    secondary_sector: sector,
                    write_size: write,
                    max_align: align,
                    max_sectors: sectors,
                },
            );
            assert_eq!(
                sim, fit,
                "write {write} align {align}: sim {sim:#x} vs fit {fit:#x}"
            );
        }
    }
}
