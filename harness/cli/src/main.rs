//! `dfu-hil`: run MCUboot firmware-update scenarios on a simulated or real board.
//!
//! The binary parses the command line and maps each command's result to the process exit code
//! (`dfu_hil_cli::error::finish`); the commands live in the `dfu_hil_cli` library.

use clap::Parser;
use dfu_hil_cli::args::{Cli, Command, Outputs, PmCmd};
use dfu_hil_cli::error::{self, CliResult};
use dfu_hil_cli::{
    bench_cmd, farm_cmd, hw_cmd, image_cmd, project_cmd, replay_cmd, signals, sim_cmd, smp_cmd,
};
use dfu_hil_farm::select::{BoardChoice, NativeSimArgs};
use dfu_hil_runner::console::Console;
use dfu_hil_runner::exit::Exit;
use dfu_hil_runner::plan::{self, Prepared};
use dfu_hil_runner::run::{self, RunOptions, ScenarioResult};
use dfu_hil_runner::{needs, report, scenario};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

fn code(c: Exit) -> ExitCode {
    c.into()
}

/// The one place a command's result becomes the process exit code.
fn exit_of<T: Into<u8>>(r: CliResult<T>) -> ExitCode {
    ExitCode::from(error::finish(r, &mut std::io::stderr()))
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
                return code(Exit::InvalidInput);
            };
            run_paths(&root, &[path], &out, 1, cli.quiet, cli.verbose)
        }
        Command::Run {
            patterns,
            tags,
            jobs,
            out,
        } => {
            let paths = plan::select(&root, &patterns, &tags);
            if paths.is_empty() {
                eprintln!("error: no scenario matches {patterns:?} (tags {tags:?})");
                return code(Exit::NothingSelected);
            }
            run_paths(&root, &paths, &out, jobs, cli.quiet, cli.verbose)
        }
        Command::Image(cmd) => exit_of(image_cmd::run_image(cmd)),
        Command::Smp(args) => exit_of(smp_cmd::run_smp(args)),
        Command::Sim { cmd } => exit_of(sim_cmd::run_sim(cmd, &root)),
        Command::Replay(args) => exit_of(replay_cmd::run_replay(&args, &mut std::io::stdout())),
        Command::Bench(cmd) => exit_of(bench_cmd::run_bench(cmd, &root)),
        Command::Farm(args) => code(farm_cmd::run_farm(&args, &root, signals::interrupt_flag())),
        Command::Inventory(c) => exit_of(hw_cmd::run_hw(&root, hw_cmd::HwCmd::Inventory(c))),
        Command::Probe(c) => exit_of(hw_cmd::run_hw(&root, hw_cmd::HwCmd::Probe(c))),
        Command::Trailer(cmd) => exit_of(image_cmd::run_trailer(cmd)),
        Command::Pm(PmCmd::Import { file, name, out }) => {
            exit_of(project_cmd::pm_import(&file, name, out.as_deref()))
        }
        Command::Schema { out } => exit_of(project_cmd::schema(out.as_ref())),
        Command::List => exit_of(project_cmd::list(&root)),
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
        return code(Exit::NothingSelected);
    }
    let facts = match board {
        None => None,
        Some(b) => {
            let choice = BoardChoice::parse(b, inventory, &NativeSimArgs::default(), root);
            // Lint opens nothing: a board it cannot describe (inventory, id, profile) is input.
            match choice.facts(root) {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!("error: board `{b}`: {e}");
                    return code(Exit::InvalidInput);
                }
            }
        }
    };
    let opts = options(root, None);
    let mut bad = 0;
    for file in plan::plan(&paths, &opts).files {
        let p = &file.path;
        let mut problems: Vec<String> = file.invalid.iter().map(ToString::to_string).collect();
        // With a board: what each valid variant needs that the board lacks, at its step.
        for (f, v) in facts
            .iter()
            .flat_map(|f| file.prepared.iter().map(move |v| (f, v)))
        {
            if let Some(why) = needs::wrong_board(&v.loaded.scenario.boards, f.profile.as_deref()) {
                problems.push(format!("{}: {why}", v.loaded.path.display()));
            }
            for u in needs::unmet(&v.needs, &f.capabilities) {
                problems.push(format!("{u}, which board `{}` lacks", f.name));
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
        Exit::InvalidInput
    } else {
        Exit::Pass
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

fn run_paths(
    root: &Path,
    paths: &[PathBuf],
    out: &Outputs,
    jobs: usize,
    quiet: bool,
    verbose: bool,
) -> ExitCode {
    let choice = BoardChoice::parse(
        &out.board,
        out.inventory.as_deref(),
        &NativeSimArgs {
            app: out.native_sim_app.clone(),
            bootloader: out.native_sim_bootloader.clone(),
            boot_timeout: Duration::from_secs(out.native_sim_boot_timeout_s),
        },
        root,
    );
    if let Err(e) = hw_cmd::check_lab_board(&choice) {
        return exit_of::<Exit>(Err(e));
    }
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
    // Ctrl-C and SIGTERM finish the current step, then reports and evidence are written.
    opts.interrupt = signals::interrupt_flag();
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

    // Everything that can be checked without a board, first: bad input exits 96 once the
    // valid scenarios have run.
    let planned = plan::plan(paths, &opts);
    for e in planned.invalid() {
        eprintln!("error: {e}");
    }
    let invalid = planned.invalid_count();
    let prepared: Vec<Prepared> = planned.into_prepared();

    // What the board cannot do is known before it is opened: such scenarios are skipped with
    // the step that needs it (an unreadable inventory is reported when the board is opened).
    let board_name = choice.name();
    let lacking: Vec<Option<String>> = match &facts {
        Ok(f) => prepared
            .iter()
            .map(|p| p.unfit(&f.name, f.profile.as_deref(), &f.capabilities))
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
        let Some(Prepared {
            loaded,
            layout,
            fixtures,
            ..
        }) = prepared.get(i)
        else {
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
                    run::board_unavailable(loaded, layout, &choice.name(), &e.to_string())
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
        code(Exit::Interrupted)
    } else if infra.load(Ordering::SeqCst) > 0 {
        code(Exit::Infrastructure)
    } else if invalid > 0 {
        code(Exit::InvalidInput)
    } else if failed > 0 || not_started > 0 {
        code(Exit::ScenarioFailed)
    } else if !results.is_empty() && skipped_n == results.len() {
        // Nothing this board can run was selected.
        code(Exit::NothingSelected)
    } else {
        code(Exit::Pass)
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
