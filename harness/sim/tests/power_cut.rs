//! Power-cut sweeps for swap-using-move, as MCUboot's `revert_with_fails` / `perm_with_fails`
//! (mcuboot.md §5.2–§5.3): one clean boot counts the flash operations, then for every cut point
//! k the pre-swap flash is restored, power is cut before operation k, and the next boot must
//! resume to exactly the clean outcome — same image running, same trailer states, never a mix.

mod common;

use common::*;
use dfu_hil_mcuboot::trailer::{Flag, MagicState};
use dfu_hil_sim::flash_map::FlashMap;
use dfu_hil_sim::SimBoard;
use std::time::Instant;

/// What must be identical between the clean and every interrupted-then-resumed boot.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    running: String,
    primary: (MagicState, Flag, Flag),
    secondary: (MagicState, Flag, Flag),
    /// Slot contents up to the image size: which image sits where.
    slot0_image: Vec<u8>,
    slot1_image: Vec<u8>,
}

fn outcome(b: &SimBoard, span: u32) -> Outcome {
    Outcome {
        running: running(b),
        primary: triple(&trailer(b, "slot0")),
        secondary: triple(&trailer(b, "slot1")),
        slot0_image: b.flash.read("slot0", 0, span).unwrap(),
        slot1_image: b.flash.read("slot1", 0, span).unwrap(),
    }
}

/// Run the sweep from the board's current (pre-swap) flash. Returns the clean outcome.
fn sweep(b: &mut SimBoard, what: &str, span: u32) -> Outcome {
    let pre: FlashMap = b.flash.clone();
    let start = b.flash.op_count();
    b.reset();
    let total = b.flash.op_count() - start;
    let clean = outcome(b, span);
    assert!(total > 0, "{what}: the clean boot wrote nothing");
    let t0 = Instant::now();
    for k in 1..=total {
        b.flash = pre.clone();
        b.flash.arm_power_cut(k);
        b.reset();
        assert!(
            matches!(
                b.last_boot().outcome,
                Some(dfu_hil_sim::bootloader::BootOutcome::PowerCut { .. })
            ),
            "{what}: cut {k}/{total} did not interrupt the boot"
        );
        b.flash.disarm_power_cut();
        b.reset();
        let got = outcome(b, span);
        assert_eq!(
            got.running, clean.running,
            "{what}: cut before op {k}/{total} ({:?}) → wrong image",
            b.flash.last_op()
        );
        assert_eq!(got, clean, "{what}: cut before op {k}/{total}");
    }
    println!(
        "{what}: {total} cut points swept in {:.2?}",
        t0.elapsed()
    );
    b.flash = pre;
    clean
}

fn staged() -> (SimBoard, Vec<u8>, Vec<u8>) {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let v2 = app(&lay, "2.0.0");
    let mut b = board_with(lay, &build(), &v1);
    upload(&mut b, &v2, 512).expect("upload");
    (b, v1, v2)
}

/// Bytes compared per slot: the images plus one sector, so a wrongly moved sector shows.
const SPAN: u32 = APP_SIZE + 0x2000;

#[test]
fn test_swap_with_fails() {
    let (mut b, _, v2) = staged();
    test_image(&mut b, &tlv_hash(&v2));
    let clean = sweep(&mut b, "TEST", SPAN);
    assert_eq!(clean.running, "2.0.0");
    assert_eq!(clean.primary, (MagicState::Good, Flag::Unset, Flag::Set));
    assert_eq!(clean.secondary, ERASED);
}

#[test]
fn perm_swap_with_fails() {
    let (mut b, _, v2) = staged();
    state_write(&mut b, Some(&tlv_hash(&v2)), true).expect("permanent");
    let clean = sweep(&mut b, "PERM", SPAN);
    assert_eq!(clean.running, "2.0.0");
    assert_eq!(clean.primary, (MagicState::Good, Flag::Set, Flag::Set));
    assert_eq!(clean.secondary, ERASED);
}

#[test]
fn revert_with_fails() {
    let (mut b, _, v2) = staged();
    test_image(&mut b, &tlv_hash(&v2));
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    let clean = sweep(&mut b, "REVERT", SPAN);
    assert_eq!(clean.running, "1.0.0");
    assert_eq!(clean.primary, (MagicState::Good, Flag::Set, Flag::Set));
    assert_eq!(clean.secondary, ERASED);
    // Third boot unchanged.
    b.reset();
    b.reset();
    assert_eq!(outcome(&b, SPAN), clean);
}

#[test]
fn double_cut_during_test_swap_still_resumes() {
    // Two consecutive cuts (perm_with_random_fails-like, deterministic): cut at k, then again
    // a few ops into the resume, then finish.
    let (mut b, _, v2) = staged();
    test_image(&mut b, &tlv_hash(&v2));
    let pre = b.flash.clone();
    let start = b.flash.op_count();
    b.reset();
    let total = b.flash.op_count() - start;
    let clean = outcome(&b, SPAN);
    for k in (1..=total).step_by(7) {
        b.flash = pre.clone();
        b.flash.arm_power_cut(k);
        b.reset();
        b.flash.arm_power_cut(3);
        b.reset();
        b.flash.disarm_power_cut();
        b.reset();
        assert_eq!(outcome(&b, SPAN), clean, "cuts at {k} then +3");
    }
}
