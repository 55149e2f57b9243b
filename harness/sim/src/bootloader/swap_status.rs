//! What a swap records about itself (`struct boot_status`, `swap_status_init` in MCUboot's
//! `swap_misc.c`), shared by swap-using-move, -scratch, -offset and the multi-image loop: where
//! an interrupted swap stands, and the status header written into a trailer before the first
//! record.

use crate::bootloader::{Bootloader, Pair, Stop};
use crate::device::flash_map::FlashMap;
use dfu_hil_mcuboot::image::Image;
use dfu_hil_mcuboot::trailer::{Field, SwapType, TrailerLayout, TrailerWrite};

/// Status record values (`BOOT_STATUS_STATE_0/1`).
pub(crate) const STATE_0: u8 = 1;
pub(crate) const STATE_1: u8 = 2;
/// `BOOT_STATUS_STATE_2` (swap-using-scratch only).
pub(crate) const STATE_2: u8 = 3;

/// Progress through a swap (`struct boot_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    /// Still in the "move every primary sector up by one" phase (`BOOT_STATUS_OP_MOVE`).
    pub op_move: bool,
    /// 1-based region index (`BOOT_STATUS_IDX_0` = 1).
    pub idx: u32,
    /// `STATE_0` or `STATE_1`.
    pub state: u8,
    pub swap_type: SwapType,
    pub swap_size: u32,
    /// The status lives in the primary trailer already (`BOOT_STATUS_SOURCE_PRIMARY_SLOT`), so a
    /// restarted swap must not re-initialise it.
    pub source_primary: bool,
}

impl Status {
    /// `boot_status_reset`.
    pub fn reset() -> Self {
        Status {
            op_move: true,
            idx: 1,
            state: STATE_0,
            swap_type: SwapType::None,
            swap_size: 0,
            source_primary: false,
        }
    }

    /// `boot_status_is_reset`: no status record has been written for this swap.
    pub fn is_reset(&self) -> bool {
        self.op_move && self.idx == 1 && self.state == STATE_0
    }
}

impl Bootloader<'_> {
    /// Size to swap: the larger of both images including TLVs (`boot_swap_image`). `sec_off` is
    /// where the secondary image starts (one sector in for a swap-using-offset upgrade).
    pub(crate) fn copy_size(
        &self,
        flash: &FlashMap,
        pair: &Pair,
        sec_off: u32,
    ) -> Result<u32, Stop> {
        let mut size = 0;
        for (part, l, off) in [
            (&pair.primary, &pair.pri_layout, 0),
            (&pair.secondary, &pair.sec_layout, sec_off),
        ] {
            if let Ok(img) = Image::parse(&flash.read(part, off, l.slot_size - off)?) {
                size = size.max(img.total_size as u32);
            }
        }
        Ok(size)
    }

    /// `swap_status_init` on any area (primary, scratch, or the secondary for swap-offset's
    /// `fixup_revert`): swap_info, image_ok (copied from the secondary's request), swap_size,
    /// the swap-offset TLV sizes, magic last.
    pub(crate) fn status_init_on(
        &self,
        flash: &mut FlashMap,
        pair: &Pair,
        part: &str,
        l: &TrailerLayout,
        bs: &Status,
        tlv_sizes: Option<u32>,
    ) -> Result<(), Stop> {
        let sec = self.read_trailer(flash, &pair.secondary, &pair.sec_layout)?;
        if bs.swap_type != SwapType::None {
            self.write(
                flash,
                part,
                l.swap_info_write(pair.image as u8, bs.swap_type),
            )?;
        }
        if sec.image_ok == dfu_hil_mcuboot::trailer::Flag::Set {
            self.write(flash, part, l.flag_write(Field::ImageOk, 1))?;
        }
        self.write(flash, part, l.swap_size_write(bs.swap_size))?;
        if let (Some(sizes), Some(off)) = (tlv_sizes, l.tlv_sizes_off()) {
            let mut data = vec![l.erased; 4usize.next_multiple_of(l.write_size.max(1) as usize)];
            data[..4].copy_from_slice(&sizes.to_le_bytes());
            self.write(flash, part, TrailerWrite { offset: off, data })?;
        }
        self.write(flash, part, l.magic_write())?;
        Ok(())
    }
}
