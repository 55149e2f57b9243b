//! Which board a run uses, and opening it: the built-in simulated board, a real board from the
//! lab inventory (probe-rs + serial), or native_sim executables on a flash file.
//!
//! Opening is the only backend-specific code above the board crate; the runner drives every
//! `Board` the same way. It lives here rather than in `dfu_hil_board` because opening a board
//! *for a scenario* needs the scenario's transport (`runner::scenario::TransportKind`), and
//! the board crate sits below the runner: `run`, `lint` and the farm all choose boards through
//! this module.

use dfu_hil_board::hw::inventory::BoardEntry;
use dfu_hil_board::hw::probe_rs::HwProbe;
use dfu_hil_board::hw::{BoardProfile, Capability, Inventory};
use dfu_hil_board::native_sim::{self, CommandSpec, NativeSimConfig};
use dfu_hil_board::probe::BoardErrorKind;
use dfu_hil_board::sim::SimTransport;
use dfu_hil_board::{Board, BoardError, BoardKind, Link};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_runner::scenario::TransportKind;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a board could not be opened for a scenario (infrastructure, exit 98).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The lab's description of the board: inventory, profile, a layout or transport the board
    /// is not set up for, a missing native_sim command line.
    #[error("{0}")]
    Setup(String),
    /// The board itself (probe, port, process), with its cause.
    #[error("board `{board}`: {source}")]
    Board {
        board: String,
        #[source]
        source: BoardError,
    },
    /// A backend's own error, already naming what failed.
    #[error(transparent)]
    Backend(#[from] BoardError),
}

impl OpenError {
    /// Which part of the board failed (`None`: its setup, not the board).
    pub fn kind(&self) -> Option<BoardErrorKind> {
        match self {
            OpenError::Setup(_) => None,
            OpenError::Board { source, .. } | OpenError::Backend(source) => Some(source.kind()),
        }
    }
}

impl From<String> for OpenError {
    fn from(s: String) -> Self {
        OpenError::Setup(s)
    }
}

impl From<&str> for OpenError {
    fn from(s: &str) -> Self {
        OpenError::Setup(s.to_owned())
    }
}

/// What is known about a board before opening it.
#[derive(Debug, Clone)]
pub struct BoardFacts {
    /// As in reports (`sim`, `native-sim`, the inventory id).
    pub name: String,
    pub capabilities: BTreeSet<Capability>,
    /// Profile in `boards/`; `None` for simulated boards.
    pub profile: Option<String>,
    /// The firmware's SMP link facts of the inventory entry over its profile (empty for
    /// simulated boards).
    pub device_link: dfu_hil_board::DeviceLinkFacts,
}

/// The board named on the command line.
#[derive(Debug, Clone)]
pub enum BoardChoice {
    Sim,
    /// A board of the lab inventory, by id.
    Hw {
        inventory: PathBuf,
        id: String,
    },
    /// Executables following Zephyr native_sim's contract (`--flash=FILE`, the app prints
    /// `uart connected to pseudotty: …`), given as command lines: `--board native-sim` with
    /// `--native-sim-app`/`--native-sim-bootloader`, or a `native-sim:` entry of the inventory.
    NativeSim {
        /// As in reports: `native-sim`, or the inventory id.
        name: String,
        app: Vec<String>,
        /// Run to completion before every app start (MCUboot built for native_sim).
        bootloader: Option<Vec<String>>,
        /// A bootloader still running after this is killed (SIGKILL) as stuck.
        boot_timeout: Duration,
        /// The layout the executables were built for (inventory entries), if known.
        layout: Option<String>,
    },
}

/// The native_sim command lines given on the command line.
#[derive(Debug, Clone)]
pub struct NativeSimArgs {
    /// `--native-sim-app`.
    pub app: Option<String>,
    /// `--native-sim-bootloader`.
    pub bootloader: Option<String>,
    /// `--native-sim-boot-timeout-s`.
    pub boot_timeout: Duration,
}

/// Default of `--native-sim-boot-timeout-s`: real MCUboot on native_sim validates and swaps
/// in well under that; one that runs longer is stuck (its FIH panic loop never ends).
pub const DEFAULT_BOOT_TIMEOUT_S: u64 = 60;

impl Default for NativeSimArgs {
    fn default() -> Self {
        NativeSimArgs {
            app: None,
            bootloader: None,
            boot_timeout: Duration::from_secs(DEFAULT_BOOT_TIMEOUT_S),
        }
    }
}

/// A command line split at whitespace (no quoting).
fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

impl BoardChoice {
    /// `--board` as given. An id that names a `native-sim:` entry of the inventory is that
    /// native_sim pair; any other id is a lab board (checked when the board is used).
    pub fn parse(
        board: &str,
        inventory: Option<&Path>,
        native: &NativeSimArgs,
        root: &Path,
    ) -> Self {
        match board {
            "sim" => BoardChoice::Sim,
            "native-sim" => BoardChoice::NativeSim {
                name: "native-sim".into(),
                app: words(native.app.as_deref().unwrap_or_default()),
                bootloader: native.bootloader.as_deref().map(words),
                boot_timeout: native.boot_timeout,
                layout: None,
            },
            id => {
                let inventory = inventory
                    .map(Path::to_owned)
                    .or_else(|| std::env::var_os("DFU_HIL_INVENTORY").map(PathBuf::from))
                    .unwrap_or_else(|| root.join("ci/lab.yaml"));
                // A broken or missing inventory is reported where the board is used.
                let entry = Inventory::load(&inventory)
                    .ok()
                    .and_then(|inv| inv.native_sim(id).cloned());
                match entry {
                    Some(e) => BoardChoice::NativeSim {
                        name: e.id.clone(),
                        app: words(&e.app),
                        bootloader: e.bootloader.as_deref().map(words),
                        boot_timeout: Duration::from_secs(
                            e.boot_timeout_s.unwrap_or(DEFAULT_BOOT_TIMEOUT_S),
                        ),
                        layout: e.layout.clone(),
                    },
                    None => BoardChoice::Hw {
                        inventory,
                        id: id.to_owned(),
                    },
                }
            }
        }
    }

    /// Name used in reports (JUnit testcase names are `<board>/<scenario>`).
    pub fn name(&self) -> String {
        match self {
            BoardChoice::Sim => "sim".into(),
            BoardChoice::Hw { id, .. } => id.clone(),
            BoardChoice::NativeSim { name, .. } => name.clone(),
        }
    }

    /// Can several scenarios use this board at once? Only the simulated board: every
    /// scenario gets its own.
    pub fn parallel(&self) -> bool {
        matches!(self, BoardChoice::Sim)
    }

    /// What the board can do and which profile it is, known before it is opened (see
    /// `dfu_hil_runner::needs`). Each backend declares its own capabilities
    /// (`board::sim::capabilities`, `board::native_sim::capabilities`; a lab board has its
    /// profile's with the inventory's edits): nothing is listed twice. Simulated boards have
    /// no profile: they stand in for any.
    pub fn facts(&self, root: &Path) -> Result<BoardFacts, String> {
        let (capabilities, profile, device_link) = match self {
            BoardChoice::Sim => (dfu_hil_board::sim::capabilities(), None, Default::default()),
            BoardChoice::NativeSim { .. } => (native_sim::capabilities(), None, Default::default()),
            BoardChoice::Hw { inventory, id } => {
                let inv = Inventory::load(inventory).map_err(|e| e.to_string())?;
                let entry = inv.select(id).map_err(|e| e.to_string())?;
                let profile = BoardProfile::find(&root.join("boards"), &entry.profile)
                    .map_err(|e| e.to_string())?;
                (
                    entry.capabilities(&profile),
                    Some(entry.profile.clone()),
                    entry.device_link.over(&profile.device_link),
                )
            }
        };
        Ok(BoardFacts {
            name: self.name(),
            capabilities,
            profile,
            device_link,
        })
    }

    /// Open the board for one scenario on `layout`, with its SMP link over `transport`. An
    /// error here is infrastructure (exit 98).
    pub fn open(
        &self,
        layout: &Layout,
        transport: TransportKind,
        root: &Path,
        scenario: &str,
    ) -> Result<Board, OpenError> {
        match self {
            BoardChoice::Sim => {
                let t = match transport {
                    TransportKind::Serial => SimTransport::Serial,
                    TransportKind::Ble => SimTransport::ble(),
                    TransportKind::Udp => SimTransport::udp(),
                };
                Ok(dfu_hil_board::sim::open_with(layout.clone(), "sim", t).0)
            }
            BoardChoice::Hw { inventory, id } => {
                let inv = Inventory::load(inventory).map_err(|e| e.to_string())?;
                let entry = inv.select(id).map_err(|e| e.to_string())?;
                if let Some(l) = &entry.layout {
                    if *l != layout.name {
                        return Err(format!(
                            "board `{id}` has layout `{l}`, the scenario needs `{}`",
                            layout.name
                        )
                        .into());
                    }
                }
                let profile = BoardProfile::find(&root.join("boards"), &entry.profile)
                    .map_err(|e| e.to_string())?;
                let mut probe = HwProbe::attach(&entry.probe, profile, layout.clone(), false)
                    .map_err(|source| OpenError::Board {
                        board: id.clone(),
                        source,
                    })?;
                probe.set_hooks(entry.hooks.clone());
                let link = hw_link(entry, transport, inventory)?;
                Ok(Board {
                    kind: BoardKind::Hw,
                    name: id.clone(),
                    probe: Box::new(probe),
                    link,
                })
            }
            BoardChoice::NativeSim {
                name,
                app,
                bootloader,
                boot_timeout,
                layout: built_for,
            } => {
                if transport != TransportKind::Serial {
                    return Err(format!(
                        "native_sim executables talk SMP over their UART PTY, not {transport:?}"
                    )
                    .into());
                }
                if let Some(l) = built_for {
                    if *l != layout.name {
                        return Err(format!(
                            "board `{name}` is built for layout `{l}`, the scenario needs `{}`",
                            layout.name
                        )
                        .into());
                    }
                }
                let app = command(app).ok_or(
                    "--board native-sim needs --native-sim-app \"PROGRAM ARGS…\" (the app executable)",
                )?;
                let bootloader = match bootloader {
                    None => None,
                    Some(b) => Some(command(b).ok_or(
                        "--native-sim-bootloader is empty: give \"PROGRAM ARGS…\" or leave it out",
                    )?),
                };
                let flash = std::env::temp_dir().join(format!(
                    "dfu-hil-native-sim-{}-{scenario}.bin",
                    std::process::id()
                ));
                let _ = std::fs::remove_file(&flash);
                let mut cfg = NativeSimConfig::new(layout.clone(), flash, app);
                cfg.bootloader = bootloader;
                cfg.bootloader_timeout = *boot_timeout;
                cfg.remove_flash_on_drop = true;
                Ok(native_sim::open(cfg, name).map(|(b, _)| b)?)
            }
        }
    }
}

/// A native_sim command from its words: `{flash}` is the flash file; `--flash={flash}` is
/// added when no argument mentions it (what native_sim executables take).
pub fn command(words: &[String]) -> Option<CommandSpec> {
    let (program, args) = words.split_first()?;
    let mut args = args.to_vec();
    if !args
        .iter()
        .any(|a| a.contains(native_sim::FLASH_PLACEHOLDER))
    {
        args.push(format!("--flash={}", native_sim::FLASH_PLACEHOLDER));
    }
    Some(CommandSpec {
        program: PathBuf::from(program),
        args,
    })
}

/// The SMP link of a lab board over the scenario's transport, from its inventory entry.
fn hw_link(
    entry: &BoardEntry,
    transport: TransportKind,
    inventory: &Path,
) -> Result<Link, OpenError> {
    let id = &entry.id;
    match transport {
        TransportKind::Serial => {
            let port = entry.smp_port().ok_or_else(|| {
                format!(
                    "board `{id}` has no SMP serial port in {}",
                    inventory.display()
                )
            })?;
            // A reset may take the port away for a moment (USB CDC of the app): reopen it.
            let link =
                dfu_hil_board::transports::serial::ReopeningSerial::open(&port.port, port.baud)
                    .map_err(|e| OpenError::Board {
                        board: id.clone(),
                        source: BoardError::link(port.port.clone(), e),
                    })?;
            Ok(Link(Box::new(link)))
        }
        TransportKind::Udp => {
            let target = entry.udp.as_deref().ok_or_else(|| {
                format!(
                    "board `{id}` has no `udp:` address in {}",
                    inventory.display()
                )
            })?;
            let link = dfu_hil_board::transports::UdpTransport::open(target).map_err(|e| {
                OpenError::Board {
                    board: id.clone(),
                    source: BoardError::link(format!("udp {target}"), e),
                }
            })?;
            Ok(Link(Box::new(link)))
        }
        TransportKind::Ble => ble_link(entry, inventory),
    }
}

#[cfg(feature = "ble")]
fn ble_link(entry: &BoardEntry, inventory: &Path) -> Result<Link, OpenError> {
    let id = &entry.id;
    let target = entry
        .ble
        .as_ref()
        .and_then(|b| b.address.clone().or_else(|| b.name.clone()))
        .ok_or_else(|| {
            format!(
                "board `{id}` has no `ble:` name or address in {}",
                inventory.display()
            )
        })?;
    let link = dfu_hil_board::transports::ble::open(&target, std::time::Duration::from_secs(10))
        .map_err(|e| OpenError::Board {
            board: id.clone(),
            source: BoardError::link(format!("BLE `{target}`"), e),
        })?;
    Ok(Link(Box::new(link)))
}

#[cfg(not(feature = "ble"))]
fn ble_link(entry: &BoardEntry, _inventory: &Path) -> Result<Link, OpenError> {
    Err(OpenError::Setup(format!(
        "board `{}`: this dfu-hil was built without BLE (build with `--features ble`; needs libdbus-1-dev)",
        entry.id
    )))
}
