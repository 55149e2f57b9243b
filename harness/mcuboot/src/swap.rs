//! The boot decision: MCUboot's swap-type table and the img_mgmt flags an application derives
//! from the same table.
//!
//! Both sides of a real device evaluate this table — MCUboot at boot, and the app's img_mgmt when
//! it answers `image list` — so a harness that computes it from trailer bytes read through the
//! probe can tell when the two disagree (different `BOOT_MAX_ALIGN`, an unreadable secondary).

use crate::trailer::{Flag, MagicState, SwapType, UpgradeMode};
use serde::Serialize;

/// The three trailer fields the decision reads (`struct boot_swap_state` minus swap_info).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlotSwapState {
    pub magic: MagicState,
    pub image_ok: Flag,
    pub copy_done: Flag,
}

impl SlotSwapState {
    pub const ERASED: SlotSwapState = SlotSwapState {
        magic: MagicState::Unset,
        image_ok: Flag::Unset,
        copy_done: Flag::Unset,
    };
}

/// `boot_swap_type_multi`: rows evaluated in order, first match wins (MCUboot
/// `boot/bootutil/src/bootutil_public.c`, `boot_swap_tables`).
///
/// `secondary` is `None` when the secondary trailer cannot be read (flash error, e.g. external
/// flash without a driver): MCUboot then treats the slot as empty ("Treat it as empty") and
/// goes on through the table, so a new upgrade is never seen but a pending revert still is.
pub fn swap_type(
    primary: SlotSwapState,
    secondary: Option<SlotSwapState>,
    mode: UpgradeMode,
) -> SwapType {
    let sec = secondary.unwrap_or(SlotSwapState::ERASED);
    // Row I exists only in swap-using-offset.
    if mode == UpgradeMode::SwapOffset
        && sec.magic == MagicState::Good
        && sec.image_ok == Flag::Unset
        && sec.copy_done == Flag::Set
    {
        return SwapType::Revert;
    }
    if sec.magic == MagicState::Good && sec.image_ok == Flag::Unset {
        return SwapType::Test;
    }
    if sec.magic == MagicState::Good && sec.image_ok == Flag::Set {
        return SwapType::Perm;
    }
    if primary.magic == MagicState::Good
        && primary.image_ok == Flag::Unset
        && primary.copy_done == Flag::Set
    {
        return SwapType::Revert;
    }
    SwapType::None
}

/// The four flags img_mgmt reports per slot (`IMG_MGMT_STATE_F_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SlotFlags {
    pub active: bool,
    pub confirmed: bool,
    pub pending: bool,
    pub permanent: bool,
}

/// `img_mgmt_state_flags` for one slot of a single-image pair: the flags follow the swap type
/// computed from both trailers, not the raw image_ok byte (Zephyr
/// `subsys/mgmt/mcumgr/grp/img_mgmt/src/img_mgmt_state.c`, `img_mgmt_state_flags`).
pub fn img_mgmt_flags(swap: SwapType, slot: u32, active_slot: u32) -> SlotFlags {
    let is_active = slot == active_slot;
    let mut f = SlotFlags {
        active: is_active,
        ..SlotFlags::default()
    };
    match swap {
        SwapType::Test => {
            if is_active {
                f.confirmed = true;
            } else {
                f.pending = true;
            }
        }
        SwapType::Perm => {
            if is_active {
                f.confirmed = true;
            } else {
                f.pending = true;
                f.permanent = true;
            }
        }
        SwapType::Revert => {
            if !is_active {
                f.confirmed = true;
            }
        }
        SwapType::None | SwapType::Fail | SwapType::Panic => {
            if is_active {
                f.confirmed = true;
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGICS: [MagicState; 3] = [MagicState::Good, MagicState::Bad, MagicState::Unset];
    const FLAGS: [Flag; 3] = [Flag::Set, Flag::Bad, Flag::Unset];

    fn all_states() -> Vec<SlotSwapState> {
        let mut v = Vec::new();
        for magic in MAGICS {
            for image_ok in FLAGS {
                for copy_done in FLAGS {
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

    /// An independent statement of the table, written as the design doc words it, checked
    /// against every one of the 27 x 27 combinations and both table variants.
    fn expected(p: SlotSwapState, s: SlotSwapState, offset: bool) -> SwapType {
        use Flag::{Set, Unset};
        use MagicState::Good;
        match (
            p.magic,
            p.image_ok,
            p.copy_done,
            s.magic,
            s.image_ok,
            s.copy_done,
        ) {
            (_, _, _, Good, Unset, Set) if offset => SwapType::Revert,
            (_, _, _, Good, Unset, _) => SwapType::Test,
            (_, _, _, Good, Set, _) => SwapType::Perm,
            (Good, Unset, Set, _, _, _) => SwapType::Revert,
            _ => SwapType::None,
        }
    }

    #[test]
    fn table_exhaustive() {
        let mut counts = std::collections::HashMap::new();
        for mode in [UpgradeMode::SwapMove, UpgradeMode::SwapOffset] {
            for p in all_states() {
                for s in all_states() {
                    let got = swap_type(p, Some(s), mode);
                    assert_eq!(
                        got,
                        expected(p, s, mode == UpgradeMode::SwapOffset),
                        "{p:?} {s:?} {mode}"
                    );
                    *counts.entry((mode, got)).or_insert(0) += 1;
                }
            }
        }
        // Secondary GOOD + image_ok UNSET: 27 primaries x 3 copy_done values.
        assert_eq!(counts[&(UpgradeMode::SwapMove, SwapType::Test)], 81);
        assert_eq!(counts[&(UpgradeMode::SwapOffset, SwapType::Test)], 54);
        assert_eq!(counts[&(UpgradeMode::SwapMove, SwapType::Perm)], 81);
    }

    #[test]
    fn unreadable_secondary_is_treated_as_empty() {
        let reverting = SlotSwapState {
            magic: MagicState::Good,
            image_ok: Flag::Unset,
            copy_done: Flag::Set,
        };
        // The primary still decides a revert; nothing else can be scheduled.
        assert_eq!(
            swap_type(reverting, None, UpgradeMode::SwapMove),
            SwapType::Revert
        );
        let confirmed = SlotSwapState {
            image_ok: Flag::Set,
            ..reverting
        };
        assert_eq!(
            swap_type(confirmed, None, UpgradeMode::SwapMove),
            SwapType::None
        );
    }

    #[test]
    fn bad_secondary_image_ok_matches_no_row() {
        let s = SlotSwapState {
            magic: MagicState::Good,
            image_ok: Flag::Bad,
            copy_done: Flag::Unset,
        };
        assert_eq!(
            swap_type(SlotSwapState::ERASED, Some(s), UpgradeMode::SwapMove),
            SwapType::None
        );
    }

    #[test]
    fn img_mgmt_flag_table() {
        let f = |active, confirmed, pending, permanent| SlotFlags {
            active,
            confirmed,
            pending,
            permanent,
        };
        // As `img_mgmt_state_flags` derives them: none, test, perm, revert.
        assert_eq!(
            img_mgmt_flags(SwapType::None, 0, 0),
            f(true, true, false, false)
        );
        assert_eq!(
            img_mgmt_flags(SwapType::None, 1, 0),
            f(false, false, false, false)
        );
        assert_eq!(
            img_mgmt_flags(SwapType::Test, 0, 0),
            f(true, true, false, false)
        );
        assert_eq!(
            img_mgmt_flags(SwapType::Test, 1, 0),
            f(false, false, true, false)
        );
        assert_eq!(
            img_mgmt_flags(SwapType::Perm, 1, 0),
            f(false, false, true, true)
        );
        assert_eq!(
            img_mgmt_flags(SwapType::Revert, 0, 0),
            f(true, false, false, false)
        );
        assert_eq!(
            img_mgmt_flags(SwapType::Revert, 1, 0),
            f(false, true, false, false)
        );
    }
}
