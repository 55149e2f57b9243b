//! `dfu-hil replay EVIDENCE_DIR`: boot an evidence folder's flash image once on a board of the
//! desk — the simulated board in process, or native-sim executables given a copy of
//! `flash.bin` as their flash file — print what happened, and say whether it is the failing
//! boot the folder recorded (exit 0) or not (exit 100).

use crate::error::{CliError, CliResult};
use clap::Args;
use dfu_hil_board::native_sim::{self, NativeSimConfig};
use dfu_hil_board::Board;
use dfu_hil_farm::select::{self, DEFAULT_BOOT_TIMEOUT_S};
use dfu_hil_runner::exit::Exit;
use dfu_hil_runner::replay::{self, EvidenceFolder};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// An evidence folder written by `dfu-hil run` / `scenario` (target/dfu-hil/evidence/…).
    pub dir: PathBuf,
    /// `sim` (the simulated board, in process) or `native-sim` (your native_sim MCUboot and
    /// app builds, see --native-sim-app).
    #[arg(long, default_value = "sim")]
    pub board: String,
    /// Boot the flash as it was at a failing sweep's cut point (`at-cut/flash.bin`) instead of
    /// as the scenario ended.
    #[arg(long)]
    pub at_cut: bool,
    /// native-sim: the app executable and its arguments (`{flash}` = the flash file).
    #[arg(long, value_name = "PROGRAM ARGS")]
    pub native_sim_app: Option<String>,
    /// native-sim: a native_sim MCUboot run before the app.
    #[arg(long, value_name = "PROGRAM ARGS")]
    pub native_sim_bootloader: Option<String>,
    /// native-sim: how long MCUboot may run before it counts as stuck.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_BOOT_TIMEOUT_S)]
    pub native_sim_boot_timeout_s: u64,
}

/// Replay, writing the report to `out`: `Exit::Pass` when the recorded core state was
/// reproduced, `Exit::ScenarioFailed` when the boot ended differently.
pub fn run_replay(a: &ReplayArgs, out: &mut dyn Write) -> CliResult<Exit> {
    if !matches!(a.board.as_str(), "sim" | "native-sim") {
        return Err(CliError::invalid(format!(
            "replay runs on `sim` or `native-sim`, not `{}` (a lab board's flash is not \
             programmed from an evidence folder)",
            a.board
        )));
    }
    let folder = replay::open_folder(&a.dir, a.at_cut).map_err(CliError::invalid)?;
    let mut board = open_board(a, &folder)?;
    let r = replay::boot_once(board.probe.as_mut(), &folder).map_err(CliError::infrastructure)?;
    out.write_all(r.report(&folder).as_bytes())?;
    Ok(match r.reproduced(&folder) {
        Some(true) => Exit::Pass,
        Some(false) => Exit::ScenarioFailed,
        // Nothing recorded to compare with: the replay itself did its job.
        None => Exit::Pass,
    })
}

fn open_board(a: &ReplayArgs, folder: &EvidenceFolder) -> CliResult<Board> {
    match a.board.as_str() {
        "sim" => {
            let (board, shared) = dfu_hil_board::sim::open(folder.layout.clone(), "sim");
            let mut sim = shared
                .lock()
                .map_err(|_| CliError::infrastructure("the simulated board's lock is poisoned"))?;
            dfu_hil_sim::links::serve::load_flash(&mut sim, &folder.flash)
                .map_err(CliError::invalid)?;
            drop(sim);
            Ok(board)
        }
        "native-sim" => {
            let words = |s: &Option<String>| -> Vec<String> {
                s.as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            };
            let app = select::command(&words(&a.native_sim_app)).ok_or_else(|| {
                CliError::invalid(
                    "--board native-sim needs --native-sim-app \"PROGRAM ARGS…\" (the app executable)",
                )
            })?;
            // The executables write their flash file: they get a copy, the evidence stays.
            let flash = std::env::temp_dir()
                .join(format!("dfu-hil-replay-{}-flash.bin", std::process::id()));
            std::fs::copy(&folder.flash, &flash).map_err(|e| {
                CliError::infrastructure(format!(
                    "copy {} to {}: {e}",
                    folder.flash.display(),
                    flash.display()
                ))
            })?;
            let mut cfg = NativeSimConfig::new(folder.layout.clone(), flash, app);
            cfg.bootloader = select::command(&words(&a.native_sim_bootloader));
            cfg.bootloader_timeout = Duration::from_secs(a.native_sim_boot_timeout_s);
            cfg.remove_flash_on_drop = true;
            native_sim::open(cfg, "native-sim")
                .map(|(b, _)| b)
                .map_err(CliError::infrastructure)
        }
        other => Err(CliError::invalid(format!(
            "replay runs on `sim` or `native-sim`, not `{other}`"
        ))),
    }
}
