//! Power-cut sweeps for swap-using-move, as MCUboot's `revert_with_fails` / `perm_with_fails`
//! (MCUboot `sim/src/image.rs`; the cut counter is in `sim/mcuboot-sys/csupport/run.c`): one clean
//! boot counts the flash operations, then for every cut point k the pre-swap flash is restored,
//! power is cut before operation k, and the next boot must resume to exactly the clean outcome —
//! same image running, same trailer states, never a mix.

mod common;

use common::*;
use dfu_hil_mcuboot::trailer::{Flag, MagicState};
use dfu_hil_sim::device::flash_map::FlashMap;
use dfu_hil_sim::SimBoard;
use std::time::Instant;

/// What must be identical between the clean and every interrupted-then-resumed boot.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    running: String,
    primary: (MagicState, Flag, Flag),
    secondary: (MagicState, Flag, Flag),
    /// SHA-256 of the slot contents up to the image size (+ a sector): which image sits where.
    slot0_image: String,
    slot1_image: String,
}

fn digest(b: &SimBoard, part: &str, span: u32) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(b.flash.read(part, 0, span).unwrap())[..8])
}

fn outcome(b: &SimBoard, span: u32) -> Outcome {
    Outcome {
        running: running(b),
        primary: triple(&trailer(b, "slot0")),
        secondary: triple(&trailer(b, "slot1")),
        slot0_image: digest(b, "slot0", span),
        slot1_image: digest(b, "slot1", span),
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
    let (mut resumed, mut from_info) = (0, 0);
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
        let log = &b.last_boot().log;
        resumed += log.iter().any(|l| l.contains("(resuming)")) as u32;
        from_info += log.iter().any(|l| l.contains("(from swap_info)")) as u32;
        let got = outcome(b, span);
        assert_eq!(
            got.running,
            clean.running,
            "{what}: cut before op {k}/{total} ({:?}) → wrong image",
            b.flash.last_op()
        );
        assert_eq!(got, clean, "{what}: cut before op {k}/{total}");
    }
    println!(
        "{what}: {total} cut points swept in {:.2?} ({resumed} resumed from status records, \
         {from_info} restarted from swap_info)",
        t0.elapsed()
    );
    assert!(
        resumed > 0 && from_info > 0,
        "{what}: resume paths not exercised"
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
        // Count what the resume has left to do, then cut that resume too (before its third op,
        // or its last one when it is shorter).
        let cut = b.flash.clone();
        let before = b.flash.op_count();
        b.reset();
        let left = b.flash.op_count() - before;
        b.flash = cut;
        if left > 0 {
            b.flash.arm_power_cut(left.min(3));
            b.reset();
            b.flash.disarm_power_cut();
        }
        b.reset();
        assert_eq!(
            outcome(&b, SPAN),
            clean,
            "cuts at {k} then within the resume"
        );
    }
}
