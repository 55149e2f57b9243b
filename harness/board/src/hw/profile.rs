//! Board profiles (`boards/*.yaml`): what a kind of board *is* — the probe-rs chip name, its
//! cores, how each flash device of a partition layout appears to the debug probe, and what the
//! board can do (capabilities). A lab's inventory then says which physical board is which.
//!
//! Why profiles are data and not code: adding a board (or correcting an XIP window) must not
//! need a Rust change, and the scenario runner needs the capabilities *before* touching
//! hardware, to skip checks a board cannot do instead of failing them.
//!
//! Layout devices (`partitions/*.yaml`, `flash:`) are matched to profile memories by name, so a
//! layout written for the simulated board runs unchanged on the real one.

use dfu_hil_mcuboot::layout::{DeviceKind, Layout};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// What a board can do. Scenario steps that need a missing capability are skipped (JUnit
/// `skipped`), never failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// The probe can read external (QSPI) flash through its XIP window without help from the
    /// firmware. Off for Nordic DKs by default: the window decodes only once QSPI is set up.
    ReadExternalFlash,
    /// SMP over a serial port (VCOM of the on-board probe, or USB CDC ACM of the app).
    Serial,
    /// SMP over BLE.
    Ble,
    /// SMP over UDP (network boards).
    Udp,
    /// Power can be cut (an inventory power hook, or a switchable USB hub).
    PowerCut,
    /// Device logs over RTT (firmware built with `CONFIG_USE_SEGGER_RTT`).
    Rtt,
    /// A second core with its own updatable image (nRF5340 network core).
    NetCore,
    /// DWT PCSR sampling without halting the core.
    PcSampling,
    /// Counts flash erase/write operations, cuts power exactly before the Nth one and saves and
    /// restores the whole flash: `power-cut: { at-flash-op }` and `sweep`. Only the simulated
    /// board can; a lab power switch cannot be timed to one flash operation.
    FlashOpCut,
    /// Reports the boot chain beyond the MCUboot slots (NSIB's active slot, version and
    /// monotonic counter; the network core's firmware version) for `expect-boot-chain`. The
    /// simulated board does; the probe-rs backend does not read these yet.
    BootChain,
    /// The CPU executes the image in the primary slot (MCUboot jumps to its vector table at
    /// `hdr_size`), so a wrong header size faults: `expect-fault`. Real boards and the
    /// simulated board do; a native_sim pair does not (its app is a host executable, whatever
    /// the slot holds).
    ExecutesImage,
    /// The flash's program unit, erased value and sector size can be chosen per scenario
    /// (`matrix:` / variant geometry). Only the simulated board: real flash has the geometry
    /// its silicon has, and a native_sim pair loads its layout by name.
    FlashGeometry,
}

impl Capability {
    pub const ALL: &'static [Capability] = &[
        Capability::ReadExternalFlash,
        Capability::Serial,
        Capability::Ble,
        Capability::Udp,
        Capability::PowerCut,
        Capability::Rtt,
        Capability::NetCore,
        Capability::PcSampling,
        Capability::FlashOpCut,
        Capability::BootChain,
        Capability::ExecutesImage,
        Capability::FlashGeometry,
    ];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ReadExternalFlash => "read-external-flash",
            Capability::Serial => "serial",
            Capability::Ble => "ble",
            Capability::Udp => "udp",
            Capability::PowerCut => "power-cut",
            Capability::Rtt => "rtt",
            Capability::NetCore => "net-core",
            Capability::PcSampling => "pc-sampling",
            Capability::FlashOpCut => "flash-op-cut",
            Capability::BootChain => "boot-chain",
            Capability::ExecutesImage => "executes-image",
            Capability::FlashGeometry => "flash-geometry",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CPU core as probe-rs numbers it in the chip's target description.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreDef {
    /// probe-rs core name (`main`, `application`, `network`).
    pub name: String,
    /// probe-rs core index (`session.core(index)`).
    pub index: usize,
}

/// How the debug probe sees one flash device of the layout.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemoryDef {
    /// Matches a `flash:` device name of the partition layouts used with this board.
    pub name: String,
    pub kind: DeviceKind,
    /// Address of offset 0 in the probe's view (internal flash). Unused for external devices.
    #[serde(default)]
    pub base: u32,
    pub size: u32,
    /// Core whose access port reaches this memory (nRF5340 network flash: the network core).
    #[serde(default)]
    pub core: usize,
    /// External flash: where it appears memory-mapped once its controller is set up.
    #[serde(default)]
    pub xip_window: Option<u32>,
    /// Free text shown in errors and `inventory list` (why a device is not readable, …).
    #[serde(default)]
    pub note: Option<String>,
}

/// Where the board's debug probe comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeKind {
    /// On-board interface MCU (J-Link OB on Nordic DKs).
    #[default]
    Onboard,
    /// An external probe on the debug connector (Thingy:53 has no on-board probe).
    External,
}

/// A board profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BoardProfile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// probe-rs target name (`nRF52840_xxAA`, `nRF5340_xxAA`).
    pub chip: String,
    pub cores: Vec<CoreDef>,
    #[serde(default)]
    pub probe: ProbeKind,
    pub memory: Vec<MemoryDef>,
    pub capabilities: BTreeSet<Capability>,
    /// Layout used when a scenario or the inventory names none.
    #[serde(default)]
    pub default_layout: Option<String>,
    /// Zephyr board target for building fixtures (`nrf52840dk/nrf52840`).
    #[serde(default)]
    pub zephyr_board: Option<String>,
    /// The usual firmware's SMP link on this board where it differs from Zephyr's defaults
    /// (an inventory entry or the scenario can say otherwise).
    #[serde(default)]
    pub device_link: crate::DeviceLinkFacts,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
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
    #[error("no board profile `{name}` in {dir} (have: {known})")]
    Unknown {
        name: String,
        dir: PathBuf,
        known: String,
    },
}

/// Why the probe cannot reach a region (each a different advice to the user).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("no region `{0}` in the layout")]
    NoRegion(String),
    #[error("layout device `{device}` (region `{region}`) is not described by board profile `{board}`: wrong layout for this board?")]
    UnknownDevice {
        region: String,
        device: String,
        board: String,
    },
    #[error("region `{region}`: 0x{offset:x}+0x{len:x} is outside its 0x{size:x} bytes")]
    OutOfRange {
        region: String,
        offset: u32,
        len: u32,
        size: u32,
    },
    #[error("region `{region}` is on external flash `{device}`, which board `{board}` cannot read through the probe{why}: check it over SMP (image list / hash), or use a board whose profile has `read-external-flash`")]
    ExternalNotReadable {
        region: String,
        device: String,
        board: String,
        why: String,
    },
    #[error("region `{region}` is on external flash `{device}`: the probe can only read it through the XIP window, not write it; program it over SMP")]
    ExternalReadOnly { region: String, device: String },
    #[error("region `{region}` is RAM-emulated on `{device}` (nRF5340 network core): its contents do not survive a reset and the probe cannot read them; check the network image over SMP")]
    RamEmulated { region: String, device: String },
}

/// Where a region range is in the probe's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub address: u64,
    pub core: usize,
    /// Through an XIP window: reads only.
    pub read_only: bool,
}

impl BoardProfile {
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and check; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ProfileError> {
        let p: BoardProfile = serde_saphyr::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        p.check().map_err(|message| ProfileError::Invalid {
            path: path.to_owned(),
            board: p.name.clone(),
            message,
        })?;
        Ok(p)
    }

    /// `boards/NAME.yaml` under `dir`, or a path to a profile file.
    pub fn find(dir: &Path, name: &str) -> Result<Self, ProfileError> {
        let as_path = Path::new(name);
        if name.ends_with(".yaml") && as_path.is_file() {
            return Self::load(as_path);
        }
        let path = dir.join(format!("{name}.yaml"));
        if path.is_file() {
            return Self::load(&path);
        }
        Err(ProfileError::Unknown {
            name: name.to_owned(),
            dir: dir.to_owned(),
            known: list_names(dir).join(", "),
        })
    }

    /// Every profile in `dir`, sorted by name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>, ProfileError> {
        let mut out = Vec::new();
        for name in list_names(dir) {
            out.push(Self::load(&dir.join(format!("{name}.yaml")))?);
        }
        Ok(out)
    }

    /// Schema rules serde cannot express. Returns the first problem in words.
    fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        self.device_link.check()?;
        if self.chip.trim().is_empty() {
            return Err("`chip` is empty (a probe-rs target name, e.g. nRF52840_xxAA)".into());
        }
        if self.cores.is_empty() {
            return Err("`cores` is empty".into());
        }
        let mut seen = BTreeSet::new();
        for c in &self.cores {
            if !seen.insert(c.index) {
                return Err(format!("core index {} listed twice", c.index));
            }
        }
        if self.memory.is_empty() {
            return Err("`memory` is empty".into());
        }
        let mut names = BTreeSet::new();
        for m in &self.memory {
            if !names.insert(m.name.as_str()) {
                return Err(format!("memory `{}` listed twice", m.name));
            }
            if m.size == 0 {
                return Err(format!("memory `{}` has size 0", m.name));
            }
            if !seen.contains(&m.core) {
                return Err(format!(
                    "memory `{}` is on core {}, which `cores` does not list",
                    m.name, m.core
                ));
            }
            if m.xip_window.is_some() && m.kind != DeviceKind::External {
                return Err(format!(
                    "memory `{}`: only external devices have an `xip-window`",
                    m.name
                ));
            }
            if m.kind == DeviceKind::Internal && u64::from(m.base) + u64::from(m.size) > 1 << 32 {
                return Err(format!("memory `{}` runs past 4 GiB", m.name));
            }
        }
        for (i, a) in self.memory.iter().enumerate() {
            for b in &self.memory[i + 1..] {
                if a.kind == DeviceKind::Internal
                    && b.kind == DeviceKind::Internal
                    && a.core == b.core
                    && a.base < b.base.saturating_add(b.size)
                    && b.base < a.base.saturating_add(a.size)
                {
                    return Err(format!("memory `{}` overlaps `{}`", b.name, a.name));
                }
            }
        }
        if self.has(Capability::FlashOpCut) {
            return Err(
                "capability `flash-op-cut` is the simulated board's: no lab power switch can be timed to one flash operation"
                    .into(),
            );
        }
        if self.has(Capability::ReadExternalFlash)
            && !self
                .memory
                .iter()
                .any(|m| m.kind == DeviceKind::External && m.xip_window.is_some())
        {
            return Err(
                "capability `read-external-flash` needs an external memory with an `xip-window`"
                    .into(),
            );
        }
        if self.has(Capability::NetCore) && self.cores.len() < 2 {
            return Err("capability `net-core` needs a second core in `cores`".into());
        }
        Ok(())
    }

    pub fn has(&self, cap: Capability) -> bool {
        self.capabilities.contains(&cap)
    }

    pub fn memory(&self, name: &str) -> Option<&MemoryDef> {
        self.memory.iter().find(|m| m.name == name)
    }

    /// Erase/write timing of the chip's own flash (its NVMC), from the datasheet table in
    /// `dfu_hil_sim::device::flash_timing`, looked up by the profile's `chip` (`nRF52840_xxAA`,
    /// `nRF5340_xxAA`). `None` for a chip not in the table.
    pub fn flash_timing(&self) -> Option<dfu_hil_sim::device::flash_timing::FlashTiming> {
        dfu_hil_sim::device::flash_timing::for_chip(&self.chip)
    }

    /// [`flash_timing`](Self::flash_timing) for one memory of this board: only internal flash
    /// reached through the first core (the nRF5340 application core's flash, not its network
    /// core's, whose NVMC figures are not in the table); external and RAM-emulated memories
    /// have none.
    pub fn memory_flash_timing(
        &self,
        memory: &str,
    ) -> Option<dfu_hil_sim::device::flash_timing::FlashTiming> {
        let m = self.memory(memory)?;
        let first_core = self.cores.iter().map(|c| c.index).min()?;
        (m.kind == DeviceKind::Internal && m.core == first_core)
            .then(|| self.flash_timing())
            .flatten()
    }

    /// Problems running `layout` on this board: devices the profile does not know, kinds that
    /// differ, devices larger than the board's. Empty = fits.
    pub fn check_layout(&self, layout: &Layout) -> Vec<String> {
        let mut out = Vec::new();
        for d in &layout.flash {
            match self.memory(&d.name) {
                None => out.push(format!(
                    "layout `{}` device `{}` is not on board `{}` (it has: {})",
                    layout.name,
                    d.name,
                    self.name,
                    self.memory
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(m) => {
                    if m.kind != d.kind {
                        out.push(format!(
                            "layout `{}` device `{}` is {:?}, board `{}` has it as {:?}",
                            layout.name, d.name, d.kind, self.name, m.kind
                        ));
                    }
                    if d.size > m.size {
                        out.push(format!(
                            "layout `{}` device `{}` is 0x{:x} bytes, board `{}` has only 0x{:x}",
                            layout.name, d.name, d.size, self.name, m.size
                        ));
                    }
                    if m.kind == DeviceKind::Internal && d.base != m.base {
                        out.push(format!(
                            "layout `{}` device `{}` is at 0x{:x}, the probe sees it at 0x{:x}",
                            layout.name, d.name, d.base, m.base
                        ));
                    }
                }
            }
        }
        out
    }

    /// Where `offset..offset+len` of `region` is for the probe, or why it cannot get there.
    /// `write` asks for programming access (XIP windows are read-only).
    pub fn access(
        &self,
        layout: &Layout,
        region: &str,
        offset: u32,
        len: u32,
        write: bool,
    ) -> Result<Access, AccessError> {
        let part = layout
            .partition(region)
            .ok_or_else(|| AccessError::NoRegion(region.to_owned()))?;
        if u64::from(offset) + u64::from(len) > u64::from(part.size) {
            return Err(AccessError::OutOfRange {
                region: region.to_owned(),
                offset,
                len,
                size: part.size,
            });
        }
        let mem = self
            .memory(&part.device)
            .ok_or_else(|| AccessError::UnknownDevice {
                region: region.to_owned(),
                device: part.device.clone(),
                board: self.name.clone(),
            })?;
        let within = u64::from(part.offset) + u64::from(offset);
        match mem.kind {
            DeviceKind::Internal => Ok(Access {
                address: u64::from(mem.base) + within,
                core: mem.core,
                read_only: false,
            }),
            DeviceKind::RamEmulated => Err(AccessError::RamEmulated {
                region: region.to_owned(),
                device: mem.name.clone(),
            }),
            DeviceKind::External => {
                let why = match (mem.xip_window, self.has(Capability::ReadExternalFlash)) {
                    (Some(w), true) => {
                        if write {
                            return Err(AccessError::ExternalReadOnly {
                                region: region.to_owned(),
                                device: mem.name.clone(),
                            });
                        }
                        return Ok(Access {
                            address: u64::from(w) + within,
                            core: mem.core,
                            read_only: true,
                        });
                    }
                    (Some(w), false) => format!(
                        " (its XIP window at 0x{w:08x} decodes only once the firmware has set up the QSPI controller)"
                    ),
                    (None, _) => " (it has no XIP window)".to_owned(),
                };
                let why = match &mem.note {
                    Some(n) => format!("{why}; {n}"),
                    None => why,
                };
                Err(AccessError::ExternalNotReadable {
                    region: region.to_owned(),
                    device: mem.name.clone(),
                    board: self.name.clone(),
                    why,
                })
            }
        }
    }
}

/// Profile names (file stems) in `dir`, sorted.
pub fn list_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "yaml")
                .then(|| p.file_stem()?.to_str().map(str::to_owned))
                .flatten()
        })
        .collect();
    v.sort();
    v
}
