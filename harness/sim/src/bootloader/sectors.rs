//! Sector-level flash work every upgrade algorithm shares (MCUboot's `boot_erase_region`,
//! `boot_copy_region`, `swap_erase_trailer_sectors`, `boot_scramble_slot`): each erase, chunk
//! copy and trailer write is one [`FlashMap`] operation, so a power cut can land between any two.

use crate::bootloader::{Bootloader, Stop};
use crate::device::flash_map::FlashMap;
use dfu_hil_mcuboot::trailer::{TrailerLayout, TrailerWrite};

/// MCUboot copies through a RAM buffer of this size (`BOOT_TMPBUF_SZ`); each chunk is one flash
/// write, which matters for where power cuts can land.
const COPY_CHUNK: u32 = 256;

/// Trailer size rounded up to whole sectors (`ALIGN_UP(boot_trailer_sz, sector)`).
pub(crate) fn trailer_sectors(l: &TrailerLayout, sector: u32) -> u32 {
    l.trailer_size().div_ceil(sector)
}

impl Bootloader<'_> {
    /// `boot_erase_region`: one flash erase per sector, upwards or (`backwards`) downwards.
    pub(crate) fn erase_region(
        &self,
        flash: &mut FlashMap,
        part: &str,
        off: u32,
        len: u32,
        backwards: bool,
    ) -> Result<(), Stop> {
        let sector = flash.sector_size(part)?;
        let n = len.div_ceil(sector);
        for i in 0..n {
            let k = if backwards { n - 1 - i } else { i };
            flash.erase(part, off + k * sector, sector)?;
        }
        Ok(())
    }

    pub(crate) fn write(
        &self,
        flash: &mut FlashMap,
        part: &str,
        w: TrailerWrite,
    ) -> Result<(), Stop> {
        flash.write(part, w.offset, &w.data)?;
        Ok(())
    }

    /// `swap_erase_trailer_sectors`: erase sector by sector from the slot end down until the
    /// whole trailer is covered.
    pub(crate) fn erase_trailer_sectors(
        &self,
        flash: &mut FlashMap,
        part: &str,
        l: &TrailerLayout,
    ) -> Result<(), Stop> {
        let sector = flash.sector_size(part)?;
        let mut covered = 0;
        let mut off = l.slot_size;
        while covered < l.trailer_size() {
            off -= sector;
            flash.erase(part, off, sector)?;
            covered += sector;
        }
        Ok(())
    }

    /// `boot_scramble_slot` on a device that needs erase: the whole slot, one sector at a time
    /// (each sector is one flash operation, so a cut can leave it half scrubbed).
    pub(crate) fn scramble_slot(&self, flash: &mut FlashMap, part: &str) -> Result<(), Stop> {
        let sector = flash.sector_size(part)?;
        let size = flash.size(part)?;
        let mut off = 0;
        while off < size {
            flash.erase(part, off, sector)?;
            off += sector;
        }
        Ok(())
    }

    /// `boot_copy_region` in `BOOT_TMPBUF_SZ` chunks.
    pub(crate) fn copy_region(
        &self,
        flash: &mut FlashMap,
        from: (&str, u32),
        to: (&str, u32),
        len: u32,
    ) -> Result<(), Stop> {
        let mut done = 0;
        while done < len {
            let n = COPY_CHUNK.min(len - done);
            flash.copy(from.0, from.1 + done, to.0, to.1 + done, n)?;
            done += n;
        }
        Ok(())
    }
}
