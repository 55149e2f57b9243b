//! `dfu-hil`: run MCUboot firmware-update scenarios on a simulated or real board.

use clap::{Parser, Subcommand};
use dfu_hil_runner::console::Console;
use dfu_hil_runner::run::{self, RunOptions, ScenarioResult};
use dfu_hil_runner::{exit, report, scenario};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
        #[command(flatten)]
        out: Outputs,
    },
    /// List the bundled scenarios.
    List,
    /// Check scenario files without running them (parse, layout, fixtures).
    Lint { patterns: Vec<String> },
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
    /// Board to run on; `sim` is the built-in simulated board.
    #[arg(long, default_value = "sim")]
    board: String,
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

fn all_scenarios(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("scenarios"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn select(root: &Path, patterns: &[String]) -> Vec<PathBuf> {
    let all = all_scenarios(root);
    if patterns.is_empty() {
        return all;
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for p in patterns {
        if let Some(path) = scenario::resolve(p, root) {
            if !out.contains(&path) {
                out.push(path);
            }
            continue;
        }
        for a in &all {
            let stem = a.file_stem().unwrap_or_default().to_string_lossy();
            if stem.contains(p.as_str()) && !out.contains(a) {
                out.push(a.clone());
            }
        }
    }
    out
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(c as u8)
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
            run_paths(&root, &[path], &out, cli.quiet, cli.verbose)
        }
        Command::Run { patterns, out } => {
            let paths = select(&root, &patterns);
            if paths.is_empty() {
                eprintln!("error: no scenario matches {patterns:?}");
                return code(exit::NOTHING_SELECTED);
            }
            run_paths(&root, &paths, &out, cli.quiet, cli.verbose)
        }
        Command::List => {
            for p in all_scenarios(&root) {
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
        Command::Lint { patterns } => {
            let paths = select(&root, &patterns);
            if paths.is_empty() {
                return code(exit::NOTHING_SELECTED);
            }
            let opts = options(&root, None);
            let mut bad = 0;
            for p in &paths {
                let r = scenario::load(p).map_err(|e| e.to_string()).and_then(|s| {
                    run::prepare(&s, &opts)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                });
                match r {
                    Ok(()) => println!("ok      {}", p.display()),
                    Err(e) => {
                        bad += 1;
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
    }
}

fn options(root: &Path, out: Option<&Outputs>) -> RunOptions {
    RunOptions {
        root: root.to_owned(),
        evidence_dir: out
            .and_then(|o| o.evidence.clone())
            .unwrap_or_else(|| root.join("target/dfu-hil/evidence")),
    }
}

fn run_paths(
    root: &Path,
    paths: &[PathBuf],
    out: &Outputs,
    quiet: bool,
    verbose: bool,
) -> ExitCode {
    if out.board != "sim" {
        eprintln!(
            "error: board `{}` is not available in this build; only the simulated board `sim` is",
            out.board
        );
        return code(exit::INFRASTRUCTURE);
    }
    let opts = options(root, Some(out));
    let junit = out
        .junit
        .clone()
        .unwrap_or_else(|| root.join("target/dfu-hil/junit.xml"));
    let json = out
        .json
        .clone()
        .unwrap_or_else(|| root.join("target/dfu-hil/results.json"));
    let mut console = Console::new(quiet, verbose);
    let mut results: Vec<ScenarioResult> = Vec::new();
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
        let (layout, fixtures) = match run::prepare(&loaded, &opts) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                invalid += 1;
                continue;
            }
        };
        let (board, _sim) = dfu_hil_board::sim::open(layout.clone(), "sim");
        let r = run::run_scenario(&loaded, &layout, &fixtures, board, &opts, &mut console);
        results.push(r);
        // Reports are rewritten after every scenario, so an interrupted run keeps what ran.
        write_reports(&results, &junit, &json);
    }
    write_reports(&results, &junit, &json);
    let failed = results.iter().filter(|r| !r.passed()).count();
    if paths.len() > 1 || !quiet {
        println!(
            "{} passed, {} failed{}",
            results.len() - failed,
            failed,
            if invalid > 0 {
                format!(", {invalid} invalid")
            } else {
                String::new()
            }
        );
        println!("junit: {}", junit.display());
    }
    if invalid > 0 {
        code(exit::INVALID_INPUT)
    } else if failed > 0 {
        code(exit::SCENARIO_FAILED)
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
