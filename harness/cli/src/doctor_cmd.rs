//! `dfu-hil doctor BUILD`: check a Zephyr / nRF Connect SDK build directory before anything is
//! flashed (`dfu_hil_build::doctor`). Exit 100 when a finding is an error, 96 when the build (or
//! its layout) cannot be read, 0 otherwise — the rest of the CLI's table.

use crate::error::{CliError, CliResult};
use clap::Args;
use dfu_hil_build::doctor::{self, Verdict};
use dfu_hil_build::Build;
use dfu_hil_runner::exit::Exit;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct DoctorArgs {
    /// The build directory `west build` wrote (or the project folder holding `build/`).
    pub build: PathBuf,
    /// Print the report as JSON (schema `dfu-hil-doctor/1`) for CI.
    #[arg(long)]
    pub json: bool,
}

/// Open the build, run every check, print the report to `out`, and return the exit code.
pub fn run_doctor(a: &DoctorArgs, out: &mut dyn Write) -> CliResult<Exit> {
    let build = Build::open(&a.build).map_err(CliError::invalid)?;
    let report = doctor::run(&build);
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        out.write_all(report.to_text().as_bytes())?;
    }
    Ok(exit_of(report.verdict()))
}

/// The process exit code of a verdict.
pub fn exit_of(v: Verdict) -> Exit {
    match v {
        Verdict::Clean => Exit::Pass,
        Verdict::Errors => Exit::ScenarioFailed,
        Verdict::Unreadable => Exit::InvalidInput,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_map_to_the_cli_table() {
        assert_eq!(exit_of(Verdict::Clean).code(), 0);
        assert_eq!(exit_of(Verdict::Errors).code(), 100);
        assert_eq!(exit_of(Verdict::Unreadable).code(), 96);
    }

    #[test]
    fn a_folder_that_is_not_a_build_is_invalid_input() {
        let d = tempfile::tempdir().unwrap();
        let a = DoctorArgs {
            build: d.path().join("nothing-here"),
            json: false,
        };
        let e = run_doctor(&a, &mut Vec::new()).unwrap_err();
        assert_eq!(e.exit(), Exit::InvalidInput);
    }
}
