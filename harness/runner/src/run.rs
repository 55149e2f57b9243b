//! The executor: runs one scenario's steps against a board and records what happened.
//!
//! A failed step stops the scenario (later steps are reported as skipped), but evidence is
//! always collected: the device log, the SMP transcript and trailer dumps of every slot.

use crate::expect::{self, Mismatch};
use crate::fixtures::{self, Built, FixtureError};
use crate::scenario::{LoadedScenario, ResetHow, Step};
use dfu_hil_board::{Board, BoardError, CoreState, Link, PowerCutAt, Probe, ResetKind};
use dfu_hil_mcuboot::layout::{Layout, LayoutError};
use dfu_hil_smp::{BootWait, Client, LineSetting, SlotState, SmpError, Transport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options shared by every scenario of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Project root (holds `partitions/`, `firmware-fixtures/`, `scenarios/`).
    pub root: PathBuf,
    /// Where per-scenario evidence folders go.
    pub evidence_dir: PathBuf,
    /// Set by Ctrl-C / SIGTERM: the current step finishes, the rest are reported interrupted.
    pub interrupt: Arc<AtomicBool>,
    /// Timeout of one SMP request (the first upload chunk gets longer: it waits for an erase).
    pub request_timeout: Duration,
    /// Whole-scenario deadline (the scenario's `timeout-s` wins when set).
    pub scenario_timeout: Option<Duration>,
    /// Deadline of one step (the scenario's `step-timeout-s` wins when set): a stuck upload
    /// or sweep ends as an error instead of holding a farm board all night.
    pub step_timeout: Duration,
    /// What the client assumes about the device's SMP link, with where each figure comes
    /// from. The command line's values win over the scenario's `device:` block.
    pub device: DeviceLinkOptions,
    /// The board's own facts (inventory entry over board profile): used where neither the
    /// command line nor the scenario says anything.
    pub board_device: DeviceLinkOptions,
}

/// Device link facts set on the command line (or by the board's inventory entry); `None`
/// leaves the scenario's `device:` value or Zephyr's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceLinkOptions {
    pub serial_lines: Option<LineSetting>,
    /// Where `serial_lines` came from ("--serial-lines", "inventory dk-1", …).
    pub serial_lines_source: String,
    pub reset_delay: Option<Duration>,
    pub boot_timeout: Option<Duration>,
}

/// The device link settings in force for one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLink {
    pub lines: LineSetting,
    /// Where `lines` came from, for the evidence.
    pub lines_source: String,
    pub boot: BootWait,
}

impl DeviceLinkOptions {
    /// From a board's `device-link:` facts (inventory entry over profile); `source` names them
    /// for the evidence ("inventory dk-1").
    pub fn from_facts(
        facts: &dfu_hil_board::DeviceLinkFacts,
        source: &str,
    ) -> Result<Self, String> {
        let serial_lines = match &facts.serial_lines {
            Some(t) => Some(
                t.parse::<LineSetting>()
                    .map_err(|e| format!("{source}: device-link.serial-lines: {e}"))?,
            ),
            None => None,
        };
        Ok(DeviceLinkOptions {
            serial_lines,
            serial_lines_source: format!("{source} device-link.serial-lines"),
            reset_delay: facts
                .reset_delay_ms
                .map(|ms| Duration::from_millis(ms.min(3_600_000))),
            boot_timeout: facts
                .boot_timeout_s
                .map(|s| Duration::from_secs(s.min(86_400))),
        })
    }
}

/// Resolve the device link for a scenario: the command line's settings, then the scenario's
/// `device:` block, then the board's facts, then Zephyr's defaults.
pub fn device_link(
    s: &LoadedScenario,
    opts: &DeviceLinkOptions,
    board: &DeviceLinkOptions,
) -> Result<DeviceLink, String> {
    let spec = &s.scenario.device;
    let (lines, lines_source) = match (&opts.serial_lines, &spec.serial_lines) {
        (Some(l), _) => (*l, opts.serial_lines_source.clone()),
        (None, Some(text)) => (
            text.parse::<LineSetting>()
                .map_err(|e| format!("device.serial-lines: {e}"))?,
            format!("scenario device.serial-lines: {text}"),
        ),
        (None, None) if board.serial_lines.is_some() => (
            board.serial_lines.unwrap_or_default(),
            board.serial_lines_source.clone(),
        ),
        (None, None) => (
            LineSetting::default(),
            "Zephyr defaults CONFIG_UART_MCUMGR_RX_BUF_COUNT=2, CONFIG_UART_MCUMGR_RX_BUF_SIZE=128"
                .into(),
        ),
    };
    let mut boot = BootWait::default();
    if let Some(d) = opts
        .reset_delay
        .or(spec
            .reset_delay_ms
            .map(|ms| Duration::from_millis(ms.min(3_600_000))))
        .or(board.reset_delay)
    {
        boot.reset_delay = d;
    }
    if let Some(d) = opts
        .boot_timeout
        .or(spec
            .boot_timeout_s
            .map(|s| Duration::from_secs(s.min(86_400))))
        .or(board.boot_timeout)
    {
        boot.boot_timeout = d;
    }
    Ok(DeviceLink {
        lines,
        lines_source,
        boot,
    })
}

/// Default step timeout: a 1 MiB upload at 115200 baud takes ~140 s.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);
/// Default scenario timeout.
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(1800);

impl RunOptions {
    pub fn new(root: PathBuf, evidence_dir: PathBuf) -> Self {
        RunOptions {
            root,
            evidence_dir,
            interrupt: Arc::new(AtomicBool::new(false)),
            request_timeout: Duration::from_millis(2500),
            scenario_timeout: Some(DEFAULT_SCENARIO_TIMEOUT),
            step_timeout: DEFAULT_STEP_TIMEOUT,
            device: DeviceLinkOptions::default(),
            board_device: DeviceLinkOptions::default(),
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

#[derive(Debug, Clone)]
pub struct StepResult {
    /// File the step is written in (the scenario, or an included file).
    pub file: PathBuf,
    pub index: usize,
    pub line: u64,
    pub column: u64,
    pub summary: String,
    pub status: StepStatus,
    /// One line: what happened ("ok", the mismatch, the error).
    pub message: String,
    /// Multi-line explanation for failures: expected vs actual and evidence.
    pub detail: String,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
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
}

/// Invalid input or a board that cannot be opened: nothing ran.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{scenario}: layout `{layout}` not found (looked for {tried})")]
    NoLayout {
        scenario: PathBuf,
        layout: String,
        tried: String,
    },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{scenario}: {source}")]
    Fixture {
        scenario: PathBuf,
        source: FixtureError,
    },
    #[error("{scenario}:{line}:{column}: {message}")]
    Semantic {
        scenario: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
}

/// Progress callbacks for reporters (console).
pub trait Observer {
    fn scenario_start(&mut self, _s: &LoadedScenario, _board: &str) {}
    fn step_start(&mut self, _index: usize, _total: usize, _summary: &str) {}
    fn upload_progress(&mut self, _sent: usize, _total: usize) {}
    /// Bytes of `region` programmed through the probe so far.
    fn flash_progress(&mut self, _region: &str, _done: u64, _total: u64) {}
    fn step_end(&mut self, _r: &StepResult, _total: usize) {}
    fn scenario_end(&mut self, _r: &ScenarioResult) {}
}

/// Reporter that prints nothing.
pub struct Silent;
impl Observer for Silent {}

pub fn resolve_layout(root: &Path, s: &LoadedScenario) -> Result<Layout, SetupError> {
    let name = &s.scenario.layout;
    let candidates = [
        root.join("partitions").join(format!("{name}.yaml")),
        s.path.parent().unwrap_or(Path::new(".")).join(name),
    ];
    for c in &candidates {
        if c.is_file() {
            let file = c.file_name().unwrap_or_default().to_string_lossy();
            // An nRF Connect SDK Partition Manager map can be named directly.
            if file.starts_with("pm_static") || file == "partitions.yml" {
                return dfu_hil_mcuboot::pm::import_file(c, &Default::default()).map_err(|e| {
                    SetupError::Semantic {
                        scenario: s.path.clone(),
                        line: 0,
                        column: 0,
                        message: e.to_string(),
                    }
                });
            }
            return Ok(Layout::load(c)?);
        }
    }
    Err(SetupError::NoLayout {
        scenario: s.path.clone(),
        layout: name.clone(),
        tried: candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Fixture names a scenario's steps use, with the step's location.
fn referenced_fixtures(s: &LoadedScenario) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for st in &s.scenario.steps {
        let mut names = Vec::new();
        step_fixtures(&st.value, &mut names);
        let (l, c) = (st.referenced.line(), st.referenced.column());
        out.extend(names.into_iter().map(|n| (n, l, c)));
    }
    out
}

fn step_fixtures(step: &Step, out: &mut Vec<String>) {
    match step {
        Step::Flash(m) => out.extend(m.values().cloned()),
        Step::Upload(u) => out.push(u.image.clone()),
        Step::Test(f) => out.push(f.clone()),
        Step::Confirm(c) => out.extend(c.image.clone()),
        Step::Expect(e) => {
            out.extend(e.running.clone());
            for slot in [&e.slot0, &e.slot1].into_iter().flatten() {
                out.extend(slot.image.clone());
            }
        }
        Step::ExpectError(e) => step_fixtures(&e.action, out),
        Step::Sweep(w) => w.all_steps().for_each(|s| step_fixtures(s, out)),
        _ => {}
    }
}

/// Partitions a step names.
fn step_regions(step: &Step) -> Vec<&String> {
    match step {
        Step::Flash(m) => m.keys().collect(),
        Step::ExpectTrailer(m) => m.keys().collect(),
        Step::Erase(e) => e.region.iter().collect(),
        Step::ExpectError(e) => step_regions(&e.action),
        Step::Sweep(w) => w.all_steps().flat_map(step_regions).collect(),
        _ => vec![],
    }
}

/// Check a scenario against its layout and build its fixtures (everything that can be known
/// before touching a board), so bad input exits 96 with a location instead of failing mid-run.
pub fn prepare(
    s: &LoadedScenario,
    opts: &RunOptions,
) -> Result<(Layout, BTreeMap<String, Built>), SetupError> {
    let layout = resolve_layout(&opts.root, s)?;
    if let Err(message) = device_link(s, &opts.device, &opts.board_device) {
        return Err(SetupError::Semantic {
            scenario: s.path.clone(),
            line: 0,
            column: 0,
            message,
        });
    }
    for (label, rel) in &s.scenario.elf {
        let p = elf_path(s, rel);
        if !p.is_file() {
            return Err(SetupError::Semantic {
                scenario: s.path.clone(),
                line: 0,
                column: 0,
                message: format!("elf `{label}`: no file {}", p.display()),
            });
        }
    }
    for st in &s.scenario.steps {
        for r in step_regions(&st.value) {
            if layout.partition(r).is_none() {
                return Err(SetupError::Semantic {
                    scenario: s.path.clone(),
                    line: st.referenced.line(),
                    column: st.referenced.column(),
                    message: format!(
                        "{}: no partition `{r}` in layout `{}` (it has: {})",
                        st.value.keyword(),
                        layout.name,
                        layout.partition_names().join(", ")
                    ),
                });
            }
        }
    }
    let manifest_path = opts.root.join("firmware-fixtures").join("fixtures.yaml");
    let manifest = if manifest_path.is_file() {
        fixtures::load_manifest(&manifest_path).map_err(|source| SetupError::Fixture {
            scenario: s.path.clone(),
            source,
        })?
    } else {
        fixtures::Manifest::default()
    };
    let builder = fixtures::Builder {
        manifest_dir: opts.root.join("firmware-fixtures"),
        manifest,
        extra: &s.scenario.fixtures,
        scenario_dir: s.path.parent().unwrap_or(Path::new(".")).to_owned(),
        layout: &layout,
        bootloader: &s.scenario.bootloader,
    };
    let mut built = BTreeMap::new();
    for (name, line, column) in referenced_fixtures(s) {
        if built.contains_key(&name) {
            continue;
        }
        match builder.build(&name) {
            Ok(b) => {
                built.insert(name, b);
            }
            Err(FixtureError::Unknown(n)) => {
                return Err(SetupError::Semantic {
                    scenario: s.path.clone(),
                    line,
                    column,
                    message: format!("unknown fixture `{n}` (not in the scenario's `fixtures:` nor firmware-fixtures/fixtures.yaml)"),
                })
            }
            Err(source) => {
                return Err(SetupError::Fixture {
                    scenario: s.path.clone(),
                    source,
                })
            }
        }
    }
    Ok((layout, built))
}

/// Per-scenario execution state.
struct Ctx<'a> {
    probe: Box<dyn Probe>,
    client: Client<Link>,
    layout: &'a Layout,
    scenario: &'a LoadedScenario,
    fixtures: &'a BTreeMap<String, Built>,
    device_log: Vec<String>,
    /// Armed by `power-cut: { at-upload-percent }`, consumed by the next upload.
    cut_upload_at: Option<u8>,
    /// The last SMP error the device answered (evidence for the diagnosis).
    last_device_error: Option<String>,
    /// Trailers as they were when the current step started, for before/after evidence.
    trailers_before: Vec<(String, String)>,
    /// The image list last seen before the current step.
    image_list_before: Option<String>,
    /// Ctrl-C / SIGTERM: long steps (sweeps) stop early.
    interrupt: Arc<AtomicBool>,
    /// The SMP request timeout of this run (sweeps shorten it while the power is off).
    request_timeout: Duration,
    /// When the current step must end, and why (step or scenario timeout).
    step_deadline: Option<(Instant, String)>,
    /// How to wait for the device after a reset.
    boot: BootWait,
}

/// Why a step did not pass.
enum StepFail {
    Mismatch(Mismatch),
    /// The device answered an SMP request with an error.
    Device(dfu_hil_smp::DeviceError),
    Board(String),
}

impl From<BoardError> for StepFail {
    fn from(e: BoardError) -> Self {
        StepFail::Board(e.to_string())
    }
}

impl From<SmpError> for StepFail {
    fn from(e: SmpError) -> Self {
        match e {
            // The device answered with an error: that is the device's behaviour, a failure.
            SmpError::Device(d) => StepFail::Device(d),
            other => StepFail::Board(format!("SMP: {other}")),
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
    not_run(
        s,
        layout,
        board,
        (
            StepStatus::Error,
            format!("board `{board}` unavailable: {message}"),
        ),
        "skipped: the board is unavailable",
    )
}

/// A scenario the board cannot run (see [`crate::needs`]): every step skipped, with the
/// reason, so JUnit shows it as `skipped` rather than silently missing.
pub fn board_lacks(
    s: &LoadedScenario,
    layout: &Layout,
    board: &str,
    reason: &str,
) -> ScenarioResult {
    let mut r = not_run(
        s,
        layout,
        board,
        (StepStatus::Skipped, format!("skipped: {reason}")),
        "skipped: the board cannot run this scenario",
    );
    r.skipped = Some(reason.to_owned());
    r
}

fn not_run(
    s: &LoadedScenario,
    layout: &Layout,
    board: &str,
    first: (StepStatus, String),
    rest: &str,
) -> ScenarioResult {
    let steps = s
        .scenario
        .steps
        .iter()
        .enumerate()
        .map(|(i, st)| StepResult {
            file: s.step_file(i).to_owned(),
            index: i + 1,
            line: st.referenced.line(),
            column: st.referenced.column(),
            summary: st.value.summary(),
            status: if i == 0 { first.0 } else { StepStatus::Skipped },
            message: if i == 0 { first.1.clone() } else { rest.into() },
            detail: String::new(),
            elapsed: Duration::ZERO,
        })
        .collect();
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

fn elf_path(s: &LoadedScenario, rel: &Path) -> PathBuf {
    s.path.parent().unwrap_or(Path::new(".")).join(rel)
}

/// Hand the scenario's ELF files to the probe (symbols for fault loops, RTT).
fn load_elfs(s: &LoadedScenario, probe: &mut dyn Probe) -> Result<(), String> {
    if s.scenario.elf.is_empty() {
        return Ok(());
    }
    let mut elfs = Vec::new();
    for (label, rel) in &s.scenario.elf {
        let p = elf_path(s, rel);
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        elfs.push((label.clone(), bytes));
    }
    probe.load_elfs(&elfs).map_err(|e| e.to_string())
}

/// Run one prepared scenario on a board.
pub fn run_scenario(
    s: &LoadedScenario,
    layout: &Layout,
    fixtures: &BTreeMap<String, Built>,
    board: Board,
    opts: &RunOptions,
    obs: &mut dyn Observer,
) -> ScenarioResult {
    obs.scenario_start(s, &board.name);
    let started = Instant::now();
    let board_name = board.name.clone();
    let mut ctx = Ctx {
        probe: board.probe,
        client: Client::new(board.link),
        layout,
        scenario: s,
        fixtures,
        device_log: Vec::new(),
        cut_upload_at: None,
        last_device_error: None,
        trailers_before: Vec::new(),
        image_list_before: None,
        interrupt: opts.interrupt.clone(),
        request_timeout: opts.request_timeout,
        step_deadline: None,
        boot: BootWait::default(),
    };
    ctx.client.set_timeout(opts.request_timeout);
    // Checked in `prepare`; a scenario run without it gets the defaults.
    let device = device_link(s, &opts.device, &opts.board_device).unwrap_or_else(|_| DeviceLink {
        lines: LineSetting::default(),
        lines_source: "Zephyr defaults".into(),
        boot: BootWait::default(),
    });
    ctx.boot = device.boot;
    ctx.client
        .transport_mut()
        .set_line_limits(device.lines.limits(), &device.lines_source);
    ctx.client
        .set_discover_lines(matches!(device.lines, LineSetting::Discover(_)));
    // A board that already runs (a lab board between scenarios) may have booted a moment ago
    // or have a port just opened: make sure it answers before the first step talks to it.
    // Not fatal here: a step that needs SMP reports what goes wrong.
    if matches!(ctx.probe.core_state(), Ok(CoreState::Running)) {
        let wait = BootWait {
            boot_timeout: ctx.boot.boot_timeout.min(Duration::from_secs(5)),
            ..ctx.boot
        };
        if let Err(e) = ctx.client.wait_ready(&wait) {
            ctx.device_log.push(format!(
                "[dfu-hil] warning: the board runs but did not answer SMP before the first step: {e}"
            ));
        }
    }
    if let Err(e) = load_elfs(s, ctx.probe.as_mut()) {
        ctx.device_log
            .push(format!("[dfu-hil] warning: ELF files not used: {e}"));
    }
    let step_timeout = s
        .scenario
        .step_timeout_s
        .map(Duration::from_secs)
        .unwrap_or(opts.step_timeout);
    let deadline = s
        .scenario
        .timeout_s
        .map(Duration::from_secs)
        .or(opts.scenario_timeout)
        .map(|d| started + d);
    let total = s.scenario.steps.len();
    let mut steps = Vec::new();
    let mut stopped = false;
    for (i, st) in s.scenario.steps.iter().enumerate() {
        let summary = st.value.summary();
        let (line, column) = (st.referenced.line(), st.referenced.column());
        let why_not = if opts.interrupt.load(Ordering::SeqCst) {
            Some("interrupted (Ctrl-C / SIGTERM) before this step")
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            Some("scenario timeout reached before this step")
        } else {
            None
        };
        if let (Some(why), false) = (why_not, stopped) {
            stopped = true;
            let r = StepResult {
                file: s.step_file(i).to_owned(),
                index: i + 1,
                line,
                column,
                summary,
                status: StepStatus::Error,
                message: why.into(),
                detail: ctx.evidence_snapshot(),
                elapsed: Duration::ZERO,
            };
            obs.step_end(&r, total);
            steps.push(r);
            continue;
        }
        if stopped {
            let r = StepResult {
                file: s.step_file(i).to_owned(),
                index: i + 1,
                line,
                column,
                summary,
                status: StepStatus::Skipped,
                message: "skipped: an earlier step failed".into(),
                detail: String::new(),
                elapsed: Duration::ZERO,
            };
            obs.step_end(&r, total);
            steps.push(r);
            continue;
        }
        obs.step_start(i + 1, total, &summary);
        let step_end = (
            Instant::now() + step_timeout,
            format!("step timeout {} s", step_timeout.as_secs_f64()),
        );
        ctx.step_deadline = Some(match deadline {
            Some(d) if d < step_end.0 => (d, "scenario timeout".into()),
            _ => step_end,
        });
        ctx.client.set_deadline(ctx.step_deadline.clone());
        ctx.trailers_before = ctx.trailer_lines();
        let t0 = Instant::now();
        let outcome = ctx.step(&st.value, obs);
        // Evidence is read after the deadline too.
        ctx.client.set_deadline(None);
        ctx.step_deadline = None;
        ctx.collect_log();
        let (status, message, detail) = match outcome {
            Ok(msg) => (StepStatus::Passed, msg, String::new()),
            Err(StepFail::Mismatch(m)) => {
                let evidence = ctx.evidence_snapshot();
                let diag = ctx.diagnosis(None, &st.value);
                (
                    StepStatus::Failed,
                    m.summary.clone(),
                    format!("{}{diag}\n{}", m.detail.trim_end(), evidence),
                )
            }
            Err(StepFail::Device(d)) => {
                let diag = ctx.diagnosis(Some(d.name()), &st.value);
                (
                    StepStatus::Failed,
                    format!("device answered {}", d.name()),
                    format!("  {}{diag}\n{}", d.explain(), ctx.evidence_snapshot()),
                )
            }
            Err(StepFail::Board(e)) => (StepStatus::Error, e, ctx.evidence_snapshot()),
        };
        stopped = status != StepStatus::Passed;
        let r = StepResult {
            file: s.step_file(i).to_owned(),
            index: i + 1,
            line,
            column,
            summary,
            status,
            message,
            detail,
            elapsed: t0.elapsed(),
        };
        obs.step_end(&r, total);
        steps.push(r);
    }
    ctx.collect_log();
    let mut result = ScenarioResult {
        name: s.scenario.name.clone(),
        path: s.path.clone(),
        board: board_name,
        layout: layout.name.clone(),
        mode: s.scenario.bootloader.mode.to_string(),
        transport: format!("{:?}", s.scenario.transport).to_lowercase(),
        steps,
        elapsed: started.elapsed(),
        device_log: ctx.device_log.clone(),
        transcript: ctx.client.transcript_text(),
        fixtures: fixtures
            .iter()
            .map(|(k, v)| (k.clone(), hex::encode(v.file_sha256)))
            .collect(),
        evidence: None,
        skipped: None,
        link: ctx.client.transport_mut().describe(),
    };
    result.evidence = crate::evidence::write(&mut ctx_evidence(&mut ctx), &result, opts).ok();
    obs.scenario_end(&result);
    result
}

fn ctx_evidence<'c, 'a>(ctx: &'c mut Ctx<'a>) -> crate::evidence::Sources<'c> {
    crate::evidence::Sources {
        probe: ctx.probe.as_mut(),
        layout: ctx.layout,
        bootloader: &ctx.scenario.scenario.bootloader,
        fixtures: ctx.fixtures,
    }
}

impl Ctx<'_> {
    /// `until` shortened to the current step's deadline.
    fn clip(&self, until: Instant) -> Instant {
        match &self.step_deadline {
            Some((d, _)) => until.min(*d),
            None => until,
        }
    }

    /// An error once the step's deadline has passed (the step then ends as an error, not a
    /// failed expectation: the device was not given the time to show what it does).
    fn past_deadline(&self) -> Result<(), StepFail> {
        self.deadline_passed()
            .map_or(Ok(()), |why| Err(StepFail::Board(why)))
    }

    /// "step timeout 300 s reached" (or the scenario's) once the step's deadline has passed.
    fn deadline_passed(&self) -> Option<String> {
        match &self.step_deadline {
            Some((d, why)) if Instant::now() >= *d => Some(format!("{why} reached")),
            _ => None,
        }
    }

    /// Why a long step must stop now: Ctrl-C / SIGTERM, or its deadline.
    fn must_stop(&self) -> Option<String> {
        if self.interrupt.load(Ordering::SeqCst) {
            return Some("interrupted".into());
        }
        self.deadline_passed()
    }

    /// An upload that ended on silence, explained: when not one upload request since
    /// `first` (a transcript index) was answered while the link sized them for more serial
    /// lines than Zephyr's default, the likeliest cause is a device with fewer receive lines,
    /// which drops such requests without a word.
    fn silent_upload(&mut self, first: usize, e: SmpError) -> String {
        let base = format!("SMP: {e}");
        let uploads: Vec<_> = self.client.transcript()[first..]
            .iter()
            .filter(|x| x.request.header.group == dfu_hil_smp::group::IMAGE)
            .filter(|x| x.request.header.id == dfu_hil_smp::img_cmd::UPLOAD)
            .collect();
        if uploads.is_empty() || uploads.iter().any(|x| x.response.is_some()) {
            return base;
        }
        let largest = uploads
            .iter()
            .map(|x| x.request.header.len as usize + dfu_hil_smp::HEADER_LEN)
            .max()
            .unwrap_or(0);
        let Some(limits) = self.client.transport_mut().line_limits() else {
            return base;
        };
        let lines = limits.lines_for(largest);
        if lines <= dfu_hil_smp::limits::DEFAULT_LINE_COUNT {
            return base;
        }
        format!(
            "{base}: no upload request was answered. Each was {largest} B = {lines} serial \
             lines, sized for {limits}; a device with Zephyr's default \
             CONFIG_UART_MCUMGR_RX_BUF_COUNT=2 drops such requests silently (try \
             --serial-lines 2x128 or auto, or check the app's configuration)"
        )
    }

    /// After a reset: for an `os reset`, wait until the old image has really gone (it answers
    /// for `CONFIG_MCUMGR_GRP_OS_RESET_MS` after accepting the request); then, if the core
    /// runs, until the new boot answers SMP. Returns what happened, with the time it took.
    fn after_reset(&mut self, smp_reset: bool) -> Result<String, StepFail> {
        let mut parts = Vec::new();
        if smp_reset {
            let sign = self.client.await_reboot(&self.boot)?;
            parts.push(format!("reboot seen: {sign}"));
        }
        let state = self.probe.core_state()?;
        parts.insert(0, format!("core {state}"));
        if state == CoreState::Running {
            let ready = self.client.wait_ready(&self.boot)?;
            parts.push(ready.to_string());
        }
        Ok(parts.join("; "))
    }

    fn collect_log(&mut self) {
        self.device_log.extend(self.probe.take_log());
        let noise = self.client.take_noise();
        if !noise.is_empty() && self.device_log.is_empty() {
            // Backends without a probe-side log: keep UART text from the link.
            self.device_log
                .extend(String::from_utf8_lossy(&noise).lines().map(str::to_owned));
        }
    }

    fn fixture(&self, name: &str) -> &Built {
        // Every referenced fixture was built in `prepare`.
        &self.fixtures[name]
    }

    fn image_hash(&self, name: &str) -> Result<Vec<u8>, StepFail> {
        self.fixture(name).image_hash.clone().ok_or_else(|| {
            StepFail::Board(format!(
                "fixture `{name}` is not an MCUboot image (no hash TLV)"
            ))
        })
    }

    /// Name of the fixture whose image hash this is, for readable "actual" values.
    fn name_of_hash(&self, hash: &[u8]) -> String {
        self.fixtures
            .values()
            .find(|f| f.image_hash.as_deref() == Some(hash))
            .map(|f| f.name.clone())
            .unwrap_or_else(|| format!("unknown image {}", short_hash(hash)))
    }

    fn step(&mut self, step: &Step, obs: &mut dyn Observer) -> Result<String, StepFail> {
        match step {
            Step::Flash(map) => {
                for (region, fixture) in map {
                    let bytes = self.fixture(fixture).bytes.clone();
                    self.probe
                        .flash_with_progress(region, &bytes, &mut |done, total| {
                            obs.flash_progress(region, done, total)
                        })?;
                }
                // Like `west flash`, the target is reset and runs after programming.
                self.probe.reset(ResetKind::Run)?;
                let boot = self.after_reset(false)?;
                Ok(format!(
                    "{} region(s) programmed, board reset; {boot}",
                    map.len()
                ))
            }
            Step::Upload(u) if self.cut_upload_at.is_some() => {
                let pct = self.cut_upload_at.take().unwrap_or(0) as usize;
                self.upload_with_cut(&u.image, u.image_number, pct, obs)
            }
            Step::Upload(u) => {
                let data = self.fixture(&u.image).bytes.clone();
                self.client.set_upload_window(u.window);
                if let Some(b) = u.buf_size {
                    self.client.set_buf_size(Some(b));
                }
                let first = self.client.transcript().len();
                let rep = match self
                    .client
                    .upload(u.image_number, &data, &mut |sent, total| {
                        obs.upload_progress(sent, total)
                    }) {
                    Ok(r) => r,
                    Err(e @ (SmpError::Timeout | SmpError::Deadline(_))) => {
                        return Err(StepFail::Board(self.silent_upload(first, e)))
                    }
                    Err(e) => return Err(e.into()),
                };
                let secs = rep.elapsed.as_secs_f64().max(1e-6);
                Ok(format!(
                    "{} B in {} requests, {:.2} s ({:.1} KiB/s), {} retries",
                    rep.bytes,
                    rep.chunks,
                    secs,
                    rep.bytes as f64 / 1024.0 / secs,
                    rep.retries
                ))
            }
            Step::Test(f) => {
                let hash = self.image_hash(f)?;
                self.client.image_test(&hash)?;
                Ok(format!("marked {f} ({}) for test", short_hash(&hash)))
            }
            Step::Confirm(c) => match &c.image {
                None => {
                    self.client.image_confirm(None)?;
                    Ok("confirmed the running image".into())
                }
                Some(f) => {
                    let hash = self.image_hash(f)?;
                    self.client.image_confirm(Some(&hash))?;
                    Ok(format!("confirmed {f} ({})", short_hash(&hash)))
                }
            },
            Step::Reset(r) => {
                let smp = match r.how {
                    ResetHow::Smp => {
                        self.client.reset(false)?;
                        true
                    }
                    ResetHow::Probe => {
                        self.probe.reset(ResetKind::Run)?;
                        false
                    }
                };
                let boot = self.after_reset(smp)?;
                Ok(format!("after reset: {boot}"))
            }
            Step::Expect(e) => self.expect(e),
            Step::ExpectTrailer(m) => {
                let mut mismatches = Vec::new();
                let mut seen = Vec::new();
                for (region, want) in m {
                    let t = expect::read_trailer(
                        self.probe.as_mut(),
                        self.layout,
                        &self.scenario.scenario.bootloader,
                        region,
                    )?;
                    seen.push(format!("{region}: {t}"));
                    mismatches.extend(expect::trailer(region, want, &t));
                }
                if mismatches.is_empty() {
                    Ok(seen.join("; "))
                } else {
                    Err(StepFail::Mismatch(Mismatch::from_fields(&mismatches)))
                }
            }
            Step::ExpectFault(f) => {
                let state = self.probe.core_state()?;
                match (&state, &f.symbol) {
                    (CoreState::FaultLoop { symbol: got, .. }, Some(want))
                        if got.as_deref() != Some(want.as_str()) =>
                    {
                        Err(StepFail::Mismatch(Mismatch::from_fields(&[
                            expect::Field {
                                what: "core".into(),
                                expected: format!("fault loop in {want}"),
                                actual: state.to_string(),
                            },
                        ])))
                    }
                    (CoreState::FaultLoop { .. }, _) | (CoreState::LockedUp, None) => {
                        Ok(format!("core {state}"))
                    }
                    _ => Err(StepFail::Mismatch(Mismatch::from_fields(&[
                        expect::Field {
                            what: "core".into(),
                            expected: match &f.symbol {
                                Some(s) => format!("fault loop in {s}"),
                                None => "fault loop".into(),
                            },
                            actual: state.to_string(),
                        },
                    ]))),
                }
            }
            Step::ExpectError(e) => match self.step(&e.action, obs) {
                Err(StepFail::Device(d)) if error_matches(&e.error, &d) => {
                    self.last_device_error = Some(d.name());
                    Ok(format!("device answered {} as expected", d.name()))
                }
                Err(StepFail::Device(d)) => Err(StepFail::Mismatch(Mismatch::from_fields(&[
                    expect::Field {
                        what: "error".into(),
                        expected: e.error.clone(),
                        actual: format!("{} — {}", d.name(), d.explain()),
                    },
                ]))),
                Ok(msg) => Err(StepFail::Mismatch(Mismatch::from_fields(&[
                    expect::Field {
                        what: "error".into(),
                        expected: e.error.clone(),
                        actual: format!("no error ({msg})"),
                    },
                ]))),
                Err(other) => Err(other),
            },
            Step::Erase(e) => match &e.region {
                Some(region) => {
                    let size = self.probe.region_size(region)?;
                    self.probe.erase(region, 0, size)?;
                    Ok(format!(
                        "erased {region} (0x{size:x} bytes) through the probe"
                    ))
                }
                None => {
                    self.client.image_erase(e.slot)?;
                    Ok("img_mgmt erase done".into())
                }
            },
            Step::PowerCut(p) => match (p.at_flash_op, p.at_upload_percent) {
                (Some(n), _) => {
                    self.probe.power_cut(PowerCutAt::FlashOp(n))?;
                    Ok(format!(
                        "armed: power goes before flash operation {n} from now"
                    ))
                }
                (None, Some(pct)) => {
                    self.cut_upload_at = Some(pct.min(100));
                    Ok(format!("armed: power goes at {pct}% of the next upload"))
                }
                (None, None) => {
                    self.probe.power_cut(PowerCutAt::Now)?;
                    Ok("power cut".into())
                }
            },
            Step::WaitBoot(w) => {
                let deadline = self.clip(Instant::now() + Duration::from_millis(w.timeout_ms));
                loop {
                    let state = self.probe.core_state()?;
                    if state == CoreState::Running {
                        let wait = BootWait {
                            boot_timeout: deadline.saturating_duration_since(Instant::now()),
                            ..self.boot
                        };
                        if let Ok(r) = self.client.wait_ready(&wait) {
                            return Ok(format!("running ({state}); {r}"));
                        }
                    }
                    if Instant::now() >= deadline {
                        return Err(StepFail::Mismatch(Mismatch::from_fields(&[
                            expect::Field {
                                what: "boot".into(),
                                expected: "running and answering SMP".into(),
                                actual: format!("core {state} after {} ms", w.timeout_ms),
                            },
                        ])));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Step::Sweep(w) if w.is_param() => self.sweep_values(w, obs),
            Step::Sweep(w) => self.sweep(w, obs),
            Step::ExpectBootChain(want) => {
                let got = self.probe.boot_chain()?;
                let mut fields = Vec::new();
                let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
                if let Some(w) = &want.nsib_slot {
                    if got.nsib_slot.as_deref() != Some(w.as_str()) {
                        fields.push(expect::Field {
                            what: "nsib-slot".into(),
                            expected: w.clone(),
                            actual: show(got.nsib_slot.clone()),
                        });
                    }
                }
                if let Some(w) = want.nsib_version {
                    if got.nsib_version != Some(w) {
                        fields.push(expect::Field {
                            what: "nsib-version".into(),
                            expected: w.to_string(),
                            actual: show(got.nsib_version.map(|v| v.to_string())),
                        });
                    }
                }
                if let Some(w) = want.nsib_counter_used {
                    if got.nsib_counter.map(|c| c.0) != Some(w) {
                        fields.push(expect::Field {
                            what: "nsib-counter-used".into(),
                            expected: w.to_string(),
                            actual: show(got.nsib_counter.map(|(u, t)| format!("{u} of {t}"))),
                        });
                    }
                }
                if let Some(w) = &want.netcore_version {
                    if got.netcore_version.as_deref() != Some(w.as_str()) {
                        fields.push(expect::Field {
                            what: "netcore-version".into(),
                            expected: w.clone(),
                            actual: show(got.netcore_version.clone()),
                        });
                    }
                }
                if fields.is_empty() {
                    // Only the facts this board has (no NSIB on an nRF5340 layout, …).
                    let mut facts = Vec::new();
                    if let Some(slot) = &got.nsib_slot {
                        facts.push(format!("nsib {slot}"));
                    }
                    if let Some(v) = got.nsib_version {
                        facts.push(format!("nsib version {v}"));
                    }
                    if let Some((u, t)) = got.nsib_counter {
                        facts.push(format!("counter {u}/{t} used"));
                    }
                    if let Some(v) = &got.netcore_version {
                        facts.push(format!("netcore {v}"));
                    }
                    Ok(facts.join(", "))
                } else {
                    Err(StepFail::Mismatch(Mismatch::from_fields(&fields)))
                }
            }
            // Top-level includes are expanded at load time; nested blocks cannot include.
            Step::Include(f) => Err(StepFail::Board(format!(
                "include `{f}` inside a block: includes are only expanded at the top level of `steps`"
            ))),
            Step::ExpectDiagnosis(d) => {
                let text = self.diagnosis(None, step);
                let text = text
                    .trim_start()
                    .trim_start_matches("diagnosis: ")
                    .to_owned();
                if text.to_lowercase().contains(&d.contains.to_lowercase()) {
                    Ok(text)
                } else {
                    Err(StepFail::Mismatch(Mismatch::from_fields(&[
                        expect::Field {
                            what: "diagnosis".into(),
                            expected: format!("contains \"{}\"", d.contains),
                            actual: if text.is_empty() {
                                "no diagnosis from this evidence".into()
                            } else {
                                text
                            },
                        },
                    ])))
                }
            }
            Step::Sleep(s) => {
                let until = Instant::now() + Duration::from_millis(s.ms);
                std::thread::sleep(self.clip(until).saturating_duration_since(Instant::now()));
                self.past_deadline()?;
                Ok(format!("slept {} ms", s.ms))
            }
        }
    }

    fn run_block(&mut self, steps: &[Step], obs: &mut dyn Observer) -> Result<(), StepFail> {
        for s in steps {
            self.step(s, obs)?;
        }
        Ok(())
    }

    /// Run the sweep's block once per parameter value, in order; the first value whose block
    /// fails stops the sweep and names the value.
    fn sweep_values(
        &mut self,
        w: &crate::scenario::SweepStep,
        obs: &mut dyn Observer,
    ) -> Result<String, StepFail> {
        let t0 = Instant::now();
        let mut done = Vec::new();
        for (label, block) in &w.instances {
            if self.interrupt.load(Ordering::SeqCst) {
                return Err(StepFail::Board(format!(
                    "interrupted during the sweep before {label} (passed: {})",
                    done.join(", ")
                )));
            }
            self.past_deadline()?;
            if let Err(e) = self.run_block(block, obs) {
                let passed = if done.is_empty() {
                    String::new()
                } else {
                    format!(" (passed before it: {})", done.join(", "))
                };
                return Err(match e {
                    StepFail::Mismatch(m) => StepFail::Mismatch(Mismatch::new(
                        format!("with {label}: {}{passed}", m.summary),
                        m.detail,
                    )),
                    StepFail::Device(d) => StepFail::Mismatch(Mismatch::new(
                        format!("with {label}: device answered {}{passed}", d.name()),
                        format!("  {}\n", d.explain()),
                    )),
                    StepFail::Board(b) => StepFail::Board(format!("with {label}: {b}{passed}")),
                });
            }
            done.push(label.clone());
        }
        Ok(format!(
            "{} values passed in {:.2} s: {}",
            done.len(),
            t0.elapsed().as_secs_f64(),
            done.join(", ")
        ))
    }

    /// Count the block's flash operations, then for every cut point: restore, cut there, run
    /// the block (it dies with the board), power on through `then` and require it to pass.
    fn sweep(
        &mut self,
        w: &crate::scenario::SweepStep,
        obs: &mut dyn Observer,
    ) -> Result<String, StepFail> {
        let t0 = Instant::now();
        let start = self.probe.snapshot()?;
        let before = self
            .probe
            .flash_op_count()
            .ok_or_else(|| StepFail::Board("this board does not count flash operations".into()))?;
        self.run_block(&w.cut_during, obs)?;
        let total = self.probe.flash_op_count().unwrap_or(before) - before;
        let clean = self.probe.snapshot()?;
        let timeout = Duration::from_millis(300);
        let mut checked = 0u64;
        let mut k = 1;
        while k <= total {
            if let Some(why) = self.must_stop() {
                self.probe.restore(&clean)?;
                return Err(StepFail::Board(format!(
                    "{why} during the sweep after {checked} of {total} cut points"
                )));
            }
            self.probe.restore(&start)?;
            self.probe.power_cut(PowerCutAt::FlashOp(k))?;
            // Nothing answers once the power is gone: do not wait long for it.
            self.client.set_timeout(timeout);
            let _ = self.run_block(&w.cut_during, obs);
            let cut_op = self.probe.last_flash_op().unwrap_or_default();
            self.client.set_timeout(self.request_timeout);
            if let Err(e) = self.run_block(&w.then, obs) {
                if let Some(why) = self.deadline_passed() {
                    self.probe.restore(&clean)?;
                    return Err(StepFail::Board(format!(
                        "{why} during the sweep after {checked} of {total} cut points"
                    )));
                }
                let what = match e {
                    StepFail::Mismatch(m) => m.summary,
                    StepFail::Device(d) => format!("device answered {}", d.name()),
                    StepFail::Board(b) => b,
                };
                return Err(StepFail::Mismatch(Mismatch::new(
                    format!("after a power cut at flash operation {k}/{total} ({cut_op}): {what}"),
                    format!(
                        "  {checked} earlier cut points recovered; this one did not\n  cut at: {cut_op}\n"
                    ),
                )));
            }
            checked += 1;
            k += w.every.max(1);
        }
        // Later steps continue from the uninterrupted outcome.
        self.probe.restore(&clean)?;
        self.collect_log();
        Ok(format!(
            "{checked} cut points of {total} flash operations checked in {:.2} s, all recovered",
            t0.elapsed().as_secs_f64()
        ))
    }

    /// Upload until `pct` percent is acknowledged, then cut power: the rest of the upload
    /// goes unanswered. Passing means the cut happened; the device's state is for later steps.
    fn upload_with_cut(
        &mut self,
        fixture: &str,
        image: u32,
        pct: usize,
        obs: &mut dyn Observer,
    ) -> Result<String, StepFail> {
        let data = self.fixture(fixture).bytes.clone();
        let threshold = data.len() * pct / 100;
        let mut cut_at = None;
        let probe = &mut self.probe;
        // Nothing answers after the cut: do not wait the normal timeouts for it.
        self.client.set_timeout(Duration::from_millis(200));
        self.client.set_upload_tries(1);
        let request_timeout = self.request_timeout;
        let r = self.client.upload(image, &data, &mut |sent, total| {
            obs.upload_progress(sent, total);
            if cut_at.is_none() && sent >= threshold {
                cut_at = Some(sent);
                let _ = probe.power_cut(PowerCutAt::Now);
            }
        });
        self.client.set_timeout(request_timeout);
        self.client
            .set_upload_tries(dfu_hil_smp::client::DEFAULT_UPLOAD_TRIES);
        match (cut_at, r) {
            (Some(at), Err(_)) => Ok(format!(
                "power cut after {at}/{} bytes were acknowledged; upload interrupted",
                data.len()
            )),
            (Some(at), Ok(_)) => Ok(format!(
                "power cut after the last chunk ({at}/{} bytes)",
                data.len()
            )),
            (None, r) => {
                r?;
                Ok("upload finished before the cut point".into())
            }
        }
    }

    fn expect(&mut self, e: &crate::scenario::ExpectStep) -> Result<String, StepFail> {
        let mut fields = Vec::new();
        let core = self.probe.core_state()?;
        if e.running.is_some() && core != CoreState::Running {
            fields.push(expect::Field {
                what: "core".into(),
                expected: "running".into(),
                actual: core.to_string(),
            });
            return Err(StepFail::Mismatch(Mismatch::from_fields(&fields)));
        }
        let slots = self.client.image_state()?;
        self.image_list_before = Some(slots_line(&slots, |h| self.name_of_hash(h)));
        if let Some(want) = &e.running {
            let want_hash = self.image_hash(want)?;
            let active = slots.iter().find(|s| s.active);
            let actual = match active {
                Some(s) => format!(
                    "{} (slot {}, v{})",
                    self.name_of_hash(&s.hash),
                    s.slot,
                    s.version
                ),
                None => "no active slot reported".into(),
            };
            if active.map(|s| &s.hash) != Some(&want_hash) {
                fields.push(expect::Field {
                    what: "running".into(),
                    expected: want.clone(),
                    actual,
                });
            }
        }
        for (n, want) in [(0u32, &e.slot0), (1u32, &e.slot1)] {
            let Some(want) = want else { continue };
            let got = slots
                .iter()
                .find(|s| s.slot == n && s.image == e.image_number);
            let want_hash = match &want.image {
                Some(f) => Some((f.clone(), self.image_hash(f)?)),
                None => None,
            };
            fields.extend(expect::slot(
                n,
                want,
                got,
                want_hash.as_ref().map(|(f, h)| (f.as_str(), h.as_slice())),
                |h| self.name_of_hash(h),
            ));
        }
        if fields.is_empty() {
            Ok(slots_line(&slots, |h| self.name_of_hash(h)))
        } else {
            Err(StepFail::Mismatch(Mismatch::from_fields(&fields)))
        }
    }

    /// "\n  diagnosis: …" when the evidence points at a known cause, else empty.
    fn diagnosis(&mut self, device_error: Option<String>, step: &Step) -> String {
        let device_error = device_error.or_else(|| self.last_device_error.clone());
        let core = self.probe.core_state().ok();
        let mut trailers = Vec::new();
        for pair in &self.layout.images {
            for region in [&pair.primary, &pair.secondary] {
                if let Ok(t) = expect::read_trailer(
                    self.probe.as_mut(),
                    self.layout,
                    &self.scenario.scenario.bootloader,
                    region,
                ) {
                    trailers.push((region.clone(), t));
                }
            }
        }
        let primary_head = self
            .layout
            .images
            .first()
            .and_then(|p| self.probe.read(&p.primary, 0, 0x1000).ok());
        self.collect_log();
        let facts = crate::diagnosis::Facts {
            core,
            log: &self.device_log,
            trailers,
            primary_head,
            device_error,
            during_upload: matches!(step, Step::Upload(_)),
        };
        match crate::diagnosis::diagnose(&facts) {
            Some(d) => format!("\n  diagnosis: {d}"),
            None => String::new(),
        }
    }

    /// Every slot's trailer as one line each, read through the probe.
    fn trailer_lines(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for pair in &self.layout.images {
            for region in [&pair.primary, &pair.secondary] {
                let line = match expect::read_trailer(
                    self.probe.as_mut(),
                    self.layout,
                    &self.scenario.scenario.bootloader,
                    region,
                ) {
                    Ok(t) => t.to_string(),
                    Err(e) => format!("unreadable ({e})"),
                };
                out.push((region.clone(), line));
            }
        }
        out
    }

    /// The state a DFU engineer wants beside any failure: core, image list and every trailer
    /// before and after the step, the last SMP exchanges and device log lines.
    fn evidence_snapshot(&mut self) -> String {
        let mut out = String::from("evidence:\n");
        let core = self.probe.core_state();
        match &core {
            Ok(c) => out.push_str(&format!("  core:       {c}\n")),
            Err(e) => out.push_str(&format!("  core:       unknown ({e})\n")),
        }
        if let Some(before) = &self.image_list_before {
            out.push_str(&format!("  image list at the last expect: {before}\n"));
        }
        if matches!(core, Ok(CoreState::Running)) {
            match self.client.image_state() {
                Ok(slots) => out.push_str(&format!(
                    "  image list: {}\n",
                    slots_line(&slots, |h| self.name_of_hash(h))
                )),
                Err(e) => out.push_str(&format!("  image list: unavailable ({e})\n")),
            }
        }
        let before = std::mem::take(&mut self.trailers_before);
        for (region, now) in self.trailer_lines() {
            match before.iter().find(|(r, _)| *r == region) {
                Some((_, was)) if *was != now => {
                    out.push_str(&format!("  trailer {region} before: {was}\n"));
                    out.push_str(&format!("  trailer {region} after:  {now}\n"));
                }
                _ => out.push_str(&format!("  trailer {region}: {now}\n")),
            }
        }
        let exchanges = self.client.transcript();
        if !exchanges.is_empty() {
            out.push_str("  last SMP exchanges:\n");
            for e in &exchanges[exchanges.len().saturating_sub(3)..] {
                for l in dfu_hil_smp::format_exchange(e).lines() {
                    out.push_str(&format!("    {l}\n"));
                }
            }
        }
        self.collect_log();
        let tail: Vec<&String> = self.device_log.iter().rev().take(8).collect();
        if !tail.is_empty() {
            out.push_str("  device log (last lines):\n");
            for l in tail.into_iter().rev() {
                out.push_str(&format!("    {l}\n"));
            }
        }
        out
    }
}

/// Does a device error match the name a scenario gives (`NO_FREE_SLOT`, `image/NO_FREE_SLOT`,
/// `NOT_SUPPORTED`, `ENOTSUP`, or a number)?
fn error_matches(want: &str, got: &dfu_hil_smp::DeviceError) -> bool {
    use dfu_hil_smp::DeviceError;
    let (group, name) = match want.split_once('/') {
        Some((g, n)) => (Some(g.to_ascii_lowercase()), n),
        None => (None, want),
    };
    let name = name.trim().to_ascii_uppercase();
    let (g, rc) = match got {
        DeviceError::Mgmt { rc } => (None, *rc),
        DeviceError::Group { group, rc } => (Some(*group), *rc),
    };
    if let Some(gname) = &group {
        let ok = match g {
            None => gname == "smp" || gname == "mgmt",
            Some(n) => {
                dfu_hil_smp::header::group_name(n).is_some_and(|s| s.eq_ignore_ascii_case(gname))
                    || gname == &n.to_string()
            }
        };
        if !ok {
            return false;
        }
    }
    if name.parse::<u32>().ok() == Some(rc) {
        return true;
    }
    let names: Vec<String> = match g {
        None => vec![
            dfu_hil_smp::mgmt_err_name(rc).to_ascii_uppercase(),
            dfu_hil_smp::errors::mgmt_err_human(rc).to_ascii_uppercase(),
        ],
        Some(grp) => dfu_hil_smp::group_err_name(grp, rc)
            .map(|n| vec![n.to_ascii_uppercase()])
            .unwrap_or_default(),
    };
    names
        .iter()
        .any(|n| n == &name || n.trim_start_matches("MGMT_ERR_") == name)
}

pub fn short_hash(h: &[u8]) -> String {
    hex::encode(&h[..h.len().min(4)])
}

fn slots_line(slots: &[SlotState], name: impl Fn(&[u8]) -> String) -> String {
    if slots.is_empty() {
        return "(no slots)".into();
    }
    slots
        .iter()
        .map(|s| {
            let mut flags = vec![];
            for (on, f) in [
                (s.active, "active"),
                (s.confirmed, "confirmed"),
                (s.pending, "pending"),
                (s.permanent, "permanent"),
            ] {
                if on {
                    flags.push(f);
                }
            }
            let image = match s.image {
                0 => String::new(),
                n => format!("image {n} "),
            };
            format!(
                "{image}slot{} {} v{} [{}]",
                s.slot,
                name(&s.hash),
                s.version,
                flags.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod device_link_tests {
    use super::*;
    use dfu_hil_smp::LineLimits;

    fn scenario(device: &str) -> LoadedScenario {
        let text = format!("name: t\nlayout: nrf52840-internal\n{device}steps:\n  - reset: {{}}\n");
        crate::scenario::parse(&text, Path::new("t.yaml")).unwrap()
    }

    fn lines(n: usize) -> LineSetting {
        LineSetting::Known(LineLimits::new(128, n).unwrap())
    }

    #[test]
    fn command_line_then_scenario_then_board_then_zephyr_defaults() {
        let board = DeviceLinkOptions::from_facts(
            &dfu_hil_board::DeviceLinkFacts {
                serial_lines: Some("6x128".into()),
                reset_delay_ms: Some(900),
                boot_timeout_s: Some(5),
            },
            "board dk-1",
        )
        .unwrap();
        let cli = DeviceLinkOptions {
            serial_lines: Some(lines(8)),
            serial_lines_source: "--serial-lines 8x128".into(),
            ..DeviceLinkOptions::default()
        };
        let none = DeviceLinkOptions::default();
        let plain = scenario("");
        let own = scenario("device: { serial-lines: 4x128, reset-delay-ms: 100 }\n");

        let d = device_link(&plain, &none, &none).unwrap();
        assert_eq!(d.lines, LineSetting::default());
        assert!(
            d.lines_source.starts_with("Zephyr defaults"),
            "{}",
            d.lines_source
        );
        assert_eq!(d.boot, BootWait::default());

        let d = device_link(&plain, &none, &board).unwrap();
        assert_eq!(d.lines, lines(6));
        assert_eq!(d.lines_source, "board dk-1 device-link.serial-lines");
        assert_eq!(d.boot.reset_delay, Duration::from_millis(900));
        assert_eq!(d.boot.boot_timeout, Duration::from_secs(5));

        let d = device_link(&own, &none, &board).unwrap();
        assert_eq!(d.lines, lines(4));
        assert_eq!(d.boot.reset_delay, Duration::from_millis(100));
        assert_eq!(
            d.boot.boot_timeout,
            Duration::from_secs(5),
            "board fills the gap"
        );

        let d = device_link(&own, &cli, &board).unwrap();
        assert_eq!(d.lines, lines(8));
        assert_eq!(d.lines_source, "--serial-lines 8x128");

        let bad = scenario("device: { serial-lines: lots }\n");
        let e = device_link(&bad, &none, &none).unwrap_err();
        assert!(e.contains("device.serial-lines"), "{e}");
        // A huge value waits (clamped), it does not overflow.
        let huge = scenario("device: { reset-delay-ms: 18446744073709551615 }\n");
        let d = device_link(&huge, &none, &none).unwrap();
        assert_eq!(d.boot.reset_delay, Duration::from_secs(3600));
    }
}
