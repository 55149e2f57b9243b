//! Machine-readable reports: JUnit (quick-junit, as cargo-nextest writes it) and JSON.
//!
//! Mapping: one testsuite per scenario file, one testcase per scenario named
//! `<board>/<scenario>` (unique per board), `failure` for device behaviour that did not match,
//! `error` for infrastructure (board, probe, link), evidence paths in system-out.
//!
//! Both are built from the typed results alone: a failed step's location is the file that
//! holds it (an included file's path, not the scenario's), its `type` is the failure's kind
//! (expectation, device-error, probe, link, timeout, interrupted …) and the diagnosis is a
//! field of its own.

use crate::result::{Failure, ScenarioResult, StepStatus};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;
use std::path::Path;

pub fn junit(results: &[ScenarioResult]) -> Report {
    let mut report = Report::new("dfu-hil");
    let total: std::time::Duration = results.iter().map(|r| r.elapsed).sum();
    report.set_time(total);
    for r in results {
        let mut suite = TestSuite::new(r.path.display().to_string());
        suite.add_properties([
            Property::new("board", r.board.clone()),
            Property::new("layout", r.layout.clone()),
            Property::new("mode", r.mode.clone()),
            Property::new("transport", r.transport.clone()),
        ]);
        for (name, sha) in &r.fixtures {
            suite.add_property(Property::new(format!("fixture.{name}.sha256"), sha.clone()));
        }
        let status = match (r.failed_step(), &r.skipped) {
            (None, Some(reason)) => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(reason.clone());
                st
            }
            (None, None) => TestCaseStatus::success(),
            (Some(s), _) => {
                let kind = if s.status == StepStatus::Error {
                    NonSuccessKind::Error
                } else {
                    NonSuccessKind::Failure
                };
                let mut st = TestCaseStatus::non_success(kind);
                let diagnosis = s
                    .diagnosis
                    .as_deref()
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default();
                st.set_message(format!(
                    "step {} ({}) at {}: {}{diagnosis}",
                    s.index,
                    s.summary,
                    s.location(),
                    s.message
                ));
                st.set_type(s.failure.as_ref().map_or("infrastructure", Failure::kind));
                st.set_description(s.detail());
                st
            }
        };
        let mut case = TestCase::new(format!("{}/{}", r.board, r.name), status);
        case.set_classname(format!("{}/{}", r.board, r.layout));
        case.set_time(r.elapsed);
        case.set_assertions(r.steps.len());
        // The file and line of the failed step, in the file that holds it (an included
        // file's own path), else the scenario file.
        match r.failed_step() {
            Some(s) => {
                case.extra
                    .insert("file".into(), s.file.display().to_string().into());
                case.extra.insert("line".into(), s.line.to_string().into());
            }
            None => {
                case.extra
                    .insert("file".into(), r.path.display().to_string().into());
            }
        }
        let mut out = String::new();
        for s in &r.steps {
            out.push_str(&format!(
                "[{:>2}] {:<44} {:<7} {}\n",
                s.index,
                s.summary,
                s.status.as_str(),
                s.message
            ));
        }
        if let Some(e) = &r.evidence {
            out.push_str(&format!("evidence: {}\n", e.display()));
            out.push_str(&format!("[[ATTACHMENT|{}]]\n", e.display()));
        }
        case.set_system_out(out);
        suite.add_test_case(case);
        report.add_test_suite(suite);
    }
    report
}

pub fn write_junit(results: &[ScenarioResult], path: &Path) -> std::io::Result<()> {
    let xml = junit(results)
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomic(path, xml.as_bytes())
}

/// Write a report so that a reader never sees half of it: the text goes to a temporary file
/// beside the target, which is then renamed over it (a rename within one directory is atomic
/// on POSIX file systems). Reports are rewritten after every scenario, and CI dashboards or a
/// `tail`-ing engineer may read them at any moment.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[derive(Serialize)]
struct JsonStep<'a> {
    index: usize,
    /// The file that holds the step (the scenario or an included file) and its line:column.
    file: String,
    line: u64,
    column: u64,
    step: &'a str,
    status: &'static str,
    message: &'a str,
    failure: Option<JsonFailure<'a>>,
    diagnosis: Option<&'a str>,
    detail: String,
    seconds: f64,
}

#[derive(Serialize)]
struct JsonFailure<'a> {
    /// expectation, device-error, probe, link, unsupported, unavailable, scenario, timeout,
    /// interrupted.
    kind: &'static str,
    /// Fields that differ, for an expectation.
    fields: Vec<JsonField<'a>>,
    /// The device's error, for device-error.
    device_error: Option<String>,
}

#[derive(Serialize)]
struct JsonField<'a> {
    field: &'a str,
    expected: &'a str,
    actual: &'a str,
}

fn json_failure(f: &Failure) -> JsonFailure<'_> {
    JsonFailure {
        kind: f.kind(),
        fields: f
            .fields()
            .iter()
            .map(|x| JsonField {
                field: &x.what,
                expected: &x.expected,
                actual: &x.actual,
            })
            .collect(),
        device_error: match f {
            Failure::Device(d) => Some(d.name()),
            _ => None,
        },
    }
}

#[derive(Serialize)]
struct JsonScenario<'a> {
    name: &'a str,
    file: String,
    board: &'a str,
    layout: &'a str,
    mode: &'a str,
    transport: &'a str,
    passed: bool,
    /// Why the scenario was not run on this board (a capability it lacks).
    skipped: Option<&'a str>,
    seconds: f64,
    fixtures: &'a std::collections::BTreeMap<String, String>,
    evidence: Option<String>,
    steps: Vec<JsonStep<'a>>,
}

pub fn write_json(results: &[ScenarioResult], path: &Path) -> std::io::Result<()> {
    let doc: Vec<JsonScenario> = results
        .iter()
        .map(|r| JsonScenario {
            name: &r.name,
            file: r.path.display().to_string(),
            board: &r.board,
            layout: &r.layout,
            mode: &r.mode,
            transport: &r.transport,
            passed: r.passed() && !r.is_skipped(),
            skipped: r.skipped.as_deref(),
            seconds: r.elapsed.as_secs_f64(),
            fixtures: &r.fixtures,
            evidence: r.evidence.as_ref().map(|p| p.display().to_string()),
            steps: r
                .steps
                .iter()
                .map(|s| JsonStep {
                    index: s.index,
                    file: s.file.display().to_string(),
                    line: s.line,
                    column: s.column,
                    step: &s.summary,
                    status: s.status.as_str(),
                    message: &s.message,
                    failure: s.failure.as_ref().map(json_failure),
                    diagnosis: s.diagnosis.as_deref(),
                    detail: s.detail(),
                    seconds: s.elapsed.as_secs_f64(),
                })
                .collect(),
        })
        .collect();
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::write_atomic;

    /// A reader polling a report while it is rewritten never sees a half-written file.
    #[test]
    fn a_polling_reader_never_sees_half_a_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut reads, mut bad) = (0, 0);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        reads += 1;
                        if serde_json::from_str::<serde_json::Value>(&text).is_err() {
                            bad += 1;
                        }
                    }
                }
                (reads, bad)
            })
        };
        for n in 0..300 {
            let doc: Vec<String> = (0..n * 20).map(|i| format!("step {i}")).collect();
            write_atomic(&path, serde_json::to_string(&doc).unwrap().as_bytes()).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (reads, bad) = reader.join().unwrap();
        assert!(reads > 0);
        assert_eq!(bad, 0, "{bad} of {reads} reads saw a partial report");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
    }
}

/// Marks an output folder as in use by this run, so a second run pointed at the same folder
/// can warn that the two will overwrite each other's reports. The mark is a file holding the
/// owner's process id; it is removed when the claim is dropped.
pub struct OutputClaim {
    mark: std::path::PathBuf,
}

/// The name of the mark file in an output folder.
pub const OUTPUT_MARK: &str = ".dfu-hil-run";

impl OutputClaim {
    /// Claim `dir`. Returns the claim and, when another live run already holds the folder, a
    /// warning naming it (the run goes on: refusing would lose a nightly's results).
    pub fn take(dir: &Path) -> (Option<OutputClaim>, Option<String>) {
        let mark = dir.join(OUTPUT_MARK);
        let warning = std::fs::read_to_string(&mark).ok().and_then(|text| {
            let pid: u32 = text.split_whitespace().next()?.parse().ok()?;
            (pid != std::process::id() && process_alive(pid)).then(|| {
                format!(
                    "warning: another dfu-hil run (pid {pid}) writes to {} too: the two overwrite \
                     each other's junit.xml, results.json and evidence; give each run its own \
                     --output",
                    dir.display()
                )
            })
        });
        let claim = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&mark, format!("{}\n", std::process::id())))
            .ok()
            .map(|_| OutputClaim { mark });
        (claim, warning)
    }
}

impl Drop for OutputClaim {
    fn drop(&mut self) {
        // Only our own mark: a later run may have claimed the folder since.
        if std::fs::read_to_string(&self.mark)
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<u32>().ok())
            == Some(std::process::id())
        {
            let _ = std::fs::remove_file(&self.mark);
        }
    }
}

/// Whether a process exists (Linux/Unix: its /proc entry; elsewhere assume it does).
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if proc.is_dir() {
        proc.join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    #[test]
    fn a_second_live_run_on_the_same_folder_is_warned_and_a_dead_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        // A live process other than us.
        let mut other = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        std::fs::write(dir.path().join(OUTPUT_MARK), format!("{}\n", other.id())).unwrap();
        let (claim, warning) = OutputClaim::take(dir.path());
        let w = warning.expect("a live owner is reported");
        assert!(
            w.contains(&other.id().to_string()) && w.contains("--output"),
            "{w}"
        );
        drop(claim);
        assert!(
            !dir.path().join(OUTPUT_MARK).exists(),
            "our mark is removed"
        );
        other.kill().unwrap();
        other.wait().unwrap();
        // A stale mark of a process that has ended is silently taken over.
        std::fs::write(dir.path().join(OUTPUT_MARK), format!("{}\n", other.id())).unwrap();
        let (_claim, warning) = OutputClaim::take(dir.path());
        assert_eq!(warning, None);
    }
}
