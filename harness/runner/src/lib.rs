//! The runner: scenario model and loader, fixtures, executor, assertions, evidence and reports.

pub mod console;
pub mod diagnosis;
pub mod evidence;
pub mod exit;
pub mod expect;
pub mod fixtures;
pub mod needs;
pub mod report;
pub mod run;
pub mod scenario;
