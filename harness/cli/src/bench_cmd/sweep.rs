//! `dfu-hil bench sweep`: how long a power-cut sweep over one full-slot swap takes on the
//! simulated board — every flash operation of MCUboot's swap a cut point, each followed by a
//! recovery boot and an `image list` check. Prints the figure; asserts nothing about speed.

use anyhow::{bail, Context};
use dfu_hil_runner::result::StepStatus;
use dfu_hil_runner::run::{prepare, run_scenario, RunOptions};
use dfu_hil_runner::scenario;
use std::path::Path;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// Size of the unsigned app binaries in bytes (default: the full-slot swap of issue #16,
    /// 0x70000 bytes of image moved sector by sector).
    #[arg(long, default_value_t = 0x70000 - 0x400)]
    pub size: u32,
    #[arg(long, default_value = "nrf52840-internal")]
    pub layout: String,
    #[arg(long, default_value = "swap-move", value_parser = clap::builder::PossibleValuesParser::new(["swap-move", "swap-scratch", "swap-offset"]))]
    pub mode: String,
    /// Run the swap again up to every cut point instead of rebuilding the state from
    /// checkpoints (the way before issue #16, for comparison).
    #[arg(long)]
    pub replay: bool,
    /// Check only every Nth cut point.
    #[arg(long, default_value_t = 1)]
    pub every: u64,
}

/// The scenario the benchmark runs: flash v1, upload-free staging of v2 (flashed to the
/// secondary slot), `image test`, then the sweep over the test swap.
fn scenario_text(a: &SweepArgs) -> String {
    format!(
        "name: bench-sweep\n\
         layout: {layout}\n\
         bootloader: {{ mode: {mode} }}\n\
         fixtures:\n  \
           big-v1: {{ app: {{ name: bench, version: 1.0.0, size: {size} }} }}\n  \
           big-v2: {{ app: {{ name: bench, version: 2.0.0, size: {size} }} }}\n\
         steps:\n  \
           - flash: {{ mcuboot: mcuboot, slot0: big-v1, slot1: big-v2 }}\n  \
           - test: big-v2\n  \
           - sweep:\n      \
               every: {every}\n      \
               replay: {replay}\n      \
               cut-during: [ {{ reset: {{}} }} ]\n      \
               then:\n        \
                 - reset: {{ how: probe }}\n        \
                 - expect: {{ running: big-v2, slot0: {{ confirmed: false }}, slot1: {{ image: big-v1 }} }}\n",
        layout = a.layout,
        mode = a.mode,
        size = a.size,
        every = a.every.max(1),
        replay = a.replay,
    )
}

pub fn sweep(a: &SweepArgs, root: &Path) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("dfu-hil-bench-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let r = run_in(a, root, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn run_in(a: &SweepArgs, root: &Path, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("bench-sweep.yaml");
    std::fs::write(&path, scenario_text(a))?;
    let opts = RunOptions::new(root.to_owned(), dir.join("evidence"));
    let loaded = scenario::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (layout, fixtures) = prepare(&loaded, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (board, _shared) = dfu_hil_board::sim::open(layout.clone(), "sim");
    let t0 = Instant::now();
    let r = run_scenario(
        &loaded,
        &layout,
        &fixtures,
        board,
        &opts,
        &mut dfu_hil_runner::event::Silent,
    );
    let all = t0.elapsed();
    let Some(step) = r.steps.get(2) else {
        bail!(
            "the benchmark scenario stopped before its sweep: {:?}",
            r.failed_step()
        );
    };
    if step.status != StepStatus::Passed {
        bail!(
            "the sweep did not pass: {} {:?}",
            step.message,
            step.failure
        );
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "power-cut sweep, {} {} ({} bytes per image), {} core(s):",
        a.layout, a.mode, a.size, threads
    );
    println!("  {}", step.message);
    println!(
        "  sweep step: {:.2} s (scenario with staging: {:.2} s)",
        step.elapsed.as_secs_f64(),
        all.as_secs_f64()
    );
    Ok(())
}
