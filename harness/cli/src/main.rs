//! `dfu-hil`: run MCUboot firmware-update scenarios on a simulated or real board.

mod bench_cmd;
mod board_open;
mod farm_cmd;
mod hw_cmd;
mod image_cmd;
mod link_args;
mod sim_cmd;
mod smp_cmd;

use clap::{Parser, Subcommand};
use dfu_hil_runner::console::Console;
use dfu_hil_runner::run::{self, RunOptions, ScenarioResult};
use dfu_hil_runner::{exit, needs, report, scenario};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "dfu-hil",
    version,
    about = "Hardware-in-the-loop tests for MCUboot firmware updates"
)]
struct Cli {
    /// Project root holding scenarios/, partitions/ and firmware-fixtures/ (default: the
    /// current directory if it has scenarios/, else this checkout).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Only print failures and the verdict.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Print each step as it starts.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario (a name from scenarios/ or a path to a YAML file).
    Scenario {
        name: String,
        #[command(flatten)]
        out: Outputs,
    },
    /// Run several scenarios (all of scenarios/ when no pattern is given).
    Run {
        /// Substrings of scenario names to select.
        patterns: Vec<String>,
        /// Only scenarios carrying this tag (repeatable: any of them).
        #[arg(long = "tag", short = 't')]
        tags: Vec<String>,
        /// Scenarios run at once (the simulated board runs them in parallel).
        #[arg(long, short = 'j', default_value_t = 1)]
        jobs: usize,
        #[command(flatten)]
        out: Outputs,
    },
    /// MCUboot images: inspect (with diagnosis), sign like imgtool, derive bad variants.
    #[command(subcommand)]
    Image(image_cmd::ImageCmd),
    /// MCUboot trailers: decode a slot dump or a raw flash image.
    #[command(subcommand)]
    Trailer(image_cmd::TrailerCmd),
    /// Talk SMP to a device: image list/upload/test/confirm/erase, os echo/reset/params/info.
    Smp(smp_cmd::SmpArgs),
    /// The simulated board: `sim serve` runs it on a PTY for other tools (smpmgr, mcumgr);
    /// `sim boot` runs its MCUboot once on a flash file (a native_sim MCUboot stand-in).
    Sim {
        #[command(subcommand)]
        cmd: sim_cmd::SimCommand,
    },
    /// Benchmarks (figures, never pass/fail): `bench upload` through a paced PTY.
    #[command(subcommand)]
    Bench(bench_cmd::BenchCmd),
    /// Run scenarios across this host's boards (inventory and/or --sim N): per-board locks,
    /// reruns, per-board and merged JUnit.
    Farm(farm_cmd::FarmArgs),
    /// Lab inventory: discover attached probes/ports and compare with the file; list boards.
    #[command(subcommand)]
    Inventory(hw_cmd::InventoryCmd),
    /// Debug probes attached to this host.
    #[command(subcommand)]
    Probe(hw_cmd::ProbeCmd),
    /// nRF Connect SDK Partition Manager files.
    #[command(subcommand)]
    Pm(PmCmd),
    /// Print the JSON Schema of scenario files (for editors: yaml-language-server).
    Schema {
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the bundled scenarios.
    List,
    /// Check scenario files without running them (parse, layout, fixtures; with `--board`,
    /// also the steps that board cannot do).
    Lint {
        patterns: Vec<String>,
        /// Also check every step is possible on this board (`sim`, `native-sim`, or an
        /// inventory id).
        #[arg(long)]
        board: Option<String>,
        /// Lab inventory for `--board ID` (default: $DFU_HIL_INVENTORY, then ci/lab.yaml).
        #[arg(long)]
        inventory: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PmCmd {
    /// Convert a pm_static.yml or a build's partitions.yml into a dfu-hil layout (YAML).
    Import {
        file: PathBuf,
        /// Layout name (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// Write the layout here instead of stdout (e.g. partitions/my-board.yaml).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct Outputs {
    /// JUnit XML report (default target/dfu-hil/junit.xml).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// JSON results (default target/dfu-hil/results.json).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Folder for per-scenario evidence (default target/dfu-hil/evidence).
    #[arg(long)]
    evidence: Option<PathBuf>,
    /// Board to run on: `sim` (the built-in simulated board), `native-sim` (executables, see
    /// --native-sim-app), or a board id from the lab inventory (a lab board or one of its
    /// `native-sim:` entries).
    #[arg(long, default_value = "sim")]
    board: String,
    /// Lab inventory for `--board ID` (default: $DFU_HIL_INVENTORY, then ci/lab.yaml).
    #[arg(long)]
    inventory: Option<PathBuf>,
    /// The native_sim app command line for `--board native-sim` (`{flash}` = the flash file;
    /// `--flash={flash}` is added when absent).
    #[arg(long)]
    native_sim_app: Option<String>,
    /// The native_sim MCUboot command line for `--board native-sim`, run to completion before
    /// every app start (`{flash}` as for the app). Without it the app runs on its own.
    #[arg(long, value_name = "PROGRAM ARGS")]
    native_sim_bootloader: Option<String>,
    /// Seconds the native_sim bootloader may run before it is killed (SIGKILL) and the reset
    /// fails with "bootloader did not hand over".
    #[arg(long, value_name = "S", default_value_t = board_open::DEFAULT_BOOT_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(1..=dfu_hil_runner::limits::MAX_TIMEOUT_S))]
    native_sim_boot_timeout_s: u64,
    /// Timeout of one SMP request, in milliseconds.
    #[arg(long, default_value_t = 2500, value_parser = clap::value_parser!(u64).range(..=dfu_hil_runner::limits::MAX_TIMEOUT_MS))]
    request_timeout_ms: u64,
    /// Deadline for each step, in seconds (a scenario's `step-timeout-s` wins) [default: 300].
    #[arg(long, value_parser = clap::value_parser!(u64).range(..=dfu_hil_runner::limits::MAX_TIMEOUT_S))]
    step_timeout_s: Option<u64>,
    /// Deadline for each scenario, in seconds (a scenario's `timeout-s` wins) [default: 1800].
    #[arg(long, value_parser = clap::value_parser!(u64).range(..=dfu_hil_runner::limits::MAX_TIMEOUT_S))]
    scenario_timeout_s: Option<u64>,
    /// Deadline for the whole run, in seconds: scenarios not started by then are not run.
    #[arg(long, value_parser = clap::value_parser!(u64).range(..=dfu_hil_runner::limits::MAX_TIMEOUT_S))]
    run_timeout_s: Option<u64>,
    #[command(flatten)]
    device: link_args::DeviceLinkArgs,
}

fn project_root(arg: Option<PathBuf>) -> PathBuf {
    if let Some(r) = arg {
        return r;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if cwd.join("scenarios").is_dir() {
        return cwd;
    }
    // Running the installed binary from elsewhere in the checkout.
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built_in.join("scenarios").is_dir() {
        return built_in;
    }
    cwd
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(c as u8)
}

fn exit_of(r: anyhow::Result<i32>) -> ExitCode {
    match r {
        Ok(c) => code(c),
        Err(e) => {
            eprintln!("error: {e:#}");
            code(exit::INVALID_INPUT)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = project_root(cli.root.clone());
    match cli.command {
        Command::Scenario { name, out } => {
            let Some(path) = scenario::resolve(&name, &root) else {
                eprintln!(
                    "error: no scenario `{name}`: not a file, and no {}",
                    root.join("scenarios")
                        .join(format!("{name}.yaml"))
                        .display()
                );
                return code(exit::INVALID_INPUT);
            };
            run_paths(&root, &[path], &out, 1, cli.quiet, cli.verbose)
        }
        Command::Run {
            patterns,
            tags,
            jobs,
            out,
        } => {
            let mut paths = scenario::select(&root, &patterns);
            if !tags.is_empty() {
                paths.retain(|p| {
                    scenario::load(p)
                        .map(|s| s.scenario.tags.iter().any(|t| tags.contains(t)))
                        .unwrap_or(true)
                });
            }
            if paths.is_empty() {
                eprintln!("error: no scenario matches {patterns:?} (tags {tags:?})");
                return code(exit::NOTHING_SELECTED);
            }
            run_paths(&root, &paths, &out, jobs, cli.quiet, cli.verbose)
        }
        Command::Image(cmd) => exit_of(image_cmd::run_image(cmd)),
        Command::Smp(args) => exit_of(smp_cmd::run_smp(args)),
        Command::Sim { cmd } => exit_of(sim_cmd::run_sim(cmd, &root)),
        Command::Bench(cmd) => exit_of(bench_cmd::run_bench(cmd, &root)),
        Command::Farm(args) => exit_of(farm_cmd::run_farm(args, &root)),
        Command::Inventory(c) => exit_of(hw_cmd::run_hw(&root, hw_cmd::HwCmd::Inventory(c))),
        Command::Probe(c) => exit_of(hw_cmd::run_hw(&root, hw_cmd::HwCmd::Probe(c))),
        Command::Trailer(cmd) => exit_of(image_cmd::run_trailer(cmd)),
        Command::Pm(PmCmd::Import { file, name, out }) => {
            let opts = dfu_hil_mcuboot::pm::PmOptions {
                name,
                ..Default::default()
            };
            match dfu_hil_mcuboot::pm::import_file(&file, &opts) {
                Ok(layout) => {
                    let yaml = dfu_hil_mcuboot::pm::to_yaml(&layout);
                    match out {
                        Some(p) => {
                            if let Err(e) = std::fs::write(&p, yaml) {
                                eprintln!("error: {}: {e}", p.display());
                                return code(exit::INVALID_INPUT);
                            }
                        }
                        None => print!("{yaml}"),
                    }
                    code(exit::PASS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    code(exit::INVALID_INPUT)
                }
            }
        }
        Command::Schema { out } => {
            let text =
                serde_json::to_string_pretty(&scenario::json_schema()).expect("schema serialises");
            match out {
                Some(p) => {
                    if let Err(e) = std::fs::write(&p, text + "\n") {
                        eprintln!("error: {}: {e}", p.display());
                        return code(exit::INVALID_INPUT);
                    }
                }
                None => println!("{text}"),
            }
            code(exit::PASS)
        }
        Command::List => {
            for p in scenario::all_scenarios(&root) {
                match scenario::load(&p) {
                    Ok(s) => println!(
                        "{:<36} {:<28} {}",
                        p.file_stem().unwrap_or_default().to_string_lossy(),
                        s.scenario.layout,
                        s.scenario.description.lines().next().unwrap_or("")
                    ),
                    Err(e) => println!("{}  (invalid: {e})", p.display()),
                }
            }
            code(exit::PASS)
        }
        Command::Lint {
            patterns,
            board,
            inventory,
        } => lint(&root, &patterns, board.as_deref(), inventory.as_deref()),
    }
}

/// `dfu-hil lint`: everything `run` checks before touching a board, for every variant; with a
/// board, also each step that board cannot do, at its file:line:col.
fn lint(
    root: &Path,
    patterns: &[String],
    board: Option<&str>,
    inventory: Option<&Path>,
) -> ExitCode {
    let paths = scenario::select(root, patterns);
    if paths.is_empty() {
        return code(exit::NOTHING_SELECTED);
    }
    let facts = match board {
        None => None,
        Some(b) => {
            let choice = board_open::BoardChoice::parse(
                b,
                inventory,
                &board_open::NativeSimArgs::default(),
                root,
            );
            match choice.facts(root) {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!("error: board `{b}`: {e}");
                    return code(exit::INFRASTRUCTURE);
                }
            }
        }
    };
    let opts = options(root, None);
    let mut bad = 0;
    for p in &paths {
        let mut problems = Vec::new();
        match scenario::load(p) {
            Err(e) => problems.push(e.to_string()),
            Ok(s) => {
                for v in scenario::expand(s) {
                    match run::prepare(&v, &opts) {
                        Err(e) => problems.push(e.to_string()),
                        Ok((layout, _)) => {
                            let Some(f) = &facts else { continue };
                            if let Some(why) =
                                needs::wrong_board(&v.scenario.boards, f.profile.as_deref())
                            {
                                problems.push(format!("{}: {why}", v.path.display()));
                            }
                            let n = needs::needs(&v, &layout);
                            for u in needs::unmet(&n, &f.capabilities) {
                                problems.push(format!("{u}, which board `{}` lacks", f.name));
                            }
                        }
                    }
                }
            }
        }
        // Variants repeat the same steps: each problem once.
        let mut seen = std::collections::BTreeSet::new();
        problems.retain(|e| seen.insert(e.clone()));
        if problems.is_empty() {
            println!("ok      {}", p.display());
        } else {
            bad += 1;
            for e in problems {
                println!("invalid {e}");
            }
        }
    }
    code(if bad > 0 {
        exit::INVALID_INPUT
    } else {
        exit::PASS
    })
}

fn options(root: &Path, out: Option<&Outputs>) -> RunOptions {
    let mut o = RunOptions::new(
        root.to_owned(),
        out.and_then(|o| o.evidence.clone())
            .unwrap_or_else(|| root.join("target/dfu-hil/evidence")),
    );
    if let Some(out) = out {
        o.request_timeout = Duration::from_millis(out.request_timeout_ms);
        if let Some(t) = out.scenario_timeout_s {
            o.scenario_timeout = Some(Duration::from_secs(t));
        }
        if let Some(t) = out.step_timeout_s {
            o.step_timeout = Duration::from_secs(t);
        }
        o.device = out.device.options();
    }
    o
}

/// Exit code when a run was interrupted (128 + SIGINT, as shells report it).
const INTERRUPTED: i32 = 130;

fn run_paths(
    root: &Path,
    paths: &[PathBuf],
    out: &Outputs,
    jobs: usize,
    quiet: bool,
    verbose: bool,
) -> ExitCode {
    let choice = board_open::BoardChoice::parse(
        &out.board,
        out.inventory.as_deref(),
        &board_open::NativeSimArgs {
            app: out.native_sim_app.clone(),
            bootloader: out.native_sim_bootloader.clone(),
            boot_timeout: Duration::from_secs(out.native_sim_boot_timeout_s),
        },
        root,
    );
    let jobs = if choice.parallel() { jobs } else { 1 };
    let mut opts = options(root, Some(out));
    // Read once: capabilities and profile for skipping, the board's device-link facts.
    let facts = choice.facts(root);
    if let Ok(f) = &facts {
        match run::DeviceLinkOptions::from_facts(&f.device_link, &format!("board {}", f.name)) {
            Ok(d) => opts.board_device = d,
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    let flag = opts.interrupt.clone();
    // Ctrl-C and SIGTERM finish the current step, then reports and evidence are written.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let junit = out
        .junit
        .clone()
        .unwrap_or_else(|| root.join("target/dfu-hil/junit.xml"));
    let json = out
        .json
        .clone()
        .unwrap_or_else(|| root.join("target/dfu-hil/results.json"));
    let run_deadline = out
        .run_timeout_s
        .map(|s| Instant::now() + Duration::from_secs(s));

    // Everything that can be checked without a board, first: bad input exits 96.
    let mut prepared = Vec::new();
    let mut invalid = 0;
    for path in paths {
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
                Ok((layout, fixtures)) => prepared.push((l, layout, fixtures)),
                Err(e) => {
                    eprintln!("error: {e}");
                    invalid += 1;
                }
            }
        }
    }

    // What the board cannot do is known before it is opened: such scenarios are skipped with
    // the step that needs it (an unreadable inventory is reported when the board is opened).
    let board_name = choice.name();
    let lacking: Vec<Option<String>> = match &facts {
        Ok(f) => prepared
            .iter()
            .map(|(l, layout, _)| {
                needs::wrong_board(&l.scenario.boards, f.profile.as_deref()).or_else(|| {
                    let n = needs::needs(l, layout);
                    let u = needs::unmet(&n, &f.capabilities);
                    (!u.is_empty()).then(|| needs::explain(&f.name, &u))
                })
            })
            .collect(),
        Err(_) => vec![None; prepared.len()],
    };

    let results: Mutex<Vec<(usize, ScenarioResult)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let mut not_started = 0usize;
    let skipped = AtomicUsize::new(0);
    let infra = AtomicUsize::new(0);
    let worker = |console: &mut Console| loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some((loaded, layout, fixtures)) = prepared.get(i) else {
            break;
        };
        if opts.interrupt.load(Ordering::SeqCst)
            || run_deadline.is_some_and(|d| Instant::now() >= d)
        {
            skipped.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let r = if let Some(reason) = &lacking[i] {
            let r = run::board_lacks(loaded, layout, &board_name, reason);
            console.scenario_skipped(&r);
            r
        } else {
            match choice.open(
                layout,
                loaded.scenario.transport,
                root,
                &loaded.scenario.name,
            ) {
                Ok(board) => run::run_scenario(loaded, layout, fixtures, board, &opts, console),
                Err(e) => {
                    eprintln!(
                        "error: {}: board {}: {e}",
                        loaded.scenario.name,
                        choice.name()
                    );
                    infra.fetch_add(1, Ordering::SeqCst);
                    run::board_unavailable(loaded, layout, &choice.name(), &e)
                }
            }
        };
        let mut all = results.lock().expect("results lock");
        all.push((i, r));
        all.sort_by_key(|(i, _)| *i);
        // Reports are rewritten after every scenario, so an interrupted run keeps what ran.
        let done: Vec<ScenarioResult> = all.iter().map(|(_, r)| r.clone()).collect();
        write_reports(&done, &junit, &json);
    };
    if jobs <= 1 {
        worker(&mut Console::new(quiet, verbose));
    } else {
        std::thread::scope(|s| {
            for _ in 0..jobs.min(prepared.len().max(1)) {
                s.spawn(|| worker(&mut Console::buffered(quiet, verbose)));
            }
        });
    }
    not_started += skipped.load(Ordering::SeqCst);
    let results: Vec<ScenarioResult> = results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    write_reports(&results, &junit, &json);
    let failed = results.iter().filter(|r| !r.passed()).count();
    let skipped_n = results.iter().filter(|r| r.is_skipped()).count();
    if paths.len() > 1 || !quiet {
        let mut extra = String::new();
        if skipped_n > 0 {
            extra.push_str(&format!(", {skipped_n} skipped (board lacks a capability)"));
        }
        if invalid > 0 {
            extra.push_str(&format!(", {invalid} invalid"));
        }
        if not_started > 0 {
            extra.push_str(&format!(", {not_started} not started"));
        }
        let infra_n = infra.load(Ordering::SeqCst);
        if infra_n > 0 {
            extra.push_str(&format!(" ({infra_n} could not open the board)"));
        }
        // A closed pipe (`| head`) must not turn a verdict into a panic.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{} passed, {} failed{extra}",
            results.len() - failed - skipped_n,
            failed
        );
        let _ = writeln!(out, "junit: {}", junit.display());
    }
    if opts.interrupt.load(Ordering::SeqCst) {
        code(INTERRUPTED)
    } else if infra.load(Ordering::SeqCst) > 0 {
        code(exit::INFRASTRUCTURE)
    } else if invalid > 0 {
        code(exit::INVALID_INPUT)
    } else if failed > 0 || not_started > 0 {
        code(exit::SCENARIO_FAILED)
    } else if !results.is_empty() && skipped_n == results.len() {
        // Nothing this board can run was selected.
        code(exit::NOTHING_SELECTED)
    } else {
        code(exit::PASS)
    }
}

fn write_reports(results: &[ScenarioResult], junit: &Path, json: &Path) {
    if let Err(e) = report::write_junit(results, junit) {
        eprintln!("warning: cannot write {}: {e}", junit.display());
    }
    if let Err(e) = report::write_json(results, json) {
        eprintln!("warning: cannot write {}: {e}", json.display());
    }
}
