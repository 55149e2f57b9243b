//! Does the signed image fit the slot for MCUboot's mode? MCUboot's own arithmetic
//! (`bootutil_max_image_size`, `boot/bootutil/src/bootutil_misc.c`), per mode:
//!
//! - swap-move (`swap_move.c`, `app_max_size`): the trailer rounded up to whole sectors, and one
//!   more sector in the primary slot that the move needs;
//! - swap-offset (`swap_offset.c`, `app_max_size`): the same, the extra sector in the secondary;
//! - swap-scratch (`swap_scratch.c`, `app_max_size_adjust_to_trailer`): up to the trailer, less
//!   the padding that lets the scratch trailer (one status entry + the info block,
//!   `boot_scratch_trailer_sz`) fit beside the image part of the last sector;
//! - overwrite-only and direct-xip: up to the `swap_info` field (`boot_swap_info_off`).
//!
//! `image_validate.c` (`bootutil_img_validate`) refuses an image whose TLVs end past that size,
//! and img_mgmt refuses the upload when it knows the size.

use super::text::{kconfig_evidence, partition_evidence};
use super::{image_label, partitions_yml, Evidence, Finding, LoadedImage, Severity};
use crate::build::{Build, ImageRole};
use dfu_hil_mcuboot::image::Image;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::UpgradeMode;

pub const TOO_LARGE: &str = "image-too-large";

pub use dfu_hil_mcuboot::fit::{max_image_size, SlotGeometry};

/// The slots of MCUboot image `index` in `layout`, with the build's MCUboot constants.
pub(super) fn geometry(build: &Build, layout: &Layout, index: usize) -> Option<SlotGeometry> {
    let m = build.mcuboot.as_ref()?;
    let pair = layout.images.get(index)?;
    let pri = layout.partition(&pair.primary)?;
    let sec = layout.partition(&pair.secondary)?;
    let (dp, ds) = (layout.device_of(pri), layout.device_of(sec));
    Some(SlotGeometry {
        primary_size: pri.size,
        primary_sector: dp.sector_size,
        secondary_size: sec.size,
        secondary_sector: ds.sector_size,
        write_size: dp.write_size.max(ds.write_size),
        max_align: m.max_align.as_ref().map(|a| a.value).unwrap_or(8),
        // `CONFIG_BOOT_MAX_IMG_SECTORS_AUTO`: MCUboot sizes the table from the devicetree slots
        // (`MIN_SECTOR_COUNT`, `boot/zephyr/CMakeLists.txt`), i.e. the larger slot's count.
        max_sectors: if m.max_sectors_auto() {
            let n = |size: u32, unit: u32| size.div_ceil(unit.max(1));
            n(pri.size, dp.sector_size).max(n(sec.size, ds.sector_size))
        } else {
            m.max_sectors.value
        },
    })
}

/// Which MCUboot image an image of the build is for.
pub(super) fn image_index(role: &ImageRole, explicit: Option<u32>) -> Option<usize> {
    match role {
        ImageRole::App | ImageRole::AppUpdate => Some(explicit.unwrap_or(0) as usize),
        ImageRole::NetCore => Some(explicit.unwrap_or(1) as usize),
        ImageRole::McubootUpdate { .. } | ImageRole::Merged => None,
    }
}

/// Every signed application / network-core image against the largest size its slots take.
pub fn check_images(
    build: &Build,
    layout: &Layout,
    images: &[LoadedImage],
    out: &mut Vec<Finding>,
) {
    let Some(m) = &build.mcuboot else { return };
    let Some(mode) = m.mode.value else { return };
    for li in images {
        let Some(index) = image_index(&li.image.role, li.image.image_index) else {
            continue;
        };
        let Some(g) = geometry(build, layout, index) else {
            continue;
        };
        let Ok(img) = Image::parse(&li.bytes) else {
            continue;
        };
        let max = max_image_size(mode, &g);
        let size = img.total_size as u64;
        if size <= u64::from(max) {
            continue;
        }
        let pair = &layout.images[index];
        let mut evidence = vec![
            Evidence::new(
                &li.image.path,
                None,
                format!(
                    "{}: header + image + TLVs = {size} bytes ({:#x})",
                    image_label(&li.image),
                    size
                ),
            ),
            kconfig_evidence(&m.max_sectors, &m.config, "CONFIG_BOOT_MAX_IMG_SECTORS"),
        ];
        if let Some(pm) = partitions_yml(build) {
            evidence.push(partition_evidence(
                pm,
                &pair.secondary,
                "size",
                format!("{} = {:#x} bytes", pair.secondary, g.secondary_size),
            ));
        }
        out.push(Finding {
            id: TOO_LARGE,
            severity: Severity::Error,
            title: format!(
                "{} is {size} bytes; {mode} takes at most {max} bytes in `{}`",
                image_label(&li.image),
                pair.primary
            ),
            cause: format!(
                "MCUboot keeps the end of each slot for its trailer (swap status for {} \
                 sectors, flags, magic){}; an image reaching into it is refused at boot \
                 (\"TLV beyond image size\") or by img_mgmt at upload, {} bytes over",
                g.max_sectors,
                match mode {
                    UpgradeMode::SwapMove =>
                        " and swap-move needs one spare sector in the primary slot",
                    UpgradeMode::SwapOffset =>
                        " and swap-offset needs one spare sector in the secondary slot",
                    UpgradeMode::SwapScratch =>
                        " and the last sector must also hold the scratch trailer",
                    _ => "",
                },
                size - u64::from(max)
            ),
            evidence,
            fix: "make the image smaller (CONFIG_SIZE_OPTIMIZATIONS, drop logging), grow both \
                  slots in pm_static.yml, or lower CONFIG_BOOT_MAX_IMG_SECTORS to the slot's real \
                  sector count (a smaller status area)"
                .into(),
        });
    }
}
