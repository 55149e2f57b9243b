//! Diagnoses from MCUboot's log and the trailers after a reset (swap type, rejected images, NSIB).

use super::*;
use dfu_hil_mcuboot::trailer::{Flag, MagicState};

pub(super) fn diagnose(f: &Facts<'_>, boot: &[String]) -> Option<String> {
    if logged(boot, "Image in the secondary slot is not valid!") {
        return Some(
            "MCUboot rejected the image in the secondary slot and erased it: its signature does \
             not verify with MCUboot's key, its hash does not match, or it is too large"
                .into(),
        );
    }
    if logged(boot, "erased due to downgrade prevention")
        || logged(boot, "Insufficient version in secondary slot")
    {
        return Some(
            "MCUboot refused the update as a downgrade (its version is lower than the running \
             image's) and erased it"
                .into(),
        );
    }
    if logged(boot, "Image in slot is for wrong s0/s1 image") {
        return Some(
            "the MCUboot update was built for the s0/s1 slot NSIB is running from; MCUboot erased \
             it — upload the variant for the inactive slot (s1 when s0 runs, and back)"
                .into(),
        );
    }
    if logged(boot, "monotonic counter slots used") {
        return Some(
            "NSIB's monotonic counter has no free slot left: a newer MCUboot can no longer be \
             recorded and b0 keeps booting the old one — provision more counter slots \
             (CONFIG_SB_MONOTONIC_COUNTER_SLOTS) on new devices"
                .into(),
        );
    }
    if logged(boot, "Failed reading sectors") {
        return Some(
            "MCUboot could not read the slot's sector list: BOOT_MAX_IMG_SECTORS is smaller than \
             the number of sectors in a slot (typical after moving slot1 to external flash); \
             raise CONFIG_BOOT_MAX_IMG_SECTORS"
                .into(),
        );
    }
    let secondary_pending = f.trailers.get(1).is_some_and(|(_, t)| {
        t.magic == MagicState::Good && t.image_ok == Flag::Unset && t.copy_done == Flag::Unset
    });
    if secondary_pending && (logged(boot, "unreachable") || logged(boot, "Swap type: none")) {
        let region = &f.trailers[1].0;
        return Some(format!(
            "{region} was marked for test (magic good, image_ok unset) but after reset the swap \
             type stayed NONE and the trailer is unchanged: the bootloader did not see the \
             secondary slot — is it on external flash without the driver in MCUboot?"
        ));
    }
    if logged(boot, "Swap type: revert") {
        return Some(
            "MCUboot reverted: the test image was not confirmed before the reset \
             (image confirm, or boot_write_img_confirmed() in the app)"
                .into(),
        );
    }
    None
}
