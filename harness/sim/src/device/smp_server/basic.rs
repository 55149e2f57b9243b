//! Zephyr basic group (63), command 0 "erase storage" (Zephyr
//! `subsys/mgmt/mcumgr/grp/zephyr_basic/src/basic_mgmt.c`, write handler only). Compiled in
//! with `CONFIG_MCUMGR_GRP_ZBASIC` + `CONFIG_MCUMGR_GRP_ZBASIC_STORAGE_ERASE` (before Zephyr
//! 3.3: `CONFIG_MCUMGR_GRP_ZEPHYR_BASIC` + `CONFIG_MCUMGR_GRP_BASIC_CMD_STORAGE_ERASE`); the
//! app descriptor lists group 63 when it is. Without it the SMP layer finds no handler and
//! answers a bare `{"rc":8}` (`smp_handle_single_payload` → MGMT_ERR_ENOTSUP), v1 and v2 alike.

use super::{Answer, AppView};

/// `ZEPHYR_MGMT_GRP_BASIC_CMD_ERASE_STORAGE`.
pub const ERASE_STORAGE: u8 = 0;

/// The basic group's own error codes (`zephyr_basic_group_err_code_t`).
pub mod err {
    pub const FLASH_OPEN_FAILED: u32 = 2;
    pub const FLASH_ERASE_FAILED: u32 = 4;
}

/// The partition `storage_partition` names: `storage` in devicetree, `settings_storage`
/// under the Partition Manager.
pub const STORAGE_PARTITIONS: [&str; 2] = ["storage", "settings_storage"];

/// Erase the settings storage partition; `{}` on success, the group's error otherwise.
pub(super) fn erase_storage(view: &mut AppView<'_>) -> Answer {
    let Some(part) = STORAGE_PARTITIONS
        .iter()
        .find(|p| view.flash.partition(p).is_ok())
    else {
        return Answer::Group(super::group::ZEPHYR_BASIC, err::FLASH_OPEN_FAILED);
    };
    match view.flash.erase_all(part) {
        Ok(()) => Answer::Body(vec![]),
        Err(_) => Answer::Group(super::group::ZEPHYR_BASIC, err::FLASH_ERASE_FAILED),
    }
}
