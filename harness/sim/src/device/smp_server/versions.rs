//! Which SMP server behaviour a Zephyr release has. Each predicate names the upstream change it
//! follows; `docs/firmware-versions.md` has the table.

use dfu_hil_firmware::{Release, Ver};

/// Zephyr 3.4.99 brought `img_mgmt_set_next_boot_slot` (zephyrproject-rtos/zephyr PR #61342,
/// #58803; `subsys/mgmt/mcumgr/grp/img_mgmt/src/img_mgmt_state.c`). Before it (Zephyr <= 3.4.0,
/// NCS <= 2.4 whose sdk-zephyr is 3.3.99) `img_mgmt_state_write` called
/// `img_mgmt_state_set_pending` → MCUboot `boot_set_pending_multi`, which answers a confirm of
/// a slot already marked for test with success and writes nothing; from 3.4.99 on the same
/// request answers IMAGE_ALREADY_PENDING (28).
pub fn state_write_sets_pending_directly(r: &Release) -> bool {
    r.zephyr < Ver::new(3, 4, 99)
}

/// The counterpart, named for what a DFU engineer sees: a confirm of the pending hash answers
/// the image list (slot still pending) instead of rc 28.
pub fn confirm_of_pending_answers_list(r: &Release) -> bool {
    state_write_sets_pending_directly(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zephyr(v: Ver) -> Release {
        Release {
            zephyr: v,
            ..Release::default()
        }
    }

    #[test]
    fn boundary_is_3_4_99() {
        assert!(confirm_of_pending_answers_list(&zephyr(Ver::new(3, 3, 99))));
        assert!(confirm_of_pending_answers_list(&zephyr(Ver::new(3, 4, 0))));
        assert!(!confirm_of_pending_answers_list(&zephyr(Ver::new(
            3, 4, 99
        ))));
        assert!(!confirm_of_pending_answers_list(&Release::default()));
    }
}
