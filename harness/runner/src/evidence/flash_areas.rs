//! `flash-areas.txt`: the `Failed to open flash area ID <n>: <rc>` lines of the device log,
//! each traced to its partition through the layout's flash area IDs (the Partition Manager IDs
//! `pm import` reads from `pm.config`), and judged from that partition alone.
//!
//! Upstream facts used (see `docs/nrf5340-netcore-update.md` for the whole path):
//! - Zephyr img_mgmt (`zephyr_img_mgmt.c`: `img_mgmt_erased_val`, `img_mgmt_read`,
//!   `img_mgmt_upload_inspect`) logs `"Failed to open flash area ID %u: %d"` with the ID of the
//!   slot it tried and `flash_area_open()`'s return: `-ENOENT` (-2) when the ID is not in the
//!   app's flash map, `-ENODEV` (-19) when its device is not ready (`flash_map.c`).
//! - NCS `flash_map_partition_manager.c` leaves a partition out of an image's map when the
//!   driver Kconfig of its region is off in that image: `ram_flash` (`CONFIG_FLASH_SIMULATOR`),
//!   `external_flash` (`PM_EXTERNAL_FLASH_DEFAULT_DRIVER_KCONFIG` in pm_config.h: in the real
//!   builds of `shared/corpus/ncs-builds`, `CONFIG_NORDIC_QSPI_NOR` for NCS 2.1.0 and 3.0.2
//!   sysbuild, `CONFIG_PM_OVERRIDE_EXTERNAL_DRIVER_CHECK` when that is set,
//!   `CONFIG_PM_EXTERNAL_FLASH_HAS_DRIVER` for NCS 2.2–2.6 child images).
//!
//! A line is called harmless only when the ID is the network core's primary slot in RAM-emulated
//! flash (`mcuboot_primary_1` in `ram_flash`): that slot is written by MCUboot and handed to the
//! network core by PCD, never read by mcumgr. Any other slot missing from the app's map is one the
//! app needs.

use dfu_hil_mcuboot::layout::{DeviceKind, Layout, Partition};

/// One distinct `Failed to open flash area ID` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFailure {
    pub id: u32,
    pub rc: i32,
    /// How many times the log has it.
    pub count: usize,
}

const NEEDLE: &str = "Failed to open flash area ID ";

/// The distinct failures in `log`, in order of first appearance.
pub fn open_failures(log: &[String]) -> Vec<OpenFailure> {
    let mut out: Vec<OpenFailure> = Vec::new();
    for l in log {
        let Some(at) = l.find(NEEDLE) else { continue };
        let rest = &l[at + NEEDLE.len()..];
        let Some((id, rc)) = rest.split_once(':') else {
            continue;
        };
        let (Ok(id), Ok(rc)) = (id.trim().parse::<u32>(), rc.trim().parse::<i32>()) else {
            continue;
        };
        match out.iter_mut().find(|f| f.id == id && f.rc == rc) {
            Some(f) => f.count += 1,
            None => out.push(OpenFailure { id, rc, count: 1 }),
        }
    }
    out
}

/// The Partition Manager name of a layout partition (`pm import` renames the app slots).
fn pm_name(name: &str) -> &str {
    match name {
        "slot0" => "mcuboot_primary",
        "slot1" => "mcuboot_secondary",
        other => other,
    }
}

/// Image number and slot (0 primary, 1 secondary) of `p` in the layout's image pairs.
fn slot_of(layout: &Layout, p: &Partition) -> Option<(usize, u32)> {
    layout.images.iter().enumerate().find_map(|(i, pair)| {
        if pair.primary == p.name {
            Some((i, 0))
        } else if pair.secondary == p.name {
            Some((i, 1))
        } else {
            None
        }
    })
}

/// Whether `f` is the network core's RAM-emulated primary slot failing as it always does.
pub fn harmless(layout: &Layout, f: &OpenFailure) -> bool {
    let Some(p) = layout.partitions.iter().find(|p| p.id == Some(f.id)) else {
        return false;
    };
    f.rc == -2
        && layout.device_of(p).kind == DeviceKind::RamEmulated
        && matches!(slot_of(layout, p), Some((i, 0)) if i >= 1)
}

/// One paragraph for one failure.
fn describe(layout: &Layout, f: &OpenFailure) -> String {
    let line = format!(
        "`Failed to open flash area ID {}: {}` ({} time{} in the device log)",
        f.id,
        f.rc,
        f.count,
        if f.count == 1 { "" } else { "s" }
    );
    let why_rc = match f.rc {
        -2 => "-2 is -ENOENT: the app's flash map has no area with that ID",
        -19 => "-19 is -ENODEV: the area is in the app's map but its flash device is not ready",
        _ => "flash_area_open() refused it",
    };
    if layout.partitions.iter().all(|p| p.id.is_none()) {
        return format!(
            "{line}: {why_rc}. Layout `{}` carries no flash area IDs, so the ID cannot be traced \
             to a partition: import the build's partitions.yml with its pm.config beside it \
             (`dfu-hil pm import`) to get them.",
            layout.name
        );
    }
    let Some(p) = layout.partitions.iter().find(|p| p.id == Some(f.id)) else {
        return format!(
            "{line}: {why_rc}. No partition of layout `{}` has ID {}: the app was built with \
             another partition map than this layout (compare the build's pm.config).",
            layout.name, f.id
        );
    };
    let pm = pm_name(&p.name);
    let kind = layout.device_of(p).kind;
    let at = format!(
        "ID {} is `{}`{} (layout `{}`: `id: {}`, the PM_{}_ID={} line of the pm.config it was \
         imported from)",
        f.id,
        p.name,
        if pm != p.name {
            format!(" (`{pm}`)")
        } else {
            String::new()
        },
        layout.name,
        f.id,
        pm.to_ascii_uppercase(),
        f.id
    );
    if harmless(layout, f) {
        return format!(
            "{line}: {at}, the network core's primary slot in RAM-emulated flash (NCS region \
             `ram_flash`); {why_rc}, because only MCUboot's configuration enables \
             CONFIG_FLASH_SIMULATOR. Harmless here: mcumgr cannot read the network core's update \
             slot by design, the image list simply has no image 1 slot 0, and the update goes \
             through image 1's secondary slot, MCUboot and PCD to the network core's own flash \
             (check it with `expect-boot-chain: {{ netcore-version: … }}`)."
        );
    }
    match (slot_of(layout, p), kind) {
        (Some((image, slot)), DeviceKind::External) => format!(
            "{line}: {at}, image {image} slot {slot} on external flash; {why_rc}. Not harmless: \
             this is an update slot the app needs, and it cannot list it or upload into it. The \
             app's build lacks the Kconfig its flash map requires for `external_flash`: the one \
             `PM_EXTERNAL_FLASH_DEFAULT_DRIVER_KCONFIG` names in the build's pm_config.h \
             (CONFIG_NORDIC_QSPI_NOR in NCS sysbuild builds unless \
             SB_CONFIG_PM_OVERRIDE_EXTERNAL_DRIVER_CHECK is set for an SPI NOR or other driver; \
             CONFIG_PM_EXTERNAL_FLASH_HAS_DRIVER in NCS 2.2-2.6 child-image builds)."
        ),
        (Some((image, slot)), DeviceKind::RamEmulated) => format!(
            "{line}: {at}, image {image} slot {slot} in RAM-emulated flash; {why_rc}. Not known \
             to be harmless: only the network core's primary slot (image 1 slot 0) is meant to \
             be out of the app's reach."
        ),
        (Some((image, slot)), DeviceKind::Internal) => format!(
            "{line}: {at}, image {image} slot {slot} in internal flash; {why_rc}. Not harmless: \
             the app's partition map does not match the layout (rebuild the app against the \
             bootloader's pm_static.yml)."
        ),
        (None, _) => format!(
            "{line}: {at}, not an MCUboot slot; {why_rc}. img_mgmt only opens slots, so the app's \
             slot aliases (slot<N>_partition) point at another map than this layout's."
        ),
    }
}

/// The text of `flash-areas.txt`, or `None` when the log has no such line.
pub fn note(log: &[String], layout: &Layout) -> Option<String> {
    let fails = open_failures(log);
    if fails.is_empty() {
        return None;
    }
    Some(
        fails
            .iter()
            .map(|f| describe(layout, f))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Slots of the nRF5340 sysbuild build (NCS 3.0.2) in `shared/corpus/ncs-builds/Botz-…`:
    /// `littlefs_storage` at external 0x0 takes ID 0, so `mcuboot_primary_1` is ID 2.
    const BOTZ: &str = "name: botz\nflash:\n\
        - { name: internal, kind: internal, base: 0x0, size: 0x100000, sector-size: 0x1000, write-size: 4 }\n\
        - { name: external, kind: external, base: 0x10000000, size: 0x800000, sector-size: 0x1000, write-size: 4 }\n\
        - { name: ram_flash, kind: ram-emulated, base: 0x1000000, size: 0x40000, sector-size: 0x800, write-size: 4 }\n\
        partitions:\n\
        - { name: slot0, device: internal, offset: 0x20000, size: 0xe0000, id: 4 }\n\
        - { name: slot1, device: external, offset: 0x6e0000, size: 0xe0000, id: 8 }\n\
        - { name: mcuboot_secondary_1, device: external, offset: 0x7c0000, size: 0x40000, id: 9 }\n\
        - { name: mcuboot_primary_1, device: ram_flash, offset: 0x0, size: 0x40000, id: 2 }\n\
        images:\n\
        - { primary: slot0, secondary: slot1 }\n\
        - { primary: mcuboot_primary_1, secondary: mcuboot_secondary_1 }\n";

    /// The NCS 2.6.1 child-image build in `shared/corpus/ncs-builds/manu897-…`: nothing else at
    /// external 0x0, so `mcuboot_primary_1` is ID 1 and `mcuboot_secondary` ID 2.
    fn manu() -> Layout {
        let t = BOTZ
            .replace(
                "offset: 0x6e0000, size: 0xe0000, id: 8",
                "offset: 0x0, size: 0xe0000, id: 2",
            )
            .replace(
                "offset: 0x7c0000, size: 0x40000, id: 9",
                "offset: 0xe0000, size: 0x40000, id: 8",
            )
            .replace("size: 0x40000, id: 2 }", "size: 0x40000, id: 1 }");
        Layout::parse(&t, Path::new("manu.yaml")).unwrap()
    }

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    const ID2: &str = "<err> mcumgr_img_grp: Failed to open flash area ID 2: -2";

    #[test]
    fn netcore_ram_slot_is_harmless() {
        let l = Layout::parse(BOTZ, Path::new("botz.yaml")).unwrap();
        let n = note(&log(&["*** Booting", ID2, "x", ID2]), &l).unwrap();
        assert!(n.contains("ID 2 is `mcuboot_primary_1`"), "{n}");
        assert!(n.contains("PM_MCUBOOT_PRIMARY_1_ID=2"), "{n}");
        assert!(n.contains("Harmless here"), "{n}");
        assert!(n.contains("2 times"), "{n}");
    }

    /// Near miss: the same line where ID 2 is the app's own secondary slot on external flash
    /// (the numbering of the NCS 2.6.1 build, and of the thread's `PM_MCUBOOT_SECONDARY_ID=2`).
    #[test]
    fn app_secondary_is_not_harmless() {
        let n = note(&log(&[ID2]), &manu()).unwrap();
        assert!(n.contains("ID 2 is `slot1` (`mcuboot_secondary`)"), "{n}");
        assert!(n.contains("PM_MCUBOOT_SECONDARY_ID=2"), "{n}");
        assert!(n.contains("Not harmless"), "{n}");
        assert!(!n.contains("Harmless here"), "{n}");
        assert!(n.contains("CONFIG_NORDIC_QSPI_NOR"), "{n}");
    }

    #[test]
    fn other_errors_and_unknown_ids_are_not_harmless() {
        let l = Layout::parse(BOTZ, Path::new("botz.yaml")).unwrap();
        let n = note(
            &log(&["<err> mcumgr_img_grp: Failed to open flash area ID 2: -19"]),
            &l,
        )
        .unwrap();
        assert!(n.contains("-ENODEV") && !n.contains("Harmless"), "{n}");
        let n = note(
            &log(&["<err> mcumgr_img_grp: Failed to open flash area ID 7: -2"]),
            &l,
        )
        .unwrap();
        assert!(n.contains("No partition") && !n.contains("Harmless"), "{n}");
        let plain = BOTZ
            .replace(", id: 4", "")
            .replace(", id: 8", "")
            .replace(", id: 9", "");
        let plain = plain.replace(", id: 2", "");
        let l = Layout::parse(&plain, Path::new("p.yaml")).unwrap();
        let n = note(&log(&[ID2]), &l).unwrap();
        assert!(n.contains("carries no flash area IDs"), "{n}");
    }

    #[test]
    fn no_line_no_note() {
        let l = Layout::parse(BOTZ, Path::new("botz.yaml")).unwrap();
        assert_eq!(note(&log(&["<inf> smp_sample: heartbeat"]), &l), None);
        assert!(open_failures(&log(&["Failed to open flash area ID x: -2"])).is_empty());
    }
}
