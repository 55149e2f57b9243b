//! `dfu-hil sim …`: the simulated board as a process of its own.
//!
//! `dfu-hil sim serve --layout L [--flash FILE] [--baud N]` runs the board on a real PTY and
//! prints `uart connected to pseudotty: /dev/pts/N` (as Zephyr's native_sim does), so any serial
//! SMP client (smpmgr, mcumgr, the harness's own `--board native-sim` path) can drive it.
//! Fresh flash (no `--flash`, or a file that does not exist yet) is provisioned with the
//! `mcuboot` fixture and an app (default `app-v1`, from firmware-fixtures/fixtures.yaml), unless
//! `--blank`. `os reset` reboots through the MCUboot model. SIGINT/SIGTERM save the flash file
//! and exit 0.
//!
//! Real native_sim builds are two executables on one flash file: MCUboot runs first (does the
//! swap, exits to hand over), then the app, which exits on `sys_reboot`. The stand-ins for
//! that pair (what `--board native-sim` tests run):
//! * `dfu-hil sim boot --layout L --flash FILE`: the MCUboot model once on the file; prints
//!   its log, saves the file and exits 0 when it would jump to an app. With nothing bootable
//!   it does what MCUboot does in its `FIH_PANIC` loop: never returns, and ignores SIGTERM
//!   (only SIGKILL ends it). Exit 2 when the boot partition holds no MCUboot build.
//! * `dfu-hil sim serve --app-only --flash FILE`: runs the image in the primary slot as the
//!   bootloader left it (no boot model of its own), and after an accepted `os reset` (and the
//!   app's reset delay) saves the flash as it was and exits with `--reset-exit-status`.

// Helpers here are also used by harness/cli/tests/smpmgr.rs (which includes this file), not
// all by the binary.
#![allow(dead_code)]

use crate::error::CliResult;
use anyhow::{bail, Context};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::UpgradeMode;
use dfu_hil_runner::fixtures::{self, Builder, Built};
use dfu_hil_runner::scenario::BootloaderSpec;
use dfu_hil_sim::links::serve::{self, ServeConfig};
use dfu_hil_sim::{CoreState, SimBoard, UartFaults};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `dfu-hil sim …`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SimCommand {
    #[command(flatten)]
    Serve(SimCmd),
    /// Run the simulated MCUboot once on a flash file, as a native_sim MCUboot build does:
    /// exit 0 when it hands over to an app; with nothing bootable, spin forever ignoring
    /// SIGTERM (as MCUboot's FIH panic loop does).
    Boot(BootArgs),
}

/// The serving subcommand, an enum of its own (tests parse and destructure it).
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SimCmd {
    /// Run the simulated board on a PTY and print its path (`uart connected to pseudotty: …`).
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct BootArgs {
    /// Flash layout: a name from partitions/ or a path to a layout YAML.
    #[arg(long, default_value = "nrf52840-internal")]
    pub layout: String,
    /// The flash file (format as for `sim serve --flash`); a missing file is erased flash.
    #[arg(long)]
    pub flash: PathBuf,
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
    /// The app half of a native_sim pair (`sim boot` ran before): run the image in the
    /// primary slot as the bootloader left the flash, without running the MCUboot model, and
    /// exit after an accepted `os reset` (native_sim exits on `sys_reboot`).
    #[arg(long, visible_alias = "no-bootloader")]
    pub app_only: bool,
    /// Exit status after an `os reset` with --app-only (native_sim builds differ: 0 or 1).
    #[arg(long, default_value_t = 0, value_name = "N", requires = "app_only")]
    pub reset_exit_status: u8,
    /// Serve a device built like this NCS / Zephyr build directory: its layout, MCUboot as its
    /// `.config` says (mode, max-sectors, key, …), and — on fresh flash — its own signed app
    /// image in the primary slot (the simulator runs a model of that app's SMP server from its
    /// `.config`). `--app NAME` provisions a synthetic fixture instead (MCUboot then has the
    /// harness key). Replaces --layout and --mode.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["layout", "mode"])]
    pub build: Option<PathBuf>,
    /// Take this chip's flash erase/write time (nrf52840, nrf5340; from the product
    /// specifications): the CPU stalls while the NVMC works, so answers and boots come that
    /// much later. Without it flash operations take no time.
    #[arg(long, value_name = "CHIP")]
    pub chip: Option<String>,
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
            app_only: false,
            reset_exit_status: 0,
            chip: None,
            build: None,
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
        build: None,
        release: Default::default(),
        transport: Default::default(),
    };
    let mut out = BTreeMap::new();
    for n in names {
        out.insert(n.to_string(), builder.build(n)?);
    }
    Ok(out)
}

/// The board `serve` will run: flash loaded from the file, or fresh and provisioned; powered on.
pub fn prepare_board(args: &ServeArgs, root: &Path) -> anyhow::Result<SimBoard> {
    let mut board = load_board(args, root)?;
    board.reset();
    Ok(board)
}

/// `sim serve --build`: the build's layout and, on fresh flash, MCUboot from its `.config`
/// with the build's own app image (or the `--app` fixture when one is named).
fn build_board(args: &ServeArgs, root: &Path, dir: &Path) -> anyhow::Result<(SimBoard, bool)> {
    use dfu_hil_runner::build_input::FromBuild;
    use dfu_hil_runner::fixtures::{BuildRole, FixtureSpec};
    let (from, mut spec) = FromBuild::open_for_tool(dir).map_err(|e| anyhow::anyhow!(e))?;
    for n in &from.notes {
        eprintln!("sim: note: {n}");
    }
    let layout = from.layout.clone();
    let mut board = SimBoard::new(layout.clone());
    let loaded = match &args.flash {
        Some(f) => serve::load_flash(&mut board, f)?,
        None => false,
    };
    if loaded || args.blank {
        return Ok((board, true));
    }
    let pair = layout
        .images
        .first()
        .context("the build's layout has no MCUboot image pair")?;
    // The default app is the build's own; a named fixture is synthetic and signed with the
    // manifest key, which MCUboot must then hold.
    let own = args.app == "app-v1";
    let mut extra = BTreeMap::new();
    let app = if own {
        extra.insert("build-app".to_owned(), FixtureSpec::Build(BuildRole::App));
        eprintln!("sim: note: {}", from.model_note());
        "build-app".to_owned()
    } else {
        spec.key = "default".into();
        args.app.clone()
    };
    let manifest_dir = root.join("firmware-fixtures");
    let manifest = fixtures::load_manifest(&manifest_dir.join("fixtures.yaml"))?;
    let builder = Builder {
        manifest_dir: manifest_dir.clone(),
        manifest,
        extra: &extra,
        scenario_dir: manifest_dir,
        layout: &layout,
        bootloader: &spec,
        build: Some(&from),
        release: Default::default(),
        transport: Default::default(),
    };
    let mcuboot = builder.build("mcuboot")?;
    let image = builder.build(&app)?;
    board
        .probe_program("mcuboot", &mcuboot.bytes)
        .context("program mcuboot")?;
    board
        .probe_program(&pair.primary, &image.bytes)
        .with_context(|| format!("program {app} into {}", pair.primary))?;
    Ok((board, true))
}

/// [`prepare_board`] without the power-on: flash loaded or provisioned, UART faults set.
pub fn load_board(args: &ServeArgs, root: &Path) -> anyhow::Result<SimBoard> {
    if let Some(dir) = &args.build {
        let (mut board, _) = build_board(args, root, dir)?;
        board.set_uart_faults(args.uart_faults());
        set_chip(&mut board, args)?;
        return Ok(board);
    }
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
    set_chip(&mut board, args)?;
    Ok(board)
}

/// `--chip`: that chip's flash erase/write times.
fn set_chip(board: &mut SimBoard, args: &ServeArgs) -> anyhow::Result<()> {
    if let Some(chip) = &args.chip {
        let timing = dfu_hil_sim::device::flash_timing::for_chip(chip).with_context(|| {
            format!(
                "--chip {chip}: no flash timing for it (have: {})",
                dfu_hil_sim::device::flash_timing::chip_names().join(", ")
            )
        })?;
        board.flash.set_internal_timing(timing);
    }
    Ok(())
}

/// Prepare the board and serve it until `stop` is set; `on_ready` gets the PTY path once the
/// port exists. Returns the board as it ended (for tests) after the final flash save.
pub fn serve_with(
    args: &ServeArgs,
    root: &Path,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&Path),
) -> anyhow::Result<SimBoard> {
    let (board, _) = serve_board(args, root, stop, on_ready)?;
    Ok(board)
}

/// [`serve_with`], also saying whether serving ended because of an `os reset` (`--app-only`).
pub fn serve_board(
    args: &ServeArgs,
    root: &Path,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&Path),
) -> anyhow::Result<(SimBoard, bool)> {
    let mut board = if args.app_only {
        let mut board = load_board(args, root)?;
        let banner = serve::start_app_as_left(&mut board).map_err(|e| {
            anyhow::anyhow!(
                "app-only: {e} (flash file {})",
                args.flash
                    .as_ref()
                    .map_or("none".into(), |f| f.display().to_string())
            )
        })?;
        for line in banner {
            println!("{line}");
        }
        board
    } else {
        prepare_board(args, root)?
    };
    let board_layout = board.flash.layout.name.clone();
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
    let ready = |path: &Path| {
        eprintln!("sim: layout {}, {state}", board_layout);
        on_ready(path)
    };
    let report = if args.app_only {
        serve::serve_app(&mut board, &cfg, stop, ready)?
    } else {
        serve::serve(&mut board, &cfg, stop, ready)?
    };
    eprintln!(
        "sim: {} ({} bytes in, {} bytes out{})",
        if report.reset {
            "rebooting: exit after `os reset`"
        } else {
            "stopped"
        },
        report.bytes_in,
        report.bytes_out,
        match &args.flash {
            Some(f) => format!(", flash saved to {}", f.display()),
            None => String::new(),
        }
    );
    Ok((board, report.reset))
}

/// `sim boot`: the MCUboot model once on the flash file. Returns the process status when it
/// hands over (0) or finds no MCUboot build (2); never returns when nothing is bootable.
pub fn run_boot(args: &BootArgs, root: &Path) -> anyhow::Result<u8> {
    use std::io::Write;
    let layout = resolve_layout(root, &args.layout)?;
    let mut board = SimBoard::new(layout);
    serve::load_flash(&mut board, &args.flash)?;
    let (end, lines) = serve::boot_once(&mut board);
    let mut out = std::io::stdout().lock();
    for l in &lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = out.flush();
    drop(out);
    match end {
        serve::BootEnd::HandOver { partition } => {
            serve::save_flash(&board, &args.flash)?;
            println!("sim boot: handing over to the image in `{partition}`");
            Ok(0)
        }
        serve::BootEnd::NoBootloader => {
            eprintln!(
                "sim boot: no MCUboot build in the boot partition of {} (layout `{}`): flash the \
                 `mcuboot` fixture first",
                args.flash.display(),
                args.layout
            );
            Ok(2)
        }
        serve::BootEnd::Stuck { reason } => {
            // MCUboot writes what it did (e.g. erasing a bad image) before it gives up.
            serve::save_flash(&board, &args.flash)?;
            spin_forever(&format!(
                "sim boot: nothing to boot ({reason}); spinning like MCUboot's FIH panic loop \
                 (SIGTERM is ignored, SIGKILL ends it)"
            ))
        }
    }
}

/// What MCUboot does when nothing is bootable: stay put forever. SIGTERM is ignored (a
/// native_sim MCUboot in its panic loop does not react to it) from before `message` is
/// printed; the loop sleeps, it does not burn a core.
fn spin_forever(message: &str) -> ! {
    // SAFETY: setting a signal's disposition to "ignore" has no preconditions.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    eprintln!("{message}");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Run a `sim` subcommand; returns the process status. These stand in for native_sim
/// executables, whose statuses are theirs (`--reset-exit-status`), not the exit-code table's.
pub fn run_sim(cmd: SimCommand, root: &Path) -> CliResult<u8> {
    match cmd {
        SimCommand::Serve(SimCmd::Serve(args)) => {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            ctrlc::set_handler(move || s.store(true, Ordering::Relaxed))
                .context("install the SIGINT/SIGTERM handler")?;
            let (_, rebooted) = serve_board(&args, root, &stop, serve::announce)?;
            Ok(if rebooted { args.reset_exit_status } else { 0 })
        }
        SimCommand::Boot(args) => Ok(run_boot(&args, root)?),
    }
}
