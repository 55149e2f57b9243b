//! Power-cut sweeps run in process on the simulated board: every failing cut point reported
//! ("N of M"), and the same verdicts whether a cut's state is rebuilt from checkpoints or the
//! block is replayed up to it.

use dfu_hil_runner::result::{Failure, ScenarioResult, StepResult, StepStatus};
use dfu_hil_runner::run::{prepare, run_scenario, RunOptions};
use dfu_hil_runner::scenario;
use std::path::{Path, PathBuf};

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_text(text: &str) -> ScenarioResult {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sweep.yaml");
    std::fs::write(&path, text).unwrap();
    let opts = RunOptions::new(project_root(), tmp.path().join("evidence"));
    let loaded = scenario::load(&path).expect("scenario loads");
    let (layout, fixtures) = prepare(&loaded, &opts).expect("scenario prepares");
    let (board, _shared) = dfu_hil_board::sim::open(layout.clone(), "sim");
    run_scenario(
        &loaded,
        &layout,
        &fixtures,
        board,
        &opts,
        &mut dfu_hil_runner::event::Silent,
    )
}

/// A small swap-move test swap (small images keep the sweep short) with `sweep` as its 4th step.
fn scenario(mode: &str, layout: &str, sweep: &str) -> String {
    format!(
        "name: sweep\n\
         layout: {layout}\n\
         bootloader: {{ mode: {mode} }}\n\
         fixtures:\n  \
           s1: {{ app: {{ name: small, version: 1.0.0, size: 6000 }} }}\n  \
           s2: {{ app: {{ name: small, version: 2.0.0, size: 6000 }} }}\n\
         steps:\n  \
           - flash: {{ mcuboot: mcuboot, slot0: s1 }}\n  \
           - upload: {{ image: s2 }}\n  \
           - test: s2\n  \
           - sweep:\n      {sweep}\n"
    )
}

fn sweep_step(r: &ScenarioResult) -> &StepResult {
    &r.steps[3]
}

/// A deliberately wrong model point: `then` expects the secondary slot's trailer intact after
/// the cut, which holds only while the cut lands before MCUboot erases it (the first few
/// operations of the swap), so some cut points pass and most fail.
const WRONG_THEN: &str = "cut-during: [ { reset: {} } ]\n      \
     then: [ { expect-trailer: { slot1: { magic: good } } }, { reset: { how: probe } } ]";

const GOOD_THEN: &str = "cut-during: [ { reset: {} } ]\n      \
     then:\n        \
       - reset: { how: probe }\n        \
       - expect: { running: s2, slot0: { confirmed: false }, slot1: { image: s1 } }";

fn counts(message: &str) -> (u64, u64) {
    let (n, rest) = message.split_once(" of ").expect("N of M");
    let m = rest.split_whitespace().next().unwrap();
    (n.trim().parse().unwrap(), m.parse().unwrap())
}

/// Regression (issue #16): the sweep stopped at the first failing cut point. Now it checks
/// them all and says how many failed, listing them.
#[test]
fn a_sweep_reports_every_failing_cut_point() {
    let r = run_text(&scenario("swap-move", "nrf52840-internal", WRONG_THEN));
    let s = sweep_step(&r);
    assert_eq!(s.status, StepStatus::Failed, "{s:?}");
    let Some(Failure::Mismatch(m)) = &s.failure else {
        panic!("a mismatch: {s:?}")
    };
    let (n, total) = counts(&m.summary);
    assert!(n > 1 && n < total, "{}", m.summary);
    assert!(m
        .summary
        .contains("cut points failed; first: after a power cut at flash operation"));
    let listed = m.detail.lines().filter(|l| l.contains("cut at ")).count() as u64;
    assert_eq!(listed, n.min(20), "{}", m.detail);
}

/// The verdict of every cut point, from a sweep's failure ("cut at K/…" lines) — all of
/// them when fewer than the listing bound fail.
fn failing_cuts(s: &StepResult) -> (String, Vec<String>) {
    match &s.failure {
        None => ("passed".into(), Vec::new()),
        Some(Failure::Mismatch(m)) => (
            m.summary.split(';').next().unwrap().to_owned(),
            m.detail
                .lines()
                .filter(|l| l.contains("cut at "))
                .map(|l| l.split(':').next().unwrap().trim().to_owned())
                .collect(),
        ),
        Some(f) => (format!("{f:?}"), Vec::new()),
    }
}

/// Rebuilding each cut's state from checkpoints of the uncut run gives the same verdicts,
/// cut point by cut point, as running the block again with the cut armed.
#[test]
fn checkpointed_and_replayed_sweeps_agree() {
    for then in [WRONG_THEN, GOOD_THEN] {
        let fast = run_text(&scenario("swap-move", "nrf52840-internal", then));
        let slow = run_text(&scenario(
            "swap-move",
            "nrf52840-internal",
            &format!("{then}\n      replay: true"),
        ));
        let (f, s) = (sweep_step(&fast), sweep_step(&slow));
        assert_eq!(f.status, s.status, "{f:?}\n{s:?}");
        assert_eq!(failing_cuts(f), failing_cuts(s));
        if then == GOOD_THEN {
            assert_eq!(f.status, StepStatus::Passed, "{f:?}");
            assert!(
                f.message.contains("rebuilt from checkpoints"),
                "{}",
                f.message
            );
            assert!(s.message.contains("replayed"), "{}", s.message);
        }
        // The scenario goes on from the uninterrupted outcome either way.
        assert_eq!(fast.steps.len(), slow.steps.len());
    }
}

/// A second power loss while MCUboot resumes the interrupted swap-move: every recovery
/// operation of every (every 10th) first cut is cut again, and the board still recovers.
#[test]
fn recovery_cuts_on_swap_move_pass() {
    let r = run_text(&scenario(
        "swap-move",
        "nrf52840-internal",
        &format!("{GOOD_THEN}\n      every: 10\n      recovery-cuts: true"),
    ));
    let s = sweep_step(&r);
    assert_eq!(s.status, StepStatus::Passed, "{s:?}");
    assert!(s.message.contains("recovery"), "{}", s.message);
}
