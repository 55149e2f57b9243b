//! Diagnoses from the device's SMP answer (which error, to which request).

use super::*;

pub(super) fn diagnose(f: &Facts<'_>, _boot: &[String]) -> Option<String> {
    if let Some(e) = &f.device_error {
        let e = e.to_ascii_uppercase();
        if e.contains("NOT_SUPPORTED") || e.contains("ENOTSUP") {
            return Some(
                "the device answered NOT_SUPPORTED (rc 8): the running firmware has no handler \
                 for this command — the image management group (CONFIG_MCUMGR_GRP_IMG) is not \
                 compiled in, or the device sits in MCUboot serial recovery"
                    .into(),
            );
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
