//! Process exit codes: the one table every command maps its outcome to.
//!
//! Pipelines branch on these numbers (retry on 98 only, stop on 100), so a code means the same
//! thing whichever command returns it. The README and `ci/README.md` tables are checked
//! against [`Exit::ALL`] by the CLI's tests.

use std::fmt;

/// How a `dfu-hil` command ended, as its process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Exit {
    /// Everything passed: every scenario ran and did what it expects, or the command did its job.
    Pass,
    /// Nothing selected: no scenario matches, no board, or nothing the board can run.
    NothingSelected,
    /// Invalid input: a scenario, layout, fixture, inventory, image file or option that cannot
    /// be used; the message names the file (and file:line:col where it applies).
    InvalidInput,
    /// Infrastructure: a board, probe, port or link was unavailable, or the lab's hardware is
    /// not what the inventory says. Worth a retry.
    Infrastructure,
    /// A verdict against the device or image: a scenario failed, the device answered an SMP
    /// error, or an inspected image or trailer has an error finding.
    ScenarioFailed,
    /// Interrupted (Ctrl-C / SIGTERM, 128 + SIGINT as shells report it); reports are still
    /// written.
    Interrupted,
}

impl Exit {
    /// Every code, in ascending order of their numbers.
    pub const ALL: [Exit; 6] = [
        Exit::Pass,
        Exit::NothingSelected,
        Exit::InvalidInput,
        Exit::Infrastructure,
        Exit::ScenarioFailed,
        Exit::Interrupted,
    ];

    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Pass => 0,
            Exit::NothingSelected => 4,
            Exit::InvalidInput => 96,
            Exit::Infrastructure => 98,
            Exit::ScenarioFailed => 100,
            Exit::Interrupted => 130,
        }
    }

    /// The code as `i32`, as [`std::process::ExitStatus::code`] reports it.
    pub const fn as_i32(self) -> i32 {
        self.code() as i32
    }

    /// The table entry for a process exit code, if it is one.
    pub fn from_code(code: i32) -> Option<Exit> {
        Exit::ALL.into_iter().find(|e| e.as_i32() == code)
    }

    /// One line for tables and `--help`: what the code tells whoever ran the command.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Pass => "passed: every scenario passed, or the command did its job",
            Exit::NothingSelected => {
                "nothing selected: no scenario matches, no board, or nothing the board can run"
            }
            Exit::InvalidInput => {
                "invalid input: scenario, layout, fixture, inventory, image file or option \
                 (the message names the file, with file:line:col where it applies)"
            }
            Exit::Infrastructure => {
                "infrastructure: board, probe, port or link unavailable, or attached hardware \
                 differs from the inventory"
            }
            Exit::ScenarioFailed => {
                "failed: a scenario failed, the device answered an SMP error, or an image or \
                 trailer has an error finding"
            }
            Exit::Interrupted => "interrupted (Ctrl-C / SIGTERM); reports are still written",
        }
    }

    /// Whether a pipeline should run the same job again: `Some(true)` only for
    /// infrastructure, `Some(false)` for verdicts and input errors that a rerun cannot change,
    /// `None` where the question does not arise (passed, interrupted on purpose).
    pub const fn retry(self) -> Option<bool> {
        match self {
            Exit::Infrastructure => Some(true),
            Exit::NothingSelected | Exit::InvalidInput | Exit::ScenarioFailed => Some(false),
            Exit::Pass | Exit::Interrupted => None,
        }
    }

    /// The code table as Markdown (`| code | meaning |`), as the README shows it.
    pub fn markdown_table() -> String {
        let mut s = String::from("| code | meaning |\n|---|---|\n");
        for e in Exit::ALL {
            s.push_str(&format!("| {} | {} |\n", e.code(), e.meaning()));
        }
        s
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.meaning())
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

impl From<Exit> for u8 {
    fn from(e: Exit) -> Self {
        e.code()
    }
}

/// [`Exit::Pass`] as a number (kept for code that compares `i32` codes).
pub const PASS: i32 = Exit::Pass.as_i32();
/// [`Exit::ScenarioFailed`] as a number.
pub const SCENARIO_FAILED: i32 = Exit::ScenarioFailed.as_i32();
/// [`Exit::InvalidInput`] as a number.
pub const INVALID_INPUT: i32 = Exit::InvalidInput.as_i32();
/// [`Exit::Infrastructure`] as a number.
pub const INFRASTRUCTURE: i32 = Exit::Infrastructure.as_i32();
/// [`Exit::NothingSelected`] as a number.
pub const NOTHING_SELECTED: i32 = Exit::NothingSelected.as_i32();
/// [`Exit::Interrupted`] as a number.
pub const INTERRUPTED: i32 = Exit::Interrupted.as_i32();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_ascending_and_round_trip() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 4, 96, 98, 100, 130]);
        for e in Exit::ALL {
            assert_eq!(Exit::from_code(e.as_i32()), Some(e));
        }
        assert_eq!(Exit::from_code(1), None);
        assert_eq!(Exit::from_code(101), None);
    }

    #[test]
    fn only_infrastructure_is_worth_a_retry() {
        let retry: Vec<Exit> = Exit::ALL
            .into_iter()
            .filter(|e| e.retry() == Some(true))
            .collect();
        assert_eq!(retry, [Exit::Infrastructure]);
    }

    #[test]
    fn markdown_table_has_a_row_per_code() {
        let t = Exit::markdown_table();
        assert_eq!(t.lines().count(), 2 + Exit::ALL.len());
        assert!(t.contains("| 98 | infrastructure:"), "{t}");
    }
}
