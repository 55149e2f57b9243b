//! The board farm: run scenarios across the boards of one host (a board farm runner).
//!
//! One worker thread per board. A board takes the next pending scenario (variant) it can run:
//!
//! * **layout**: an inventory entry with `layout:` only runs scenarios for that layout; entries
//!   without one, and simulated boards, run any layout;
//! * **capabilities** a scenario needs, derived from its transport and steps by
//!   `dfu_hil_runner::needs` (e.g. `sweep` needs `flash-op-cut`, which only simulated boards
//!   have; `expect-trailer` on external flash needs `read-external-flash`; `transport: ble`
//!   needs `ble`).
//!
//! Every board is locked host-locally first (`flock(2)` on `<lock-dir>/<board-id>.lock`), so two
//! farm jobs on one host never share a board; the holder writes who it is into the file, which
//! a waiting job reports when it gives up. Simulated boards (`--sim N`, ids `sim-0`…) live in
//! this process only and are not locked.
//!
//! After every scenario the board is recovered: hardware gets a probe reset (`ResetKind::Run`);
//! a simulated board needs nothing (each scenario gets a fresh one). A board whose recovery
//! fails takes no further scenario.
//!
//! Flaky policy (`--reruns N`): a failed scenario is rerun up to N times on the same board. Pass
//! after a failure = flaky (counts as a pass, reported as `<flakyFailure>` records); failing every
//! time = failure with `<rerunFailure>` records.
//!
//! Reports in `--out DIR`: `junit-<board>.xml` per board, `junit.xml` merged (testcases are
//! `<board>/<scenario>`), `results.json` (final attempt of every scenario, as `dfu-hil run`
//! writes it) and `farm.json` (per scenario: board, verdict, attempts; per board: lock wait).
//!
//! Scenarios are planned as `dfu-hil run` plans them ([`dfu_hil_runner::plan`]): an invalid
//! file or variant is reported and the valid ones still run.
//!
//! The outcome is a [`FarmStatus`]; the CLI maps it to the exit codes of the rest of the CLI
//! (0 all passed, flaky included; 100 failures; 98 a board unavailable / lock timeout /
//! recovery failed; 96 invalid input; 4 nothing selected; 130 interrupted).

use crate::lock::lock_board;
use crate::report::write_farm_reports;
use crate::select::BoardChoice;
use crate::verdict::{Outcome, Unrunnable, Verdict};
use dfu_hil_board::hw::{BoardProfile, Capability, Inventory};
use dfu_hil_board::ResetKind;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_runner::console::Console;
use dfu_hil_runner::event::{Event, EventSink};
use dfu_hil_runner::needs;
use dfu_hil_runner::plan::{self, Prepared};
use dfu_hil_runner::run::{self, DeviceLinkOptions, RunOptions};
use dfu_hil_runner::scenario::TransportKind;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one farm run does: which scenarios, on which boards, with which run options. The CLI
/// builds it from `dfu-hil farm`'s arguments.
#[derive(Debug, Clone)]
pub struct FarmOptions {
    /// Lab inventory of this host's boards (`None`: $DFU_HIL_INVENTORY; neither = only `sim`).
    pub inventory: Option<PathBuf>,
    /// Substrings of scenario names (all of scenarios/ when empty), as `dfu-hil run` takes them.
    pub patterns: Vec<String>,
    /// Only scenarios carrying any of these tags.
    pub tags: Vec<String>,
    /// Only inventory boards carrying all of these tags.
    pub board_tags: Vec<String>,
    /// Simulated boards (`sim-0`…) to add as workers.
    pub sim: usize,
    /// Reruns of a failed scenario on the same board.
    pub reruns: u32,
    /// Report folder (`None`: `<root>/target/dfu-hil`).
    pub out: Option<PathBuf>,
    /// Evidence folder (`None`: `<out>/evidence`, then one folder per board).
    pub evidence: Option<PathBuf>,
    /// Folder of the host-local board lock files.
    pub lock_dir: PathBuf,
    /// How long to wait for a board another job holds.
    pub lock_timeout: Duration,
    /// Timeout of one SMP request.
    pub request_timeout: Duration,
    /// Deadline of each scenario (`None`: the runner's default; a scenario's `timeout-s` wins).
    pub scenario_timeout: Option<Duration>,
    /// Deadline of each step (`None`: the runner's default; a scenario's `step-timeout-s`
    /// wins), as `dfu-hil run --step-timeout-s`.
    pub step_timeout: Option<Duration>,
    /// Print each board's step lines (default: only the per-board summary and failures).
    pub show_steps: bool,
    /// Device link facts from the command line (over the scenario's and the board's).
    pub device: DeviceLinkOptions,
    /// Set by whoever handles Ctrl-C / SIGTERM: the current steps finish, no new scenario
    /// starts, reports are written.
    pub interrupt: Arc<AtomicBool>,
}

impl FarmOptions {
    /// The defaults of `dfu-hil farm`.
    pub fn new() -> Self {
        FarmOptions {
            inventory: None,
            patterns: Vec::new(),
            tags: Vec::new(),
            board_tags: Vec::new(),
            sim: 0,
            reruns: 0,
            out: None,
            evidence: None,
            lock_dir: PathBuf::from(DEFAULT_LOCK_DIR),
            lock_timeout: Duration::from_secs(DEFAULT_LOCK_TIMEOUT_S),
            request_timeout: Duration::from_millis(2500),
            scenario_timeout: None,
            step_timeout: None,
            show_steps: false,
            device: DeviceLinkOptions::default(),
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The run options every scenario starts from (the board's device link and the
    /// evidence folder are set per attempt).
    fn run_options(&self, root: &Path, evidence: PathBuf) -> RunOptions {
        let mut opts = RunOptions::new(root.to_owned(), evidence);
        opts.interrupt = self.interrupt.clone();
        opts.request_timeout = self.request_timeout;
        opts.device = self.device.clone();
        if let Some(t) = self.scenario_timeout {
            opts.scenario_timeout = Some(t);
        }
        if let Some(t) = self.step_timeout {
            opts.step_timeout = t;
        }
        opts
    }
}

impl Default for FarmOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Default folder of the host-local lock files.
pub const DEFAULT_LOCK_DIR: &str = "/tmp/dfu-hil-locks";
/// Default wait for a board held by another job, in seconds.
pub const DEFAULT_LOCK_TIMEOUT_S: u64 = 600;

/// How a farm run ended, worst first (the CLI maps each to its exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FarmStatus {
    /// Ctrl-C / SIGTERM: what ran is reported.
    Interrupted,
    /// A board could not be used at all (lock timeout, open or recovery failed).
    BoardUnavailable,
    /// A scenario file or variant is invalid (the valid ones ran), or the inventory is.
    InvalidInput,
    /// A scenario failed on every attempt.
    Failed,
    /// No board, no scenario, or nothing these boards can run.
    NothingSelected,
    /// Every scenario passed (flaky ones included).
    Passed,
}

/// One worker of the farm.
#[derive(Debug, Clone)]
pub struct FarmBoard {
    pub id: String,
    /// `None`: runs any layout.
    pub layout: Option<String>,
    pub capabilities: BTreeSet<Capability>,
    /// Its profile in `boards/` (`None`: a simulated board, which stands in for any).
    pub profile: Option<String>,
    pub choice: BoardChoice,
    /// The firmware's SMP link facts (inventory entry over profile).
    pub device_link: dfu_hil_board::DeviceLinkFacts,
}

impl FarmBoard {
    pub fn sim(n: usize) -> Self {
        FarmBoard {
            id: format!("sim-{n}"),
            layout: None,
            capabilities: dfu_hil_board::sim::capabilities(),
            profile: None,
            choice: BoardChoice::Sim,
            device_link: Default::default(),
        }
    }

    pub fn is_sim(&self) -> bool {
        matches!(self.choice, BoardChoice::Sim)
    }

    /// Why this board cannot run a scenario, or `None` if it can. `boards` is the scenario's
    /// `boards:` list (profiles it is written for; empty = any).
    /// [`cannot_run`](Self::cannot_run) for a planned scenario.
    pub fn cannot_run_prepared(&self, p: &Prepared) -> Option<String> {
        self.cannot_run(&p.layout, &p.capabilities(), &p.loaded.scenario.boards)
    }

    pub fn cannot_run(
        &self,
        layout: &Layout,
        needs: &BTreeSet<Capability>,
        boards: &[String],
    ) -> Option<String> {
        if let Some(why) = needs::wrong_board(boards, self.profile.as_deref()) {
            return Some(why);
        }
        if let Some(l) = &self.layout {
            if *l != layout.name {
                return Some(format!("board has layout `{l}`, not `{}`", layout.name));
            }
        }
        let missing: Vec<&str> = needs
            .difference(&self.capabilities)
            .map(|c| c.as_str())
            .collect();
        if !missing.is_empty() {
            return Some(format!("board lacks {}", missing.join(", ")));
        }
        None
    }
}

/// Capabilities a scenario needs from its board (the rules live in `dfu_hil_runner::needs`).
pub fn required_capabilities(
    s: &dfu_hil_runner::scenario::LoadedScenario,
    layout: &Layout,
) -> BTreeSet<Capability> {
    needs::capability_set(&needs::needs(s, layout))
}

/// Why a board takes no (more) scenarios, and how long its lock took.
#[derive(Default)]
pub(crate) struct BoardState {
    /// Reason the board takes no (more) scenarios.
    pub(crate) dead: Option<String>,
    /// Which part failed, for reports: `lock`, `setup` (inventory, profile, layout), or a
    /// board error's kind (`probe`, `link`, `timeout`, `unavailable`, …).
    pub(crate) dead_kind: Option<&'static str>,
    pub(crate) lock_wait: Duration,
}

/// The boards of this farm run: inventory entries carrying every board tag, then `sim` simulated
/// boards.
pub fn farm_boards(opts: &FarmOptions, root: &Path) -> Result<Vec<FarmBoard>, String> {
    let mut boards = Vec::new();
    let inventory = opts
        .inventory
        .clone()
        .or_else(|| std::env::var_os("DFU_HIL_INVENTORY").map(PathBuf::from));
    if let Some(inv_path) = inventory {
        let inv = Inventory::load(&inv_path).map_err(|e| e.to_string())?;
        for entry in inv.with_tags(&opts.board_tags) {
            let profile = BoardProfile::find(&root.join("boards"), &entry.profile)
                .map_err(|e| format!("board `{}`: {e}", entry.id))?;
            boards.push(FarmBoard {
                id: entry.id.clone(),
                layout: entry.layout.clone(),
                capabilities: entry.capabilities(&profile),
                profile: Some(entry.profile.clone()),
                choice: BoardChoice::Hw {
                    inventory: inv_path.clone(),
                    id: entry.id.clone(),
                },
                device_link: entry.device_link.over(&profile.device_link),
            });
        }
    }
    boards.extend((0..opts.sim).map(FarmBoard::sim));
    Ok(boards)
}

/// Run the farm: plan, match scenarios to boards, run them, write the reports in the report
/// folder and print a summary per board.
pub fn run_farm(farm: &FarmOptions, root: &Path) -> FarmStatus {
    // Boards first: an unreadable inventory is invalid input.
    let boards = match farm_boards(farm, root) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return FarmStatus::InvalidInput;
        }
    };
    if boards.is_empty() {
        eprintln!(
            "error: no board: give --inventory (or $DFU_HIL_INVENTORY) with boards tagged {:?}, or --sim N",
            farm.board_tags
        );
        return FarmStatus::NothingSelected;
    }

    let paths = plan::select(root, &farm.patterns, &farm.tags);
    if paths.is_empty() {
        eprintln!(
            "error: no scenario matches {:?} (tags {:?})",
            farm.patterns, farm.tags
        );
        return FarmStatus::NothingSelected;
    }

    let out_dir = farm
        .out
        .clone()
        .unwrap_or_else(|| root.join("target/dfu-hil"));
    let evidence_base = farm
        .evidence
        .clone()
        .unwrap_or_else(|| out_dir.join("evidence"));
    let opts = farm.run_options(root, evidence_base.clone());

    // Everything checkable without a board first, as `run` does: the invalid files and variants
    // are reported (exit 96 at the end) and the valid ones run.
    let planned = plan::plan(&paths, &opts);
    for e in planned.invalid() {
        eprintln!("error: {e}");
    }
    let invalid: Vec<String> = planned.invalid().map(ToString::to_string).collect();
    let items = planned.into_prepared();

    // Scenarios no board of this farm can run: skipped, with the reasons.
    let mut unrunnable = Vec::new();
    let mut runnable = Vec::new();
    for it in items {
        let reasons: Vec<String> = boards
            .iter()
            .filter_map(|b| b.cannot_run_prepared(&it).map(|r| format!("{}: {r}", b.id)))
            .collect();
        if reasons.len() == boards.len() {
            unrunnable.push(Unrunnable {
                name: it.loaded.scenario.name.clone(),
                path: it.loaded.path.clone(),
                layout: it.layout.name.clone(),
                reasons,
            });
        } else {
            runnable.push(it);
        }
    }
    if runnable.is_empty() {
        for u in &unrunnable {
            eprintln!(
                "farm: no board can run {}: {}",
                u.name,
                u.reasons.join("; ")
            );
        }
        if !invalid.is_empty() {
            return FarmStatus::InvalidInput;
        }
        eprintln!("error: nothing to run on these boards");
        return FarmStatus::NothingSelected;
    }
    println!(
        "farm: {} scenario(s) on {} board(s): {}",
        runnable.len(),
        boards.len(),
        boards
            .iter()
            .map(|b| b.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Shared queue: `None` once taken.
    let queue: Mutex<Vec<Option<usize>>> = Mutex::new((0..runnable.len()).map(Some).collect());
    let outcomes: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    let states: Vec<Mutex<BoardState>> = boards.iter().map(|_| Mutex::default()).collect();
    let print_lock = Mutex::new(());

    std::thread::scope(|s| {
        for (bi, board) in boards.iter().enumerate() {
            let queue = &queue;
            let outcomes = &outcomes;
            let state = &states[bi];
            let runnable = &runnable;
            let opts = &opts;
            let evidence_base = &evidence_base;
            let print_lock = &print_lock;
            s.spawn(move || {
                let worker = Worker {
                    board,
                    root,
                    opts,
                    evidence_base,
                    reruns: farm.reruns,
                    show_steps: farm.show_steps,
                    print_lock,
                };
                worker.run(farm, queue, runnable, outcomes, state);
            });
        }
    });

    // What is left in the queue: every board able to run it is dead.
    let mut outcomes: Vec<(usize, Outcome)> = into_inner(outcomes);
    let leftover: Vec<usize> = into_inner(queue).into_iter().flatten().collect();
    for i in leftover {
        let it = &runnable[i];
        let (board, why) = boards
            .iter()
            .zip(&states)
            .filter(|(b, _)| b.cannot_run_prepared(it).is_none())
            .map(|(b, st)| {
                let why = lock(st).dead.clone();
                (b.id.clone(), why.unwrap_or_else(|| "not started".into()))
            })
            .next()
            .unwrap_or_else(|| ("farm".into(), "no board".into()));
        outcomes.push((
            i,
            Outcome {
                board: board.clone(),
                attempts: vec![run::board_unavailable(&it.loaded, &it.layout, &board, &why)],
                infrastructure: true,
            },
        ));
    }
    outcomes.sort_by_key(|(i, _)| *i);
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();

    // Reports.
    let states: Vec<BoardState> = states.into_iter().map(into_inner).collect();
    if let Err(e) = write_farm_reports(&out_dir, &boards, &states, &outcomes, &unrunnable, &invalid)
    {
        eprintln!("warning: reports in {}: {e}", out_dir.display());
    }

    // Console summary per board.
    let mut stdout = std::io::stdout().lock();
    for (b, st) in boards.iter().zip(&states) {
        let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.board == b.id).collect();
        let count = |v: Verdict| {
            mine.iter()
                .filter(|o| !o.infrastructure && o.verdict() == v)
                .count()
        };
        let infra = mine.iter().filter(|o| o.infrastructure).count();
        let mut line = format!(
            "{:<20} {} passed, {} flaky, {} failed",
            b.id,
            count(Verdict::Passed),
            count(Verdict::Flaky),
            count(Verdict::Failed)
        );
        if infra > 0 {
            line.push_str(&format!(", {infra} not run (board unavailable)"));
        }
        if st.lock_wait >= Duration::from_secs(1) {
            line.push_str(&format!(
                ", waited {}s for the lock",
                st.lock_wait.as_secs()
            ));
        }
        if let Some(d) = &st.dead {
            line.push_str(&format!(" — {d}"));
        }
        let _ = writeln!(stdout, "{line}");
        for o in mine.iter().filter(|o| o.verdict() == Verdict::Flaky) {
            let _ = writeln!(
                stdout,
                "  flaky: {} (passed on attempt {})",
                o.last().name,
                o.attempts.len()
            );
        }
    }
    for u in &unrunnable {
        let _ = writeln!(
            stdout,
            "skipped: {} (no board can run it: {})",
            u.name,
            u.reasons.join("; ")
        );
    }
    if !invalid.is_empty() {
        let _ = writeln!(
            stdout,
            "invalid: {} scenario file(s) or variant(s) not run (errors above)",
            invalid.len()
        );
    }
    let _ = writeln!(stdout, "junit: {}", out_dir.join("junit.xml").display());
    drop(stdout);

    // As `dfu-hil run`: a board that could not be used at all (lock timeout, open or recovery
    // failed) is infrastructure; then invalid input; a step error inside a scenario that ran is
    // a failure, as there.
    let infra =
        outcomes.iter().any(|o| o.infrastructure) || states.iter().any(|s| s.dead.is_some());
    let failed = outcomes.iter().any(|o| o.verdict() == Verdict::Failed);
    if farm.interrupt.load(Ordering::SeqCst) {
        FarmStatus::Interrupted
    } else if infra {
        FarmStatus::BoardUnavailable
    } else if !invalid.is_empty() {
        FarmStatus::InvalidInput
    } else if failed {
        FarmStatus::Failed
    } else {
        FarmStatus::Passed
    }
}

/// A mutex's value even if a worker panicked while holding it (what it held is still the
/// best record of what ran).
fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Worker<'a> {
    board: &'a FarmBoard,
    root: &'a Path,
    /// Run options of every scenario; each attempt sets its board's device link and evidence.
    opts: &'a RunOptions,
    evidence_base: &'a Path,
    reruns: u32,
    show_steps: bool,
    print_lock: &'a Mutex<()>,
}

impl Worker<'_> {
    fn run(
        &self,
        farm: &FarmOptions,
        queue: &Mutex<Vec<Option<usize>>>,
        items: &[Prepared],
        outcomes: &Mutex<Vec<(usize, Outcome)>>,
        state: &Mutex<BoardState>,
    ) {
        let b = self.board;
        // Hold the host-local lock for the whole run (simulated boards are process-local).
        let _lock = if b.is_sim() {
            None
        } else {
            match lock_board(&farm.lock_dir, &b.id, farm.lock_timeout) {
                Ok(l) => {
                    state.lock().unwrap_or_else(|e| e.into_inner()).lock_wait = l.waited;
                    eprintln!("[{}] holding {}", b.id, l.path.display());
                    Some(l)
                }
                Err(e) => {
                    eprintln!("farm: {e}");
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    st.dead = Some(e);
                    st.dead_kind = Some("lock");
                    return;
                }
            }
        };
        loop {
            if self.opts.interrupt.load(Ordering::SeqCst) {
                break;
            }
            // The next pending scenario this board can run.
            let picked = {
                let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                let slot = q.iter_mut().find(|slot| {
                    slot.is_some_and(|i| {
                        let it = &items[i];
                        b.cannot_run_prepared(it).is_none()
                    })
                });
                slot.and_then(Option::take)
            };
            let Some(i) = picked else { break };
            let it = &items[i];
            let outcome = self.run_item(it, state);
            let broken = outcome.infrastructure;
            outcomes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((i, outcome));
            if broken {
                state.lock().unwrap_or_else(|e| e.into_inner()).dead =
                    Some("the board could not be opened".into());
                break;
            }
            if let Err((kind, e)) = self.recover(&it.layout, &it.loaded.scenario.name) {
                eprintln!("farm: board `{}`: recovery failed: {e}", b.id);
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                st.dead = Some(format!("recovery failed: {e}"));
                st.dead_kind = Some(kind);
                break;
            }
        }
    }

    /// One scenario with the rerun policy.
    fn run_item(&self, it: &Prepared, state: &Mutex<BoardState>) -> Outcome {
        let b = self.board;
        let mut attempts = Vec::new();
        for attempt in 0..=self.reruns {
            let mut opts = self.opts.clone();
            // Checked when the inventory and profile were loaded.
            if let Ok(d) =
                run::DeviceLinkOptions::from_facts(&b.device_link, &format!("board {}", b.id))
            {
                opts.board_device = d;
            }
            opts.evidence_dir = if attempt == 0 {
                self.evidence_base.join(&b.id)
            } else {
                self.evidence_base
                    .join(&b.id)
                    .join(format!("rerun-{attempt}"))
            };
            let board = match b.choice.open(
                &it.layout,
                it.loaded.scenario.transport,
                self.root,
                &it.loaded.scenario.name,
            ) {
                Ok(mut board) => {
                    board.name = b.id.clone();
                    board
                }
                Err(e) => {
                    eprintln!("error: {}: board {}: {e}", it.loaded.scenario.name, b.id);
                    lock(state).dead_kind = Some(e.kind().map_or("setup", |k| k.as_str()));
                    attempts.push(run::board_unavailable(
                        &it.loaded,
                        &it.layout,
                        &b.id,
                        &e.to_string(),
                    ));
                    return Outcome {
                        board: b.id.clone(),
                        attempts,
                        infrastructure: true,
                    };
                }
            };
            let mut console = Console::buffered(!self.show_steps, false);
            let r = run::run_scenario(
                &it.loaded,
                &it.layout,
                &it.fixtures,
                board,
                &opts,
                &mut console,
            );
            let passed = r.passed();
            AttemptLines {
                board: &b.id,
                print_lock: self.print_lock,
            }
            .event(&Event::AttemptFinished {
                result: &r,
                attempt: attempt as usize + 1,
                of: self.reruns as usize + 1,
            });
            attempts.push(r);
            if passed || self.opts.interrupt.load(Ordering::SeqCst) {
                break;
            }
            if attempt < self.reruns {
                // Recover before rerunning on the same board.
                if let Err((_, e)) = self.recover(&it.layout, &it.loaded.scenario.name) {
                    eprintln!("farm: board `{}`: recovery before rerun failed: {e}", b.id);
                    break;
                }
            }
        }
        Outcome {
            board: b.id.clone(),
            attempts,
            infrastructure: false,
        }
    }

    /// Bring the board back to a known state after a scenario: a probe reset on hardware;
    /// nothing for a simulated board (the next scenario opens a fresh one). An error says
    /// which part failed (as in [`BoardState::dead_kind`]) and why.
    fn recover(&self, layout: &Layout, scenario: &str) -> Result<(), (&'static str, String)> {
        if self.board.is_sim() {
            return Ok(());
        }
        // Recovery needs only the probe; a serial link is the one every board has.
        let mut board = self
            .board
            .choice
            .open(layout, TransportKind::Serial, self.root, scenario)
            .map_err(|e| (e.kind().map_or("setup", |k| k.as_str()), e.to_string()))?;
        board
            .probe
            .reset(ResetKind::Run)
            .map_err(|e| (e.kind().as_str(), format!("probe reset: {e}")))
    }
}

/// The farm's one line per attempt ("[board] pass NAME", "[board] FAIL NAME (rerun 1)" and the
/// failed step at its file:line:col), a sink of the run's events like the console.
struct AttemptLines<'a> {
    board: &'a str,
    print_lock: &'a Mutex<()>,
}

impl EventSink for AttemptLines<'_> {
    fn event(&mut self, event: &Event<'_>) {
        let Event::AttemptFinished {
            result: r, attempt, ..
        } = event
        else {
            return;
        };
        let _g = self.print_lock.lock();
        let what = if r.passed() { "pass" } else { "FAIL" };
        let rerun = if *attempt > 1 {
            format!(" (rerun {})", attempt - 1)
        } else {
            String::new()
        };
        println!("[{}] {what} {}{rerun}", self.board, r.name);
        if let Some(s) = r.failed_step() {
            println!(
                "[{}]   step {} ({}) at {}: {}",
                self.board,
                s.index,
                s.summary,
                s.location(),
                s.message
            );
        }
    }
}
