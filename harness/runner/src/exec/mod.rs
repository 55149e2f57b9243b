//! The executor: runs one scenario's steps against a board, emits what happens as typed
//! events, and returns the typed result.
//!
//! A failed step stops the scenario (later steps are reported as skipped), but evidence is
//! always collected: the device log, the SMP transcript and trailer dumps of every slot.
//!
//! The executor is split by job: this file holds the loop (deadlines, interrupts, results),
//! `steps.rs` one function per step kind, `sweep.rs` the sweeps and cut uploads,
//! `evidence_text.rs` the evidence beside a failure and the diagnosis, `at_cut.rs` the flash
//! kept at a failing sweep's cut point, `smp_errors.rs` the
//! matching of device errors against a scenario's words.

mod at_cut;
mod device_manager;
mod evidence_text;
mod smp_errors;
mod steps;
mod sweep;

pub use evidence_text::short_hash;

use crate::event::{Event, EventSink};
use crate::fixtures::Built;
use crate::options::RunOptions;
use crate::prepare::elf_path;
use crate::result::{BoardFailureKind, Failure, ScenarioResult, StepResult, StepStatus};
use crate::scenario::LoadedScenario;
use dfu_hil_board::{Board, CoreState, FlashOpCuts, Link, PowerControl, Probe, Snapshots};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_smp::{BootWait, Client, LineSetting, RequestOptions, Transport, Using};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The options of SMP commands in force: the run's (`--request-timeout-ms`), or a sweep's
    /// shorter ones while the power is off ([`Ctx::with_request`]). Passed with every command
    /// ([`Ctx::smp`]); the client itself keeps none.
    request: RequestOptions,
    /// When the current step must end, and why (step or scenario timeout).
    step_deadline: Option<(Instant, String)>,
    /// How to wait for the device after a reset.
    boot: BootWait,
    /// The flash at the cut point of a sweep whose recovery failed (see `at_cut.rs`).
    at_cut: Option<crate::evidence::AtCut>,
    /// The device link settings the client was set up with, for a twin board's client.
    link_setup: Option<crate::device_link::DeviceLink>,
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

/// Run one prepared scenario on a board, telling `events` what happens as it happens.
pub fn run_scenario(
    s: &LoadedScenario,
    layout: &Layout,
    fixtures: &BTreeMap<String, Built>,
    board: Board,
    opts: &RunOptions,
    events: &mut dyn EventSink,
) -> ScenarioResult {
    events.event(&Event::ScenarioStarted {
        scenario: s,
        board: &board.name,
    });
    let started = Instant::now();
    let board_name = board.name.clone();
    let mut ctx = Ctx {
        probe: board.probe,
        client: Client::with_request_options(
            board.link,
            RequestOptions::timeout(opts.request_timeout),
        ),
        layout,
        scenario: s,
        fixtures,
        device_log: Vec::new(),
        cut_upload_at: None,
        last_device_error: None,
        trailers_before: Vec::new(),
        image_list_before: None,
        interrupt: opts.interrupt.clone(),
        request: RequestOptions::timeout(opts.request_timeout),
        step_deadline: None,
        boot: BootWait::default(),
        at_cut: None,
        link_setup: None,
    };
    // Checked in `prepare`; a scenario run without it gets the defaults.
    let device = crate::device_link::device_link(s, &opts.device, &opts.board_device)
        .unwrap_or_else(|_| crate::device_link::DeviceLink {
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
    ctx.link_setup = Some(device);
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
        .map(secs)
        .unwrap_or(opts.step_timeout);
    let deadline = s
        .scenario
        .timeout_s
        .map(secs)
        .or(opts.scenario_timeout)
        .and_then(|d| started.checked_add(d));
    let total = s.scenario.steps.len();
    let mut steps = Vec::new();
    let mut stopped = false;
    for (i, st) in s.scenario.steps.iter().enumerate() {
        let why_not = if opts.interrupt.load(Ordering::SeqCst) {
            Some(Failure::Interrupted {
                message: "interrupted (Ctrl-C / SIGTERM) before this step".into(),
            })
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Failure::Timeout {
                message: "scenario timeout reached before this step".into(),
            })
        } else {
            None
        };
        if let (Some(why), false) = (why_not, stopped) {
            stopped = true;
            let mut r = StepResult::new(s, i, StepStatus::Error, why.summary());
            r.failure = Some(why);
            r.evidence = ctx.evidence_snapshot();
            events.event(&Event::StepFinished { result: &r, total });
            steps.push(r);
            continue;
        }
        if stopped {
            let r = StepResult::new(
                s,
                i,
                StepStatus::Skipped,
                "skipped: an earlier step failed".into(),
            );
            events.event(&Event::StepFinished { result: &r, total });
            steps.push(r);
            continue;
        }
        let summary = st.value.summary();
        events.event(&Event::StepStarted {
            index: i + 1,
            total,
            summary: &summary,
        });
        let step_end = match Instant::now().checked_add(step_timeout) {
            Some(t) => t,
            None => Instant::now() + Duration::from_secs(u32::MAX as u64),
        };
        let step_end = (
            step_end,
            format!("step timeout {} s", step_timeout.as_secs_f64()),
        );
        ctx.step_deadline = Some(match deadline {
            Some(d) if d < step_end.0 => (d, "scenario timeout".into()),
            _ => step_end,
        });
        ctx.client.set_deadline(ctx.step_deadline.clone());
        ctx.trailers_before = ctx.trailer_lines();
        let t0 = Instant::now();
        let outcome = ctx.step(&st.value, events);
        // Evidence is read after the deadline too.
        ctx.client.set_deadline(None);
        ctx.step_deadline = None;
        ctx.collect_log();
        let mut r = StepResult::new(s, i, StepStatus::Passed, String::new());
        match outcome {
            Ok(msg) => r.message = msg,
            Err(f) => {
                r.status = f.status();
                r.message = f.summary();
                if f.is_device_behaviour() {
                    let device_error = match &f {
                        Failure::Device(d) => Some(d.name()),
                        _ => None,
                    };
                    r.diagnosis = ctx.diagnosis(device_error, &st.value);
                }
                r.evidence = ctx.evidence_snapshot();
                r.failure = Some(f);
            }
        }
        r.elapsed = t0.elapsed();
        stopped = r.status != StepStatus::Passed;
        events.event(&Event::StepFinished { result: &r, total });
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
    events.event(&Event::ScenarioFinished { result: &result });
    result
}

/// Seconds from a scenario file as a duration; absurd values (beyond a century) are clamped
/// rather than overflowing the clock.
fn secs(s: u64) -> Duration {
    Duration::from_secs(s.min(100 * 365 * 24 * 3600))
}

fn ctx_evidence<'c, 'a>(ctx: &'c mut Ctx<'a>) -> crate::evidence::Sources<'c> {
    crate::evidence::Sources {
        probe: ctx.probe.as_mut(),
        layout: ctx.layout,
        bootloader: &ctx.scenario.scenario.bootloader,
        fixtures: ctx.fixtures,
        at_cut: ctx.at_cut.as_ref(),
        from_build: ctx.scenario.scenario.from_build.as_deref(),
    }
}

impl<'a> Ctx<'a> {
    /// The SMP client with the request options in force for its option-less commands.
    fn smp(&mut self) -> Using<'_, Link> {
        self.client.using(self.request)
    }

    /// Run `f` with other request options in force; the previous ones come back on every
    /// path out of `f` (an error, a `?`), so nothing is restored by hand.
    fn with_request<R>(&mut self, options: RequestOptions, f: impl FnOnce(&mut Self) -> R) -> R {
        let saved = std::mem::replace(&mut self.request, options);
        let r = f(self);
        self.request = saved;
        r
    }

    /// A context on a twin of this board (same state, own probe and SMP client set up like
    /// this one), for checking sweep cut points in parallel; `None` when the board has none.
    fn twin(&mut self) -> Option<Ctx<'a>> {
        let board = self.probe.flash_op_cuts()?.twin()?;
        let mut client = Client::with_request_options(board.link, self.request);
        if let Some(d) = &self.link_setup {
            client
                .transport_mut()
                .set_line_limits(d.lines.limits(), &d.lines_source);
            client.set_discover_lines(matches!(d.lines, LineSetting::Discover(_)));
        }
        Some(Ctx {
            probe: board.probe,
            client,
            layout: self.layout,
            scenario: self.scenario,
            fixtures: self.fixtures,
            device_log: Vec::new(),
            cut_upload_at: None,
            last_device_error: None,
            trailers_before: Vec::new(),
            image_list_before: None,
            interrupt: self.interrupt.clone(),
            request: self.request,
            step_deadline: self.step_deadline.clone(),
            boot: self.boot,
            at_cut: None,
            link_setup: self.link_setup.clone(),
        })
    }

    /// The board's snapshots, or why a sweep cannot run on it.
    fn snapshots(&mut self) -> Result<&mut dyn Snapshots, Failure> {
        self.probe.snapshots().ok_or_else(|| {
            Failure::board(
                BoardFailureKind::Unsupported,
                "this board cannot save and restore its state (sweeps need the simulated board)",
            )
        })
    }

    /// The board's flash-operation cuts, or why a sweep cannot run on it.
    fn flash_op_cuts(&mut self) -> Result<&mut dyn FlashOpCuts, Failure> {
        self.probe.flash_op_cuts().ok_or_else(|| {
            Failure::board(
                BoardFailureKind::Unsupported,
                "this board cannot cut power at an exact flash operation (it does not count \
                 them); use the simulated board for sweeps",
            )
        })
    }

    /// The board's power control, or why a power cut cannot happen on it.
    fn power_control(&mut self) -> Result<&mut dyn PowerControl, Failure> {
        self.probe.power_control().ok_or_else(|| {
            Failure::board(
                BoardFailureKind::Unsupported,
                "this board has no power-cut capability",
            )
        })
    }

    /// `until` shortened to the current step's deadline.
    fn clip(&self, until: Instant) -> Instant {
        match &self.step_deadline {
            Some((d, _)) => until.min(*d),
            None => until,
        }
    }

    /// An error once the step's deadline has passed (the step then ends as an error, not a
    /// failed expectation: the device was not given the time to show what it does).
    fn past_deadline(&self) -> Result<(), Failure> {
        self.deadline_passed()
            .map_or(Ok(()), |message| Err(Failure::Timeout { message }))
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

    /// After a reset: for an `os reset`, wait until the old image has really gone (it answers
    /// for `CONFIG_MCUMGR_GRP_OS_RESET_MS` after accepting the request); then, if the core
    /// runs, until the new boot answers SMP. Returns what happened, with the time it took.
    fn after_reset(&mut self, smp_reset: bool) -> Result<String, Failure> {
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

    fn image_hash(&self, name: &str) -> Result<Vec<u8>, Failure> {
        self.fixture(name).image_hash.clone().ok_or_else(|| {
            Failure::board(
                BoardFailureKind::Scenario,
                format!("fixture `{name}` is not an MCUboot image (no hash TLV)"),
            )
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
}
