//! Diagnoses from the device's SMP answer (which error, to which request).

use super::*;

pub(super) fn diagnose(f: &Facts<'_>, _boot: &[String]) -> Option<String> {
    if let Some(e) = &f.device_error {
        let e = e.to_ascii_uppercase();
        if e.contains("NOT_SUPPORTED") || e.contains("ENOTSUP") {
            return Some(not_supported(f));
        }
        if e.contains("NO_FREE_SLOT") {
            return Some(
                "no free slot for the upload: slot1 holds a pending image, or the image a revert \
                 will restore while an unconfirmed test image runs — confirm or erase first"
                    .into(),
            );
        }
        if e.contains("ALREADY_PENDING") {
            return Some(
                "an update is already scheduled (test or revert pending); reset first, or confirm \
                 the running image"
                    .into(),
            );
        }
    }
    None
}

/// MGMT_ERR_ENOTSUP (8) is what Zephyr's SMP layer answers when `mgmt_find_handler` finds no
/// handler for the request's group and command (`smp.c` `smp_handle_single_payload`), so the
/// request that got it names the missing Kconfig. A group that answered earlier in the same
/// run is compiled in: only that command is missing.
fn not_supported(f: &Facts<'_>) -> String {
    let Some(failed) = f.smp.iter().rev().find(|x| x.rc == Some(8)) else {
        return "the device answered NOT_SUPPORTED (rc 8): the running firmware has no handler \
                for this command — the image management group (CONFIG_MCUMGR_GRP_IMG) is not \
                compiled in, or the device sits in MCUboot serial recovery"
            .into();
    };
    let group_answered = f.smp.iter().any(|x| x.group == failed.group && x.ok());
    let op = if failed.write { "write" } else { "read" };
    let req = format!("group {} command {} ({op})", failed.group, failed.command);
    match (failed.group, failed.command) {
        (63, 0) => format!(
            "the device answered NOT_SUPPORTED (rc 8) to {req}, Zephyr basic \"erase storage\" \
             (a phone app's \"erase application settings\"): the app is built without \
             CONFIG_MCUMGR_GRP_ZBASIC + CONFIG_MCUMGR_GRP_ZBASIC_STORAGE_ERASE (before Zephyr \
             3.3: CONFIG_MCUMGR_GRP_ZEPHYR_BASIC + CONFIG_MCUMGR_GRP_BASIC_CMD_STORAGE_ERASE); \
             NCS's CONFIG_NCS_SAMPLE_MCUMGR_BT_OTA_DFU enables them only with an FCB or NVS \
             settings backend. nRF Connect Device Manager ignores this answer and goes on, so it \
             does not explain a failed update{}",
            if f.smp.iter().any(|x| x.group == 1 && x.ok()) {
                "; the image group answered in the same run, so CONFIG_MCUMGR_GRP_IMG is set"
            } else {
                ""
            }
        ),
        (1, _) if group_answered => format!(
            "the device answered NOT_SUPPORTED (rc 8) to {req}; the image group answered \
             earlier in this run, so CONFIG_MCUMGR_GRP_IMG is set and only this command is \
             missing (img_mgmt has no state write in MCUboot direct-xip builds, \
             CONFIG_MCUBOOT_BOOTLOADER_MODE_DIRECT_XIP)"
        ),
        (1, _) => format!(
            "the device answered NOT_SUPPORTED (rc 8) to {req}: the image management group \
             (CONFIG_MCUMGR_GRP_IMG) is not compiled in, or the device sits in MCUboot serial \
             recovery"
        ),
        (0, 6) => format!(
            "the device answered NOT_SUPPORTED (rc 8) to {req}, os mcumgr_params: \
             CONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS is not set (clients then assume the default \
             buffer size)"
        ),
        (0, 8) => format!(
            "the device answered NOT_SUPPORTED (rc 8) to {req}, os bootloader info: \
             CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO is not set"
        ),
        (0, _) if !group_answered => format!(
            "the device answered NOT_SUPPORTED (rc 8) to {req}: the OS management group \
             (CONFIG_MCUMGR_GRP_OS) is not compiled in"
        ),
        _ => format!(
            "the device answered NOT_SUPPORTED (rc 8) to {req}: the running firmware has no \
             handler for that group and command{}",
            if group_answered {
                " (the group answered earlier, so only this command is missing)"
            } else {
                ""
            }
        ),
    }
}
