//! A lab's inventory (`ci/lab.example.yaml`): which physical boards exist, which profile each
//! is, and how to reach it — probe selector, serial ports by `/dev/serial/by-id`, BLE identity,
//! power and reset hooks, capabilities the lab adds or takes away.
//!
//! Why serial ports by-id: `/dev/ttyACM0` numbering changes with plug order and across reboots;
//! the by-id name carries the probe's USB serial number, the same number the probe selector
//! holds, so the inventory ties the two together and `inventory discover` can check it.
//!
//! `discover` is split in two so the interesting part is testable without USB devices:
//! [`Discovery`] is what was found (filled from probe-rs and sysfs by the caller), and
//! [`diff`] compares it with the file — pure logic.

use super::profile::{BoardProfile, Capability};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// `VID:PID[-INTERFACE][:SERIAL]` with hex VID/PID, as probe-rs's `--probe` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeSelector {
    pub vid: u16,
    pub pid: u16,
    pub interface: Option<u8>,
    /// `None` matches any serial number.
    pub serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("probe selector `{input}`: {message} (expected VID:PID[:SERIAL], hex, e.g. 1366:1015:000683012345)")]
pub struct SelectorError {
    pub input: String,
    pub message: String,
}

impl FromStr for ProbeSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |message: &str| SelectorError {
            input: s.to_owned(),
            message: message.to_owned(),
        };
        let mut parts = s.splitn(3, ':');
        let vid = parts.next().unwrap_or_default();
        let pid_if = parts
            .next()
            .ok_or_else(|| err("no `:` between VID and PID"))?;
        let serial = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
        let (pid, interface) = match pid_if.split_once('-') {
            Some((p, i)) => (
                p,
                Some(
                    i.parse::<u8>()
                        .map_err(|_| err("interface after `-` is not a number"))?,
                ),
            ),
            None => (pid_if, None),
        };
        let hex = |v: &str, what: &str| {
            u16::from_str_radix(v, 16)
                .map_err(|_| err(&format!("{what} `{v}` is not 1-4 hex digits")))
        };
        Ok(ProbeSelector {
            vid: hex(vid, "VID")?,
            pid: hex(pid, "PID")?,
            interface,
            serial,
        })
    }
}

impl fmt::Display for ProbeSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)?;
        if let Some(i) = self.interface {
            write!(f, "-{i}")?;
        }
        if let Some(s) = &self.serial {
            write!(f, ":{s}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ProbeSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl ProbeSelector {
    pub fn matches(&self, p: &DiscoveredProbe) -> bool {
        self.vid == p.vid
            && self.pid == p.pid
            && (self.interface.is_none() || self.interface == p.interface)
            && match &self.serial {
                None => true,
                Some(s) => p
                    .serial
                    .as_deref()
                    .is_some_and(|ps| ps.eq_ignore_ascii_case(s)),
            }
    }
}

/// What a serial port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortRole {
    /// SMP (mcumgr) console.
    Smp,
    /// Device log only (a second UART / VCOM).
    Log,
    /// SMP and log on one UART (the usual single-VCOM setup).
    SmpAndLog,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialPort {
    /// `/dev/serial/by-id/...` (stable), never `/dev/ttyACMn`.
    pub port: String,
    pub role: PortRole,
    #[serde(default = "default_baud")]
    pub baud: u32,
}

fn default_baud() -> u32 {
    115_200
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BleIdentity {
    /// Advertised name.
    #[serde(default)]
    pub name: Option<String>,
    /// `AA:BB:CC:DD:EE:FF` (random static addresses change when the device is erased).
    #[serde(default)]
    pub address: Option<String>,
}

/// Shell commands the harness runs for things a probe cannot do (run with `sh -c`; a non-zero
/// exit fails the step).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Hooks {
    #[serde(default)]
    pub power_off: Option<String>,
    #[serde(default)]
    pub power_on: Option<String>,
    /// Reset without the probe (e.g. a relay on the reset line).
    #[serde(default)]
    pub reset: Option<String>,
}

/// Capabilities the lab changes relative to the profile (a switchable hub adds `power-cut`;
/// a board in a shielded box without an antenna path loses `ble`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityEdit {
    #[serde(default)]
    pub add: BTreeSet<Capability>,
    #[serde(default)]
    pub remove: BTreeSet<Capability>,
}

/// One physical board.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BoardEntry {
    pub id: String,
    /// Name of a profile in `boards/`.
    pub profile: String,
    /// Layout from `partitions/`; defaults to the profile's `default-layout`.
    #[serde(default)]
    pub layout: Option<String>,
    pub probe: ProbeSelector,
    #[serde(default)]
    pub serial: Vec<SerialPort>,
    #[serde(default)]
    pub ble: Option<BleIdentity>,
    /// SMP over UDP: `host[:port]` (port 1337 by default), for boards on a network.
    #[serde(default)]
    pub udp: Option<String>,
    #[serde(default)]
    pub hooks: Hooks,
    #[serde(default)]
    pub capabilities: CapabilityEdit,
    /// Free labels for CI selection (`nightly`, `external-flash`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The firmware's SMP link where it differs from Zephyr's defaults (serial receive lines,
    /// reset delay, boot time); wins over the profile's, loses to the scenario's.
    #[serde(default)]
    pub device_link: crate::DeviceLinkFacts,
}

impl BoardEntry {
    /// The SMP port: the one with role `smp`, else `smp-and-log`.
    pub fn smp_port(&self) -> Option<&SerialPort> {
        self.serial
            .iter()
            .find(|p| p.role == PortRole::Smp)
            .or_else(|| self.serial.iter().find(|p| p.role == PortRole::SmpAndLog))
    }

    /// Profile capabilities with the lab's edits applied.
    pub fn capabilities(&self, profile: &BoardProfile) -> BTreeSet<Capability> {
        let mut c = profile.capabilities.clone();
        c.extend(self.capabilities.add.iter().copied());
        for r in &self.capabilities.remove {
            c.remove(r);
        }
        c
    }
}

/// A "board" that is a pair of Zephyr native_sim executables on this host (no probe, no
/// USB): `--board ID` runs scenarios on it like `--board native-sim` with these command lines.
/// Commands are split at whitespace (no quoting); `{flash}` is the flash file (`--flash={flash}`
/// is added when absent), `{layout}` the scenario's layout name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NativeSimEntry {
    pub id: String,
    /// The app executable (e.g. `build/zephyr/zephyr.exe`), run after the bootloader.
    pub app: String,
    /// The MCUboot executable, run to completion before each app start; none = the app runs
    /// on its own.
    #[serde(default)]
    pub bootloader: Option<String>,
    /// Seconds the bootloader may run before it is killed as stuck (default 60).
    #[serde(default)]
    pub boot_timeout_s: Option<u64>,
    /// The one layout the executables were built for; scenarios on another layout are refused.
    #[serde(default)]
    pub layout: Option<String>,
    /// Free labels for CI selection.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Name of the lab / host, for reports.
    #[serde(default)]
    pub lab: Option<String>,
    #[serde(default)]
    pub boards: Vec<BoardEntry>,
    /// native_sim executables on this host, by id (see [`NativeSimEntry`]).
    #[serde(default, rename = "native-sim")]
    pub native_sim: Vec<NativeSimEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: board `{board}`: {message}")]
    Invalid {
        path: PathBuf,
        board: String,
        message: String,
    },
    #[error("no board `{id}` in the inventory{hint} (boards: {known})")]
    NoBoard {
        id: String,
        hint: String,
        known: String,
    },
}

impl Inventory {
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and check the rules that need no profiles. `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InventoryError> {
        let inv: Inventory = serde_saphyr::from_str(text).map_err(|e| InventoryError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let invalid = |board: &str, message: String| InventoryError::Invalid {
            path: path.to_owned(),
            board: board.to_owned(),
            message,
        };
        let mut ids = BTreeSet::new();
        let mut selectors: Vec<(&ProbeSelector, &str)> = Vec::new();
        for b in &inv.boards {
            if b.id.trim().is_empty() {
                return Err(invalid(&b.id, "empty `id`".into()));
            }
            if !ids.insert(b.id.as_str()) {
                return Err(invalid(&b.id, "id listed twice".into()));
            }
            if b.probe.serial.is_none() && inv.boards.len() > 1 {
                return Err(invalid(
                    &b.id,
                    format!(
                        "probe selector `{}` has no serial number: with several boards it could pick any of them",
                        b.probe
                    ),
                ));
            }
            if let Some((_, other)) = selectors.iter().find(|(s, _)| **s == b.probe) {
                return Err(invalid(
                    &b.id,
                    format!("probe `{}` is also board `{other}`'s", b.probe),
                ));
            }
            selectors.push((&b.probe, &b.id));
            b.device_link.check().map_err(|m| invalid(&b.id, m))?;
            let smp = b
                .serial
                .iter()
                .filter(|p| matches!(p.role, PortRole::Smp | PortRole::SmpAndLog))
                .count();
            if smp > 1 {
                return Err(invalid(
                    &b.id,
                    "more than one serial port with an SMP role".into(),
                ));
            }
            for p in &b.serial {
                if !p.port.starts_with("/dev/serial/by-id/")
                    && !p.port.starts_with("/dev/serial/by-path/")
                {
                    return Err(invalid(
                        &b.id,
                        format!(
                            "serial port `{}`: name it by /dev/serial/by-id/… (ttyACM numbers change with plug order)",
                            p.port
                        ),
                    ));
                }
            }
            if b.capabilities.add.contains(&Capability::FlashGeometry) {
                return Err(invalid(
                    &b.id,
                    "capability `flash-geometry` is the simulated board's: a real board's flash has one program unit, erased value and sector size"
                        .into(),
                ));
            }
            if b.capabilities.add.contains(&Capability::FlashOpCut) {
                return Err(invalid(
                    &b.id,
                    "capability `flash-op-cut` is the simulated board's: no lab power switch can be timed to one flash operation"
                        .into(),
                ));
            }
            if b.capabilities.add.contains(&Capability::PowerCut)
                && (b.hooks.power_off.is_none() || b.hooks.power_on.is_none())
            {
                return Err(invalid(
                    &b.id,
                    "capability `power-cut` needs both `hooks.power-off` and `hooks.power-on`"
                        .into(),
                ));
            }
            if let Some(both) = b
                .capabilities
                .add
                .intersection(&b.capabilities.remove)
                .next()
            {
                return Err(invalid(
                    &b.id,
                    format!("capability `{both}` both added and removed"),
                ));
            }
        }
        for n in &inv.native_sim {
            if n.id.trim().is_empty() {
                return Err(invalid(&n.id, "empty `id`".into()));
            }
            if !ids.insert(n.id.as_str()) {
                return Err(invalid(&n.id, "id listed twice".into()));
            }
            if n.app.split_whitespace().next().is_none() {
                return Err(invalid(&n.id, "native-sim: empty `app` command".into()));
            }
            if n.bootloader
                .as_deref()
                .is_some_and(|b| b.split_whitespace().next().is_none())
            {
                return Err(invalid(
                    &n.id,
                    "native-sim: empty `bootloader` command (leave it out for none)".into(),
                ));
            }
            if n.boot_timeout_s == Some(0) {
                return Err(invalid(&n.id, "native-sim: `boot-timeout-s` is 0".into()));
            }
        }
        Ok(inv)
    }

    /// The native_sim entry `id`, if there is one.
    pub fn native_sim(&self, id: &str) -> Option<&NativeSimEntry> {
        self.native_sim.iter().find(|n| n.id == id)
    }

    /// Check every board's profile exists (in `boards_dir`) and fits; returns problems in words.
    pub fn check_profiles(&self, boards_dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for b in &self.boards {
            match BoardProfile::find(boards_dir, &b.profile) {
                Err(e) => out.push(format!("board `{}`: {e}", b.id)),
                Ok(p) => {
                    let caps = b.capabilities(&p);
                    if caps.contains(&Capability::Serial)
                        && b.smp_port().is_none()
                        && !caps.contains(&Capability::Ble)
                    {
                        out.push(format!(
                            "board `{}`: no SMP serial port and no BLE: no way to talk SMP",
                            b.id
                        ));
                    }
                    if caps.contains(&Capability::Ble) && b.ble.is_none() {
                        out.push(format!(
                            "board `{}`: profile `{}` has BLE but the inventory gives no `ble` name/address (BLE steps will be skipped)",
                            b.id, p.name
                        ));
                    }
                }
            }
        }
        out
    }

    /// The `--board ID` helper: the entry, or an error naming the closest id.
    pub fn select(&self, id: &str) -> Result<&BoardEntry, InventoryError> {
        if let Some(b) = self.boards.iter().find(|b| b.id == id) {
            return Ok(b);
        }
        let best = self
            .boards
            .iter()
            .map(|b| (edit_distance(&b.id, id), b.id.as_str()))
            .min();
        let hint = match best {
            Some((d, name)) if d <= 3.max(id.len() / 3) => format!("; did you mean `{name}`?"),
            _ => String::new(),
        };
        Err(InventoryError::NoBoard {
            id: id.to_owned(),
            hint,
            known: self
                .boards
                .iter()
                .map(|b| b.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Boards carrying every one of `tags`.
    pub fn with_tags<'a>(
        &'a self,
        tags: &'a [String],
    ) -> impl Iterator<Item = &'a BoardEntry> + 'a {
        self.boards
            .iter()
            .filter(move |b| tags.iter().all(|t| b.tags.contains(t)))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A debug probe found on USB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredProbe {
    pub vid: u16,
    pub pid: u16,
    pub interface: Option<u8>,
    pub serial: Option<String>,
    /// What the probe calls itself (`J-Link`, `CMSIS-DAP`).
    pub identifier: String,
}

impl DiscoveredProbe {
    /// The selector that names exactly this probe.
    pub fn selector(&self) -> ProbeSelector {
        ProbeSelector {
            vid: self.vid,
            pid: self.pid,
            interface: None,
            serial: self.serial.clone(),
        }
    }
}

/// A serial port found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredPort {
    /// `/dev/ttyACM0`.
    pub path: String,
    /// The `/dev/serial/by-id/…` links pointing at it.
    pub by_id: Vec<String>,
    /// USB serial number of the device the port belongs to (ties a VCOM to its probe).
    pub usb_serial: Option<String>,
}

/// Everything found on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    pub probes: Vec<DiscoveredProbe>,
    pub ports: Vec<DiscoveredPort>,
}

/// One line of `inventory discover`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    ProbeFound {
        board: String,
        probe: String,
    },
    ProbeMissing {
        board: String,
        selector: String,
    },
    /// The selector matches several probes (no serial in it).
    ProbeAmbiguous {
        board: String,
        selector: String,
        count: usize,
    },
    PortFound {
        board: String,
        port: String,
    },
    PortMissing {
        board: String,
        port: String,
    },
    /// A probe no board names; with the ports that share its USB serial (its VCOMs).
    UnknownProbe {
        selector: String,
        identifier: String,
        ports: Vec<String>,
    },
    /// A port with a by-id name no board lists. `owner` = the board whose probe has the same
    /// USB serial (a VCOM that board could list).
    UnknownPort {
        port: String,
        owner: Option<String>,
    },
}

impl Finding {
    /// True for findings that mean "file and desk disagree".
    pub fn is_problem(&self) -> bool {
        !matches!(self, Finding::ProbeFound { .. } | Finding::PortFound { .. })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::ProbeFound { board, probe } => write!(f, "ok       {board}: probe {probe}"),
            Finding::ProbeMissing { board, selector } => {
                write!(f, "MISSING  {board}: probe {selector} is not attached (or not accessible: udev rules?)")
            }
            Finding::ProbeAmbiguous {
                board,
                selector,
                count,
            } => write!(
                f,
                "AMBIGUOUS {board}: probe {selector} matches {count} attached probes; add the serial number"
            ),
            Finding::PortFound { board, port } => write!(f, "ok       {board}: port {port}"),
            Finding::PortMissing { board, port } => write!(f, "MISSING  {board}: port {port} is not present"),
            Finding::UnknownProbe {
                selector,
                identifier,
                ports,
            } => {
                write!(f, "NEW      probe {selector} ({identifier}) is in no board's entry")?;
                if !ports.is_empty() {
                    write!(f, "; its ports: {}", ports.join(", "))?;
                }
                Ok(())
            }
            Finding::UnknownPort { port, owner } => match owner {
                Some(b) => write!(f, "NEW      port {port} belongs to {b}'s probe but is not listed for it"),
                None => write!(f, "NEW      port {port} is in no board's entry"),
            },
        }
    }
}

/// Compare the inventory with what is attached. Order: per board (file order) probe then
/// ports, then unknown probes, then unknown ports.
pub fn diff(inv: &Inventory, found: &Discovery) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut claimed_probes = vec![false; found.probes.len()];
    let mut listed_ports: BTreeSet<&str> = BTreeSet::new();
    for b in &inv.boards {
        let matches: Vec<usize> = found
            .probes
            .iter()
            .enumerate()
            .filter(|(_, p)| b.probe.matches(p))
            .map(|(i, _)| i)
            .collect();
        match matches.as_slice() {
            [] => out.push(Finding::ProbeMissing {
                board: b.id.clone(),
                selector: b.probe.to_string(),
            }),
            [i] => {
                claimed_probes[*i] = true;
                let p = &found.probes[*i];
                out.push(Finding::ProbeFound {
                    board: b.id.clone(),
                    probe: format!("{} ({})", p.selector(), p.identifier),
                });
            }
            many => {
                for &i in many {
                    claimed_probes[i] = true;
                }
                out.push(Finding::ProbeAmbiguous {
                    board: b.id.clone(),
                    selector: b.probe.to_string(),
                    count: many.len(),
                });
            }
        }
        for sp in &b.serial {
            listed_ports.insert(sp.port.as_str());
            let present = found
                .ports
                .iter()
                .any(|p| p.by_id.iter().any(|l| l == &sp.port) || p.path == sp.port);
            out.push(if present {
                Finding::PortFound {
                    board: b.id.clone(),
                    port: sp.port.clone(),
                }
            } else {
                Finding::PortMissing {
                    board: b.id.clone(),
                    port: sp.port.clone(),
                }
            });
        }
    }
    let ports_of = |serial: &Option<String>| -> Vec<String> {
        let Some(s) = serial else { return Vec::new() };
        found
            .ports
            .iter()
            .filter(|p| {
                p.usb_serial
                    .as_deref()
                    .is_some_and(|u| u.eq_ignore_ascii_case(s))
            })
            .map(|p| p.by_id.first().cloned().unwrap_or_else(|| p.path.clone()))
            .collect()
    };
    for (i, p) in found.probes.iter().enumerate() {
        if !claimed_probes[i] {
            out.push(Finding::UnknownProbe {
                selector: p.selector().to_string(),
                identifier: p.identifier.clone(),
                ports: ports_of(&p.serial),
            });
        }
    }
    for p in &found.ports {
        let Some(name) = p.by_id.first() else {
            // Ports without a by-id link (built-in UARTs, PTYs) are never inventory material.
            continue;
        };
        if p.by_id.iter().any(|l| listed_ports.contains(l.as_str())) {
            continue;
        }
        let owner = p.usb_serial.as_ref().and_then(|u| {
            inv.boards
                .iter()
                .find(|b| {
                    b.probe
                        .serial
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case(u))
                })
                .map(|b| b.id.clone())
        });
        // A port of a probe nobody claims was already shown with that probe.
        let shown_with_probe = owner.is_none()
            && found.probes.iter().enumerate().any(|(i, pr)| {
                !claimed_probes[i]
                    && pr.serial.is_some()
                    && pr.serial.as_deref().map(str::to_ascii_lowercase)
                        == p.usb_serial.as_deref().map(str::to_ascii_lowercase)
            });
        if !shown_with_probe {
            out.push(Finding::UnknownPort {
                port: name.clone(),
                owner,
            });
        }
    }
    out
}

/// Serial ports on this host: `/dev/serial/by-id` links resolved to their devices, plus the
/// USB serial numbers sysfs knows (serialport without libudev reads sysfs).
pub fn discover_ports() -> Vec<DiscoveredPort> {
    let mut ports: Vec<DiscoveredPort> = Vec::new();
    // serialport's sysfs scan panics when /sys/class/tty is missing (some containers).
    if Path::new("/sys/class/tty").is_dir() {
        for info in serialport::available_ports().unwrap_or_default() {
            let usb_serial = match &info.port_type {
                serialport::SerialPortType::UsbPort(u) => u.serial_number.clone(),
                _ => None,
            };
            ports.push(DiscoveredPort {
                path: info.port_name,
                by_id: Vec::new(),
                usb_serial,
            });
        }
    }
    let by_id = Path::new("/dev/serial/by-id");
    if let Ok(rd) = std::fs::read_dir(by_id) {
        let mut links: Vec<(String, String)> = rd
            .flatten()
            .filter_map(|e| {
                let link = e.path();
                let target = std::fs::canonicalize(&link).ok()?;
                Some((
                    link.to_string_lossy().into_owned(),
                    target.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        links.sort();
        for (link, target) in links {
            match ports.iter_mut().find(|p| p.path == target) {
                Some(p) => p.by_id.push(link),
                None => ports.push(DiscoveredPort {
                    path: target,
                    by_id: vec![link],
                    usb_serial: None,
                }),
            }
        }
    }
    ports.sort_by(|a, b| a.path.cmp(&b.path));
    ports
}
