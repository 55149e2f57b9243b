//! Overwrite-only (`MCUBOOT_OVERWRITE_ONLY`, Zephyr `BOOT_UPGRADE_ONLY`; `loader.c:
//! boot_copy_image`): the primary is erased sector by sector and the whole secondary slot is
//! copied over it, trailer included; then the secondary's first and last sectors are scrubbed.
//! There is no status area and no revert: a cut anywhere leaves the secondary intact and still
//! marked, so the next boot simply starts the copy again.

use crate::bootloader::{Bootloader, Pair, Stop};
use crate::device::flash_map::FlashMap;

impl Bootloader<'_> {
    /// `boot_copy_image` (without `MCUBOOT_OVERWRITE_ONLY_FAST`).
    pub(crate) fn copy_image(&mut self, flash: &mut FlashMap, pair: &Pair) -> Result<(), Stop> {
        self.info(format!(
            "Image {} upgrade secondary slot -> primary slot",
            pair.image
        ));
        self.info("Erasing the primary slot");
        let sector = pair.sector;
        let size = pair.pri_layout.slot_size;
        let mut off = 0;
        while off < size {
            flash.erase(&pair.primary, off, sector)?;
            off += sector;
        }
        let size = size.min(pair.sec_layout.slot_size);
        self.info(format!(
            "Image {} copying the secondary slot to the primary slot: 0x{size:x} bytes",
            pair.image
        ));
        self.copy_region(flash, (&pair.secondary, 0), (&pair.primary, 0), size)?;
        // Scrub the secondary's header and trailer so the copy is not started again.
        let sec_sector = flash.sector_size(&pair.secondary)?;
        flash.erase(&pair.secondary, 0, sec_sector)?;
        let last = pair.sec_layout.slot_size - sec_sector;
        if last != 0 {
            flash.erase(&pair.secondary, last, sec_sector)?;
        }
        Ok(())
    }

    /// `bootutil_max_image_size` in overwrite-only: everything below swap_info.
    pub(crate) fn max_image_size_overwrite(&self, pair: &Pair) -> u32 {
        pair.pri_layout
            .swap_info_off()
            .min(pair.sec_layout.swap_info_off())
    }
}
