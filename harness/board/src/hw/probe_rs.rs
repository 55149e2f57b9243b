//! The probe-rs adapter: implements [`Probe`] for a real board by calling probe-rs 0.32.
//!
//! Deliberately thin. Every decision — where a region is for the probe, whether external flash
//! is reachable, what the fault registers mean, whether the core is in a fault loop, which
//! symbol a PC is in, where an RTT line ends — lives in the tested modules ([`super::profile`],
//! [`super::fault`], [`super::symbols`], [`super::rtt`]). What is here only moves bytes and
//! registers, and cannot be tested on a machine without a probe: NOTHING in this file has run
//! against hardware yet. (The two pure helpers at the end, ELF ranges and progress mapping, have
//! unit tests.)

use super::fault::{self, CoreEvidence, FaultRegisters, HaltCause, RawStatus, SymbolLookup};
use super::inventory::{DiscoveredProbe, Hooks, ProbeSelector};
use super::profile::{AccessError, BoardProfile, Capability};
use super::rtt::{self, RttReader, RttState};
use super::symbols::{ElfSymbols, Symbolizer};
use crate::probe::{BoardError, CoreState, PowerControl, Probe, ResetKind};
use dfu_hil_mcuboot::layout::Layout;
use probe_rs::flashing::{
    self, BinOptions, DownloadOptions, ElfOptions, FlashProgress, ProgressEvent, ProgressOperation,
};
use probe_rs::probe::list::Lister;
use probe_rs::probe::DebugProbeSelector;
use probe_rs::{Core, CoreStatus, HaltReason, MemoryInterface, Permissions, Session};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

/// Debug Exception and Monitor Control Register: TRCENA (bit 24) powers the DWT, which holds
/// the PC sample register.
const DEMCR: u64 = 0xE000_EDFC;
const DEMCR_TRCENA: u32 = 1 << 24;
const HALT_TIMEOUT: Duration = Duration::from_millis(500);

/// A probe-rs error, kept as the source; probe-rs's own timeout is a timeout.
fn probe_err(e: probe_rs::Error) -> BoardError {
    if matches!(e, probe_rs::Error::Timeout) {
        BoardError::Timeout {
            context: String::new(),
            source: e.into(),
        }
    } else {
        BoardError::probe("", e)
    }
}

fn access_err(e: AccessError) -> BoardError {
    match e {
        AccessError::NoRegion(r) => BoardError::NoRegion(r),
        other => BoardError::Unsupported(other.to_string()),
    }
}

/// Probes attached to this host (for `probe list` and `inventory discover`).
pub fn list_probes() -> Vec<DiscoveredProbe> {
    Lister::new()
        .list_all()
        .into_iter()
        .map(|p| DiscoveredProbe {
            vid: p.vendor_id,
            pid: p.product_id,
            interface: p.interface,
            serial: p.serial_number.clone(),
            identifier: p.identifier.clone(),
        })
        .collect()
}

/// File formats for [`HwProbe::flash_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageFile {
    /// Addresses come from the ELF's program headers (e.g. MCUboot's `zephyr.elf`).
    Elf,
    /// Addresses come from the Intel HEX records (`zephyr.signed.hex`, `merged.hex`).
    Hex,
    /// Raw bytes, placed at the start of this partition — never at address 0 by default.
    Bin { region: String },
}

impl ImageFile {
    /// Guess from the extension (`.elf`, `.hex`; `.bin` needs a region).
    pub fn from_path(path: &Path, region: Option<&str>) -> Result<Self, BoardError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("elf") => Ok(ImageFile::Elf),
            Some("hex") => Ok(ImageFile::Hex),
            Some("bin") | Some("signed") => match region {
                Some(r) => Ok(ImageFile::Bin {
                    region: r.to_owned(),
                }),
                None => Err(BoardError::Unsupported(format!(
                    "{}: a .bin has no addresses; say which partition it goes to",
                    path.display()
                ))),
            },
            _ => Err(BoardError::Unsupported(format!(
                "{}: unknown image format (want .elf, .hex or .bin)",
                path.display()
            ))),
        }
    }
}

/// A real board through probe-rs.
pub struct HwProbe {
    session: Session,
    profile: BoardProfile,
    layout: Layout,
    symbols: Symbolizer,
    hooks: Hooks,
    /// How many PCs to sample when classifying the core.
    pub pc_samples: usize,
    pub sample_interval: Duration,
    log: Vec<String>,
    /// The RTT terminal, when an ELF given to `load_elfs` has `_SEGGER_RTT`.
    rtt: Option<RttReader>,
    /// The last RTT problem logged, so a lasting one is logged once, not at every poll.
    rtt_warning: Option<String>,
}

impl HwProbe {
    /// Open the probe named by `selector` and attach to the profile's chip. `allow_erase_all`
    /// only for recovery (it lets probe-rs mass-erase a locked nRF): normal runs attach
    /// without it so an unexpected APPROTECT fails loudly instead of wiping the board.
    pub fn attach(
        selector: &ProbeSelector,
        profile: BoardProfile,
        layout: Layout,
        allow_erase_all: bool,
    ) -> Result<Self, BoardError> {
        let problems = profile.check_layout(&layout);
        if !problems.is_empty() {
            return Err(BoardError::Unsupported(problems.join("; ")));
        }
        let sel: DebugProbeSelector = selector
            .to_string()
            .parse()
            .map_err(|e| BoardError::probe(format!("probe selector {selector}"), e))?;
        let probe = Lister::new().open(sel).map_err(|e| {
            BoardError::unavailable(
                format!("probe: open probe {selector} (attached? udev rules?)"),
                e,
            )
        })?;
        let mut perms = Permissions::new();
        if allow_erase_all {
            perms = perms.allow_erase_all();
        }
        let session = probe.attach(profile.chip.as_str(), perms).map_err(|e| {
            BoardError::unavailable(format!("probe: attach to {}", profile.chip), e)
        })?;
        Ok(HwProbe {
            session,
            profile,
            layout,
            symbols: Symbolizer::new(),
            hooks: Hooks::default(),
            pc_samples: 32,
            sample_interval: Duration::from_millis(5),
            log: Vec::new(),
            rtt: None,
            rtt_warning: None,
        })
    }

    /// ELFs for PC symbolization (MCUboot + app, each owning its partition's range).
    pub fn set_symbols(&mut self, symbols: Symbolizer) {
        self.symbols = symbols;
    }

    /// Power/reset hooks from the inventory.
    pub fn set_hooks(&mut self, hooks: Hooks) {
        self.hooks = hooks;
    }

    fn main_core(&self) -> usize {
        self.profile.cores.first().map(|c| c.index).unwrap_or(0)
    }

    /// Read RTT at this control block address from now on (`None`: stop).
    pub fn set_rtt(&mut self, control_block: Option<u32>) {
        self.rtt = control_block.map(RttReader::new);
        self.rtt_warning = None;
    }

    /// The target's RAM was reset, reprogrammed (the flash algorithm runs in RAM) or lost:
    /// the control block must be found again on the next poll.
    fn rtt_detach(&mut self) {
        if let Some(r) = self.rtt.as_mut() {
            r.reattach();
        }
    }

    /// Move new RTT lines into the log. A failure is a warning line in the log (once while it
    /// lasts), never an error: the log is evidence, not the thing under test.
    fn poll_rtt(&mut self) {
        let idx = self.main_core();
        let Some(reader) = self.rtt.as_mut() else {
            return;
        };
        let was_attached = matches!(reader.state(), RttState::Attached { .. });
        let result = match self.session.core(idx) {
            Ok(mut core) => reader
                .poll(&mut CoreMemory(&mut core), &mut self.log)
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("RTT: core {idx}: {e}")),
        };
        if let (false, RttState::Attached { name, size }) = (was_attached, reader.state()) {
            self.log.push(format!(
                "[hw] RTT attached at 0x{:08x}: up-buffer 0 `{}`, {size} bytes",
                reader.control_block(),
                name.as_deref().unwrap_or("?")
            ));
        }
        match result {
            Ok(()) => self.rtt_warning = None,
            Err(msg) if self.rtt_warning.as_deref() != Some(msg.as_str()) => {
                self.log.push(format!("[hw] warning: {msg}"));
                self.rtt_warning = Some(msg);
            }
            Err(_) => {}
        }
    }

    /// `flash` with probe-rs's progress events turned into image bytes.
    fn program(
        &mut self,
        region: &str,
        bytes: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BoardError> {
        let flash_err = |e: probe_rs::flashing::FlashError| BoardError::FlashFailed {
            region: region.to_owned(),
            context: String::new(),
            source: e.into(),
        };
        let a = self
            .profile
            .access(&self.layout, region, 0, bytes.len() as u32, true)
            .map_err(access_err)?;
        let mut loader = self.session.target().flash_loader();
        loader.add_data(a.address, bytes).map_err(flash_err)?;
        let len = bytes.len() as u64;
        let mut bytes_done = ProgressBytes::new(len);
        let mut opts = DownloadOptions::default();
        opts.verify = true;
        opts.progress = FlashProgress::new(|event| {
            if let Some(done) = bytes_done.on_event(&event) {
                progress(done, len);
            }
        });
        let result = loader.commit(&mut self.session, opts);
        // Whatever happened, RAM held the flash algorithm: any RTT block there is gone.
        self.rtt_detach();
        result.map_err(flash_err)?;
        if let Some(done) = bytes_done.finish() {
            progress(done, len);
        }
        Ok(())
    }

    /// Program a file. ELF and HEX carry their addresses; a BIN goes to its partition.
    pub fn flash_file(
        &mut self,
        path: &Path,
        format: &ImageFile,
        verify: bool,
    ) -> Result<(), BoardError> {
        let mut opts = DownloadOptions::default();
        opts.verify = verify;
        let r = match format {
            ImageFile::Elf => flashing::download_file_with_options(
                &mut self.session,
                path,
                flashing::ElfLoader(ElfOptions::default()),
                opts,
            ),
            ImageFile::Hex => flashing::download_file_with_options(
                &mut self.session,
                path,
                flashing::HexLoader,
                opts,
            ),
            ImageFile::Bin { region } => {
                let len = std::fs::metadata(path)
                    .map_err(|e| BoardError::probe(path.display().to_string(), e))?
                    .len();
                let len = u32::try_from(len)
                    .map_err(|_| BoardError::Probe("image larger than 4 GiB".into()))?;
                let a = self
                    .profile
                    .access(&self.layout, region, 0, len, true)
                    .map_err(access_err)?;
                let bin = BinOptions {
                    base_address: Some(a.address),
                    skip: 0,
                };
                flashing::download_file_with_options(
                    &mut self.session,
                    path,
                    flashing::BinLoader(bin),
                    opts,
                )
            }
        };
        // The flash algorithm ran in RAM: any RTT control block there is gone.
        self.rtt_detach();
        r.map_err(|e| BoardError::probe(format!("flash {}", path.display()), e))
    }

    /// Mass-erase the chip (needs `allow_erase_all` at attach).
    pub fn erase_chip(&mut self) -> Result<(), BoardError> {
        self.rtt_detach();
        flashing::erase_all(&mut self.session, &mut FlashProgress::empty(), false)
            .map_err(|e| BoardError::probe("erase chip", e))
    }

    /// Does `region` start with `bytes`? (Cheap "still holds image X" check.)
    pub fn verify(&mut self, region: &str, bytes: &[u8]) -> Result<bool, BoardError> {
        let got = self.read(region, 0, bytes.len() as u32)?;
        Ok(got == bytes)
    }

    fn read_fault_registers(&mut self) -> Result<FaultRegisters, BoardError> {
        let secure = self.profile.chip.starts_with("nRF53");
        let idx = self.main_core();
        let mut core = self.session.core(idx).map_err(probe_err)?;
        let mut rd = |a: u64| core.read_word_32(a).map_err(probe_err);
        Ok(FaultRegisters {
            cfsr: rd(fault::addr::CFSR)?,
            hfsr: rd(fault::addr::HFSR)?,
            mmfar: rd(fault::addr::MMFAR)?,
            bfar: rd(fault::addr::BFAR)?,
            // The non-secure view reads SFSR as 0 (RAZ/WI); still worth reading on M33.
            sfsr: if secure {
                rd(fault::addr::SFSR).ok()
            } else {
                None
            },
            sfar: if secure {
                rd(fault::addr::SFAR).ok()
            } else {
                None
            },
        })
    }

    /// PC samples: DWT PCSR while running when the profile says it exists, else halt, read PC,
    /// resume (intrusive, tens of ms each).
    fn sample_pcs(&mut self, halted: bool) -> Result<Vec<u32>, BoardError> {
        let n = self.pc_samples.max(1);
        let idx = self.main_core();
        let use_pcsr = self.profile.has(Capability::PcSampling) && !halted;
        let mut core = self.session.core(idx).map_err(probe_err)?;
        let mut out = Vec::with_capacity(n);
        if halted {
            let pc_reg = core.program_counter();
            let pc: u32 = core.read_core_reg(pc_reg).map_err(probe_err)?;
            out.push(pc);
            return Ok(out);
        }
        if use_pcsr {
            let demcr = core.read_word_32(DEMCR).map_err(probe_err)?;
            core.write_word_32(DEMCR, demcr | DEMCR_TRCENA)
                .map_err(probe_err)?;
            for _ in 0..n {
                out.push(
                    core.read_word_32(fault::addr::DWT_PCSR)
                        .map_err(probe_err)?,
                );
                std::thread::sleep(self.sample_interval);
            }
            // All-ones = no valid sample (PCSR not implemented or not sampling): fall back.
            if out.iter().any(|&pc| pc != u32::MAX && pc != 0) {
                return Ok(out);
            }
            out.clear();
        }
        for _ in 0..n {
            core.halt(HALT_TIMEOUT).map_err(probe_err)?;
            let pc_reg = core.program_counter();
            let pc: u32 = core.read_core_reg(pc_reg).map_err(probe_err)?;
            core.run().map_err(probe_err)?;
            out.push(pc);
            std::thread::sleep(self.sample_interval);
        }
        Ok(out)
    }

    /// Everything needed to classify the core (status, PCs, fault registers).
    pub fn evidence(&mut self) -> Result<CoreEvidence, BoardError> {
        let idx = self.main_core();
        let status = {
            let mut core = self.session.core(idx).map_err(probe_err)?;
            match core.status() {
                Ok(s) => s,
                // A core that does not answer is unpowered or held in reset.
                Err(_) => {
                    return Ok(CoreEvidence {
                        status: RawStatus::Off,
                        pc_samples: Vec::new(),
                        fault: None,
                    })
                }
            }
        };
        let raw = match status {
            CoreStatus::Running => RawStatus::Running,
            CoreStatus::Sleeping => RawStatus::Sleeping,
            CoreStatus::LockedUp => RawStatus::LockedUp,
            CoreStatus::Unknown => RawStatus::Unknown,
            CoreStatus::Halted(r) => RawStatus::Halted(match r {
                HaltReason::Exception => HaltCause::Exception,
                HaltReason::Breakpoint(_) => HaltCause::Breakpoint,
                HaltReason::Request => HaltCause::Request,
                _ => HaltCause::Other,
            }),
        };
        let fault = self.read_fault_registers().ok();
        let pc_samples = match raw {
            RawStatus::LockedUp => Vec::new(),
            RawStatus::Halted(_) => self.sample_pcs(true)?,
            _ => self.sample_pcs(false)?,
        };
        Ok(CoreEvidence {
            status: raw,
            pc_samples,
            fault,
        })
    }

    fn run_hook(&mut self, name: &str, cmd: Option<String>) -> Result<(), BoardError> {
        let cmd = cmd.ok_or_else(|| {
            BoardError::Unsupported(format!("no `{name}` hook in the inventory for this board"))
        })?;
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .status()
            .map_err(|e| BoardError::probe(format!("hook `{name}`"), e))?;
        self.log
            .push(format!("[hw] hook {name}: `{cmd}` → {status}"));
        if !status.success() {
            return Err(BoardError::Probe(format!(
                "hook `{name}` (`{cmd}`) failed: {status}"
            )));
        }
        Ok(())
    }
}

impl Probe for HwProbe {
    fn flash(&mut self, region: &str, bytes: &[u8]) -> Result<(), BoardError> {
        self.program(region, bytes, &mut |_, _| {})
    }

    fn flash_with_progress(
        &mut self,
        region: &str,
        bytes: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BoardError> {
        self.program(region, bytes, progress)
    }

    fn read(&mut self, region: &str, offset: u32, len: u32) -> Result<Vec<u8>, BoardError> {
        let a = self
            .profile
            .access(&self.layout, region, offset, len, false)
            .map_err(access_err)?;
        let mut core = self.session.core(a.core).map_err(probe_err)?;
        let mut buf = vec![0u8; len as usize];
        core.read(a.address, &mut buf)
            .map_err(|e| BoardError::FlashFailed {
                region: region.to_owned(),
                context: format!("read 0x{:08x}+0x{len:x}", a.address),
                source: e.into(),
            })?;
        Ok(buf)
    }

    fn erase(&mut self, region: &str, offset: u32, len: u32) -> Result<(), BoardError> {
        let a = self
            .profile
            .access(&self.layout, region, offset, len, true)
            .map_err(access_err)?;
        let r = flashing::erase(
            &mut self.session,
            &mut FlashProgress::empty(),
            a.address,
            a.address + u64::from(len),
            false,
        );
        // The flash algorithm ran in RAM: any RTT control block there is gone.
        self.rtt_detach();
        r.map_err(|e| BoardError::FlashFailed {
            region: region.to_owned(),
            context: String::new(),
            source: e.into(),
        })
    }

    fn region_size(&self, region: &str) -> Result<u32, BoardError> {
        self.layout
            .partition(region)
            .map(|p| p.size)
            .ok_or_else(|| BoardError::NoRegion(region.to_owned()))
    }

    fn reset(&mut self, kind: ResetKind) -> Result<(), BoardError> {
        let idx = self.main_core();
        self.rtt_detach();
        let mut core = self.session.core(idx).map_err(probe_err)?;
        match kind {
            ResetKind::Run => core.reset().map_err(probe_err),
            ResetKind::Halt => core
                .reset_and_halt(HALT_TIMEOUT)
                .map(|_| ())
                .map_err(probe_err),
        }
    }

    fn core_state(&mut self) -> Result<CoreState, BoardError> {
        let ev = self.evidence()?;
        let c = fault::classify(&ev, &self.symbols as &dyn SymbolLookup);
        for n in &c.notes {
            self.log.push(format!("[hw] {n}"));
        }
        Ok(c.state)
    }

    fn power_control(&mut self) -> Option<&mut dyn PowerControl> {
        Some(self)
    }

    fn take_log(&mut self) -> Vec<String> {
        self.poll_rtt();
        std::mem::take(&mut self.log)
    }

    /// Symbols for fault-loop PCs from every ELF, each owning its partition's range; RTT from
    /// the ELF that has `_SEGGER_RTT`. All or nothing: a bad ELF changes nothing.
    fn load_elfs(&mut self, elfs: &[(String, Vec<u8>)]) -> Result<(), BoardError> {
        let mut symbols = Symbolizer::new();
        let mut rtt_blocks = Vec::new();
        for (label, bytes) in elfs {
            let range = elf_range(&self.layout, label);
            let elf = ElfSymbols::parse(label, bytes, range, Path::new(label))
                .map_err(|e| BoardError::Unsupported(e.to_string()))?;
            symbols
                .add(elf)
                .map_err(|e| BoardError::Unsupported(e.to_string()))?;
            if let Some(addr) = rtt::find_rtt_symbol(bytes) {
                rtt_blocks.push((label.as_str(), addr));
            }
        }
        self.symbols = symbols;
        let chosen = rtt_blocks.first().copied();
        for (label, addr) in rtt_blocks.iter().skip(1) {
            self.log.push(format!(
                "[hw] RTT: `{}` in ELF `{label}` (0x{addr:08x}) not read: only one control block is, the one of `{}`",
                rtt::SYMBOL,
                chosen.map(|c| c.0).unwrap_or_default()
            ));
        }
        if chosen.is_some() && !self.profile.has(Capability::Rtt) {
            self.log.push(format!(
                "[hw] RTT not read: board profile `{}` has no `rtt` capability",
                self.profile.name
            ));
            self.set_rtt(None);
            return Ok(());
        }
        self.set_rtt(chosen.map(|c| c.1));
        Ok(())
    }
}

/// [`rtt::RttMemory`] over a probe-rs core. `MemoryInterface::read` rather than `read_8`: it
/// picks the widest access the alignment allows, and the terminal ring is read whole.
struct CoreMemory<'a, 'p>(&'a mut Core<'p>);

impl rtt::RttMemory for CoreMemory<'_, '_> {
    fn read(&mut self, addr: u32, len: usize) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; len];
        MemoryInterface::read(self.0, u64::from(addr), &mut buf).map_err(|e| e.to_string())?;
        Ok(buf)
    }

    fn write_u32(&mut self, addr: u32, value: u32) -> Result<(), String> {
        self.0
            .write_word_32(u64::from(addr), value)
            .map_err(|e| e.to_string())
    }
}

/// The address range an ELF owns for symbolization, from its label: a partition of that name
/// (`mcuboot`), `app` = image 0's primary slot (where the app runs), else `None` (the ELF's own
/// code span). Ranges from the layout keep MCUboot's and the app's symbols apart even where
/// one ELF's code span would cover the other's.
fn elf_range(layout: &Layout, label: &str) -> Option<Range<u32>> {
    let name = match label {
        "app" => layout.images.first().map(|i| i.primary.as_str())?,
        other => other,
    };
    let p = layout.partition(name)?;
    let start = layout.address(p);
    Some(start..start.saturating_add(p.size))
}

/// probe-rs reports fill, erase, program and verify separately, each against its own byte
/// total (announced in `AddProgressBar`); the harness wants one `(bytes done, bytes total)`
/// over the image. Each phase weighs by its own total, and the sum is scaled to the image
/// length. Never goes backwards, and reaches the image length only in [`finish`](Self::finish)
/// or when every phase is complete.
#[derive(Debug)]
struct ProgressBytes {
    len: u64,
    totals: [u64; 4],
    done: [u64; 4],
    reported: Option<u64>,
}

impl ProgressBytes {
    fn new(len: u64) -> Self {
        ProgressBytes {
            len,
            totals: [0; 4],
            done: [0; 4],
            reported: None,
        }
    }

    fn phase(op: ProgressOperation) -> usize {
        match op {
            ProgressOperation::Fill => 0,
            ProgressOperation::Erase => 1,
            ProgressOperation::Program => 2,
            ProgressOperation::Verify => 3,
        }
    }

    /// Image bytes done after `event`, when that moved forward.
    fn on_event(&mut self, event: &ProgressEvent) -> Option<u64> {
        match event {
            // A phase of unknown size (chip erase) cannot be weighed: left out.
            ProgressEvent::AddProgressBar {
                operation,
                total: Some(total),
            } => {
                self.totals[Self::phase(*operation)] += total;
                None
            }
            ProgressEvent::Progress {
                operation, size, ..
            } => {
                let i = Self::phase(*operation);
                self.done[i] = (self.done[i] + size).min(self.totals[i]);
                self.advance()
            }
            _ => None,
        }
    }

    fn advance(&mut self) -> Option<u64> {
        let total: u64 = self.totals.iter().sum();
        if total == 0 {
            return None;
        }
        let done: u64 = self.done.iter().sum();
        let bytes = (u128::from(self.len) * u128::from(done) / u128::from(total)) as u64;
        self.report(bytes)
    }

    /// The commit succeeded: the image is done, whatever the events said.
    fn finish(&mut self) -> Option<u64> {
        if self.reported == Some(self.len) {
            return None;
        }
        self.reported = Some(self.len);
        Some(self.len)
    }

    fn report(&mut self, bytes: u64) -> Option<u64> {
        if self.reported.is_some_and(|r| bytes <= r) {
            return None;
        }
        self.reported = Some(bytes);
        Some(bytes)
    }
}

impl PowerControl for HwProbe {
    /// The inventory's `power-off` then `power-on` hooks (an error names a missing one).
    fn cut_power_now(&mut self) -> Result<(), BoardError> {
        let off = self.hooks.power_off.clone();
        let on = self.hooks.power_on.clone();
        self.rtt_detach();
        self.run_hook("power-off", off)?;
        std::thread::sleep(Duration::from_millis(500));
        self.run_hook("power-on", on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../partitions/nrf52840-internal.yaml");
        Layout::load(&path).expect("layout")
    }

    #[test]
    fn elf_ranges_from_labels() {
        let l = layout();
        assert_eq!(elf_range(&l, "mcuboot"), Some(0..0xc000));
        assert_eq!(elf_range(&l, "app"), Some(0xc000..0x86000));
        assert_eq!(elf_range(&l, "slot1"), Some(0x86000..0x100000));
        assert_eq!(elf_range(&l, "netcore"), None);
    }

    fn bar(operation: ProgressOperation, total: u64) -> ProgressEvent {
        ProgressEvent::AddProgressBar {
            operation,
            total: Some(total),
        }
    }

    fn step(operation: ProgressOperation, size: u64) -> ProgressEvent {
        ProgressEvent::Progress {
            operation,
            size,
            time: Duration::from_millis(1),
        }
    }

    #[test]
    fn progress_weighs_phases_and_ends_at_the_image_length() {
        use ProgressOperation::*;
        let mut p = ProgressBytes::new(1000);
        let mut seen = Vec::new();
        let events = [
            bar(Erase, 4096),
            bar(Program, 1024),
            bar(Verify, 1024),
            ProgressEvent::Started(Erase),
            step(Erase, 4096),
            ProgressEvent::Finished(Erase),
            step(Program, 512),
            step(Program, 512),
            step(Program, 512), // more than announced: clamped
            step(Verify, 1024),
        ];
        for e in &events {
            seen.extend(p.on_event(e));
        }
        // (4096, 4608, 5120, 6144) of 6144, scaled to 1000 bytes.
        assert_eq!(seen, vec![666, 750, 833, 1000]);
        assert_eq!(p.finish(), None, "already at the end");
    }

    #[test]
    fn progress_without_sizes_still_ends() {
        use ProgressOperation::*;
        let mut p = ProgressBytes::new(300);
        let unknown = ProgressEvent::AddProgressBar {
            operation: Erase,
            total: None,
        };
        assert_eq!(p.on_event(&unknown), None);
        assert_eq!(p.on_event(&step(Erase, 4096)), None);
        assert_eq!(p.finish(), Some(300));
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn progress_never_goes_back() {
        use ProgressOperation::*;
        let mut p = ProgressBytes::new(100);
        p.on_event(&bar(Program, 100));
        assert_eq!(p.on_event(&step(Program, 50)), Some(50));
        // A second flash algorithm announces more work: the fraction drops, the report does not.
        p.on_event(&bar(Program, 100));
        assert_eq!(p.on_event(&step(Program, 10)), None);
        assert_eq!(p.on_event(&step(Program, 100)), Some(80));
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;
    use crate::probe::BoardErrorKind;
    use std::error::Error as _;

    #[test]
    fn probe_rs_errors_are_kept_and_its_timeout_is_a_timeout() {
        let e = probe_err(probe_rs::Error::Timeout);
        assert_eq!(e.kind(), BoardErrorKind::Timeout);
        let cause = e.source().expect("probe-rs's error is kept");
        assert!(matches!(
            cause.downcast_ref::<probe_rs::Error>(),
            Some(probe_rs::Error::Timeout)
        ));
        let e = probe_err(probe_rs::Error::CoreNotFound(3));
        assert_eq!(e.kind(), BoardErrorKind::Probe);
        assert!(e.to_string().starts_with("probe: "), "{e}");
    }
}
