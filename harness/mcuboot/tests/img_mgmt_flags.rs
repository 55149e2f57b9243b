//! img_mgmt's per-slot flags follow the swap type, for every one of the 27 x 27 combinations of
//! primary and secondary trailer states (MCUboot `boot_swap_type_multi`; Zephyr
//! `img_mgmt_state_flags`).

use dfu_hil_mcuboot::swap::{img_mgmt_flags, swap_type, SlotSwapState};
use dfu_hil_mcuboot::trailer::{Flag, MagicState, SwapType, UpgradeMode};

fn all_states() -> Vec<SlotSwapState> {
    let mut v = Vec::new();
    for magic in [MagicState::Good, MagicState::Bad, MagicState::Unset] {
        for image_ok in [Flag::Set, Flag::Bad, Flag::Unset] {
            for copy_done in [Flag::Set, Flag::Bad, Flag::Unset] {
                v.push(SlotSwapState {
                    magic,
                    image_ok,
                    copy_done,
                });
            }
        }
    }
    v
}

#[test]
fn flags_consistent_with_swap_type_for_all_729_combinations() {
    for mode in [
        UpgradeMode::SwapMove,
        UpgradeMode::SwapScratch,
        UpgradeMode::SwapOffset,
    ] {
        let mut seen = 0;
        for p in all_states() {
            for s in all_states() {
                let st = swap_type(p, Some(s), mode);
                let f0 = img_mgmt_flags(st, 0, 0);
                let f1 = img_mgmt_flags(st, 1, 0);
                let ctx = format!("{mode} primary {p:?} secondary {s:?} → {st}");
                // Slot 0 is the running image; slot 1 never is.
                assert!(f0.active && !f1.active, "{ctx}");
                // The running slot never is pending; pending lives on the secondary.
                assert!(!f0.pending && !f0.permanent, "{ctx}");
                // pending iff the secondary requests a swap (TEST or PERM from slot 1's trailer).
                let requested = s.magic == MagicState::Good
                    && (s.image_ok == Flag::Unset || s.image_ok == Flag::Set)
                    && !(mode == UpgradeMode::SwapOffset
                        && s.image_ok == Flag::Unset
                        && s.copy_done == Flag::Set);
                assert_eq!(f1.pending, requested, "{ctx}");
                assert_eq!(
                    f1.pending,
                    matches!(st, SwapType::Test | SwapType::Perm),
                    "{ctx}"
                );
                // permanent only with pending, exactly for PERM.
                assert_eq!(f1.permanent, st == SwapType::Perm, "{ctx}");
                assert!(!f1.permanent || f1.pending, "{ctx}");
                // The running image is unconfirmed exactly while a revert is scheduled, and then
                // the revert target (slot 1) is the confirmed one.
                assert_eq!(f0.confirmed, st != SwapType::Revert, "{ctx}");
                assert_eq!(f1.confirmed, st == SwapType::Revert, "{ctx}");
                seen += 1;
            }
        }
        assert_eq!(seen, 729);
    }
}
