//! Typed results of a scenario run: what each step did, and — for a step that did not pass —
//! *why*, as data. Console, JUnit, JSON, evidence and the farm all read these types; none of
//! them parses text another part wrote.

use crate::expect::{Field, Mismatch};
use crate::scenario::LoadedScenario;
use dfu_hil_board::probe::BoardErrorKind;
use dfu_hil_board::BoardError;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_smp::{DeviceError, SmpError};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where a step is written: the file that holds it (the scenario, or a file it includes) and
/// the line and column in *that* file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

impl Location {
    /// Step `i` (0-based) of a loaded scenario, in the file that holds it.
    pub fn of_step(s: &LoadedScenario, i: usize) -> Location {
        let (line, column) = s
            .scenario
            .steps
            .get(i)
            .map(|st| (st.referenced.line(), st.referenced.column()))
            .unwrap_or((0, 0));
        Location {
            file: s.step_file(i).to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// What went wrong with the board or the link (not the device under test's behaviour), so a
/// report can say *which* infrastructure failed instead of one word for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardFailureKind {
    /// The debug probe or the simulated board's probe side (reset, core state, memory).
    Probe,
    /// Programming, erasing or reading flash through the probe.
    Flash,
    /// The SMP link: port, BLE, UDP, framing, a device that stopped answering.
    Link,
    /// The board cannot do what the step asks (no power control, no flash-op counter).
    Unsupported,
    /// The board could not be opened or reserved.
    Unavailable,
    /// The scenario itself asks for something impossible at run time (a fixture that is not
    /// an image where a hash is needed, an include inside a block).
    Scenario,
}

impl BoardFailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BoardFailureKind::Probe => "probe",
            BoardFailureKind::Flash => "flash",
            BoardFailureKind::Link => "link",
            BoardFailureKind::Unsupported => "unsupported",
            BoardFailureKind::Unavailable => "unavailable",
            BoardFailureKind::Scenario => "scenario",
        }
    }
}

/// Why a step did not pass.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The device did not do what the scenario expects: field by field.
    Mismatch(Mismatch),
    /// The device answered an SMP request with an error code.
    Device(DeviceError),
    /// The board, probe or link failed; the device's behaviour is unknown.
    Board {
        kind: BoardFailureKind,
        message: String,
    },
    /// The step's or the scenario's deadline passed before the step could finish.
    Timeout { message: String },
    /// Ctrl-C / SIGTERM stopped the run during or before this step.
    Interrupted { message: String },
}

impl Failure {
    pub fn board(kind: BoardFailureKind, message: impl Into<String>) -> Failure {
        Failure::Board {
            kind,
            message: message.into(),
        }
    }

    /// A failure of the device under test (`failure` in JUnit), as opposed to an error of the
    /// harness or its infrastructure (`error`).
    pub fn is_device_behaviour(&self) -> bool {
        matches!(self, Failure::Mismatch(_) | Failure::Device(_))
    }

    pub fn status(&self) -> StepStatus {
        if self.is_device_behaviour() {
            StepStatus::Failed
        } else {
            StepStatus::Error
        }
    }

    /// The word reports classify the failure by (JUnit `type`, JSON `failure.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Mismatch(_) => "expectation",
            Failure::Device(_) => "device-error",
            Failure::Board { kind, .. } => kind.as_str(),
            Failure::Timeout { .. } => "timeout",
            Failure::Interrupted { .. } => "interrupted",
        }
    }

    /// One line: what happened.
    pub fn summary(&self) -> String {
        match self {
            Failure::Mismatch(m) => m.summary.clone(),
            Failure::Device(d) => format!("device answered {}", d.name()),
            Failure::Board { message, .. }
            | Failure::Timeout { message }
            | Failure::Interrupted { message } => message.clone(),
        }
    }

    /// The expected/actual table of a mismatch, the explanation of a device error; empty for
    /// infrastructure errors (their summary says it all).
    pub fn explanation(&self) -> String {
        match self {
            Failure::Mismatch(m) => m.detail.clone(),
            Failure::Device(d) => format!("  {}\n", d.explain()),
            _ => String::new(),
        }
    }

    /// The fields that differ, for a mismatch.
    pub fn fields(&self) -> &[Field] {
        match self {
            Failure::Mismatch(m) => &m.fields,
            _ => &[],
        }
    }

    /// The same failure, its summary prefixed (a sweep names the value or cut point).
    pub fn context(self, prefix: &str, suffix: &str) -> Failure {
        match self {
            Failure::Mismatch(m) => Failure::Mismatch(Mismatch {
                summary: format!("{prefix}{}{suffix}", m.summary),
                ..m
            }),
            Failure::Device(d) => Failure::Mismatch(Mismatch::new(
                format!("{prefix}device answered {}{suffix}", d.name()),
                format!("  {}\n", d.explain()),
            )),
            Failure::Board { kind, message } => Failure::Board {
                kind,
                message: format!("{prefix}{message}{suffix}"),
            },
            Failure::Timeout { message } => Failure::Timeout {
                message: format!("{prefix}{message}{suffix}"),
            },
            Failure::Interrupted { message } => Failure::Interrupted {
                message: format!("{prefix}{message}{suffix}"),
            },
        }
    }
}

impl From<Mismatch> for Failure {
    fn from(m: Mismatch) -> Self {
        Failure::Mismatch(m)
    }
}

impl From<BoardError> for Failure {
    /// The board says which part failed ([`BoardError::kind`]); the report keeps it.
    fn from(e: BoardError) -> Self {
        let kind = match e.kind() {
            BoardErrorKind::Probe => BoardFailureKind::Probe,
            BoardErrorKind::Flash => BoardFailureKind::Flash,
            BoardErrorKind::Link => BoardFailureKind::Link,
            BoardErrorKind::Unavailable => BoardFailureKind::Unavailable,
            BoardErrorKind::Unsupported => BoardFailureKind::Unsupported,
            BoardErrorKind::Region => BoardFailureKind::Scenario,
            BoardErrorKind::Timeout => {
                return Failure::Timeout {
                    message: error_chain(&e),
                }
            }
        };
        Failure::board(kind, error_chain(&e))
    }
}

/// An error and its sources in one line ("probe: open failed: USB busy"), so the report keeps
/// what the probe library said.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

impl From<SmpError> for Failure {
    fn from(e: SmpError) -> Self {
        match e {
            // The device answered with an error: that is the device's behaviour, a failure.
            SmpError::Device(d) => Failure::Device(d),
            SmpError::Deadline(why) => Failure::Timeout {
                message: format!("SMP: deadline passed ({why})"),
            },
            other => Failure::board(BoardFailureKind::Link, format!("SMP: {other}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Passed,
    Failed,
    /// The board or link failed (not the device under test's behaviour).
    Error,
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Passed => "passed",
            StepStatus::Failed => "failed",
            StepStatus::Error => "error",
            StepStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepResult {
    /// File the step is written in (the scenario, or an included file).
    pub file: PathBuf,
    pub index: usize,
    /// Line and column in `file`.
    pub line: u64,
    pub column: u64,
    pub summary: String,
    pub status: StepStatus,
    /// One line: what happened ("ok" details, the mismatch, the error).
    pub message: String,
    /// Why the step did not pass (`None` when it passed or was skipped).
    pub failure: Option<Failure>,
    /// A known cause the evidence points at, in words a DFU engineer acts on.
    pub diagnosis: Option<String>,
    /// The board's state beside the failure: core, image list, trailers, SMP, log.
    pub evidence: String,
    pub elapsed: Duration,
}

impl StepResult {
    /// A step that did not run or did not need a verdict of its own.
    pub fn new(s: &LoadedScenario, i: usize, status: StepStatus, message: String) -> StepResult {
        let at = Location::of_step(s, i);
        StepResult {
            file: at.file,
            index: i + 1,
            line: at.line,
            column: at.column,
            summary: s
                .scenario
                .steps
                .get(i)
                .map(|st| st.value.summary())
                .unwrap_or_default(),
            status,
            message,
            failure: None,
            diagnosis: None,
            evidence: String::new(),
            elapsed: Duration::ZERO,
        }
    }

    pub fn location(&self) -> Location {
        Location {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
        }
    }

    /// Multi-line explanation for a failure: the expected/actual table or error explanation,
    /// the diagnosis, then the evidence (what the console prints under a failed step).
    pub fn detail(&self) -> String {
        let mut out = self
            .failure
            .as_ref()
            .map(Failure::explanation)
            .unwrap_or_default();
        if let Some(d) = &self.diagnosis {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("  diagnosis: {d}\n"));
        }
        out.push_str(&self.evidence);
        out
    }
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    /// The scenario file (steps may live in files it includes: see each step's `file`).
    pub path: PathBuf,
    pub board: String,
    pub layout: String,
    pub mode: String,
    pub transport: String,
    pub steps: Vec<StepResult>,
    pub elapsed: Duration,
    pub device_log: Vec<String>,
    pub transcript: String,
    pub fixtures: BTreeMap<String, String>,
    pub evidence: Option<PathBuf>,
    /// Not run because the board lacks a capability the scenario needs: the reason.
    pub skipped: Option<String>,
    /// The SMP link as it described itself at the end (transport, MTU, counters).
    pub link: String,
}

impl ScenarioResult {
    pub fn is_skipped(&self) -> bool {
        self.skipped.is_some()
    }

    pub fn failed_step(&self) -> Option<&StepResult> {
        self.steps
            .iter()
            .find(|s| matches!(s.status, StepStatus::Failed | StepStatus::Error))
    }

    pub fn passed(&self) -> bool {
        self.failed_step().is_none()
    }

    /// Stopped by Ctrl-C / SIGTERM (not a verdict on the device).
    pub fn interrupted(&self) -> bool {
        self.failed_step()
            .is_some_and(|s| matches!(s.failure, Some(Failure::Interrupted { .. })))
    }

    /// The one word a summary line gives this scenario.
    pub fn verdict(&self) -> &'static str {
        if self.is_skipped() {
            "skipped"
        } else if self.interrupted() {
            "interrupted"
        } else if self.passed() {
            "passed"
        } else {
            "failed"
        }
    }

    /// A result with every step not run: the header fields from the scenario and its layout.
    fn not_run(s: &LoadedScenario, layout: &Layout, board: &str, first: StepResult) -> Self {
        let rest = match first.status {
            StepStatus::Error => "skipped: the board is unavailable",
            _ => "skipped: the board cannot run this scenario",
        };
        let mut steps = vec![first];
        for i in 1..s.scenario.steps.len() {
            steps.push(StepResult::new(s, i, StepStatus::Skipped, rest.into()));
        }
        steps.truncate(s.scenario.steps.len());
        ScenarioResult {
            name: s.scenario.name.clone(),
            path: s.path.clone(),
            board: board.to_owned(),
            layout: layout.name.clone(),
            mode: s.scenario.bootloader.mode.to_string(),
            transport: format!("{:?}", s.scenario.transport).to_lowercase(),
            steps,
            elapsed: Duration::ZERO,
            device_log: Vec::new(),
            transcript: String::new(),
            fixtures: BTreeMap::new(),
            evidence: None,
            skipped: None,
            link: String::new(),
        }
    }
}

/// The result of a scenario whose board could not be opened (probe missing, port busy): an
/// infrastructure error on its first step, so JUnit records it as `error`, not a silent gap.
pub fn board_unavailable(
    s: &LoadedScenario,
    layout: &Layout,
    board: &str,
    message: &str,
) -> ScenarioResult {
    let text = format!("board `{board}` unavailable: {message}");
    let mut first = StepResult::new(s, 0, StepStatus::Error, text.clone());
    first.failure = Some(Failure::board(BoardFailureKind::Unavailable, text));
    ScenarioResult::not_run(s, layout, board, first)
}

/// A scenario the board cannot run (see [`crate::needs`]): every step skipped, with the
/// reason, so JUnit shows it as `skipped` rather than silently missing.
pub fn board_lacks(
    s: &LoadedScenario,
    layout: &Layout,
    board: &str,
    reason: &str,
) -> ScenarioResult {
    let first = StepResult::new(s, 0, StepStatus::Skipped, format!("skipped: {reason}"));
    let mut r = ScenarioResult::not_run(s, layout, board, first);
    r.skipped = Some(reason.to_owned());
    r
}
