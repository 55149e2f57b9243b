//! `dfu-hil farm`: run scenarios across the boards of one host (a board farm runner).
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
//! Exit codes as the rest of the CLI: 0 all passed (flaky included), 100 failures, 98 a board
//! unavailable / lock timeout / recovery failed, 96 invalid input, 4 nothing selected.

use crate::board_open::BoardChoice;
use dfu_hil_board::hw::{BoardProfile, Capability, Inventory};
use dfu_hil_board::ResetKind;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_runner::console::Console;
use dfu_hil_runner::fixtures::Built;
use dfu_hil_runner::run::{self, RunOptions, ScenarioResult, StepStatus};
use dfu_hil_runner::scenario::{self, LoadedScenario, TransportKind};
use dfu_hil_runner::{exit, needs, report};
use quick_junit::{FlakyOrRerun, NonSuccessKind, Report, TestCaseStatus, TestRerun};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct FarmArgs {
    /// Lab inventory of this host's boards (default: $DFU_HIL_INVENTORY; none = only --sim).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Substrings of scenario names to select (all of scenarios/ when none is given).
    pub patterns: Vec<String>,
    /// Only scenarios carrying this tag (repeatable: any of them).
    #[arg(long = "tag", short = 't')]
    pub tags: Vec<String>,
    /// Only inventory boards carrying this tag (repeatable: all of them).
    #[arg(long = "board-tag")]
    pub board_tags: Vec<String>,
    /// Add N simulated boards (`sim-0`…) as workers: the farm without hardware.
    #[arg(long, default_value_t = 0)]
    pub sim: usize,
    /// Rerun a failed scenario up to N times on the same board (pass after fail = flaky).
    #[arg(long, default_value_t = 0)]
    pub reruns: u32,
    /// Report folder: junit-<board>.xml, junit.xml (merged), results.json, farm.json
    /// (default target/dfu-hil).
    #[arg(long, visible_alias = "junit")]
    pub out: Option<PathBuf>,
    /// Folder for per-scenario evidence (default <out>/evidence/<board>).
    #[arg(long)]
    pub evidence: Option<PathBuf>,
    /// Folder of the host-local board lock files.
    #[arg(long, default_value = "/tmp/dfu-hil-locks")]
    pub lock_dir: PathBuf,
    /// How long to wait for a board held by another job, in seconds.
    #[arg(long, default_value_t = 600)]
    pub lock_timeout_s: u64,
    /// Timeout of one SMP request, in milliseconds.
    #[arg(long, default_value_t = 2500)]
    pub request_timeout_ms: u64,
    /// Deadline for each scenario, in seconds (a scenario's `timeout-s` wins).
    #[arg(long)]
    pub scenario_timeout_s: Option<u64>,
    /// Print each board's step lines (default: only the per-board summary and failures).
    #[arg(long)]
    pub show_steps: bool,
    #[command(flatten)]
    pub device: crate::link_args::DeviceLinkArgs,
}

impl FarmArgs {
    /// Defaults as clap would set them (for callers building the arguments in code).
    pub fn new() -> Self {
        FarmArgs {
            inventory: None,
            patterns: Vec::new(),
            tags: Vec::new(),
            board_tags: Vec::new(),
            sim: 0,
            reruns: 0,
            out: None,
            evidence: None,
            lock_dir: PathBuf::from("/tmp/dfu-hil-locks"),
            lock_timeout_s: 600,
            request_timeout_ms: 2500,
            scenario_timeout_s: None,
            show_steps: false,
            device: Default::default(),
        }
    }
}

impl Default for FarmArgs {
    fn default() -> Self {
        Self::new()
    }
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
            // The simulated board can do everything the harness knows about.
            capabilities: Capability::ALL.iter().copied().collect(),
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
pub fn required_capabilities(s: &LoadedScenario, layout: &Layout) -> BTreeSet<Capability> {
    needs::capability_set(&needs::needs(s, layout))
}

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

// ---------------------------------------------------------------------------------------------
// Host-local board locks.

/// An exclusive `flock(2)` on `<dir>/<board>.lock`, released when dropped (and by the kernel
/// when the process dies, so a killed CI job never leaves a board locked).
#[derive(Debug)]
pub struct BoardLock {
    _file: File,
    pub path: PathBuf,
    /// How long it took to get.
    pub waited: Duration,
}

/// Take the lock of `board`, waiting up to `timeout`. The error names the holder when it wrote
/// itself into the file.
pub fn lock_board(dir: &Path, board: &str, timeout: Duration) -> Result<BoardLock, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("lock dir {}: {e}", dir.display()))?;
    let path = dir.join(format!("{board}.lock"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let started = Instant::now();
    let mut announced = false;
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.raw_os_error() != Some(libc::EINTR)
        {
            return Err(format!("{}: flock: {err}", path.display()));
        }
        let holder = read_holder(&path);
        if started.elapsed() >= timeout {
            return Err(format!(
                "board `{board}` is locked by another job ({}) — gave up after {}s waiting for {}",
                holder.as_deref().unwrap_or("holder unknown"),
                timeout.as_secs(),
                path.display()
            ));
        }
        if !announced {
            eprintln!(
                "farm: board `{board}` is busy ({}), waiting up to {}s",
                holder.as_deref().unwrap_or("holder unknown"),
                timeout.as_secs()
            );
            announced = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Say who holds it, for whoever waits next.
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let who = format!(
        "pid {} on {} ({}), since unix {}",
        std::process::id(),
        host.trim(),
        std::env::var("CI_JOB_URL")
            .or_else(|_| std::env::var("GITHUB_RUN_ID").map(|id| format!("github run {id}")))
            .unwrap_or_else(|_| "dfu-hil farm".into()),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(who.as_bytes());
    let _ = file.flush();
    Ok(BoardLock {
        _file: file,
        path,
        waited: started.elapsed(),
    })
}

fn read_holder(path: &Path) -> Option<String> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

// ---------------------------------------------------------------------------------------------
// The farm.

struct Item {
    loaded: LoadedScenario,
    layout: Layout,
    fixtures: BTreeMap<String, Built>,
    needs: BTreeSet<Capability>,
}

#[derive(Default)]
struct BoardState {
    /// Reason the board takes no (more) scenarios.
    dead: Option<String>,
    lock_wait: Duration,
}

/// Scenario files matching `patterns`, exactly as `run` selects them.
pub fn select(root: &Path, patterns: &[String]) -> Vec<PathBuf> {
    scenario::select(root, patterns)
}

/// The boards of this farm run: inventory entries carrying every `--board-tag`, then `--sim N`.
pub fn farm_boards(args: &FarmArgs, root: &Path) -> Result<Vec<FarmBoard>, String> {
    let mut boards = Vec::new();
    let inventory = args
        .inventory
        .clone()
        .or_else(|| std::env::var_os("DFU_HIL_INVENTORY").map(PathBuf::from));
    if let Some(inv_path) = inventory {
        let inv = Inventory::load(&inv_path).map_err(|e| e.to_string())?;
        for entry in inv.with_tags(&args.board_tags) {
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
    boards.extend((0..args.sim).map(FarmBoard::sim));
    Ok(boards)
}

/// Run the farm. Returns the exit code.
pub fn run_farm(args: FarmArgs, root: &Path) -> anyhow::Result<i32> {
    // Boards first: an unreadable inventory is invalid input.
    let boards = match farm_boards(&args, root) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::INVALID_INPUT);
        }
    };
    if boards.is_empty() {
        eprintln!(
            "error: no board: give --inventory (or $DFU_HIL_INVENTORY) with boards tagged {:?}, or --sim N",
            args.board_tags
        );
        return Ok(exit::NOTHING_SELECTED);
    }

    let mut paths = select(root, &args.patterns);
    if !args.tags.is_empty() {
        paths.retain(|p| {
            scenario::load(p)
                .map(|s| s.scenario.tags.iter().any(|t| args.tags.contains(t)))
                .unwrap_or(true)
        });
    }
    if paths.is_empty() {
        eprintln!(
            "error: no scenario matches {:?} (tags {:?})",
            args.patterns, args.tags
        );
        return Ok(exit::NOTHING_SELECTED);
    }

    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("target/dfu-hil"));
    let evidence_base = args
        .evidence
        .clone()
        .unwrap_or_else(|| out_dir.join("evidence"));
    let mut opts = RunOptions::new(root.to_owned(), evidence_base.clone());
    opts.request_timeout = Duration::from_millis(args.request_timeout_ms);
    opts.device = args.device.options();
    if let Some(t) = args.scenario_timeout_s {
        opts.scenario_timeout = Some(Duration::from_secs(t));
    }
    let flag = opts.interrupt.clone();
    // Ctrl-C / SIGTERM: the current steps finish, then reports are written (first caller only).
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));

    // Everything checkable without a board first: bad input exits 96 before any board is locked.
    let mut items = Vec::new();
    let mut invalid = 0usize;
    for path in &paths {
        let loaded = match scenario::load(path) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                invalid += 1;
                continue;
            }
        };
        for l in scenario::expand(loaded) {
            match run::prepare(&l, &opts) {
                Ok((layout, fixtures)) => {
                    let needs = required_capabilities(&l, &layout);
                    items.push(Item {
                        loaded: l,
                        layout,
                        fixtures,
                        needs,
                    });
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    invalid += 1;
                }
            }
        }
    }
    if invalid > 0 {
        return Ok(exit::INVALID_INPUT);
    }

    // Scenarios no board of this farm can run: skipped, with the reasons.
    let mut unrunnable = Vec::new();
    let mut runnable = Vec::new();
    for it in items {
        let reasons: Vec<String> = boards
            .iter()
            .filter_map(|b| {
                b.cannot_run(&it.layout, &it.needs, &it.loaded.scenario.boards)
                    .map(|r| format!("{}: {r}", b.id))
            })
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
        eprintln!("error: nothing to run on these boards");
        return Ok(exit::NOTHING_SELECTED);
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
            let args = &args;
            s.spawn(move || {
                let worker = Worker {
                    board,
                    root,
                    opts,
                    evidence_base,
                    reruns: args.reruns,
                    show_steps: args.show_steps,
                    print_lock,
                };
                worker.run(args, queue, runnable, outcomes, state);
            });
        }
    });

    // What is left in the queue: every board able to run it is dead.
    let mut outcomes: Vec<(usize, Outcome)> = outcomes.into_inner().expect("outcomes lock");
    let leftover: Vec<usize> = queue
        .into_inner()
        .expect("queue lock")
        .into_iter()
        .flatten()
        .collect();
    for i in leftover {
        let it = &runnable[i];
        let (board, why) = boards
            .iter()
            .zip(&states)
            .filter(|(b, _)| {
                b.cannot_run(&it.layout, &it.needs, &it.loaded.scenario.boards)
                    .is_none()
            })
            .map(|(b, st)| {
                let why = st.lock().expect("state lock").dead.clone();
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
    let states: Vec<BoardState> = states
        .into_iter()
        .map(|s| s.into_inner().expect("state lock"))
        .collect();
    if let Err(e) = write_farm_reports(&out_dir, &boards, &states, &outcomes, &unrunnable) {
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
    let _ = writeln!(stdout, "junit: {}", out_dir.join("junit.xml").display());
    drop(stdout);

    // As `dfu-hil run`: 98 when a board could not be used at all (lock timeout, open or recovery
    // failed); a step error inside a scenario that ran is a failure (100), as there.
    let infra =
        outcomes.iter().any(|o| o.infrastructure) || states.iter().any(|s| s.dead.is_some());
    let failed = outcomes.iter().any(|o| o.verdict() == Verdict::Failed);
    Ok(if opts.interrupt.load(Ordering::SeqCst) {
        exit::INTERRUPTED
    } else if infra {
        exit::INFRASTRUCTURE
    } else if failed {
        exit::SCENARIO_FAILED
    } else {
        exit::PASS
    })
}

struct Worker<'a> {
    board: &'a FarmBoard,
    root: &'a Path,
    opts: &'a RunOptions,
    evidence_base: &'a Path,
    reruns: u32,
    show_steps: bool,
    print_lock: &'a Mutex<()>,
}

impl Worker<'_> {
    fn run(
        &self,
        args: &FarmArgs,
        queue: &Mutex<Vec<Option<usize>>>,
        items: &[Item],
        outcomes: &Mutex<Vec<(usize, Outcome)>>,
        state: &Mutex<BoardState>,
    ) {
        let b = self.board;
        // Hold the host-local lock for the whole run (simulated boards are process-local).
        let _lock = if b.is_sim() {
            None
        } else {
            match lock_board(
                &args.lock_dir,
                &b.id,
                Duration::from_secs(args.lock_timeout_s),
            ) {
                Ok(l) => {
                    state.lock().expect("state lock").lock_wait = l.waited;
                    eprintln!("[{}] holding {}", b.id, l.path.display());
                    Some(l)
                }
                Err(e) => {
                    eprintln!("farm: {e}");
                    state.lock().expect("state lock").dead = Some(e);
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
                let mut q = queue.lock().expect("queue lock");
                let slot = q.iter_mut().find(|slot| {
                    slot.is_some_and(|i| {
                        let it = &items[i];
                        b.cannot_run(&it.layout, &it.needs, &it.loaded.scenario.boards)
                            .is_none()
                    })
                });
                slot.and_then(Option::take)
            };
            let Some(i) = picked else { break };
            let it = &items[i];
            let outcome = self.run_item(it);
            let broken = outcome.infrastructure;
            outcomes.lock().expect("outcomes lock").push((i, outcome));
            if broken {
                state.lock().expect("state lock").dead =
                    Some("the board could not be opened".into());
                break;
            }
            if let Err(e) = self.recover(&it.layout, &it.loaded.scenario.name) {
                eprintln!("farm: board `{}`: recovery failed: {e}", b.id);
                state.lock().expect("state lock").dead = Some(format!("recovery failed: {e}"));
                break;
            }
        }
    }

    /// One scenario with the rerun policy.
    fn run_item(&self, it: &Item) -> Outcome {
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
                    attempts.push(run::board_unavailable(&it.loaded, &it.layout, &b.id, &e));
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
            {
                let _g = self.print_lock.lock();
                let what = if passed { "pass" } else { "FAIL" };
                let rerun = if attempt > 0 {
                    format!(" (rerun {attempt})")
                } else {
                    String::new()
                };
                println!("[{}] {what} {}{rerun}", b.id, r.name);
                if !passed {
                    if let Some(s) = r.failed_step() {
                        println!(
                            "[{}]   step {} ({}) at {}:{}: {}",
                            b.id,
                            s.index,
                            s.summary,
                            r.path.display(),
                            s.line,
                            s.message
                        );
                    }
                }
            }
            attempts.push(r);
            if passed || self.opts.interrupt.load(Ordering::SeqCst) {
                break;
            }
            if attempt < self.reruns {
                // Recover before rerunning on the same board.
                if let Err(e) = self.recover(&it.layout, &it.loaded.scenario.name) {
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
    /// nothing for a simulated board (the next scenario opens a fresh one).
    fn recover(&self, layout: &Layout, scenario: &str) -> Result<(), String> {
        if self.board.is_sim() {
            return Ok(());
        }
        // Recovery needs only the probe; a serial link is the one every board has.
        let mut board =
            self.board
                .choice
                .open(layout, TransportKind::Serial, self.root, scenario)?;
        board
            .probe
            .reset(ResetKind::Run)
            .map_err(|e| format!("probe reset: {e}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Reports.

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
                "step {} ({}) at {}:{}: {}",
                s.index,
                s.summary,
                r.path.display(),
                s.line,
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

fn write_farm_reports(
    out: &Path,
    boards: &[FarmBoard],
    states: &[BoardState],
    outcomes: &[Outcome],
    unrunnable: &[Unrunnable],
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
    });
    std::fs::write(
        out.join("farm.json"),
        serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?,
    )
}
