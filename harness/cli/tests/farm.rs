//! `dfu-hil farm`: the board-farm runner, exercised with simulated boards (no hardware).

#[path = "../src/board_open.rs"]
#[allow(dead_code)]
mod board_open;
#[path = "../src/farm_cmd.rs"]
#[allow(dead_code)]
mod farm_cmd;
#[path = "../src/link_args.rs"]
mod link_args;

use farm_cmd::{classify, lock_board, run_farm, FarmArgs, Verdict};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn args(out: &Path) -> FarmArgs {
    FarmArgs {
        out: Some(out.to_owned()),
        lock_dir: out.join("locks"),
        ..FarmArgs::new()
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
    let a = FarmArgs {
        sim: 2,
        patterns: vec![
            "internal-swap".into(),
            "bad-signature".into(),
            "power-cut-during-upload".into(),
        ],
        ..args(tmp.path())
    };
    let code = run_farm(a, &root()).unwrap();
    assert_eq!(code, 0, "all bundled scenarios pass on the simulated board");
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
    let a = FarmArgs {
        sim: 1,
        reruns: 2,
        patterns: vec![file.display().to_string()],
        ..args(&tmp.path().join("out"))
    };
    assert_eq!(run_farm(a, &root()).unwrap(), 100);
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
    let a = FarmArgs {
        sim: 1,
        patterns: vec![file.display().to_string()],
        ..args(&tmp.path().join("out"))
    };
    assert_eq!(run_farm(a, &root()).unwrap(), 100);
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
    let a = FarmArgs {
        inventory: Some(inv),
        board_tags: vec!["nightly".into()],
        lock_timeout_s: 1,
        patterns: vec!["internal-swap-confirm".into()],
        ..args(&out)
    };
    // The hardware board never opens: its lock is held, so no probe is touched.
    assert_eq!(run_farm(a, &root()).unwrap(), 98);
    let farm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("farm.json")).unwrap()).unwrap();
    assert_eq!(
        farm["boards"].as_array().unwrap().len(),
        1,
        "board-tag filter"
    );
    let why = farm["boards"][0]["unavailable"].as_str().unwrap();
    assert!(why.contains("locked by another job"), "{why}");
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
    let a = FarmArgs {
        inventory: Some(inv),
        board_tags: vec!["nightly".into()],
        sim: 1,
        lock_timeout_s: 1,
        patterns: vec!["internal-swap-confirm".into()],
        ..args(&out)
    };
    // Everything ran on sim-0, but a board was unavailable: infrastructure exit code.
    assert_eq!(run_farm(a, &root()).unwrap(), 98);
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
    assert_eq!(run_farm(args(tmp.path()), &root()).unwrap(), 4);
    // No scenario matches.
    let a = FarmArgs {
        sim: 1,
        patterns: vec!["no-such-scenario-anywhere".into()],
        ..args(tmp.path())
    };
    assert_eq!(run_farm(a, &root()).unwrap(), 4);
}

#[test]
fn invalid_inventory_is_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("lab.yaml");
    std::fs::write(&inv, "boards: [ { id: x } ]\n").unwrap();
    let a = FarmArgs {
        inventory: Some(inv),
        ..args(tmp.path())
    };
    assert_eq!(run_farm(a, &root()).unwrap(), 96);
}

#[test]
fn capabilities_and_layouts_decide_who_runs_what() {
    use dfu_hil_board::hw::Capability;
    use dfu_hil_runner::{run, scenario};
    let r = root();
    let needs = |name: &str| {
        let l = scenario::load(&r.join(format!("scenarios/{name}.yaml"))).unwrap();
        let layout = run::resolve_layout(&r, &l).unwrap();
        (farm_cmd::required_capabilities(&l, &layout), layout)
    };
    let (cut, internal) = needs("power-cut-during-swap");
    assert!(cut.contains(&Capability::FlashOpCut));
    assert!(!cut.contains(&Capability::ReadExternalFlash));
    let (ext, qspi) = needs("external-flash-swap");
    assert!(ext.contains(&Capability::ReadExternalFlash), "{ext:?}");
    let (plain, _) = needs("bad-signature");
    assert_eq!(plain, [Capability::Serial].into(), "{plain:?}");

    let sim = farm_cmd::FarmBoard::sim(0);
    assert!(sim.cannot_run(&internal, &cut, &[]).is_none());
    assert!(sim.cannot_run(&qspi, &ext, &[]).is_none());

    let dk = farm_cmd::FarmBoard {
        id: "dk".into(),
        layout: Some("nrf52840-internal".into()),
        capabilities: [Capability::Serial].into_iter().collect(),
        profile: Some("nrf52840dk".into()),
        choice: board_open::BoardChoice::Sim,
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
    let o = farm_cmd::Outcome {
        board: "sim-0".into(),
        attempts: vec![failed.clone(), passed],
        infrastructure: false,
    };
    assert_eq!(o.verdict(), Verdict::Flaky);
    let xml = farm_cmd::farm_junit(&[o], &[]).to_string().unwrap();
    assert_eq!(count(&xml, "<flakyError"), 1, "{xml}");
    assert_eq!(
        count(&xml, "<error"),
        0,
        "a flaky scenario counts as passed: {xml}"
    );
    assert!(xml.contains("probe went away"));

    // Kept failing: the final failure plus one rerun record per earlier attempt.
    let o = farm_cmd::Outcome {
        board: "sim-0".into(),
        attempts: vec![failed.clone(), failed],
        infrastructure: false,
    };
    let xml = farm_cmd::farm_junit(&[o], &[]).to_string().unwrap();
    assert_eq!(count(&xml, "<rerunError"), 1, "{xml}");
    assert_eq!(count(&xml, "<error"), 1, "{xml}");
}

/// What the CI `sim` job runs: every bundled scenario across two simulated boards.
#[test]
fn every_bundled_scenario_on_two_sim_boards() {
    let tmp = tempfile::tempdir().unwrap();
    let a = FarmArgs {
        sim: 2,
        ..args(tmp.path())
    };
    assert_eq!(run_farm(a, &root()).unwrap(), 0);
    let merged = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert_eq!(count(&merged, "<failure"), 0);
    assert_eq!(count(&merged, "<error"), 0);
}

#[test]
fn command_line() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        farm: FarmArgs,
    }
    let c = Cli::try_parse_from([
        "farm",
        "--sim",
        "2",
        "--junit",
        "out",
        "--reruns",
        "1",
        "--board-tag",
        "nightly",
        "--tag",
        "smoke",
        "swap",
        "power",
    ])
    .unwrap()
    .farm;
    assert_eq!(c.sim, 2);
    assert_eq!(c.out, Some(PathBuf::from("out")));
    assert_eq!(c.reruns, 1);
    assert_eq!(c.board_tags, ["nightly"]);
    assert_eq!(c.tags, ["smoke"]);
    assert_eq!(c.patterns, ["swap", "power"]);
    assert_eq!(c.lock_dir, PathBuf::from("/tmp/dfu-hil-locks"));
}
