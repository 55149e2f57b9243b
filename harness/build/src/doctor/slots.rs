//! Slot checks: sector count against `CONFIG_BOOT_MAX_IMG_SECTORS`, the external-flash driver,
//! an empty secondary slot, and MCUboot builds that take no SMP update the normal way.

use super::text::{
    dts_label, dts_label_line, kconfig_evidence, kconfig_line, partition_evidence, pm_field,
    symbol_evidence,
};
use super::{partitions_yml, Evidence, Finding, Severity};
use crate::build::Build;
use crate::facts::McubootFacts;
use dfu_hil_mcuboot::layout::{DeviceKind, Layout, Partition};
use dfu_hil_mcuboot::trailer::UpgradeMode;
use std::path::Path;

pub const SECTORS: &str = "slot-sectors-over-max";
pub const EXT_DRIVER: &str = "ext-flash-no-driver";
pub const EXT_DRIVER_APP: &str = "ext-flash-no-driver-app";
pub const SECONDARY_EMPTY: &str = "secondary-slot-empty";
pub const SINGLE_SLOT: &str = "single-slot";
pub const SERIAL_RECOVERY_ONLY: &str = "serial-recovery-only";

/// Evidence for a partition of the layout: its `key` line in `partitions.yml` when the build has
/// one (the layout keeps PM's names), else its node in `zephyr.dts`, else the build in words.
fn slot_evidence(build: &Build, p: &Partition, key: &str, text: String) -> Evidence {
    if let Some(pm) = partitions_yml(build) {
        return partition_evidence(pm, &p.name, key, text);
    }
    match build.files.get("zephyr.dts") {
        Some(dts) => Evidence::new(
            dts,
            dts_label(&p.name).and_then(|l| dts_label_line(dts, l)),
            text,
        ),
        None => Evidence::new(&build.dir, None, text),
    }
}

/// The slots MCUboot reads sectors of, per image: primary, secondary (not in a single-slot
/// build), and the scratch area in swap-scratch.
fn slots_of<'a>(layout: &'a Layout, mcuboot: &McubootFacts) -> Vec<(usize, &'a Partition)> {
    let mut out = Vec::new();
    for (i, pair) in layout.images.iter().enumerate() {
        if let Some(p) = layout.partition(&pair.primary) {
            out.push((i, p));
        }
        if !mcuboot.single_slot.value {
            if let Some(p) = layout.partition(&pair.secondary) {
                out.push((i, p));
            }
        }
    }
    if mcuboot.mode.value == Some(UpgradeMode::SwapScratch) {
        if let Some(p) = ["mcuboot_scratch", "scratch"]
            .iter()
            .find_map(|n| layout.partition(n))
        {
            out.push((0, p));
        }
    }
    out
}

/// Erase sectors of a partition on its device (a partial last sector counts: Zephyr's
/// `flash_area_get_sectors` walks the page layout over the whole area).
fn sectors(layout: &Layout, p: &Partition) -> u64 {
    let unit = u64::from(layout.device_of(p).sector_size.max(1));
    u64::from(p.size).div_ceil(unit)
}

/// A slot with more erase sectors than `CONFIG_BOOT_MAX_IMG_SECTORS`.
///
/// MCUboot sizes its sector tables by `BOOT_MAX_IMG_SECTORS` (`boot/bootutil/src/bootutil_priv.h`,
/// `struct sector_buffer_t`); `boot_initialize_area` (`bootutil_misc.c`) asks
/// `flash_area_get_sectors` for at most that many and fails when the slot has more, and
/// `context_boot_go` (`loader.c`) then logs "Failed reading sectors; BOOT_MAX_IMG_SECTORS=%d - too
/// small?" and boots without upgrading. `boot_slots_compatible` (`swap_move.c`, `swap_scratch.c`)
/// refuses the same ("Cannot upgrade: more sectors than allowed"). The value comes from
/// `CONFIG_BOOT_MAX_IMG_SECTORS` (`boot/zephyr/Kconfig`, default 128), or from the devicetree
/// when `CONFIG_BOOT_MAX_IMG_SECTORS_AUTO` is set (`boot/zephyr/CMakeLists.txt`, `MIN_SECTOR_COUNT`),
/// which does not see Partition Manager's layout.
pub fn max_sectors(build: &Build, layout: &Layout, out: &mut Vec<Finding>) {
    let Some(m) = &build.mcuboot else { return };
    let max = u64::from(m.max_sectors.value);
    for (image, p) in slots_of(layout, m) {
        let n = sectors(layout, p);
        if n <= max {
            continue;
        }
        let dev = layout.device_of(p);
        let assumed = m.max_sectors.source.is_none();
        out.push(Finding {
            id: SECTORS,
            severity: if assumed {
                Severity::Warning
            } else {
                Severity::Error
            },
            title: format!(
                "`{}` (image {image}) has {n} sectors of {} bytes; MCUboot handles at most {max}",
                p.name, dev.sector_size
            ),
            cause: format!(
                "MCUboot reads the sector layout of each slot into tables of \
                 BOOT_MAX_IMG_SECTORS entries; with {n} sectors it fails (\"Failed reading \
                 sectors; BOOT_MAX_IMG_SECTORS={max} - too small?\") and boots the old image: \
                 every update is uploaded, marked, reset — and silently not installed{}",
                if assumed {
                    " (the value is the Kconfig default the build did not write: \
                     CONFIG_BOOT_MAX_IMG_SECTORS_AUTO computes it from the devicetree, which \
                     may not match Partition Manager's slots)"
                } else {
                    ""
                }
            ),
            evidence: vec![
                kconfig_evidence(&m.max_sectors, &m.config, "CONFIG_BOOT_MAX_IMG_SECTORS"),
                slot_evidence(
                    build,
                    p,
                    "size",
                    format!(
                        "{} = {:#x} bytes on `{}` ({} B erase unit) = {n} sectors",
                        p.name, p.size, dev.name, dev.sector_size
                    ),
                ),
            ],
            fix: format!(
                "set CONFIG_BOOT_MAX_IMG_SECTORS={} (or more) in MCUboot's configuration \
                 (sysbuild: sysbuild/mcuboot.conf; parent/child: child_image/mcuboot.conf), with \
                 CONFIG_BOOT_MAX_IMG_SECTORS_AUTO=n",
                n.next_power_of_two()
            ),
        });
    }
}

/// The secondary slot is on an external flash device and MCUboot has no driver for it.
///
/// MCUboot opens the secondary slot through Zephyr's flash map (`flash_area_open`,
/// `boot/zephyr/flash_map_extended.c`); without `CONFIG_NORDIC_QSPI_NOR` or `CONFIG_SPI_NOR` the
/// device does not exist in MCUboot's image, `boot_read_sectors` returns `BOOT_EFLASH_SEC`
/// (`bootutil_misc.c`) and no upgrade is ever looked at. NCS puts the slot there with
/// `SB_CONFIG_PM_EXTERNAL_FLASH_MCUBOOT_SECONDARY` / `CONFIG_PM_EXTERNAL_FLASH_MCUBOOT_SECONDARY`
/// but MCUboot's driver is a separate Kconfig of the MCUboot image.
pub fn external_driver(build: &Build, layout: &Layout, out: &mut Vec<Finding>) {
    let Some(m) = &build.mcuboot else { return };
    if m.external_flash_driver.value || m.single_slot.value {
        return;
    }
    for (image, pair) in layout.images.iter().enumerate() {
        let Some(p) = layout.partition(&pair.secondary) else {
            continue;
        };
        let dev = layout.device_of(p);
        if dev.kind != DeviceKind::External {
            continue;
        }
        out.push(Finding {
            id: EXT_DRIVER,
            severity: Severity::Error,
            title: format!(
                "`{}` (image {image}) is on external flash `{}`, but MCUboot has no NOR flash driver",
                p.name, dev.name
            ),
            cause: "MCUboot cannot open the secondary slot: it logs a flash error for the \
                    secondary and boots the old image, so an upload that succeeded over SMP is \
                    never installed"
                .into(),
            evidence: vec![
                slot_evidence(
                    build,
                    p,
                    "region",
                    format!("{} on `{}` (external)", p.name, dev.name),
                ),
                symbol_evidence(&m.config, "CONFIG_NORDIC_QSPI_NOR", "not set"),
                symbol_evidence(&m.config, "CONFIG_SPI_NOR", "not set"),
            ],
            fix: "enable the driver in MCUboot's configuration: CONFIG_NORDIC_QSPI_NOR=y (QSPI, \
                  e.g. MX25R64 on the nRF52840/nRF5340 DK) or CONFIG_SPI_NOR=y (SPI NOR) in \
                  sysbuild/mcuboot.conf (parent/child: child_image/mcuboot.conf), with the flash \
                  node enabled in MCUboot's devicetree overlay (Partition Manager builds: the \
                  `nordic,pm-ext-flash` chosen node)"
                .into(),
        });
    }
}

/// The secondary slot is on external flash and the *application* has no NOR driver: whatever
/// writes the update there (img_mgmt for SMP, `dfu_target` for LTE/cloud FOTA) opens the slot
/// through the flash map (Zephyr `subsys/storage/flash_map/flash_map.c`, `flash_area_open`:
/// `-ENODEV` when the device is not ready), so every upload fails at its first chunk.
pub fn external_driver_app(build: &Build, layout: &Layout, out: &mut Vec<Finding>) {
    let Some(app) = &build.app else { return };
    if !app.bootloader_mcuboot.value {
        return;
    }
    let set = |s: &str| kconfig_line(&app.config, s).is_some_and(|(_, t)| t.ends_with("=y"));
    if set("CONFIG_NORDIC_QSPI_NOR") || set("CONFIG_SPI_NOR") {
        return;
    }
    for (image, pair) in layout.images.iter().enumerate() {
        let Some(p) = layout.partition(&pair.secondary) else {
            continue;
        };
        let dev = layout.device_of(p);
        if dev.kind != DeviceKind::External {
            continue;
        }
        out.push(Finding {
            id: EXT_DRIVER_APP,
            severity: Severity::Error,
            title: format!(
                "`{}` (image {image}) is on external flash `{}`, but the application has no NOR \
                 flash driver",
                p.name, dev.name
            ),
            cause: "the application writes the update into the secondary slot: without the \
                    driver the flash area cannot be opened and the upload fails at its first \
                    chunk"
                .into(),
            evidence: vec![
                slot_evidence(
                    build,
                    p,
                    "region",
                    format!("{} on `{}` (external)", p.name, dev.name),
                ),
                symbol_evidence(&app.config, "CONFIG_NORDIC_QSPI_NOR", "not set"),
                symbol_evidence(&app.config, "CONFIG_SPI_NOR", "not set"),
            ],
            fix: "enable CONFIG_NORDIC_QSPI_NOR=y (QSPI) or CONFIG_SPI_NOR=y (SPI NOR) in the \
                  application's prj.conf, with the flash node enabled in its devicetree"
                .into(),
        });
    }
}

/// A secondary slot of size 0.
///
/// A zero-sized `mcuboot_secondary` makes `flash_area_get_sectors` report no sectors;
/// `boot_slots_compatible` (`swap_move.c`: primary must have as many sectors as the secondary or
/// one more) refuses it and img_mgmt (`img_mgmt.c`, `img_mgmt_upload`) has nowhere to write. The
/// Partition Manager output is read as text here because the layout refuses empty partitions.
pub fn secondary_empty(build: &Build, layout: Option<&Layout>, out: &mut Vec<Finding>) {
    if build.mcuboot.as_ref().is_some_and(|m| m.single_slot.value) {
        return;
    }
    let mut names: Vec<String> = layout
        .map(|l| l.images.iter().map(|p| p.secondary.clone()).collect())
        .unwrap_or_default();
    for n in [
        "mcuboot_secondary",
        "mcuboot_secondary_1",
        "mcuboot_secondary_2",
    ] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_owned());
        }
    }
    for name in names {
        let from_layout = layout.and_then(|l| l.partition(&name)).map(|p| p.size);
        let from_text = partitions_yml(build).and_then(|pm| {
            pm_field(pm, &name, "size")
                .and_then(|(line, v)| super::text::parse_int(&v).map(|s| (line, s, pm)))
        });
        let empty = from_layout == Some(0) || from_text.is_some_and(|(_, s, _)| s == 0);
        if !empty {
            continue;
        }
        let evidence = match from_text {
            Some((line, _, pm)) => {
                vec![Evidence::new(pm, Some(line), format!("{name}: size 0"))]
            }
            None => vec![Evidence::new(
                &build.dir,
                None,
                format!("layout: {name} size 0"),
            )],
        };
        out.push(Finding {
            id: SECONDARY_EMPTY,
            severity: Severity::Error,
            title: format!("secondary slot `{name}` has size 0"),
            cause: "there is nowhere to upload an update: img_mgmt refuses the upload and MCUboot \
                    finds no image to swap in"
                .into(),
            evidence,
            fix: "give the secondary slot the primary's size: in pm_static.yml (or let Partition \
                  Manager place it by removing the pinned entry); for an external secondary, \
                  check SB_CONFIG_PM_EXTERNAL_FLASH_MCUBOOT_SECONDARY and the external flash size"
                .into(),
        });
    }
}

/// MCUboot built with one application slot (`CONFIG_SINGLE_APPLICATION_SLOT`).
///
/// With a single slot MCUboot (`boot/bootutil/src/single_loader.c`) only validates and boots the
/// primary slot: the running application cannot take an image over SMP (there is no slot to
/// write), updates go through MCUboot's serial recovery (`CONFIG_MCUBOOT_SERIAL`,
/// `boot/boot_serial/src/boot_serial.c`) or a firmware loader image. Error when neither is
/// there: the device can then only be reflashed with a probe.
pub fn single_slot(build: &Build, out: &mut Vec<Finding>) {
    let Some(m) = &build.mcuboot else { return };
    if !m.single_slot.value {
        return;
    }
    let recovery = m.serial_recovery.value;
    out.push(Finding {
        id: SINGLE_SLOT,
        severity: if recovery {
            Severity::Warning
        } else {
            Severity::Error
        },
        title: if recovery {
            "MCUboot has a single application slot: updates only through serial recovery".into()
        } else {
            "MCUboot has a single application slot and no serial recovery: no update path".into()
        },
        cause: "an SMP upload to the running application has no secondary slot to go to; a \
                scenario that uploads, tests and resets will not see the new image"
            .into(),
        evidence: vec![
            kconfig_evidence(&m.single_slot, &m.config, "CONFIG_SINGLE_APPLICATION_SLOT"),
            kconfig_evidence(&m.serial_recovery, &m.config, "CONFIG_MCUBOOT_SERIAL"),
        ],
        fix: if recovery {
            "update through MCUboot serial recovery (enter recovery mode, then `smp image \
             upload`), or build MCUboot with a swap mode and a secondary slot"
                .into()
        } else {
            "enable CONFIG_MCUBOOT_SERIAL (serial recovery) or build MCUboot with a swap mode \
             (e.g. CONFIG_BOOT_SWAP_USING_MOVE=y) and a secondary slot"
                .into()
        },
    });
}

/// Serial recovery is the only way in: MCUboot has `CONFIG_MCUBOOT_SERIAL` and the application
/// has no SMP transport, so an update needs the board in recovery mode (a button or a boot-mode
/// pin, `CONFIG_BOOT_SERIAL_DETECT_PIN` / `_ENTRANCE_GPIO` in `boot/zephyr/Kconfig.serial_recovery`)
/// rather than an upload to the running app.
pub fn serial_recovery_only(build: &Build, out: &mut Vec<Finding>) {
    let (Some(m), Some(app)) = (&build.mcuboot, &build.app) else {
        return;
    };
    if !m.serial_recovery.value
        || m.single_slot.value
        || !app.bootloader_mcuboot.value
        || !app.mcumgr_transports.is_empty()
    {
        return;
    }
    out.push(Finding {
        id: SERIAL_RECOVERY_ONLY,
        severity: Severity::Warning,
        title: "the application has no SMP transport: over SMP, only MCUboot serial recovery \
                takes an update"
            .into(),
        cause: "a phone app or `smp image upload` to the running application gets no answer; \
                the device must be put in recovery mode first (fine if the application updates \
                itself another way, e.g. LTE/cloud FOTA writing the secondary slot)"
            .into(),
        evidence: vec![
            kconfig_evidence(&m.serial_recovery, &m.config, "CONFIG_MCUBOOT_SERIAL"),
            transport_absent(&app.config),
        ],
        fix: "enable an SMP transport in the application (CONFIG_MCUMGR_TRANSPORT_UART or \
              CONFIG_MCUMGR_TRANSPORT_BT, with CONFIG_MCUMGR_GRP_IMG and CONFIG_MCUMGR_GRP_OS), \
              or use serial recovery on purpose"
            .into(),
    });
}

/// Evidence that an app has no SMP transport: the `CONFIG_MCUMGR` line.
pub(super) fn transport_absent(config: &Path) -> Evidence {
    symbol_evidence(config, "CONFIG_MCUMGR", "not set (no SMP at all)")
}
