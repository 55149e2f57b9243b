//! What became of a scenario on a farm board over its attempts: passed, flaky (failed, then
//! passed on a rerun: counts as a pass) or failed.

use dfu_hil_runner::run::ScenarioResult;
use std::path::PathBuf;

/// Verdict of a scenario over its attempts on one board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Passed the first time.
    Passed,
    /// Failed, then passed on a rerun: counts as a pass, reported as flaky.
    Flaky,
    /// Failed every attempt.
    Failed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Flaky => "flaky",
            Verdict::Failed => "failed",
        }
    }
}

/// Classify the attempts of one scenario (`true` = that attempt passed), in order.
pub fn classify(attempts: &[bool]) -> Verdict {
    match attempts {
        [] => Verdict::Failed,
        [true, ..] => Verdict::Passed,
        _ if attempts.last() == Some(&true) => Verdict::Flaky,
        _ => Verdict::Failed,
    }
}

/// All attempts of one scenario on one board (the last is the one that counts).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub board: String,
    pub attempts: Vec<ScenarioResult>,
    /// Never ran: the board was unavailable (lock timeout, open or recovery failed).
    pub infrastructure: bool,
}

impl Outcome {
    pub fn last(&self) -> &ScenarioResult {
        self.attempts.last().expect("an outcome has an attempt")
    }

    pub fn verdict(&self) -> Verdict {
        let passes: Vec<bool> = self.attempts.iter().map(ScenarioResult::passed).collect();
        classify(&passes)
    }
}

/// A scenario no farm board can run (reported as JUnit `skipped`).
#[derive(Debug, Clone)]
pub struct Unrunnable {
    pub name: String,
    pub path: PathBuf,
    pub layout: String,
    pub reasons: Vec<String>,
}
