//! The commands about the project's own files: `pm import`, `schema`, `list`.

use crate::error::{CliError, CliResult};
use dfu_hil_runner::exit::Exit;
use dfu_hil_runner::scenario;
use std::path::{Path, PathBuf};

/// `dfu-hil pm import`: a Partition Manager file as a dfu-hil layout, on stdout or into `out`.
pub fn pm_import(file: &Path, name: Option<String>, out: Option<&Path>) -> CliResult {
    let opts = dfu_hil_mcuboot::pm::PmOptions {
        name,
        ..Default::default()
    };
    let layout = dfu_hil_mcuboot::pm::import_file(file, &opts).map_err(CliError::invalid)?;
    let yaml = dfu_hil_mcuboot::pm::to_yaml(&layout);
    match out {
        Some(p) => std::fs::write(p, yaml)
            .map_err(|e| CliError::invalid(format!("{}: {e}", p.display())))?,
        None => print!("{yaml}"),
    }
    Ok(Exit::Pass)
}

/// `dfu-hil schema`: the scenario JSON Schema, on stdout or into `out`.
pub fn schema(out: Option<&PathBuf>) -> CliResult {
    let text = serde_json::to_string_pretty(&scenario::json_schema())
        .map_err(|e| CliError::invalid(format!("scenario schema: {e}")))?;
    match out {
        Some(p) => std::fs::write(p, text + "\n")
            .map_err(|e| CliError::invalid(format!("{}: {e}", p.display())))?,
        None => println!("{text}"),
    }
    Ok(Exit::Pass)
}

/// `dfu-hil list`: the bundled scenarios with their layout and first description line.
pub fn list(root: &Path) -> CliResult {
    for p in scenario::all_scenarios(root) {
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
    Ok(Exit::Pass)
}
