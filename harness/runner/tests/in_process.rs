//! Scenarios run in process on the simulated board, through the runner's library API: the
//! event stream, the typed results and the reports built from them — no CLI in between.

use dfu_hil_runner::event::{Collector, Event, EventSink, Fanout};
use dfu_hil_runner::result::{Failure, ScenarioResult, StepStatus};
use dfu_hil_runner::run::{prepare, run_scenario, RunOptions};
use dfu_hil_runner::{console::Console, report, scenario};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

/// Run one scenario file on a fresh simulated board, feeding `events`.
fn run(path: &Path, opts: &RunOptions, events: &mut dyn EventSink) -> ScenarioResult {
    let loaded = scenario::load(path).expect("scenario loads");
    let (layout, fixtures) = prepare(&loaded, opts).expect("scenario prepares");
    let (board, _shared) = dfu_hil_board::sim::open(layout.clone(), "sim");
    run_scenario(&loaded, &layout, &fixtures, board, opts, events)
}

fn options(out: &Path) -> RunOptions {
    RunOptions::new(project_root(), out.join("evidence"))
}

/// A step that fails inside an `include:`d file is reported — in the typed result, the
/// console, JUnit and JSON — at the *included* file's path and line, not the scenario's.
#[test]
fn failure_inside_an_include_names_the_included_file() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = write(
        tmp.path(),
        "common/setup.yaml",
        "description: flash v1, then expect something that is not true\n\
         steps:\n\
         \x20 - flash: { mcuboot: mcuboot, slot0: app-v1 }\n\
         \x20 - expect: { running: app-v2 }\n",
    );
    let path = write(
        tmp.path(),
        "inc.yaml",
        "name: include-fails\n\
         layout: nrf52840-internal\n\
         steps:\n\
         \x20 - reset: { how: probe }\n\
         \x20 - include: common/setup.yaml\n\
         \x20 - reset: {}\n",
    );
    let opts = options(tmp.path());
    let text = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut console = Console::to_writer(false, false, text.clone());
    let mut collector = Collector::default();
    let mut started = Vec::new();
    let mut record = |e: &Event<'_>| {
        if let Event::StepStarted { index, .. } = e {
            started.push(*index)
        }
    };
    let r = run(
        &path,
        &opts,
        &mut Fanout::new(vec![&mut console, &mut collector, &mut record]),
    );
    assert_eq!(started, vec![1, 2, 3], "steps 1-3 start, 4 is skipped");

    let failed = r.failed_step().expect("a step fails");
    assert_eq!(failed.index, 3);
    assert_eq!(failed.file, shared, "the included file holds the step");
    assert_eq!((failed.line, failed.column), (4, 5));
    let Some(Failure::Mismatch(m)) = &failed.failure else {
        panic!("a mismatch: {:?}", failed.failure)
    };
    assert_eq!(m.fields.len(), 1);
    assert_eq!(m.fields[0].what, "running");
    assert_eq!(m.fields[0].expected, "app-v2");
    assert_eq!(r.steps[3].status, StepStatus::Skipped);
    assert_eq!(
        collector.results.len(),
        1,
        "the collector saw the scenario end"
    );

    let console_text = String::from_utf8(text.lock().unwrap().clone()).unwrap();
    let at = format!("at {}:4:5", shared.display());
    assert!(console_text.contains(&at), "{console_text}");
    assert!(
        console_text.contains("FAILED: include-fails on sim"),
        "{console_text}"
    );

    let xml = report::junit(std::slice::from_ref(&r)).to_string().unwrap();
    assert!(
        xml.contains(&format!("at {}:4:5", shared.display())),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("file=\"{}\"", shared.display())),
        "{xml}"
    );
    assert!(xml.contains("type=\"expectation\""), "{xml}");
    assert!(
        !xml.contains(&format!("{}:4", path.display())),
        "the scenario's path never goes with the included file's line: {xml}"
    );

    let json_path = tmp.path().join("r.json");
    report::write_json(&[r], &json_path).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let step = &json[0]["steps"][2];
    assert_eq!(step["file"], shared.display().to_string());
    assert_eq!(step["line"], 4);
    assert_eq!(step["failure"]["kind"], "expectation");
    assert_eq!(step["failure"]["fields"][0]["field"], "running");
}

/// `prepare` names an included step's own file when it refers to an unknown fixture.
#[test]
fn prepare_error_inside_an_include_names_the_included_file() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = write(
        tmp.path(),
        "common/bad.yaml",
        "steps:\n  - reset: {}\n  - upload: { image: no-such-fixture }\n",
    );
    let path = write(
        tmp.path(),
        "s.yaml",
        "name: p\nlayout: nrf52840-internal\nsteps:\n  - include: common/bad.yaml\n",
    );
    let loaded = scenario::load(&path).unwrap();
    let e = prepare(&loaded, &options(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("{}:3:5", shared.display())),
        "error names the included file: {e}"
    );
}

/// After a power cut during an upload the run's own request timeout applies again: the next
/// SMP request to the dead board waits the configured time, not a sweep's shortened one.
#[test]
fn request_timeout_survives_an_upload_power_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "cut.yaml",
        "name: cut-then-ask\n\
         layout: nrf52840-internal\n\
         steps:\n\
         \x20 - flash: { mcuboot: mcuboot, slot0: app-v1 }\n\
         \x20 - power-cut: { at-upload-percent: 50 }\n\
         \x20 - upload: { image: app-v2 }\n\
         \x20 - confirm: {}\n",
    );
    let mut opts = options(tmp.path());
    opts.request_timeout = Duration::from_millis(1500);
    let r = run(&path, &opts, &mut dfu_hil_runner::event::Silent);
    assert_eq!(r.steps[2].status, StepStatus::Passed, "{:?}", r.steps[2]);
    let confirm = &r.steps[3];
    assert_eq!(confirm.status, StepStatus::Error, "{confirm:?}");
    assert!(
        matches!(confirm.failure, Some(Failure::Board { .. })),
        "{confirm:?}"
    );
    // A timeout cannot expire early: the lower bound is exact, whatever the machine's load;
    // the upper bound is far above 1.5 s but below any other timeout the client knows.
    assert!(
        confirm.elapsed >= Duration::from_millis(1500) && confirm.elapsed < Duration::from_secs(10),
        "the confirm request waited {:?}, not the run's --request-timeout-ms",
        confirm.elapsed
    );
}
