//! The application's img_mgmt view of flash areas: which slot partitions are in the *app's*
//! flash map, the flash area ID each is opened by, and the `<err>` line img_mgmt logs for a slot
//! the map does not hold.
//!
//! Upstream, in order:
//! - Zephyr `subsys/mgmt/mcumgr/grp/img_mgmt/src/zephyr_img_mgmt.c` `img_mgmt_flash_area_id()`
//!   maps img_mgmt's absolute slot `2 * image + slot` to `slot<N>_partition`; NCS
//!   `include/flash_map_pm.h` aliases `slot0_partition`…`slot3_partition` to `mcuboot_primary`,
//!   `mcuboot_secondary`, `mcuboot_primary_1`, `mcuboot_secondary_1`, so the ID is the
//!   Partition Manager ID (`PM_<NAME>_ID`).
//! - `img_mgmt_erased_val()` (first call of `img_mgmt_read_info()`, in `img_mgmt.c`) and
//!   `img_mgmt_read()` log `"Failed to open flash area ID %u: %d"` when `flash_area_open()`
//!   fails; `img_mgmt_state_read()` (the image list, also the reply of a test/confirm) calls
//!   `img_mgmt_read_info()` for every slot `0 .. 2 * CONFIG_MCUMGR_GRP_IMG_UPDATABLE_IMAGE_NUMBER`
//!   and leaves a slot that fails out of the list.
//! - Zephyr `subsys/storage/flash_map/flash_map.c` `flash_area_open()` returns `-ENOENT` (-2)
//!   for an ID that is not in the image's flash map.
//! - NCS `subsys/partition_manager/flash_map_partition_manager.c` (`FLASH_MAP_PM_ENTRY`) puts a
//!   partition into an image's flash map only when its region's device is enabled and the
//!   region's `DEFAULT_DRIVER_KCONFIG` is set *in that image*: `ram_flash` needs
//!   `CONFIG_FLASH_SIMULATOR` (`cmake/sysbuild/partition_manager.cmake`), `external_flash` the
//!   Kconfig `PM_EXTERNAL_FLASH_DEFAULT_DRIVER_KCONFIG` names in pm_config.h
//!   (`CONFIG_NORDIC_QSPI_NOR` in sysbuild unless `PM_OVERRIDE_EXTERNAL_DRIVER_CHECK`;
//!   `CONFIG_PM_EXTERNAL_FLASH_HAS_DRIVER` in NCS 2.2–2.6 child-image builds).
//!
//! So on an nRF5340 app + network core build, where `mcuboot_primary_1` (slot 2) sits in
//! `ram_flash` and only MCUboot's configuration enables the flash simulator, every image list
//! logs `Failed to open flash area ID <PM_MCUBOOT_PRIMARY_1_ID>: -2` and lists no slot 2: the
//! network core's update is handed over by PCD, not read by mcumgr.

use dfu_hil_mcuboot::layout::{DeviceKind, Layout, Partition};

/// `-ENOENT`, what `flash_area_open()` returns for an ID missing from the flash map.
pub const ENOENT: i32 = -2;

/// The flash drivers compiled into the application, which decide what its flash map holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppFlashDrivers {
    /// `CONFIG_FLASH_SIMULATOR` in the app (reaches `ram_flash`).
    pub flash_simulator: bool,
    /// The external flash driver the region needs (reaches `external_flash`).
    pub external_flash: bool,
}

impl AppFlashDrivers {
    /// An NCS app of the nRF5340 multi-image DFU guide (`ug_nrf5340_multi_image_dfu`): it
    /// uploads to external flash, so it has that driver; the flash simulator is enabled for
    /// MCUboot only (the guide's `CONFIG_FLASH_SIMULATOR` lines are MCUboot's; the nRF5340
    /// apps in `shared/corpus/ncs-builds` have it in `mcuboot.config`, not `app.config`).
    pub const NCS_APP: AppFlashDrivers = AppFlashDrivers {
        flash_simulator: false,
        external_flash: true,
    };
}

/// A slot img_mgmt cannot open in the app's flash map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingArea {
    /// img_mgmt's absolute slot (`2 * image + slot`).
    pub slot: usize,
    pub partition: String,
    /// The flash area ID img_mgmt asked for.
    pub id: u32,
}

/// Whether the app's flash map holds `partition` (absent partitions are not held).
pub fn in_app_map(layout: &Layout, partition: &str, drivers: AppFlashDrivers) -> bool {
    let Some(p) = layout.partition(partition) else {
        return false;
    };
    match layout.device_of(p).kind {
        DeviceKind::Internal => true,
        DeviceKind::External => drivers.external_flash,
        DeviceKind::RamEmulated => drivers.flash_simulator,
    }
}

/// The flash area ID of `p`: the layout's (`id:`, the PM ID from `pm.config`), else a stand-in
/// in Partition Manager's manner (`partition_manager_output.py`: partitions numbered in address
/// order, ties by name) over the layout's own partitions, which is not what a real build would
/// number when its map has partitions the layout leaves out.
pub fn area_id(layout: &Layout, p: &Partition) -> u32 {
    if let Some(id) = p.id {
        return id;
    }
    let mut order: Vec<(u64, &str)> = layout
        .partitions
        .iter()
        .map(|q| (u64::from(layout.address(q)), q.name.as_str()))
        .collect();
    order.sort_unstable();
    let n = order
        .iter()
        .position(|(_, name)| *name == p.name)
        .unwrap_or(order.len());
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Every slot of the layout's images the app's flash map lacks, in img_mgmt's slot order.
pub fn missing_slots(layout: &Layout, drivers: AppFlashDrivers) -> Vec<MissingArea> {
    let mut out = Vec::new();
    for (image, pair) in layout.images.iter().enumerate() {
        for (s, name) in [&pair.primary, &pair.secondary].into_iter().enumerate() {
            let Some(p) = layout.partition(name) else {
                continue;
            };
            if !in_app_map(layout, name, drivers) {
                out.push(MissingArea {
                    slot: 2 * image + s,
                    partition: name.clone(),
                    id: area_id(layout, p),
                });
            }
        }
    }
    out
}

/// The line Zephyr's img_mgmt logs (module `mcumgr_img_grp`, `LOG_ERR`).
pub fn open_failed_line(id: u32, rc: i32) -> String {
    format!("<err> mcumgr_img_grp: Failed to open flash area ID {id}: {rc}")
}

/// What img_mgmt logs while it builds one image list (`img_mgmt_state_read`): one line per
/// slot the app's flash map lacks.
pub fn image_list_log(layout: &Layout, drivers: AppFlashDrivers) -> Vec<String> {
    missing_slots(layout, drivers)
        .iter()
        .map(|m| open_failed_line(m.id, ENOENT))
        .collect()
}

/// The lines one SMP request makes img_mgmt log about flash areas: an image list; a test or
/// confirm that gets past its argument checks (`img_mgmt_state_write`: a 32-byte hash, or a
/// confirm without one), whose answer is an image list. (Upstream `img_mgmt_find_by_hash` also
/// opens every slot up to the one holding the hash; the simulated server does not log that
/// search.)
pub fn request_log(
    layout: &Layout,
    drivers: AppFlashDrivers,
    group: u16,
    command: u8,
    write: bool,
    body: &ciborium::value::Value,
) -> Vec<String> {
    if group != dfu_hil_smp::header::group::IMAGE || command != dfu_hil_smp::header::img_cmd::STATE
    {
        return Vec::new();
    }
    if write && !state_write_reaches_the_list(body) {
        return Vec::new();
    }
    image_list_log(layout, drivers)
}

/// `img_mgmt_state_write` answers EINVAL before touching flash for a test without a hash and
/// for a hash that is not 32 bytes.
fn state_write_reaches_the_list(body: &ciborium::value::Value) -> bool {
    use ciborium::value::Value;
    let Value::Map(m) = body else { return false };
    let field = |k: &str| {
        m.iter()
            .find(|(key, _)| matches!(key, Value::Text(t) if t == k))
            .map(|(_, v)| v)
    };
    let confirm = matches!(field("confirm"), Some(Value::Bool(true)));
    match field("hash") {
        Some(Value::Bytes(h)) if !h.is_empty() => h.len() == 32,
        _ => confirm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The nRF5340 external-flash layout of NCS 3.0.2's sysbuild build in
    /// `shared/corpus/ncs-builds/Botz-Limited__sensing_system-Zephyr__e77d669` (IDs from its
    /// pm.config), trimmed to the slots.
    const EXT: &str = "name: t\nflash:\n\
        - { name: flash_primary, kind: internal, base: 0x0, size: 0x100000, sector-size: 0x1000, write-size: 4 }\n\
        - { name: ram_flash, kind: ram-emulated, base: 0x1000000, size: 0x40000, sector-size: 0x800, write-size: 4 }\n\
        - { name: external_flash, kind: external, base: 0x10000000, size: 0x800000, sector-size: 0x1000, write-size: 1 }\n\
        partitions:\n\
        - { name: slot0, device: flash_primary, offset: 0x20000, size: 0xe0000, id: 4 }\n\
        - { name: slot1, device: external_flash, offset: 0x6e0000, size: 0xe0000, id: 8 }\n\
        - { name: mcuboot_primary_1, device: ram_flash, offset: 0x0, size: 0x40000, id: 2 }\n\
        - { name: mcuboot_secondary_1, device: external_flash, offset: 0x7c0000, size: 0x40000, id: 9 }\n\
        images:\n\
        - { primary: slot0, secondary: slot1 }\n\
        - { primary: mcuboot_primary_1, secondary: mcuboot_secondary_1 }\n";

    fn ext() -> Layout {
        Layout::parse(EXT, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn netcore_ram_slot_is_missing_from_an_ncs_app_map() {
        let m = missing_slots(&ext(), AppFlashDrivers::NCS_APP);
        assert_eq!(
            m,
            vec![MissingArea {
                slot: 2,
                partition: "mcuboot_primary_1".into(),
                id: 2
            }]
        );
        assert_eq!(
            image_list_log(&ext(), AppFlashDrivers::NCS_APP),
            vec!["<err> mcumgr_img_grp: Failed to open flash area ID 2: -2".to_string()]
        );
    }

    /// Near miss: an app without the external flash driver loses its own secondary slot (and
    /// the netcore's); the ID then names a slot the app needs.
    #[test]
    fn app_without_external_driver_loses_its_own_secondary() {
        let d = AppFlashDrivers {
            flash_simulator: false,
            external_flash: false,
        };
        let m = missing_slots(&ext(), d);
        let names: Vec<_> = m
            .iter()
            .map(|m| (m.slot, m.partition.as_str(), m.id))
            .collect();
        assert_eq!(
            names,
            vec![
                (1, "slot1", 8),
                (2, "mcuboot_primary_1", 2),
                (3, "mcuboot_secondary_1", 9)
            ]
        );
    }

    use ciborium::value::Value;

    fn body(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::Text(k.into()), v))
                .collect(),
        )
    }

    #[test]
    fn flash_simulator_in_the_app_opens_the_ram_slot() {
        let d = AppFlashDrivers {
            flash_simulator: true,
            external_flash: true,
        };
        assert!(missing_slots(&ext(), d).is_empty());
        assert!(request_log(&ext(), d, 1, 0, false, &body(vec![])).is_empty());
    }

    #[test]
    fn only_image_state_requests_that_reach_the_list_log() {
        let d = AppFlashDrivers::NCS_APP;
        let l = ext();
        assert_eq!(request_log(&l, d, 1, 0, false, &body(vec![])).len(), 1);
        let test = body(vec![("hash", Value::Bytes(vec![1; 32]))]);
        assert_eq!(request_log(&l, d, 1, 0, true, &test).len(), 1);
        let confirm = body(vec![("confirm", Value::Bool(true))]);
        assert_eq!(request_log(&l, d, 1, 0, true, &confirm).len(), 1);
        // Near misses: EINVAL before any flash access.
        assert!(request_log(&l, d, 1, 0, true, &body(vec![])).is_empty());
        let short = body(vec![("hash", Value::Bytes(vec![1; 8]))]);
        assert!(request_log(&l, d, 1, 0, true, &short).is_empty());
        // Other commands and groups.
        assert!(request_log(&l, d, 1, 1, true, &body(vec![])).is_empty());
        assert!(request_log(&l, d, 0, 0, false, &body(vec![])).is_empty());
    }

    #[test]
    fn without_ids_the_stand_in_numbers_by_address() {
        let text = EXT.replace(", id: 4", "").replace(", id: 2", "");
        let l = Layout::parse(&text, Path::new("t.yaml")).unwrap();
        // slot0 (0x20000) first, then the RAM device at 0x1000000, then external.
        assert_eq!(area_id(&l, l.partition("slot0").unwrap()), 0);
        assert_eq!(area_id(&l, l.partition("mcuboot_primary_1").unwrap()), 1);
    }
}
