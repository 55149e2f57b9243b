//! The runner: scenario model and loader, fixtures, executor, assertions, evidence and reports.

pub mod build_input;
pub mod console;
pub mod device_link;
pub mod diagnosis;
pub mod event;
pub mod evidence;
mod exec;
pub mod exit;
pub mod expect;
pub mod fixture_spec;
pub mod fixtures;
pub mod limits;
pub mod needs;
pub mod options;
pub mod plan;
pub mod prepare;
pub mod raw_smp;
pub mod replay;
pub mod report;
pub mod result;
pub mod run;
pub mod scenario;
