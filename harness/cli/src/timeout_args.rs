//! The timeouts every command that runs scenarios takes (`scenario`, `run`, `farm`), declared
//! once: the farm once lacked `--step-timeout-s` because each command had its own copy.

use clap::Args;
use dfu_hil_runner::limits::{MAX_TIMEOUT_MS, MAX_TIMEOUT_S};
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct TimeoutArgs {
    /// Timeout of one SMP request, in milliseconds.
    #[arg(long, default_value_t = 2500,
          value_parser = clap::value_parser!(u64).range(..=MAX_TIMEOUT_MS))]
    pub request_timeout_ms: u64,
    /// Deadline for each step, in seconds (a scenario's `step-timeout-s` wins) [default: 300].
    #[arg(long, value_parser = clap::value_parser!(u64).range(..=MAX_TIMEOUT_S))]
    pub step_timeout_s: Option<u64>,
    /// Deadline for each scenario, in seconds (a scenario's `timeout-s` wins) [default: 1800].
    #[arg(long, value_parser = clap::value_parser!(u64).range(..=MAX_TIMEOUT_S))]
    pub scenario_timeout_s: Option<u64>,
}

impl TimeoutArgs {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn step_timeout(&self) -> Option<Duration> {
        self.step_timeout_s.map(Duration::from_secs)
    }

    pub fn scenario_timeout(&self) -> Option<Duration> {
        self.scenario_timeout_s.map(Duration::from_secs)
    }
}
