//! `dfu-hil farm`: its arguments, and the exit code of its outcome. The farm itself (queue,
//! workers per board, locks, reruns, reports) is `dfu_hil_farm`.

use dfu_hil_farm::farm::{self, FarmOptions, FarmStatus};
use dfu_hil_runner::exit::Exit;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

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
    #[arg(long, default_value = farm::DEFAULT_LOCK_DIR)]
    pub lock_dir: PathBuf,
    /// How long to wait for a board held by another job, in seconds.
    #[arg(long, default_value_t = farm::DEFAULT_LOCK_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(..=dfu_hil_runner::limits::MAX_TIMEOUT_S))]
    pub lock_timeout_s: u64,
    #[command(flatten)]
    pub timeouts: crate::timeout_args::TimeoutArgs,
    /// Print each board's step lines (default: only the per-board summary and failures).
    #[arg(long)]
    pub show_steps: bool,
    #[command(flatten)]
    pub device: crate::link_args::DeviceLinkArgs,
}

impl FarmArgs {
    /// The library's options; `interrupt` is the flag Ctrl-C / SIGTERM set.
    pub fn options(&self, interrupt: Arc<AtomicBool>) -> FarmOptions {
        FarmOptions {
            inventory: self.inventory.clone(),
            patterns: self.patterns.clone(),
            tags: self.tags.clone(),
            board_tags: self.board_tags.clone(),
            sim: self.sim,
            reruns: self.reruns,
            out: self.out.clone(),
            evidence: self.evidence.clone(),
            lock_dir: self.lock_dir.clone(),
            lock_timeout: Duration::from_secs(self.lock_timeout_s),
            request_timeout: self.timeouts.request_timeout(),
            scenario_timeout: self.timeouts.scenario_timeout(),
            step_timeout: self.timeouts.step_timeout(),
            show_steps: self.show_steps,
            device: self.device.options(),
            interrupt,
        }
    }
}

/// The exit code of a farm run, from the one table.
pub fn exit_code(status: FarmStatus) -> Exit {
    match status {
        FarmStatus::Interrupted => Exit::Interrupted,
        FarmStatus::BoardUnavailable => Exit::Infrastructure,
        FarmStatus::InvalidInput => Exit::InvalidInput,
        FarmStatus::Failed => Exit::ScenarioFailed,
        FarmStatus::NothingSelected => Exit::NothingSelected,
        FarmStatus::Passed => Exit::Pass,
    }
}

/// Run the farm. Returns the exit code.
pub fn run_farm(args: &FarmArgs, root: &Path, interrupt: Arc<AtomicBool>) -> Exit {
    exit_code(farm::run_farm(&args.options(interrupt), root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        farm: FarmArgs,
    }

    #[test]
    fn command_line() {
        let c = Cli::try_parse_from([
            "farm",
            "--sim",
            "2",
            "--junit",
            "out",
            "--reruns",
            "1",
            "--board-tag",
            "nightly",
            "--tag",
            "smoke",
            "swap",
            "power",
        ])
        .unwrap()
        .farm;
        assert_eq!(c.sim, 2);
        assert_eq!(c.out, Some(PathBuf::from("out")));
        assert_eq!(c.reruns, 1);
        assert_eq!(c.board_tags, ["nightly"]);
        assert_eq!(c.tags, ["smoke"]);
        assert_eq!(c.patterns, ["swap", "power"]);
        assert_eq!(c.lock_dir, PathBuf::from("/tmp/dfu-hil-locks"));
    }

    #[test]
    fn step_timeout_reaches_the_farm_options() {
        let c = Cli::try_parse_from(["farm", "--sim", "1", "--step-timeout-s", "7"])
            .unwrap()
            .farm;
        let o = c.options(Arc::default());
        assert_eq!(o.step_timeout, Some(Duration::from_secs(7)));
        let defaults = Cli::try_parse_from(["farm"])
            .unwrap()
            .farm
            .options(Arc::default());
        assert_eq!(defaults.step_timeout, None);
        assert_eq!(defaults.lock_timeout, FarmOptions::new().lock_timeout);
        assert_eq!(defaults.lock_dir, FarmOptions::new().lock_dir);
    }
}
