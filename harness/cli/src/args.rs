//! The whole `dfu-hil` command line as clap types: the binary parses it, tests build it
//! (`Cli::command().debug_assert()`) so a clash between options cannot ship, and the README's
//! command lines are parsed with it.

use crate::{bench_cmd, farm_cmd, hw_cmd, image_cmd, link_args, sim_cmd, smp_cmd};
use clap::{Parser, Subcommand};
use dfu_hil_farm::select::DEFAULT_BOOT_TIMEOUT_S;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "dfu-hil",
    version,
    about = "Hardware-in-the-loop tests for MCUboot firmware updates"
)]
pub struct Cli {
    /// Project root holding scenarios/, partitions/ and firmware-fixtures/ (default: the
    /// current directory if it has scenarios/, else this checkout).
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Only print failures and the verdict.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Print each step as it starts.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Boot an evidence folder's flash image again (`--at-cut`: as at a failing sweep's cut
    /// point) on `sim` or `native-sim`; exit 0 when the recorded failing boot is reproduced.
    Replay(crate::replay_cmd::ReplayArgs),
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
    /// Check a Zephyr / nRF Connect SDK build directory before flashing it: slot sectors vs
    /// BOOT_MAX_IMG_SECTORS, external-flash driver, header room, SMP groups and buffers, image
    /// fit, signature, NSIB. Exit 100 on an error finding, 96 when the build cannot be read.
    Doctor(crate::doctor_cmd::DoctorArgs),
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
        /// Check the scenarios against this NCS / Zephyr build directory (its layout,
        /// MCUboot configuration and images); wins over a scenario's `build:`.
        #[arg(long, value_name = "DIR")]
        build: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum PmCmd {
    /// Convert a Partition Manager map (a build's partitions.yml, a pm_static*.yml, any file
    /// name) into a dfu-hil layout (YAML). regions.yml and pm.config beside it are read too.
    /// Exits 96 when the map is partial or has no MCUboot slot pair.
    Import {
        file: PathBuf,
        /// The SoC (`CONFIG_SOC`, any NCS spelling: nrf52840, nRF5340_CPUAPP_QKAA, nrf54l15…):
        /// flash size, erase and write units. Default: the nRF52840, said on stderr.
        #[arg(long)]
        soc: Option<String>,
        /// Layout name (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// Write the layout here instead of stdout (e.g. partitions/my-board.yaml).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct Outputs {
    /// JUnit XML report (default target/dfu-hil/junit.xml).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// JSON results (default target/dfu-hil/results.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Folder for per-scenario evidence (default target/dfu-hil/evidence).
    #[arg(long)]
    pub evidence: Option<PathBuf>,
    /// Board to run on: `sim` (the built-in simulated board), `native-sim` (executables, see
    /// --native-sim-app), or a board id from the lab inventory (a lab board or one of its
    /// `native-sim:` entries).
    #[arg(long, default_value = "sim")]
    pub board: String,
    /// Lab inventory for `--board ID` (default: $DFU_HIL_INVENTORY, then ci/lab.yaml).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// The native_sim app command line for `--board native-sim` (`{flash}` = the flash file;
    /// `--flash={flash}` is added when absent).
    #[arg(long)]
    pub native_sim_app: Option<String>,
    /// The native_sim MCUboot command line for `--board native-sim`, run to completion before
    /// every app start (`{flash}` as for the app). Without it the app runs on its own.
    #[arg(long, value_name = "PROGRAM ARGS")]
    pub native_sim_bootloader: Option<String>,
    /// Seconds the native_sim bootloader may run before it is killed (SIGKILL) and the reset
    /// fails with "bootloader did not hand over".
    #[arg(long, value_name = "S", default_value_t = DEFAULT_BOOT_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(1..=dfu_hil_runner::limits::MAX_TIMEOUT_S))]
    pub native_sim_boot_timeout_s: u64,
    #[command(flatten)]
    pub timeouts: crate::timeout_args::TimeoutArgs,
    /// Deadline for the whole run, in seconds: scenarios not started by then are not run.
    #[arg(long, value_parser = clap::value_parser!(u64).range(..=dfu_hil_runner::limits::MAX_TIMEOUT_S))]
    pub run_timeout_s: Option<u64>,
    #[command(flatten)]
    pub device: link_args::DeviceLinkArgs,
    /// Run on this NCS / Zephyr build directory: its layout, its MCUboot configuration as the
    /// `bootloader:` block, its images as `build:` fixtures. Wins over a scenario's `build:`.
    #[arg(long, value_name = "DIR")]
    pub build: Option<PathBuf>,
}
