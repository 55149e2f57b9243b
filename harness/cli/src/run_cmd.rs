//! `scenario`, `run` and `lint` on one board: plan the scenario files (`runner::plan`), run the
//! prepared variants on the chosen board (in parallel on the simulated board), feed the console
//! and rewrite JUnit/JSON after every scenario, and say which exit code the run earns.

use crate::args::Outputs;
use crate::error::CliResult;
use crate::{hw_cmd, signals};
use dfu_hil_farm::select::{BoardChoice, NativeSimArgs};
use dfu_hil_runner::console::Console;
use dfu_hil_runner::exit::Exit;
use dfu_hil_runner::plan::{self, Prepared};
use dfu_hil_runner::run::{self, RunOptions, ScenarioResult};
use dfu_hil_runner::{needs, report, scenario};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `dfu-hil lint`: everything `run` checks before touching a board, for every variant; with a
/// board, also each step that board cannot do, at its file:line:col.
pub fn lint(
    root: &Path,
    patterns: &[String],
    board: Option<&str>,
    inventory: Option<&Path>,
    build: Option<&Path>,
) -> CliResult {
    let paths = scenario::select(root, patterns);
    if paths.is_empty() {
        return Ok(Exit::NothingSelected);
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
                    return Ok(Exit::InvalidInput);
                }
            }
        }
    };
    let mut opts = options(root, None);
    opts.build = build.map(Path::to_owned);
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
        // What a build changed (its layout for the scenario's, a key not on this machine, a
        // scenario deliberately modelling another MCUboot): said, not hidden.
        let mut notes: Vec<String> = file
            .prepared
            .iter()
            .filter_map(|v| v.loaded.scenario.from_build.as_ref())
            .flat_map(|b| b.notes.clone())
            .collect();
        let mut seen_notes = std::collections::BTreeSet::new();
        notes.retain(|n| seen_notes.insert(n.clone()));
        for n in notes {
            println!("note    {n}");
        }
        if problems.is_empty() {
            println!("ok      {}", p.display());
        } else {
            bad += 1;
            for e in problems {
                println!("invalid {e}");
            }
        }
    }
    Ok(if bad > 0 {
        Exit::InvalidInput
    } else {
        Exit::Pass
    })
}

pub fn options(root: &Path, out: Option<&Outputs>) -> RunOptions {
    let mut o = RunOptions::new(
        root.to_owned(),
        out.and_then(|o| o.evidence.clone())
            .unwrap_or_else(|| root.join("target/dfu-hil/evidence")),
    );
    if let Some(out) = out {
        o.request_timeout = out.timeouts.request_timeout();
        if let Some(t) = out.timeouts.scenario_timeout() {
            o.scenario_timeout = Some(t);
        }
        if let Some(t) = out.timeouts.step_timeout() {
            o.step_timeout = t;
        }
        o.device = out.device.options();
        o.build = out.build.clone();
    }
    o
}

pub fn run_paths(
    root: &Path,
    paths: &[PathBuf],
    out: &Outputs,
    jobs: usize,
    quiet: bool,
    verbose: bool,
) -> CliResult {
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
    hw_cmd::check_lab_board(&choice)?;
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
    // Two runs writing the same reports would overwrite each other: say so (and go on).
    let _claim = junit.parent().map(|dir| {
        let (claim, warning) = report::OutputClaim::take(dir);
        if let Some(w) = warning {
            eprintln!("{w}");
        }
        claim
    });
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
    // An interrupted scenario is no verdict on the device: counted apart from failures.
    let interrupted_n = results.iter().filter(|r| r.interrupted()).count();
    let failed = results.iter().filter(|r| !r.passed()).count() - interrupted_n;
    let skipped_n = results.iter().filter(|r| r.is_skipped()).count();
    if paths.len() > 1 || !quiet {
        let mut extra = String::new();
        if skipped_n > 0 {
            extra.push_str(&format!(", {skipped_n} skipped (board lacks a capability)"));
        }
        if interrupted_n > 0 {
            extra.push_str(&format!(", {interrupted_n} interrupted"));
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
            results.len() - failed - skipped_n - interrupted_n,
            failed
        );
        let _ = writeln!(out, "junit: {}", junit.display());
    }
    if opts.interrupt.load(Ordering::SeqCst) {
        Ok(Exit::Interrupted)
    } else if infra.load(Ordering::SeqCst) > 0 {
        Ok(Exit::Infrastructure)
    } else if invalid > 0 {
        Ok(Exit::InvalidInput)
    } else if failed > 0 || not_started > 0 {
        Ok(Exit::ScenarioFailed)
    } else if !results.is_empty() && skipped_n == results.len() {
        // Nothing this board can run was selected.
        Ok(Exit::NothingSelected)
    } else {
        Ok(Exit::Pass)
    }
}

pub fn write_reports(results: &[ScenarioResult], junit: &Path, json: &Path) {
    if let Err(e) = report::write_junit(results, junit) {
        eprintln!("warning: cannot write {}: {e}", junit.display());
    }
    if let Err(e) = report::write_json(results, json) {
        eprintln!("warning: cannot write {}: {e}", json.display());
    }
}
