//! `dfu-hil`: run MCUboot firmware-update scenarios on a simulated or real board.
//!
//! The binary parses the command line and maps each command's result to the process exit code
//! (`dfu_hil_cli::error::finish`); the commands live in the `dfu_hil_cli` library.

use clap::Parser;
use dfu_hil_cli::args::{Cli, Command, PmCmd};
use dfu_hil_cli::error::{self, CliResult};
use dfu_hil_cli::{
    bench_cmd, doctor_cmd, farm_cmd, hw_cmd, image_cmd, project_cmd, replay_cmd, run_cmd, signals,
    sim_cmd, smp_cmd,
};
use dfu_hil_runner::exit::Exit;
use dfu_hil_runner::plan;
use dfu_hil_runner::scenario;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
            exit_of(run_cmd::run_paths(
                &root,
                &[path],
                &out,
                1,
                cli.quiet,
                cli.verbose,
            ))
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
            exit_of(run_cmd::run_paths(
                &root,
                &paths,
                &out,
                jobs,
                cli.quiet,
                cli.verbose,
            ))
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
        Command::Doctor(args) => exit_of(doctor_cmd::run_doctor(&args, &mut std::io::stdout())),
        Command::Pm(PmCmd::Import {
            file,
            soc,
            name,
            out,
        }) => exit_of(project_cmd::pm_import(&file, name, out.as_deref(), soc)),
        Command::Schema { out } => exit_of(project_cmd::schema(out.as_ref())),
        Command::List => exit_of(project_cmd::list(&root)),
        Command::Lint {
            patterns,
            board,
            inventory,
            build,
        } => exit_of(run_cmd::lint(
            &root,
            &patterns,
            board.as_deref(),
            inventory.as_deref(),
            build.as_deref(),
        )),
    }
}
