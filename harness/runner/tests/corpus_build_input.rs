//! Every real build of the corpus (`../shared/corpus`, or `$DFU_HIL_CORPUS`) as the input of a
//! run: a generic update scenario (synthetic v1 and v2, whatever the mode) is planned with
//! `--build` on each materialized build tree — what `dfu-hil lint --build` does — and, where
//! it plans, run on the simulated board with the build's layout and MCUboot configuration.
//!
//! Each build must either pass, or be refused for a specific reason that the corpus README's
//! table agrees with: no MCUboot, MCUboot in NSIB's s0/s1 (no `mcuboot` partition to flash),
//! or a layout the Partition Manager reader refuses at a file:line. Skips with a reason when
//! the corpus is absent, unless `DFU_HIL_REQUIRE_CORPUS=1` (CI), where absence fails.

use dfu_hil_runner::event::Collector;
use dfu_hil_runner::plan;
use dfu_hil_runner::result::StepStatus;
use dfu_hil_runner::run::{run_scenario, RunOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus() -> Option<PathBuf> {
    let path = std::env::var_os("DFU_HIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/corpus"));
    if path.join("ncs-builds").is_dir() {
        return Some(path);
    }
    if std::env::var("DFU_HIL_REQUIRE_CORPUS").as_deref() == Ok("1") {
        panic!(
            "DFU_HIL_REQUIRE_CORPUS=1 but the corpus is not at {} (set DFU_HIL_CORPUS)",
            path.display()
        );
    }
    println!(
        "skipped: no corpus at {} (set DFU_HIL_CORPUS to run the corpus walk)",
        path.display()
    );
    None
}

/// The corpus README's build table: folder → (MCUboot mode column, NSIB column).
fn readme_table(corpus: &Path) -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(corpus.join("README.md")).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| [`")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let folder = cells[1]
            .trim_start_matches("[`")
            .split('`')
            .next()
            .unwrap()
            .to_string();
        out.insert(folder, (cells[4].to_string(), cells[6].to_string()));
    }
    out
}

const GENERIC: &str = "name: generic-update
steps:
  - flash: { mcuboot: mcuboot, slot0: app-v1 }
  - expect: { running: app-v1 }
  - upload: { image: app-v2 }
  - test: app-v2
  - reset: {}
  - expect: { running: app-v2 }
";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Passed,
    NoMcuboot,
    McubootConfigMissing,
    NsibChain,
    LayoutRefused,
    /// The app has no SMP transport: a real device would not answer, so the run is refused.
    NoSmpTransport,
}

/// The "app mcumgr transports" value of a build folder's SOURCE.md FACTS table.
fn transports_fact(corpus: &Path, folder: &str) -> String {
    let text = std::fs::read_to_string(corpus.join("ncs-builds").join(folder).join("SOURCE.md"))
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("| app mcumgr transports |"))
        .and_then(|rest| rest.split('|').next())
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn every_corpus_build_runs_the_generic_update_or_says_why_not() {
    let Some(corpus) = corpus() else { return };
    let table = readme_table(&corpus);
    let tmp = tempfile::tempdir().unwrap();
    let trees = tmp.path().join("trees");
    let out = Command::new("python3")
        .arg(corpus.join("materialize"))
        .arg(&trees)
        .output()
        .expect("python3 runs corpus/materialize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scenario = tmp.path().join("generic.yaml");
    std::fs::write(&scenario, GENERIC).unwrap();
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut builds: Vec<PathBuf> = std::fs::read_dir(&trees)
        .unwrap()
        .map(|e| e.unwrap().path().join("build"))
        .collect();
    builds.sort();
    assert_eq!(builds.len(), table.len(), "one tree per README row");
    for build in &builds {
        let folder = build
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut opts = RunOptions::new(root(), tmp.path().join("evidence").join(&folder));
        opts.build = Some(build.clone());
        let p = plan::plan(std::slice::from_ref(&scenario), &opts);
        let outcome = match p.invalid().next() {
            Some(e) => {
                let msg = e.to_string();
                if msg.contains("the build has no MCUboot") {
                    Outcome::NoMcuboot
                } else if msg.contains("MCUboot's configuration is not in the build") {
                    Outcome::McubootConfigMissing
                } else if msg.contains("no partition `mcuboot`") && msg.contains("NSIB's s0/s1") {
                    Outcome::NsibChain
                } else if msg.contains("the build's layout: ") && msg.contains("partitions.yml:") {
                    Outcome::LayoutRefused
                } else if msg.contains("the build's app has no SMP transport") {
                    Outcome::NoSmpTransport
                } else {
                    panic!("{folder}: not a specific reason: {msg}");
                }
            }
            None => {
                let v = p.prepared().next().expect("one variant");
                let (board, _) = dfu_hil_board::sim::open(v.layout.clone(), "sim");
                let r = run_scenario(
                    &v.loaded,
                    &v.layout,
                    &v.fixtures,
                    board,
                    &opts,
                    &mut Collector::default(),
                );
                let failed: Vec<String> = r
                    .steps
                    .iter()
                    .filter(|s| s.status != StepStatus::Passed)
                    .map(|s| format!("step {}: {}", s.index, s.message))
                    .collect();
                assert!(
                    failed.is_empty(),
                    "{folder}: {failed:?}\n{}",
                    r.device_log.join("\n")
                );
                // The run used the build's MCUboot facts, not the scenario defaults.
                let facts = v.loaded.scenario.from_build.as_ref().unwrap();
                let m = facts.build.mcuboot.as_ref().unwrap();
                assert_eq!(
                    v.loaded.scenario.bootloader.max_sectors,
                    m.max_sectors.value
                );
                assert_eq!(Some(v.loaded.scenario.bootloader.mode), m.mode.value);
                Outcome::Passed
            }
        };
        // The README's table agrees with the reason.
        let (mode, nsib) = &table[&folder];
        match outcome {
            Outcome::NoMcuboot => assert!(mode.contains("no MCUboot"), "{folder}: {mode}"),
            Outcome::NsibChain => assert_eq!(nsib, "yes", "{folder}"),
            Outcome::Passed => {
                assert!(!mode.contains("no MCUboot"), "{folder}: {mode}");
                let t = transports_fact(&corpus, &folder);
                assert!(
                    t != "none" && !t.is_empty(),
                    "{folder}: ran over SMP, but SOURCE.md says transports: {t:?}"
                );
            }
            Outcome::LayoutRefused => {
                assert!(!mode.contains("no MCUboot"), "{folder}: {mode}")
            }
            Outcome::NoSmpTransport => {
                assert_eq!(transports_fact(&corpus, &folder), "none", "{folder}")
            }
            Outcome::McubootConfigMissing => {}
        }
        outcomes.insert(folder, outcome);
    }
    let mut counts: BTreeMap<&Outcome, usize> = BTreeMap::new();
    for o in outcomes.values() {
        *counts.entry(o).or_default() += 1;
    }
    println!("corpus builds as run input: {counts:?}");
    for (f, o) in &outcomes {
        println!("  {o:?}: {f}");
    }
    // Figures at the time of writing: 8 pass (over BLE: every SMP-capable build of the
    // corpus has only the BT transport), 12 have no SMP transport (the two NSIB chains among
    // them), 7 without MCUboot, 1 without MCUboot's .config, 2 layouts refused (a partition
    // past the nRF52832's flash; a slot off the erase units). A reader change that loses a
    // passing build fails here.
    let n = |o: Outcome| counts.get(&o).copied().unwrap_or(0);
    assert!(n(Outcome::Passed) >= 8, "{counts:?}");
    assert!(
        n(Outcome::Passed) + n(Outcome::NoSmpTransport) >= 18,
        "{counts:?}"
    );
}
