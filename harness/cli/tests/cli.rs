//! End to end through the binary, as a user runs it: exit codes, console output, reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dfu_hil(args: &[&str], tmp: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(args)
        .arg("--root")
        .arg(root())
        .arg("--junit")
        .arg(tmp.join("junit.xml"))
        .arg("--json")
        .arg(tmp.join("results.json"))
        .arg("--evidence")
        .arg(tmp.join("evidence"))
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

/// Every bundled scenario passes on the simulated board.
#[test]
fn bundled_scenarios_pass_on_sim() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "yaml").then(|| p.file_stem().unwrap().to_string_lossy().into())
        })
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    for name in names {
        let tmp = tempfile::tempdir().unwrap();
        let o = dfu_hil(&["scenario", &name], tmp.path());
        assert_eq!(o.status.code(), Some(0), "{name}:\n{}", text(&o));
        let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
        assert!(junit.contains(&format!("name=\"sim/{name}")), "{junit}");
        assert!(junit.contains("failures=\"0\""), "{junit}");
        // One evidence folder per scenario (per variant).
        let folders: Vec<_> = std::fs::read_dir(tmp.path().join("evidence"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!folders.is_empty(), "{name}: no evidence");
        for evidence in folders {
            let folder = evidence.file_name().unwrap().to_string_lossy().to_string();
            assert!(folder.starts_with(&format!("sim--{name}")), "{folder}");
            for f in [
                "smp-transcript.txt",
                "device.log",
                "trailers.txt",
                "trailer-slot0.bin",
                "slot-slot1.bin",
                "core-state.txt",
            ] {
                assert!(evidence.join(f).is_file(), "{folder}: missing {f}");
            }
            // The exact images used, one file per fixture.
            let images = std::fs::read_dir(evidence.join("images")).unwrap().count();
            assert!(images >= 2, "{folder}: {images} images kept");
        }
    }
}

#[test]
fn revert_flow_reads_trailers_and_transcript() {
    let tmp = tempfile::tempdir().unwrap();
    let o = dfu_hil(&["scenario", "internal-swap-revert"], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    // Each step is printed with its outcome.
    assert!(out.contains("[ 8/15] reset (smp)"), "{out}");
    assert!(out.contains("swap_info=0x04 (revert)"), "{out}");
    // Both variants ran: swap-using-move and swap-using-scratch.
    assert!(out.contains("PASSED: internal-swap-revert[move]"), "{out}");
    assert!(
        out.contains("PASSED: internal-swap-revert[scratch]"),
        "{out}"
    );
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    let ev = tmp.path().join("evidence/sim--internal-swap-revert_move_");
    let transcript = std::fs::read_to_string(ev.join("smp-transcript.txt")).unwrap();
    assert!(transcript.contains("UPLOAD"), "{transcript}");
    let log = std::fs::read_to_string(ev.join("device.log")).unwrap();
    assert!(log.contains("Swap type: revert"), "{log}");
    assert!(log.contains("Starting swap using move algorithm."), "{log}");
}

fn write_scenario(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, body).unwrap();
    p
}

const WRONG: &str = "name: wrong-expectation
layout: nrf52840-internal
steps:
  - flash: { mcuboot: mcuboot, slot0: app-v1 }
  - upload: { image: app-v2 }
  - test: app-v2
  - reset: {}
  - expect: { running: app-v2, slot0: { confirmed: true } }
  - reset: {}
";

#[test]
fn wrong_expectation_exits_100_with_expected_vs_actual() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_scenario(tmp.path(), "wrong", WRONG);
    let o = dfu_hil(&["scenario", p.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(100), "{out}");
    assert!(
        out.contains("slot0.confirmed: expected true, got false"),
        "{out}"
    );
    assert!(out.contains(&format!("{}:8:", p.display())), "{out}");
    // The evidence beside the verdict: trailer fields and the image list.
    assert!(
        out.contains("trailer slot0: magic=good image_ok=unset"),
        "{out}"
    );
    assert!(out.contains("image list: slot0 app-v2"), "{out}");
    assert!(out.contains("skipped"), "{out}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    assert!(junit.contains("slot0.confirmed"), "{junit}");
    let json = std::fs::read_to_string(tmp.path().join("results.json")).unwrap();
    assert!(json.contains("\"passed\": false"), "{json}");
}

#[test]
fn wrong_trailer_expectation_names_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let body = "name: wrong-trailer
layout: nrf52840-internal
steps:
  - flash: { mcuboot: mcuboot, slot0: app-v1 }
  - upload: { image: app-v2 }
  - test: app-v2
  - expect-trailer: { slot1: { magic: good, image-ok: set } }
";
    let p = write_scenario(tmp.path(), "wt", body);
    let o = dfu_hil(&["scenario", p.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(100), "{out}");
    assert!(
        out.contains("slot1.image-ok: expected set, got unset (0xff)"),
        "{out}"
    );
    assert!(out.contains(":7:"), "{out}");
}

#[test]
fn malformed_scenario_exits_96_with_location_and_snippet() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = WRONG.replace("upload: { image: app-v2 }", "upload: { imgae: app-v2 }");
    let p = write_scenario(tmp.path(), "bad", &bad);
    let o = dfu_hil(&["scenario", p.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(96), "{out}");
    assert!(out.contains(&format!("{}:5:", p.display())), "{out}");
    assert!(out.contains("imgae"), "{out}");
    // A snippet of the offending line.
    assert!(out.contains("upload: { imgae: app-v2 }"), "{out}");

    let bad_value = WRONG.replace("confirmed: true", "confirmed: maybe");
    let p = write_scenario(tmp.path(), "bad2", &bad_value);
    let o = dfu_hil(&["scenario", p.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(96), "{out}");
    assert!(out.contains(&format!("{}:8:", p.display())), "{out}");
}

#[test]
fn unknown_fixture_and_region_exit_96() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_scenario(
        tmp.path(),
        "nofix",
        &WRONG.replace("image: app-v2", "image: app-v9"),
    );
    let o = dfu_hil(&["scenario", p.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(96), "{out}");
    assert!(
        out.contains("unknown fixture `app-v9`") && out.contains(":5:"),
        "{out}"
    );

    let p = write_scenario(
        tmp.path(),
        "noregion",
        &WRONG.replace("slot0: app-v1 }", "slot7: app-v1 }"),
    );
    let o = dfu_hil(&["scenario", p.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(96), "{out}");
    assert!(out.contains("no partition `slot7`"), "{out}");
}

#[test]
fn unknown_scenario_name_is_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let o = dfu_hil(&["scenario", "does-not-exist"], tmp.path());
    assert_eq!(o.status.code(), Some(96), "{}", text(&o));
}

/// The benchmark runs end to end through a paced PTY and prints its arithmetic (figures are
/// not asserted: a benchmark is not a test of speed).
#[test]
fn bench_upload_prints_figures_and_ceiling() {
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args([
            "bench", "upload", "--size", "4096", "--baud", "1000000", "--root",
        ])
        .arg(root())
        .output()
        .expect("run dfu-hil");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("B/s"), "{out}");
    assert!(out.contains("W = B + 3L"), "{out}");
    assert!(out.contains("% of the"), "{out}");
    // The prediction for a real device: Zephyr's 2 × 128-byte lines bound the request, the
    // chip's flash time and the up-front slot erase are shown (figures, not asserted speeds).
    assert!(out.contains("= 182 B (set by the line buffers)"), "{out}");
    assert!(out.contains("flash per request"), "{out}");
    assert!(out.contains("slot erase at the first chunk"), "{out}");
    assert!(out.contains("Go mcumgr"), "{out}");
}

/// Prediction options are checked before the simulated board starts.
#[test]
fn bench_upload_refuses_impossible_line_limits() {
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["bench", "upload", "--line-size", "5", "--root"])
        .arg(root())
        .output()
        .expect("run dfu-hil");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(96), "{out}");
    assert!(out.contains("serial line size 5 B is too small"), "{out}");
    assert!(!out.contains("sim:"), "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["bench", "upload", "--chip", "nrf9160", "--root"])
        .arg(root())
        .output()
        .expect("run dfu-hil");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
}

/// SIGTERM mid-run: the current step stops, the rest are reported, JUnit and JSON are written.
#[test]
fn sigterm_still_writes_reports() {
    let tmp = tempfile::tempdir().unwrap();
    // The bundled sweep, replaying every cut (the slow way) so it is still running when the
    // signal comes: rebuilt from checkpoints, the whole scenario ends in about a second.
    let bundled =
        std::fs::read_to_string(root().join("scenarios/power-cut-during-swap.yaml")).unwrap();
    let scenario = tmp.path().join("power-cut-during-swap.yaml");
    std::fs::write(
        &scenario,
        bundled.replace("      cut-during:", "      replay: true\n      cut-during:"),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .arg("scenario")
        .arg(&scenario)
        .arg("--root")
        .arg(root())
        .arg("--junit")
        .arg(tmp.path().join("junit.xml"))
        .arg("--json")
        .arg(tmp.path().join("results.json"))
        .arg("--evidence")
        .arg(tmp.path().join("evidence"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start dfu-hil");
    // Wait until the sweep is under way (its first step has printed), then terminate.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(130), "{out}");
    assert!(out.contains("interrupted"), "{out}");
    // Stopped, not failed: the console and JUnit say so.
    assert!(out.contains("INTERRUPTED: power-cut-during-swap"), "{out}");
    assert!(out.contains("0 passed, 0 failed, 1 interrupted"), "{out}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("interrupted"), "{junit}");
    assert!(junit.contains("type=\"interrupted\""), "{junit}");
    assert!(tmp.path().join("results.json").is_file());
    assert!(
        std::fs::read_dir(tmp.path().join("evidence"))
            .unwrap()
            .count()
            >= 1
    );
}

/// The schema editors use (scenarios/scenario.schema.json, named in every scenario's
/// yaml-language-server modeline) is the one the binary generates.
#[test]
fn committed_schema_is_current() {
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["schema"])
        .output()
        .expect("run dfu-hil");
    assert_eq!(o.status.code(), Some(0));
    let generated = String::from_utf8(o.stdout).unwrap();
    let committed = std::fs::read_to_string(root().join("scenarios/scenario.schema.json")).unwrap();
    assert_eq!(
        committed.trim(),
        generated.trim(),
        "run `cargo run -- schema --out scenarios/scenario.schema.json`"
    );
    for e in std::fs::read_dir(root().join("scenarios")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                text.starts_with("# yaml-language-server: $schema=scenario.schema.json"),
                "{p:?} lacks the modeline"
            );
        }
    }
}

/// A lab board that is not attached: infrastructure error (exit 98), recorded in JUnit as an
/// `error` (not a failure, and not silently missing).
#[test]
fn unavailable_board_is_infrastructure_error_in_junit() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["run", "too-large", "--board", "nrf52840dk-1", "--inventory"])
        .arg(root().join("ci/lab.example.yaml"))
        .arg("--root")
        .arg(root())
        .arg("--junit")
        .arg(tmp.path().join("junit.xml"))
        .arg("--json")
        .arg(tmp.path().join("results.json"))
        .output()
        .expect("run dfu-hil");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(98), "{out}");
    assert!(out.contains("nrf52840dk-1"), "{out}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<error"), "{junit}");
    assert!(junit.contains("name=\"nrf52840dk-1/too-large\""), "{junit}");
}

/// A scenario needing what the chosen board cannot do is skipped before the board is opened,
/// with the step that needs it; `lint --board` reports the same step as an error.
#[test]
fn steps_the_board_cannot_do_are_skipped_and_linted() {
    let tmp = tempfile::tempdir().unwrap();
    // `true` would be the native_sim app: it is never started, the skip comes first.
    let o = dfu_hil(
        &[
            "scenario",
            "power-cut-during-swap",
            "--board",
            "native-sim",
            "--native-sim-app",
            "true",
        ],
        tmp.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(
        out.contains("SKIPPED: power-cut-during-swap[move] on native-sim"),
        "{out}"
    );
    assert!(out.contains("power-cut-during-swap.yaml:14:5"), "{out}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<skipped message=\"board `native-sim` lacks flash-op-cut"),
        "{junit}"
    );
    let json = std::fs::read_to_string(tmp.path().join("results.json")).unwrap();
    assert!(
        json.contains("\"skipped\": \"board `native-sim` lacks flash-op-cut"),
        "{json}"
    );

    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args([
            "lint",
            "power-cut-during",
            "nsib-mcuboot",
            "internal-swap-revert",
        ])
        .args(["--board", "native-sim", "--root"])
        .arg(root())
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(96), "{out}");
    assert!(
        out.contains("power-cut-during-swap.yaml:14:5: `sweep`"),
        "{out}"
    );
    assert!(
        out.contains(
            "nsib-mcuboot-update.yaml:14:5: `expect-boot-chain` needs capability `boot-chain`"
        ),
        "{out}"
    );
    assert!(
        out.contains("ok      ") && out.contains("internal-swap-revert.yaml"),
        "{out}"
    );
    // The power-cut-during-upload scenario cuts power "now" / at a percentage: a native_sim
    // process can be killed, so that one is possible.
    assert!(!out.contains("power-cut-during-upload.yaml:"), "{out}");
}

/// A step that outlives its timeout ends as an error naming the timeout and how far it got;
/// reports are still written and later steps are skipped.
#[test]
fn step_timeout_stops_a_long_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_scenario(
        tmp.path(),
        "slow",
        "name: slow-sweep
layout: nrf52840-internal
step-timeout-s: 1
steps:
  - flash: { mcuboot: mcuboot, slot0: app-v1 }
  - upload: { image: app-v2 }
  - test: app-v2
  - sweep:
      cut-during: [ { reset: {} } ]
      then:
        - reset: { how: probe }
        - sleep: { ms: 100 }
        - expect: { running: app-v2 }
  - expect: { running: app-v2 }
",
    );
    let o = dfu_hil(&["scenario", p.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(100), "{out}");
    assert!(
        out.contains("step timeout 1 s reached during the sweep after"),
        "{out}"
    );
    assert!(out.contains("skipped: an earlier step failed"), "{out}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("type=\"timeout\""), "{junit}");
    assert!(junit.contains("step timeout 1 s"), "{junit}");
}

/// A parameter sweep runs its block per value and a failure names the value it failed with.
#[test]
fn parameter_sweep_failure_names_the_value() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_scenario(
        tmp.path(),
        "param",
        r#"name: param-sweep
layout: nrf52840-internal
steps:
  - sweep:
      param: img
      values: [app-v2, app-v3]
      do:
        - flash: { mcuboot: mcuboot, slot0: app-v1 }
        - upload: { image: app-v2 }
        - test: app-v2
        - reset: {}
        - expect: { running: "${img}" }
"#,
    );
    let o = dfu_hil(&["scenario", p.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(100), "{out}");
    assert!(out.contains("sweep img over [app-v2, app-v3]"), "{out}");
    assert!(
        out.contains("with img=app-v3: running: expected app-v3, got app-v2")
            && out.contains("(passed before it: img=app-v2)"),
        "{out}"
    );
}

/// `transport: ble` really goes through the BLE framing on the simulated board: the evidence
/// names the link the run used.
#[test]
fn ble_upload_runs_over_the_gatt_link() {
    let tmp = tempfile::tempdir().unwrap();
    let o = dfu_hil(&["scenario", "ble-upload"], tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let link =
        std::fs::read_to_string(tmp.path().join("evidence/sim--ble-upload/link.txt")).unwrap();
    assert!(link.starts_with("BLE GATT, ATT MTU 498"), "{link}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"transport\" value=\"ble\""),
        "{junit}"
    );
}

/// A BLE app is built as Bluetooth DFU apps are (Zephyr `smp_svr` overlay-bt, NCS OTA DFU):
/// net_buf 2475 × 4 at ATT MTU 498, never Zephyr's serial-sized 384 at that MTU; over serial the
/// same fixture keeps Zephyr's default.
#[test]
fn a_ble_app_reports_the_buffers_of_a_bluetooth_dfu_build() {
    let tmp = tempfile::tempdir().unwrap();
    for (transport, buf) in [("ble", 2475), ("serial", 384)] {
        let path = tmp.path().join(format!("params-{transport}.yaml"));
        std::fs::write(
            &path,
            format!(
                "name: params-{transport}\nlayout: nrf52840-internal\ntransport: {transport}\nsteps:\n  \
                 - flash: {{ mcuboot: mcuboot, slot0: app-v1 }}\n  \
                 - smp: {{ group: 0, command: 6, op: read, expect: {{ fields: {{ buf_size: {buf}, buf_count: 4 }} }} }}\n"
            ),
        )
        .unwrap();
        let o = dfu_hil(&["scenario", path.to_str().unwrap()], tmp.path());
        assert_eq!(o.status.code(), Some(0), "{transport}: {}", text(&o));
    }
}
