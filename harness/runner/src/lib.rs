//! The runner: scenario model and loader, fixtures, executor, assertions, evidence and reports.

pub mod console;
pub mod device_link;
pub mod diagnosis;
pub mod event;
pub mod evidence;
mod exec;
pub mod expect;
pub mod fixtures;
pub mod limits;
pub mod needs;
pub mod options;
pub mod prepare;
pub mod report;
pub mod result;
pub mod run;
pub mod scenario;

/// Process exit codes (documented in the README).
pub mod exit {
    pub const PASS: i32 = 0;
    /// A scenario failed: the device did not do what the scenario expects.
    pub const SCENARIO_FAILED: i32 = 100;
    /// Invalid input: a scenario, layout or fixture that cannot be used.
    pub const INVALID_INPUT: i32 = 96;
    /// Infrastructure: board, probe or port unavailable.
    pub const INFRASTRUCTURE: i32 = 98;
    /// Nothing selected.
    pub const NOTHING_SELECTED: i32 = 4;
}
