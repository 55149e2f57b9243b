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
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let xml = junit(results)
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::write(path, xml)
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
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
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
    std::fs::write(path, text)
}
