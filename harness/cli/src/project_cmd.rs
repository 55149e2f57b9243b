//! The commands about the project's own files: `pm import`, `schema`, `list`.

use crate::error::{CliError, CliResult};
use dfu_hil_runner::exit::Exit;
use dfu_hil_runner::scenario;
use std::path::{Path, PathBuf};

/// `dfu-hil pm import`: a Partition Manager map (any file name: the content says what it is)
/// as a dfu-hil layout, on stdout or into `out`. `regions.yml` and `pm.config` beside the file
/// are read too; the partition IDs and what was read but not modelled go into the layout as
/// comments.
///
/// Exit 0 when a scenario can run on the layout: every image's slot pair is there (a partial
/// `pm_static.yml` that pins the slots qualifies; stderr says it is partial). A map without
/// MCUboot slots, or with half a pair, is still written — it is what the file says — but exits
/// 96 naming what is missing, so a script does not take it for a layout a scenario can use.
pub fn pm_import(
    file: &Path,
    name: Option<String>,
    out: Option<&Path>,
    soc: Option<String>,
) -> CliResult {
    let opts = dfu_hil_build::pm::ImportOptions {
        name,
        soc,
        ..Default::default()
    };
    let imp = dfu_hil_build::pm::import_file(file, &opts).map_err(CliError::invalid)?;
    let mut yaml = String::new();
    if !imp.ids.is_empty() {
        yaml.push_str("# flash area IDs (pm.config PM_<NAME>_ID):");
        for (n, id) in &imp.ids {
            yaml.push_str(&format!(" {n}={id}"));
        }
        yaml.push('\n');
    }
    for n in &imp.notes {
        yaml.push_str(&format!("# note: {n}\n"));
    }
    yaml.push_str(&imp.layout.to_yaml());
    match out {
        Some(p) => std::fs::write(p, &yaml)
            .map_err(|e| CliError::invalid(format!("{}: {e}", p.display())))?,
        None => print!("{yaml}"),
    }
    if imp.chip_assumed {
        eprintln!(
            "note: no --soc given: the {} geometry was assumed for the internal flash",
            imp.chip.name
        );
    }
    if imp.partial {
        eprintln!(
            "note: {}: a partial map (the partitions a pm_static.yml pins; Partition Manager \
             places the rest at build time)",
            file.display()
        );
    }
    if !imp.is_usable() {
        return Err(CliError::invalid(format!(
            "{}: no {}: a scenario needs every image's slot pair; import the build's \
             partitions.yml",
            file.display(),
            imp.missing.join(", ")
        )));
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
