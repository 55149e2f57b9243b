//! The board-farm runner, exercised with simulated boards (no hardware).

use dfu_hil_farm::farm::{self, run_farm, FarmOptions, FarmStatus};
use dfu_hil_farm::{classify, lock_board, report, select, Outcome, Verdict};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn args(out: &Path) -> FarmOptions {
    FarmOptions {
        out: Some(out.to_owned()),
        lock_dir: out.join("locks"),
        ..FarmOptions::new()
    }
}

#[test]
fn classification() {
    assert_eq!(classify(&[true]), Verdict::Passed);
    assert_eq!(classify(&[false, true]), Verdict::Flaky);
    assert_eq!(classify(&[false, false, true]), Verdict::Flaky);
    assert_eq!(classify(&[false]), Verdict::Failed);
    assert_eq!(classify(&[false, false, false]), Verdict::Failed);
    assert_eq!(classify(&[]), Verdict::Failed);
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn two_sim_boards_share_the_scenarios() {
    let tmp = tempfile::tempdir().unwrap();
    let a = FarmOptions {
        sim: 2,
        patterns: vec![
            "internal-swap".into(),
            "bad-signature".into(),
            "power-cut-during-upload".into(),
        ],
        ..args(tmp.path())
    };
    let status = run_farm(&a, &root());
    assert_eq!(
        status,
        FarmStatus::Passed,
        "all bundled scenarios pass on the simulated board"
    );
    let b0 = std::fs::read_to_string(tmp.path().join("junit-sim-0.xml")).unwrap();
    let b1 = std::fs::read_to_string(tmp.path().join("junit-sim-1.xml")).unwrap();
    let merged = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(tmp.path().join("results.json").is_file());
    let farm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("farm.json")).unwrap())
            .unwrap();
    let scenarios = farm["scenarios"].as_array().unwrap();
    // internal-swap-confirm and -revert have variants: more testcases than files.
    assert!(scenarios.len() >= 4, "{scenarios:?}");
    for s in scenarios {
        let name = s["name"].as_str().unwrap();
        let board = s["board"].as_str().unwrap();
        assert!(board == "sim-0" || board == "sim-1");
        assert_eq!(s["verdict"], "passed");
        let case = format!("name=\"{board}/{name}\"");
        // Every scenario exactly once in the merged report, and in its board's report only.
        assert_eq!(count(&merged, &case), 1, "{case} in merged junit");
        let other = if board == "sim-0" { "sim-1" } else { "sim-0" };
        assert_eq!(count(&merged, &format!("name=\"{other}/{name}\"")), 0);
        let own = if board == "sim-0" { &b0 } else { &b1 };
        assert_eq!(count(own, &case), 1, "{case} in junit-{board}.xml");
    }
    assert_eq!(count(&merged, "<testcase "), scenarios.len());
    assert_eq!(
        count(&b0, "<testcase ") + count(&b1, "<testcase "),
        scenarios.len()
    );
}

const FAILING: &str = "\
name: always-fails
description: Expects the update to run without ever uploading it.
layout: nrf52840-internal
bootloader: { mode: swap-move }
steps:
  - flash: { mcuboot: mcuboot, slot0: app-v1 }
  - expect: { running: app-v2 }
";

#[test]
fn reruns_of_a_failing_scenario_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("always-fails.yaml");
    std::fs::write(&file, FAILING).unwrap();
    let a = FarmOptions {
        sim: 1,
        reruns: 2,
        patterns: vec![file.display().to_string()],
        ..args(&tmp.path().join("out"))
    };
    assert_eq!(run_farm(&a, &root()), FarmStatus::Failed);
    let merged = std::fs::read_to_string(tmp.path().join("out/junit.xml")).unwrap();
    assert_eq!(count(&merged, "<failure"), 1, "{merged}");
    assert_eq!(count(&merged, "<rerunFailure"), 2, "{merged}");
    assert_eq!(count(&merged, "<flakyFailure"), 0);
    assert!(merged.contains("name=\"sim-0/always-fails\""));
    let farm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/farm.json")).unwrap())
            .unwrap();
    assert_eq!(farm["scenarios"][0]["attempts"], 3);
    assert_eq!(farm["scenarios"][0]["verdict"], "failed");
}

#[test]
fn no_reruns_means_one_attempt() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("always-fails.yaml");
    std::fs::write(&file, FAILING).unwrap();
    let a = FarmOptions {
        sim: 1,
        patterns: vec![file.display().to_string()],
        ..args(&tmp.path().join("out"))
    };
    assert_eq!(run_farm(&a, &root()), FarmStatus::Failed);
    let merged = std::fs::read_to_string(tmp.path().join("out/junit.xml")).unwrap();
    assert_eq!(count(&merged, "<rerunFailure"), 0);
    assert_eq!(count(&merged, "<failure"), 1);
}

#[test]
fn a_held_lock_times_out_with_the_holder_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locks");
    let held = lock_board(&dir, "bench-1", Duration::from_secs(1)).unwrap();
    let e = lock_board(&dir, "bench-1", Duration::from_millis(300)).unwrap_err();
    assert!(e.contains("locked by another job"), "{e}");
    assert!(
        e.contains(&format!("pid {}", std::process::id())),
        "holder named: {e}"
    );
    // Another board is free; released locks can be taken again.
    lock_board(&dir, "bench-2", Duration::from_secs(1)).unwrap();
    drop(held);
    lock_board(&dir, "bench-1", Duration::from_secs(1)).unwrap();
}

#[test]
fn a_held_lock_is_released_when_the_holder_thread_lets_go() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locks");
    let held = lock_board(&dir, "bench-1", Duration::from_secs(1)).unwrap();
    let d = dir.clone();
    let waiter = std::thread::spawn(move || {
        lock_board(&d, "bench-1", Duration::from_secs(10)).map(|l| l.waited)
    });
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    let waited = waiter.join().unwrap().unwrap();
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
}

const INVENTORY: &str = "\
lab: test
boards:
  - id: farm-test-52840
    profile: nrf52840dk
    layout: nrf52840-internal
    probe: \"1366:1015:000683999999\"
    serial:
      - port: /dev/serial/by-id/does-not-exist
        role: smp-and-log
    tags: [nightly]
  - id: farm-test-other
    profile: nrf52840dk
    probe: \"1366:1015:000683999998\"
    serial:
      - port: /dev/serial/by-id/does-not-exist-either
        role: smp-and-log
    tags: [weekly]
";

#[test]
fn a_board_locked_by_another_job_is_reported_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("lab.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let out = tmp.path().join("out");
    let _held = lock_board(
        &out.join("locks"),
        "farm-test-52840",
        Duration::from_secs(1),
    )
    .unwrap();
    let a = FarmOptions {
        inventory: Some(inv),
        board_tags: vec!["nightly".into()],
        lock_timeout: Duration::from_secs(1),
        patterns: vec!["internal-swap-confirm".into()],
        ..args(&out)
    };
    // The hardware board never opens: its lock is held, so no probe is touched.
    assert_eq!(run_farm(&a, &root()), FarmStatus::BoardUnavailable);
    let farm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("farm.json")).unwrap()).unwrap();
    assert_eq!(
        farm["boards"].as_array().unwrap().len(),
        1,
        "board-tag filter"
    );
    let why = farm["boards"][0]["unavailable"].as_str().unwrap();
    assert!(why.contains("locked by another job"), "{why}");
    assert_eq!(farm["boards"][0]["unavailable_kind"], "lock");
    assert_eq!(farm["scenarios"][0]["verdict"], "board-unavailable");
    let merged = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(merged.contains("<error"), "{merged}");
    assert!(merged.contains("locked by another job"));
    assert!(out.join("junit-farm-test-52840.xml").is_file());
}

#[test]
fn sim_boards_carry_on_when_a_hardware_board_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("lab.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let out = tmp.path().join("out");
    let _held = lock_board(
        &out.join("locks"),
        "farm-test-52840",
        Duration::from_secs(1),
    )
    .unwrap();
    let a = FarmOptions {
        inventory: Some(inv),
        board_tags: vec!["nightly".into()],
        sim: 1,
        lock_timeout: Duration::from_secs(1),
        patterns: vec!["internal-swap-confirm".into()],
        ..args(&out)
    };
    // Everything ran on sim-0, but a board was unavailable: infrastructure exit code.
    assert_eq!(run_farm(&a, &root()), FarmStatus::BoardUnavailable);
    let farm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("farm.json")).unwrap()).unwrap();
    for s in farm["scenarios"].as_array().unwrap() {
        assert_eq!(s["board"], "sim-0");
        assert_eq!(s["verdict"], "passed");
    }
}

#[test]
fn nothing_selected() {
    let tmp = tempfile::tempdir().unwrap();
    // No board at all.
    assert_eq!(
        run_farm(&args(tmp.path()), &root()),
        FarmStatus::NothingSelected
    );
    // No scenario matches.
    let a = FarmOptions {
        sim: 1,
        patterns: vec!["no-such-scenario-anywhere".into()],
        ..args(tmp.path())
    };
    assert_eq!(run_farm(&a, &root()), FarmStatus::NothingSelected);
}

#[test]
fn invalid_inventory_is_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("lab.yaml");
    std::fs::write(&inv, "boards: [ { id: x } ]\n").unwrap();
    let a = FarmOptions {
        inventory: Some(inv),
        ..args(tmp.path())
    };
    assert_eq!(run_farm(&a, &root()), FarmStatus::InvalidInput);
}

#[test]
fn capabilities_and_layouts_decide_who_runs_what() {
    use dfu_hil_board::hw::Capability;
    use dfu_hil_runner::{run, scenario};
    let r = root();
    let needs = |name: &str| {
        let l = scenario::load(&r.join(format!("scenarios/{name}.yaml"))).unwrap();
        let layout = run::resolve_layout(&r, &l).unwrap();
        (farm::required_capabilities(&l, &layout), layout)
    };
    let (cut, internal) = needs("power-cut-during-swap");
    assert!(cut.contains(&Capability::FlashOpCut));
    assert!(!cut.contains(&Capability::ReadExternalFlash));
    let (ext, qspi) = needs("external-flash-swap");
    assert!(ext.contains(&Capability::ReadExternalFlash), "{ext:?}");
    let (plain, _) = needs("bad-signature");
    assert_eq!(plain, [Capability::Serial].into(), "{plain:?}");

    let sim = farm::FarmBoard::sim(0);
    assert!(sim.cannot_run(&internal, &cut, &[]).is_none());
    assert!(sim.cannot_run(&qspi, &ext, &[]).is_none());

    let dk = farm::FarmBoard {
        id: "dk".into(),
        layout: Some("nrf52840-internal".into()),
        capabilities: [Capability::Serial].into_iter().collect(),
        profile: Some("nrf52840dk".into()),
        choice: select::BoardChoice::Sim,
        device_link: Default::default(),
    };
    // A scenario written for nRF5340 boards is not sent to a 52840 DK.
    let why = dk
        .cannot_run(&internal, &plain, &["nrf5340dk".into(), "thingy53".into()])
        .unwrap();
    assert!(why.contains("written for nrf5340dk, thingy53"), "{why}");
    assert!(dk
        .cannot_run(&internal, &plain, &["nrf52840dk".into()])
        .is_none());
    assert!(sim
        .cannot_run(&internal, &plain, &["nrf5340dk".into()])
        .is_none());
    assert!(dk.cannot_run(&internal, &plain, &[]).is_none());
    assert!(dk
        .cannot_run(&internal, &cut, &[])
        .unwrap()
        .contains("flash-op-cut"));
    assert!(dk.cannot_run(&qspi, &ext, &[]).unwrap().contains("layout"));
}

#[test]
fn pass_after_fail_is_recorded_as_flaky_in_junit() {
    use dfu_hil_runner::{run, scenario};
    let r = root();
    let l = scenario::load(&r.join("scenarios/bad-signature.yaml")).unwrap();
    let layout = run::resolve_layout(&r, &l).unwrap();
    let failed = run::board_unavailable(&l, &layout, "sim-0", "probe went away");
    let mut passed = failed.clone();
    passed.steps.clear();
    assert!(!failed.passed() && passed.passed());
    let o = Outcome {
        board: "sim-0".into(),
        attempts: vec![failed.clone(), passed],
        infrastructure: false,
    };
    assert_eq!(o.verdict(), Verdict::Flaky);
    let xml = report::farm_junit(&[o], &[]).to_string().unwrap();
    assert_eq!(count(&xml, "<flakyError"), 1, "{xml}");
    assert_eq!(
        count(&xml, "<error"),
        0,
        "a flaky scenario counts as passed: {xml}"
    );
    assert!(xml.contains("probe went away"));

    // Kept failing: the final failure plus one rerun record per earlier attempt.
    let o = Outcome {
        board: "sim-0".into(),
        attempts: vec![failed.clone(), failed],
        infrastructure: false,
    };
    let xml = report::farm_junit(&[o], &[]).to_string().unwrap();
    assert_eq!(count(&xml, "<rerunError"), 1, "{xml}");
    assert_eq!(count(&xml, "<error"), 1, "{xml}");
}

/// What the CI `sim` job runs: every bundled scenario across two simulated boards.
#[test]
fn every_bundled_scenario_on_two_sim_boards() {
    let tmp = tempfile::tempdir().unwrap();
    let a = FarmOptions {
        sim: 2,
        ..args(tmp.path())
    };
    assert_eq!(run_farm(&a, &root()), FarmStatus::Passed);
    let merged = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert_eq!(count(&merged, "<failure"), 0);
    assert_eq!(count(&merged, "<error"), 0);
}

const SLOW: &str = "\
name: slow-sleep
description: Sleeps longer than the farm's step timeout.
layout: nrf52840-internal
bootloader: { mode: swap-move }
steps:
  - flash: { mcuboot: mcuboot, slot0: app-v1 }
  - sleep: { ms: 20000 }
";

/// `--step-timeout-s` of the farm reaches every scenario it runs, as `dfu-hil run`'s does.
#[test]
fn step_timeout_reaches_every_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("slow-sleep.yaml");
    std::fs::write(&file, SLOW).unwrap();
    let a = FarmOptions {
        sim: 1,
        step_timeout: Some(Duration::from_secs(1)),
        patterns: vec![file.display().to_string()],
        ..args(&tmp.path().join("out"))
    };
    let started = std::time::Instant::now();
    assert_eq!(run_farm(&a, &root()), FarmStatus::Failed);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the sleep was cut short"
    );
    let merged = std::fs::read_to_string(tmp.path().join("out/junit.xml")).unwrap();
    assert!(merged.contains("step timeout 1 s"), "{merged}");
}

/// One invalid scenario does not stop the farm: the valid ones run, the invalid one is
/// reported, and the outcome is invalid input (as `dfu-hil run` does).
#[test]
fn an_invalid_scenario_does_not_stop_the_valid_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken.yaml");
    std::fs::write(
        &bad,
        "name: broken\nlayout: nrf52840-internal\nsteps:\n  - flash: { slot7: app-v1 }\n",
    )
    .unwrap();
    let a = FarmOptions {
        sim: 1,
        patterns: vec![bad.display().to_string(), "bad-signature".into()],
        ..args(&tmp.path().join("out"))
    };
    assert_eq!(run_farm(&a, &root()), FarmStatus::InvalidInput);
    let farm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/farm.json")).unwrap())
            .unwrap();
    let ran = farm["scenarios"].as_array().unwrap();
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(ran[0]["name"], "bad-signature");
    assert_eq!(ran[0]["verdict"], "passed");
    let invalid = farm["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    assert!(
        invalid[0].as_str().unwrap().contains("broken.yaml"),
        "{invalid:?}"
    );
}

/// Only invalid scenarios: nothing runs, and the outcome is invalid input.
#[test]
fn only_invalid_scenarios_are_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken.yaml");
    std::fs::write(&bad, "name: broken\nstepz: []\n").unwrap();
    let a = FarmOptions {
        sim: 1,
        patterns: vec![bad.display().to_string()],
        ..args(&tmp.path().join("out"))
    };
    assert_eq!(run_farm(&a, &root()), FarmStatus::InvalidInput);
}

/// Opening a lab board whose probe is not attached fails as "unavailable", with the cause kept
/// and the board named as before.
#[test]
fn an_absent_probe_is_reported_unavailable() {
    use dfu_hil_board::probe::BoardErrorKind;
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("lab.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let r = root();
    let l = dfu_hil_runner::scenario::load(&r.join("scenarios/bad-signature.yaml")).unwrap();
    let layout = dfu_hil_runner::run::resolve_layout(&r, &l).unwrap();
    let choice = select::BoardChoice::parse(
        "farm-test-52840",
        Some(&inv),
        &select::NativeSimArgs::default(),
        &r,
    );
    let Err(e) = choice.open(&layout, l.scenario.transport, &r, "bad-signature") else {
        panic!("no probe with that serial is attached");
    };
    assert_eq!(e.kind(), Some(BoardErrorKind::Unavailable), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("board `farm-test-52840`: probe: "),
        "{text}"
    );
    assert!(std::error::Error::source(&e).is_some());
}

/// Each backend declares its capabilities once; the facts are those.
#[test]
fn board_facts_come_from_the_backends() {
    let r = root();
    let sim = select::BoardChoice::Sim.facts(&r).unwrap();
    assert_eq!(sim.capabilities, dfu_hil_board::sim::capabilities());
    let ns = select::BoardChoice::parse("native-sim", None, &select::NativeSimArgs::default(), &r)
        .facts(&r)
        .unwrap();
    assert_eq!(ns.capabilities, dfu_hil_board::native_sim::capabilities());
    assert_eq!(
        farm::FarmBoard::sim(0).capabilities,
        dfu_hil_board::sim::capabilities()
    );
}

/// A lab board whose probe cannot be opened is reported unavailable, saying which part failed.
#[test]
fn a_board_that_cannot_be_opened_says_which_part_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("lab.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let out = tmp.path().join("out");
    let a = FarmOptions {
        inventory: Some(inv),
        board_tags: vec!["nightly".into()],
        patterns: vec!["bad-signature".into()],
        ..args(&out)
    };
    assert_eq!(run_farm(&a, &root()), FarmStatus::BoardUnavailable);
    let farm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("farm.json")).unwrap()).unwrap();
    assert_eq!(farm["boards"][0]["unavailable_kind"], "unavailable");
    assert_eq!(farm["scenarios"][0]["verdict"], "board-unavailable");
}
