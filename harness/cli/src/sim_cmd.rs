//! `dfu-hil sim …`: the simulated board as a process of its own.
//!
//! `dfu-hil sim serve --layout L [--flash FILE] [--baud N]` runs the board on a real PTY and
//! prints `uart connected to pseudotty: /dev/pts/N` (as Zephyr's native_sim does), so any serial
//! SMP client (smpmgr, mcumgr, the harness's own `--board native-sim` path) can drive it.
//! Fresh flash (no `--flash`, or a file that does not exist yet) is provisioned with the
//! `mcuboot` fixture and an app (default `app-v1`, from firmware-fixtures/fixtures.yaml), unless
//! `--blank`. `os reset` reboots through the MCUboot model. SIGINT/SIGTERM save the flash file
//! and exit 0.

// Helpers here are also used by harness/cli/tests/smpmgr.rs (which includes this file), not
// all by the binary.
#![allow(dead_code)]

use anyhow::{bail, Context};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::UpgradeMode;
use dfu_hil_runner::fixtures::{self, Builder, Built};
use dfu_hil_runner::scenario::BootloaderSpec;
use dfu_hil_sim::serve::{self, ServeConfig};
use dfu_hil_sim::{CoreState, SimBoard, UartFaults};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SimCmd {
    /// Run the simulated board on a PTY and print its path (`uart connected to pseudotty: …`).
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Flash layout: a name from partitions/ or a path to a layout YAML.
    #[arg(long, default_value = "nrf52840-internal")]
    pub layout: String,
    /// Keep flash in this file across runs: every device of the layout, raw, concatenated in
    /// layout order (native_sim's flash.bin for a one-device layout). Created on first run.
    #[arg(long)]
    pub flash: Option<PathBuf>,
    /// Pace the UART at this baud rate (8N1: baud/10 bytes per second each way); unpaced when
    /// not given.
    #[arg(long)]
    pub baud: Option<u32>,
    /// Bootloader mode MCUboot is built with when fresh flash is provisioned.
    #[arg(long, default_value = "swap-move", value_parser = parse_mode)]
    pub mode: UpgradeMode,
    /// App fixture programmed into the primary slot when the flash is fresh.
    #[arg(long, visible_alias = "provision", default_value = "app-v1")]
    pub app: String,
    /// Start fresh flash erased instead of provisioning MCUboot and the app.
    #[arg(long, conflicts_with = "app")]
    pub blank: bool,
    /// Print Zephyr log lines between SMP frames on the UART; the optional value is the chance
    /// per response frame (default 0.25).
    #[arg(long, num_args = 0..=1, default_missing_value = "0.25", value_name = "P")]
    pub log_noise: Option<f64>,
    /// Chance per response frame that a log line lands *inside* it (the frame is lost).
    #[arg(long, value_name = "P")]
    pub log_in_frame: Option<f64>,
    /// Seed of the UART fault generator.
    #[arg(long, default_value_t = 1)]
    pub noise_seed: u64,
    /// CONFIG_UART_MCUMGR_RX_BUF_SIZE: drop received lines longer than N bytes (incl. `\n`).
    #[arg(long, value_name = "N")]
    pub rx_line_max: Option<usize>,
}

fn parse_mode(s: &str) -> Result<UpgradeMode, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        format!(
            "unknown bootloader mode `{s}` (swap-scratch, swap-move, swap-offset, overwrite-only, direct-xip)"
        )
    })
}

impl ServeArgs {
    /// Defaults as on the command line, for a layout.
    pub fn new(layout: &str) -> Self {
        ServeArgs {
            layout: layout.to_owned(),
            flash: None,
            baud: None,
            mode: UpgradeMode::SwapMove,
            app: "app-v1".into(),
            blank: false,
            log_noise: None,
            log_in_frame: None,
            noise_seed: 1,
            rx_line_max: None,
        }
    }

    pub fn uart_faults(&self) -> UartFaults {
        UartFaults {
            log_noise: self.log_noise.unwrap_or(0.0),
            log_in_frame: self.log_in_frame.unwrap_or(0.0),
            seed: self.noise_seed,
            rx_line_max: self.rx_line_max,
        }
    }
}

/// A layout by name (partitions/NAME.yaml) or by path.
pub fn resolve_layout(root: &Path, name: &str) -> anyhow::Result<Layout> {
    let as_path = Path::new(name);
    let path = if as_path.is_file() {
        as_path.to_owned()
    } else {
        root.join("partitions").join(format!("{name}.yaml"))
    };
    if !path.is_file() {
        bail!("no layout `{name}`: not a file, and no {}", path.display());
    }
    Layout::load(&path).with_context(|| format!("layout {}", path.display()))
}

/// Build fixtures (`mcuboot`, apps) from firmware-fixtures/fixtures.yaml for this layout and
/// bootloader mode, the way a scenario's `flash:` step gets them.
pub fn build_fixtures(
    root: &Path,
    layout: &Layout,
    mode: UpgradeMode,
    names: &[&str],
) -> anyhow::Result<BTreeMap<String, Built>> {
    let manifest_dir = root.join("firmware-fixtures");
    let manifest = fixtures::load_manifest(&manifest_dir.join("fixtures.yaml"))?;
    let extra = BTreeMap::new();
    let bootloader = BootloaderSpec {
        mode,
        ..BootloaderSpec::default()
    };
    let builder = Builder {
        manifest_dir: manifest_dir.clone(),
        manifest,
        extra: &extra,
        scenario_dir: manifest_dir,
        layout,
        bootloader: &bootloader,
    };
    let mut out = BTreeMap::new();
    for n in names {
        out.insert(n.to_string(), builder.build(n)?);
    }
    Ok(out)
}

/// The board `serve` will run: flash loaded from the file, or fresh and provisioned; powered on.
pub fn prepare_board(args: &ServeArgs, root: &Path) -> anyhow::Result<SimBoard> {
    let layout = resolve_layout(root, &args.layout)?;
    let mut board = SimBoard::new(layout.clone());
    let loaded = match &args.flash {
        Some(f) => serve::load_flash(&mut board, f)?,
        None => false,
    };
    if !loaded && !args.blank {
        let pair = layout
            .images
            .first()
            .context("the layout has no image pair")?;
        let built = build_fixtures(root, &layout, args.mode, &["mcuboot", &args.app])?;
        board
            .probe_program("mcuboot", &built["mcuboot"].bytes)
            .context("program mcuboot")?;
        board
            .probe_program(&pair.primary, &built[&args.app].bytes)
            .with_context(|| format!("program {} into {}", args.app, pair.primary))?;
    }
    board.set_uart_faults(args.uart_faults());
    board.reset();
    Ok(board)
}

/// Prepare the board and serve it until `stop` is set; `on_ready` gets the PTY path once the
/// port exists. Returns the board as it ended (for tests) after the final flash save.
pub fn serve_with(
    args: &ServeArgs,
    root: &Path,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&Path),
) -> anyhow::Result<SimBoard> {
    let mut board = prepare_board(args, root)?;
    let state = match board.core_state() {
        CoreState::Running { app, partition } => {
            format!("running {} {} from {partition}", app.name, app.version)
        }
        other => format!("not running an app ({other:?}): nothing will answer SMP"),
    };
    let cfg = ServeConfig {
        baud: args.baud,
        flash_file: args.flash.clone(),
    };
    let report = serve::serve(&mut board, &cfg, stop, |path| {
        eprintln!("sim: layout {}, {state}", args.layout);
        on_ready(path)
    })?;
    eprintln!(
        "sim: stopped ({} bytes in, {} bytes out{})",
        report.bytes_in,
        report.bytes_out,
        match &args.flash {
            Some(f) => format!(", flash saved to {}", f.display()),
            None => String::new(),
        }
    );
    Ok(board)
}

/// Run a `sim` subcommand; returns the process exit code.
pub fn run_sim(cmd: SimCmd, root: &Path) -> anyhow::Result<i32> {
    match cmd {
        SimCmd::Serve(args) => {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            ctrlc::set_handler(move || s.store(true, Ordering::Relaxed))
                .context("install the SIGINT/SIGTERM handler")?;
            serve_with(&args, root, &stop, serve::announce)?;
            Ok(0)
        }
    }
}
