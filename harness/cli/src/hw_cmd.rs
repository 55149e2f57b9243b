//! `dfu-hil inventory discover|list` and `dfu-hil probe list`: the real-hardware side of the
//! CLI. Discovery reads probes (probe-rs) and serial ports (sysfs, `/dev/serial/by-id`) and
//! shows where the lab's inventory file and the desk disagree; the comparison itself is
//! `dfu_hil_board::hw::inventory::diff` (tested there with fake discoveries).

use crate::error::{CliError, CliResult};
use dfu_hil_board::hw::inventory::{self, Discovery, Finding, Inventory};
use dfu_hil_board::hw::profile::{self, BoardProfile};
use dfu_hil_runner::exit::Exit;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Environment variable naming the inventory file (CI runners set it per host).
pub const INVENTORY_ENV: &str = "DFU_HIL_INVENTORY";

#[derive(clap::Subcommand, Debug, Clone)]
pub enum InventoryCmd {
    /// List attached probes and serial ports and show what differs from the inventory file.
    Discover(DiscoverArgs),
    /// Show the boards of the inventory with their profiles and effective capabilities.
    List(ListArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct DiscoverArgs {
    /// Inventory file (default: $DFU_HIL_INVENTORY, else ci/lab.yaml under the root).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Exit 98 (infrastructure) when the inventory and the attached hardware disagree (for a
    /// CI pre-flight: the lab is not what the file says).
    #[arg(long)]
    pub check: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    /// Inventory file (default: $DFU_HIL_INVENTORY, else ci/lab.yaml under the root).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Only this board.
    #[arg(long)]
    pub board: Option<String>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum ProbeCmd {
    /// Debug probes attached to this host, with the selector to put in an inventory.
    List,
}

/// Everything this module handles, for one dispatch call from main.rs.
#[derive(Debug, Clone)]
pub enum HwCmd {
    Inventory(InventoryCmd),
    Probe(ProbeCmd),
}

/// Run a hardware command. An inventory file that is missing, unreadable or malformed where
/// one is needed is invalid input (96); `discover --check` finding the desk differs from the
/// file is infrastructure (98).
pub fn run_hw(root: &Path, cmd: HwCmd) -> CliResult {
    match cmd {
        HwCmd::Probe(ProbeCmd::List) => {
            let probes = dfu_hil_board::hw::probe_rs::list_probes();
            print!("{}", render_probes(&probes));
            Ok(Exit::Pass)
        }
        HwCmd::Inventory(InventoryCmd::Discover(a)) => {
            let found = Discovery {
                probes: dfu_hil_board::hw::probe_rs::list_probes(),
                ports: inventory::discover_ports(),
            };
            let path = inventory_path(root, a.inventory.as_deref());
            let inv = if path.is_file() {
                Some(Inventory::load(&path).map_err(inventory_error)?)
            } else {
                None
            };
            let (text, problems) = render_discovery(&found, inv.as_ref(), &path);
            print!("{text}");
            Ok(if a.check && problems > 0 {
                Exit::Infrastructure
            } else {
                Exit::Pass
            })
        }
        HwCmd::Inventory(InventoryCmd::List(a)) => {
            let path = inventory_path(root, a.inventory.as_deref());
            let inv = Inventory::load(&path).map_err(inventory_error)?;
            let boards_dir = root.join("boards");
            let selected: Vec<_> = match &a.board {
                Some(id) => vec![inv.select(id).map_err(CliError::invalid)?],
                None => inv.boards.iter().collect(),
            };
            let mut out = String::new();
            for b in selected {
                let p = BoardProfile::find(&boards_dir, &b.profile).map_err(CliError::invalid)?;
                out.push_str(&render_board(b, &p));
            }
            let problems = inv.check_profiles(&boards_dir);
            for p in &problems {
                let _ = writeln!(out, "warning: {p}");
            }
            print!("{out}");
            Ok(Exit::Pass)
        }
    }
}

/// An inventory that cannot be used: invalid input (the error names the file).
fn inventory_error(e: inventory::InventoryError) -> CliError {
    CliError::invalid(format!(
        "inventory {e} (set --inventory or ${INVENTORY_ENV})"
    ))
}

/// Check that `--board ID` can be found before anything runs: the inventory is readable and
/// has that board. Both are input (a wrong path, a typo), so exit 96, not 98 as a board that
/// is described but cannot be opened. Other boards (`sim`, `native-sim`) need no inventory.
pub fn check_lab_board(choice: &dfu_hil_farm::select::BoardChoice) -> CliResult<()> {
    if let dfu_hil_farm::select::BoardChoice::Hw { inventory, id } = choice {
        let inv = Inventory::load(inventory).map_err(inventory_error)?;
        inv.select(id).map_err(CliError::invalid)?;
    }
    Ok(())
}

/// `--inventory`, else `$DFU_HIL_INVENTORY`, else `ROOT/ci/lab.yaml`.
pub fn inventory_path(root: &Path, given: Option<&Path>) -> PathBuf {
    if let Some(p) = given {
        return p.to_owned();
    }
    if let Some(p) = std::env::var_os(INVENTORY_ENV) {
        return PathBuf::from(p);
    }
    root.join("ci").join("lab.yaml")
}

pub fn render_probes(probes: &[inventory::DiscoveredProbe]) -> String {
    if probes.is_empty() {
        return "no debug probes found (attached? udev rules installed? see docs/hardware.md)\n"
            .into();
    }
    let mut s = String::new();
    for p in probes {
        let _ = writeln!(s, "{}  {}", p.selector(), p.identifier);
    }
    s
}

/// Discovery text and the number of problems (findings where file and desk disagree).
pub fn render_discovery(
    found: &Discovery,
    inv: Option<&Inventory>,
    path: &Path,
) -> (String, usize) {
    let mut s = String::new();
    let _ = writeln!(s, "probes:");
    if found.probes.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for p in &found.probes {
        let _ = writeln!(s, "  {}  {}", p.selector(), p.identifier);
    }
    let _ = writeln!(s, "serial ports:");
    if found.ports.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for p in &found.ports {
        match p.by_id.first() {
            Some(id) => {
                let _ = writeln!(s, "  {id} -> {}", p.path);
            }
            None => {
                let _ = writeln!(s, "  {}", p.path);
            }
        }
    }
    let Some(inv) = inv else {
        let _ = writeln!(
            s,
            "no inventory at {} (nothing to compare; see ci/lab.example.yaml)",
            path.display()
        );
        return (s, 0);
    };
    let findings = inventory::diff(inv, found);
    let problems = findings.iter().filter(|f| f.is_problem()).count();
    let _ = writeln!(s, "compared with {}:", path.display());
    for f in &findings {
        let _ = writeln!(s, "  {f}");
    }
    if problems == 0 {
        let _ = writeln!(s, "inventory matches the attached hardware");
    } else {
        let _ = writeln!(s, "{problems} difference(s)");
        for f in &findings {
            if let Finding::UnknownProbe { selector, .. } = f {
                let _ = writeln!(s, "hint: to add {selector}: `- {{ id: NAME, profile: PROFILE, probe: \"{selector}\" }}`");
            }
        }
    }
    (s, problems)
}

pub fn render_board(b: &inventory::BoardEntry, p: &BoardProfile) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}  ({}, chip {})", b.id, p.name, p.chip);
    let _ = writeln!(s, "  probe: {}", b.probe);
    if let Some(l) = b.layout.as_ref().or(p.default_layout.as_ref()) {
        let _ = writeln!(s, "  layout: {l}");
    }
    for sp in &b.serial {
        let _ = writeln!(s, "  serial: {} ({:?}, {} baud)", sp.port, sp.role, sp.baud);
    }
    if let Some(ble) = &b.ble {
        let _ = writeln!(
            s,
            "  ble: {} {}",
            ble.name.as_deref().unwrap_or("-"),
            ble.address.as_deref().unwrap_or("")
        );
    }
    let caps: Vec<&str> = b.capabilities(p).iter().map(|c| c.as_str()).collect();
    let _ = writeln!(s, "  capabilities: {}", caps.join(", "));
    let missing: Vec<&str> = profile::Capability::ALL
        .iter()
        .filter(|c| !b.capabilities(p).contains(c))
        .map(|c| c.as_str())
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            s,
            "  lacks: {} (steps needing these are skipped)",
            missing.join(", ")
        );
    }
    s
}
