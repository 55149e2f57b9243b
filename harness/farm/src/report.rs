//! The farm's reports: JUnit per board and merged (testcases `<board>/<scenario>`, earlier
//! attempts as flaky/rerun records), `results.json` as `dfu-hil run` writes it, and
//! `farm.json` (per scenario: board, verdict, attempts; per board: lock wait, why unavailable).

use crate::farm::{BoardState, FarmBoard};
use crate::verdict::{Outcome, Unrunnable};
use dfu_hil_runner::report;
use dfu_hil_runner::run::{ScenarioResult, StepStatus};
use quick_junit::{FlakyOrRerun, NonSuccessKind, Report, TestCaseStatus, TestRerun};
use std::path::Path;

/// JUnit of `outcomes` (their last attempts) with flaky/rerun records of the earlier attempts,
/// plus a `skipped` testcase per scenario no board could run.
pub fn farm_junit(outcomes: &[Outcome], unrunnable: &[Unrunnable]) -> Report {
    let finals: Vec<ScenarioResult> = outcomes.iter().map(|o| o.last().clone()).collect();
    let mut rep = report::junit(&finals);
    // `report::junit` makes one suite per result, in order.
    for (suite, o) in rep.test_suites.iter_mut().zip(outcomes) {
        for case in &mut suite.test_cases {
            let earlier = &o.attempts[..o.attempts.len() - 1];
            if earlier.is_empty() {
                continue;
            }
            let reruns: Vec<TestRerun> = earlier.iter().map(rerun_record).collect();
            case.status.add_reruns(reruns);
            if matches!(case.status, TestCaseStatus::NonSuccess { .. }) {
                case.status.set_rerun_kind(FlakyOrRerun::Rerun);
            }
        }
    }
    for u in unrunnable {
        let mut suite = quick_junit::TestSuite::new(u.path.display().to_string());
        let mut st = TestCaseStatus::skipped();
        st.set_message(format!(
            "no board of this farm can run it: {}",
            u.reasons.join("; ")
        ));
        st.set_type("capability");
        let mut case = quick_junit::TestCase::new(format!("farm/{}", u.name), st);
        case.set_classname(format!("farm/{}", u.layout));
        suite.add_test_case(case);
        rep.add_test_suite(suite);
    }
    rep
}

fn rerun_record(r: &ScenarioResult) -> TestRerun {
    let (kind, message) = match r.failed_step() {
        Some(s) => (
            if s.status == StepStatus::Error {
                NonSuccessKind::Error
            } else {
                NonSuccessKind::Failure
            },
            format!(
                "step {} ({}) at {}: {}",
                s.index,
                s.summary,
                s.location(),
                s.message
            ),
        ),
        None => (NonSuccessKind::Failure, "failed".to_owned()),
    };
    let mut rr = TestRerun::new(kind);
    rr.time = Some(r.elapsed);
    rr.message = Some(message.into());
    if let Some(e) = &r.evidence {
        rr.system_out = Some(format!("[[ATTACHMENT|{}]]\n", e.display()).into());
    }
    rr
}

pub(crate) fn write_farm_reports(
    out: &Path,
    boards: &[FarmBoard],
    states: &[BoardState],
    outcomes: &[Outcome],
    unrunnable: &[Unrunnable],
    invalid: &[String],
) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let xml = |r: Report| {
        r.to_string()
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    for b in boards {
        let mine: Vec<Outcome> = outcomes
            .iter()
            .filter(|o| o.board == b.id)
            .cloned()
            .collect();
        std::fs::write(
            out.join(format!("junit-{}.xml", b.id)),
            xml(farm_junit(&mine, &[]))?,
        )?;
    }
    std::fs::write(
        out.join("junit.xml"),
        xml(farm_junit(outcomes, unrunnable))?,
    )?;
    let finals: Vec<ScenarioResult> = outcomes.iter().map(|o| o.last().clone()).collect();
    report::write_json(&finals, &out.join("results.json"))?;
    let doc = serde_json::json!({
        "boards": boards.iter().zip(states).map(|(b, s)| serde_json::json!({
            "id": b.id,
            "sim": b.is_sim(),
            "lock_wait_s": s.lock_wait.as_secs_f64(),
            "unavailable": s.dead,
            "unavailable_kind": s.dead_kind,
        })).collect::<Vec<_>>(),
        "scenarios": outcomes.iter().map(|o| serde_json::json!({
            "name": o.last().name,
            "file": o.last().path.display().to_string(),
            "board": o.board,
            "verdict": if o.infrastructure { "board-unavailable" } else { o.verdict().as_str() },
            "attempts": o.attempts.len(),
        })).collect::<Vec<_>>(),
        "skipped": unrunnable.iter().map(|u| serde_json::json!({
            "name": u.name, "file": u.path.display().to_string(), "reasons": u.reasons,
        })).collect::<Vec<_>>(),
        "invalid": invalid,
    });
    std::fs::write(
        out.join("farm.json"),
        serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?,
    )
}
