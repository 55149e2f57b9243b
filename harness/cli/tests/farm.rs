//! `dfu-hil farm` through the binary: its arguments reach the farm and its outcomes map to the
//! CLI's exit codes. The farm itself is tested in `dfu_hil_farm`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn farm(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .arg("farm")
        .args(args)
        .arg("--root")
        .arg(root())
        .arg("--out")
        .arg(out)
        .arg("--lock-dir")
        .arg(out.join("locks"))
        .env_remove("DFU_HIL_INVENTORY")
        .output()
        .expect("run dfu-hil")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn passing_scenarios_exit_0_with_a_summary_per_board() {
    let tmp = tempfile::tempdir().unwrap();
    let o = farm(&["--sim", "2", "bad-signature"], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("farm: 1 scenario(s) on 2 board(s): sim-0, sim-1"),
        "{out}"
    );
    assert!(out.contains("1 passed, 0 flaky, 0 failed"), "{out}");
    assert!(tmp.path().join("junit.xml").is_file());
}

#[test]
fn no_board_is_nothing_selected() {
    let tmp = tempfile::tempdir().unwrap();
    let o = farm(&["bad-signature"], tmp.path());
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
}

/// `--step-timeout-s` exists on `farm` as on `run`, and reaches each scenario.
#[test]
fn step_timeout_flag_reaches_the_scenarios() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("slow.yaml");
    std::fs::write(
        &file,
        "name: slow\nlayout: nrf52840-internal\nsteps:\n  - flash: { mcuboot: mcuboot, slot0: app-v1 }\n  - sleep: { ms: 20000 }\n",
    )
    .unwrap();
    let o = farm(
        &[
            "--sim",
            "1",
            "--step-timeout-s",
            "1",
            file.to_str().unwrap(),
        ],
        &tmp.path().join("out"),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(100), "{out}");
    let junit = std::fs::read_to_string(tmp.path().join("out/junit.xml")).unwrap();
    assert!(junit.contains("step timeout 1 s"), "{junit}");
}

/// As `dfu-hil run`: the valid scenarios run, the invalid one is reported, exit 96.
#[test]
fn an_invalid_scenario_is_reported_and_the_rest_run() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken.yaml");
    std::fs::write(&bad, "name: broken\nstepz: []\n").unwrap();
    let o = farm(
        &["--sim", "1", bad.to_str().unwrap(), "bad-signature"],
        &tmp.path().join("out"),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(96), "{out}");
    assert!(out.contains("broken.yaml"), "{out}");
    assert!(out.contains("1 passed, 0 flaky, 0 failed"), "{out}");
}
