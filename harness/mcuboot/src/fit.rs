//! MCUboot's largest image per mode (`bootutil_max_image_size`,
//! `boot/bootutil/src/bootutil_misc.c`; `app_max_size` in `swap_move.c` / `swap_offset.c`,
//! `app_max_size_adjust_to_trailer` in `swap_scratch.c`; `boot_swap_info_off` for
//! overwrite-only and direct-xip). Shared by the build doctor and `image inspect`.

use crate::trailer::{TrailerLayout, UpgradeMode};

/// The two slots of one image as MCUboot sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotGeometry {
    pub primary_size: u32,
    pub primary_sector: u32,
    pub secondary_size: u32,
    pub secondary_sector: u32,
    /// `BOOT_WRITE_SZ`: the larger write unit of the two slots (`boot_write_sz`, `loader.c`).
    pub write_size: u32,
    /// `BOOT_MAX_ALIGN` (8 unless `CONFIG_BOOT_MAX_ALIGN` says otherwise).
    pub max_align: u32,
    /// `BOOT_MAX_IMG_SECTORS`: sizes the status area.
    pub max_sectors: u32,
}

fn align_up(v: u64, a: u64) -> u64 {
    let a = a.max(1);
    v.div_ceil(a) * a
}

/// The largest image (header + code + TLVs) MCUboot accepts in these slots in `mode`.
pub fn max_image_size(mode: UpgradeMode, g: &SlotGeometry) -> u32 {
    let trailer = |slot_size: u32| TrailerLayout {
        slot_size,
        max_align: g.max_align.max(1),
        write_size: g.write_size.max(1),
        erased: 0xff,
        max_sectors: g.max_sectors,
        mode,
    };
    let s = u64::from(g.primary_sector.max(1));
    let n_pri = u64::from(g.primary_size).div_ceil(s);
    let n_sec = u64::from(g.secondary_size).div_ceil(u64::from(g.secondary_sector.max(1)));
    let v = match mode {
        UpgradeMode::SwapMove | UpgradeMode::SwapOffset => {
            let t = align_up(u64::from(trailer(g.primary_size).trailer_size()), s);
            let (pad_pri, pad_sec) = if mode == UpgradeMode::SwapMove {
                (s, 0)
            } else {
                (0, s)
            };
            let pri = (n_pri * s).saturating_sub(t + pad_pri);
            let sec = (n_sec * s).saturating_sub(t + pad_sec);
            pri.min(sec)
        }
        UpgradeMode::SwapScratch => {
            let sector = s.max(u64::from(g.secondary_sector.max(1)));
            let slot = u64::from(g.primary_size.min(g.secondary_size)) / sector * sector;
            let t = trailer(slot as u32);
            let trailer_sz = u64::from(t.trailer_size());
            let trailer_off = slot.saturating_sub(trailer_sz);
            let first_end = (trailer_off / sector + 1) * sector;
            let in_first = first_end.min(slot) - trailer_off;
            let scratch_trailer =
                u64::from(mode.status_states() * g.write_size.max(1)) + u64::from(t.info_size());
            trailer_off.saturating_sub(scratch_trailer.saturating_sub(in_first))
        }
        UpgradeMode::OverwriteOnly | UpgradeMode::DirectXip => u64::from(
            trailer(g.primary_size)
                .swap_info_off()
                .min(trailer(g.secondary_size).swap_info_off()),
        ),
    };
    v.min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #15: 0x78ffe bytes in a 0x7a000 swap-move slot (4 KiB sectors) do not fit: the
    /// trailer takes a whole sector and the move one more.
    #[test]
    fn swap_move_0x7a000_slot_rejects_0x78ffe() {
        let g = SlotGeometry {
            primary_size: 0x7a000,
            primary_sector: 0x1000,
            secondary_size: 0x7a000,
            secondary_sector: 0x1000,
            write_size: 4,
            max_align: 8,
            max_sectors: 128,
        };
        let max = max_image_size(UpgradeMode::SwapMove, &g);
        assert!(max < 0x78ffe, "{max:#x}");
        assert_eq!(max, 0x78000);
    }
}
