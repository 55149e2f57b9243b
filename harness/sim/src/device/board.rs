//! The simulated board: flash, MCUboot, the CPU's handoff to the app, and the app's SMP server
//! behind a UART — everything a probe and a serial port would see on a real nRF52840 DK.

use crate::bootloader::{BootOutcome, Bootloader, HwState, ImageDecision, NetcoreFw};
use crate::device::flash_journal;
use crate::device::flash_map::{FlashMap, MapError};
use crate::device::nsib::{self, B0Stop, NsibBoot, B0};
use crate::device::smp_server::{AppView, SmpServer};
use dfu_hil_firmware::{self as firmware, AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_smp::serial::{self, DeviceDropStats, DeviceLineDecoder};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Partition that holds the bootloader.
pub const BOOT_PARTITION: &str = "mcuboot";

/// How long after the app starts its SMP UART transport drains what arrived: observed on
/// Zephyr 3.4's `smp_svr` on native_sim (a request 0–5 ms after the announcement was lost,
/// at 10 ms answered). `uart_mcumgr_register` (`drivers/console/uart_mcumgr.c`) empties the
/// UART FIFO while it installs its interrupt handler, after the boot banner was printed.
pub const SMP_UART_REGISTER_DELAY: Duration = Duration::from_millis(8);

/// What the CPU is doing, as a debug probe would classify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreState {
    /// No power / never reset.
    Off,
    /// Halted by the debugger.
    Halted,
    /// Running application firmware from `partition`.
    Running {
        partition: String,
        app: AppDescriptor,
    },
    /// Spinning in one place after a fault or a panic; `symbol` resolved from the ELF.
    FaultLoop { pc: u32, symbol: Option<String> },
    /// Lockup (fault during fault handling, or no valid vector table at all).
    LockedUp,
}

/// Everything one boot produced, for evidence.
#[derive(Debug, Clone, Default)]
pub struct BootReport {
    pub n: u32,
    pub log: Vec<String>,
    pub decisions: Vec<ImageDecision>,
    pub outcome: Option<BootOutcome>,
}

/// Faults of the SMP UART (docs/protocol-facts.md, "Serial line pacing", "Logs on the SMP UART"),
/// off by default. Deterministic: the same seed and the same traffic give the same bytes on the
/// wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct UartFaults {
    /// Chance (0–1), per response frame, that a Zephyr log line is printed on the same UART
    /// just before it (between frames: tolerant clients skip it).
    pub log_noise: f64,
    /// Chance (0–1), per response frame, that a log line lands *inside* it, as a log from
    /// another thread does on a UART written with `uart_poll_out`. The frame is lost: the
    /// client times out and must retry.
    pub log_in_frame: f64,
    /// Seed of the fault generator.
    pub seed: u64,
    /// `CONFIG_UART_MCUMGR_RX_BUF_SIZE`: received lines longer than this (including `\n`)
    /// are dropped whole. `None` = Zephyr's default, 128.
    pub rx_line_max: Option<usize>,
}

impl Default for UartFaults {
    fn default() -> Self {
        UartFaults {
            log_noise: 0.0,
            log_in_frame: 0.0,
            seed: 1,
            rx_line_max: None,
        }
    }
}

impl UartFaults {
    pub fn is_none(&self) -> bool {
        self.log_noise <= 0.0 && self.log_in_frame <= 0.0 && self.rx_line_max.is_none()
    }
}

/// Log lines a Zephyr SMP server app prints on its console (`CONFIG_LOG_BACKEND_UART`).
const NOISE_LINES: &[&str] = &[
    "<inf> smp_sample: heartbeat",
    "<inf> mcumgr_img_grp: Image upload inspect: ok",
    "<dbg> mcumgr_smp: smp_handle_single_payload: handled",
    "<inf> flash_nrf: flash write done",
    "<wrn> os_mgmt: reset hook: no handler",
    "<inf> net_buf: pool usage 2/4",
    "<err> uart_mcumgr: insufficient buffers; drop this fragment",
];

/// The flash operations of one uncut run, from which the state after any of its cut points is
/// rebuilt ([`SimBoard::load_cut_state`]).
#[derive(Debug, Clone)]
pub struct FlashRecord {
    journal: flash_journal::FlashJournal,
}

impl FlashRecord {
    /// Flash operations recorded: the run's cut points.
    pub fn len(&self) -> u64 {
        self.journal.len()
    }

    pub fn is_empty(&self) -> bool {
        self.journal.is_empty()
    }
}

/// See [`SimBoard::save_state`].
#[derive(Debug, Clone)]
pub struct SavedState {
    flash: FlashMap,
    core: CoreState,
    hw: HwState,
    nsib: Option<NsibBoot>,
}

pub struct SimBoard {
    pub flash: FlashMap,
    core: CoreState,
    server: SmpServer,
    rx: DeviceLineDecoder,
    tx: Vec<u8>,
    boots: u32,
    last_boot: BootReport,
    /// Whole device log (UART text), across boots.
    log: Vec<String>,
    faults: UartFaults,
    /// xorshift64 state of the fault generator.
    rng: u64,
    /// Pretend uptime for log timestamps, in ms; advances per request.
    uptime_ms: u64,
    /// OTP security counters and the network core's flash: survive resets, not in `flash`.
    hw: HwState,
    /// The MCUboot b0 booted at the last reset (NSIB layouts).
    nsib: Option<NsibBoot>,
    /// See [`SimBoard::app_generation`].
    generation: u64,
    /// The board's clock runs ahead of the host's by this much: while the host only waits,
    /// time jumps to the next thing the board has scheduled ([`SimBoard::idle`]), so a test
    /// does not sleep through every reset delay yet sees events in the real order.
    skew: Duration,
    /// An accepted `os reset` takes effect at this (board) time: until then the old app
    /// keeps running and answering (`CONFIG_MCUMGR_GRP_OS_RESET_MS`).
    reset_at: Option<Instant>,
    /// Bytes on the SMP UART before this (board) time are drained by the transport's
    /// registration ([`SMP_UART_REGISTER_DELAY`] after the app started).
    uart_ready_at: Option<Instant>,
    /// Bytes lost that way since the last boot.
    uart_drained: u64,
    /// While flash operations are recorded: the state outside flash when recording began.
    recording_from: Option<(HwState, Option<NsibBoot>)>,
    /// How long after the app starts its SMP transport drops what arrives
    /// ([`SMP_UART_REGISTER_DELAY`]; none on a state rebuilt for a sweep's cut point).
    uart_register_delay: Duration,
}

impl SimBoard {
    pub fn new(layout: Layout) -> Self {
        SimBoard {
            flash: FlashMap::new(layout),
            core: CoreState::Off,
            server: SmpServer::new(),
            rx: DeviceLineDecoder::new(),
            tx: Vec::new(),
            boots: 0,
            last_boot: BootReport::default(),
            log: Vec::new(),
            faults: UartFaults::default(),
            rng: 1,
            uptime_ms: 0,
            hw: HwState::default(),
            nsib: None,
            generation: 0,
            skew: Duration::ZERO,
            reset_at: None,
            uart_ready_at: None,
            uart_drained: 0,
            recording_from: None,
            uart_register_delay: SMP_UART_REGISTER_DELAY,
        }
    }

    /// The board's clock (see the `skew` field).
    fn now(&self) -> Instant {
        Instant::now() + self.skew
    }

    /// Let the board's time catch up: a reset whose delay has passed happens now. Every entry
    /// point that looks at or talks to the board calls this first.
    pub fn settle(&mut self) {
        if let Some(at) = self.reset_at {
            if self.now() >= at {
                self.reset_at = None;
                self.reset();
            }
        }
    }

    /// The host waits up to `max` with nothing to send. When the board has something scheduled
    /// within that time (a pending reset, the SMP transport registering), its clock jumps
    /// there and it happens now; returns whether it did. Otherwise the caller really waits.
    pub fn idle(&mut self, max: Duration) -> bool {
        self.settle();
        let now = self.now();
        let next = [self.reset_at, self.uart_ready_at]
            .into_iter()
            .flatten()
            .filter(|&t| t > now)
            .min();
        match next {
            Some(t) if t - now <= max => {
                self.skew += t - now;
                self.settle();
                true
            }
            _ => false,
        }
    }

    /// A reset requested over SMP and not yet done (the app is still in its reset delay).
    pub fn reset_pending(&self) -> bool {
        self.reset_at.is_some()
    }

    /// Bytes the SMP UART drained because they arrived before the transport registered.
    pub fn uart_drained(&self) -> u64 {
        self.uart_drained
    }

    /// Switch UART faults on or off (takes effect at once; the generator restarts from the
    /// seed).
    pub fn set_uart_faults(&mut self, faults: UartFaults) {
        self.rng = (faults.seed ^ 0x9e37_79b9_7f4a_7c15).max(1);
        self.faults = faults;
        self.rx = self.new_rx();
    }

    pub fn uart_faults(&self) -> &UartFaults {
        &self.faults
    }

    /// What the device's UART receiver dropped silently so far (since the last boot).
    pub fn uart_rx_drops(&self) -> DeviceDropStats {
        self.rx.stats()
    }

    /// The SMP UART receiver of the running app: its line size and line-buffer count
    /// (`CONFIG_UART_MCUMGR_RX_BUF_SIZE` / `_COUNT` from the app, unless a fault switch
    /// overrides the size) and its net_buf size.
    fn new_rx(&self) -> DeviceLineDecoder {
        let app = match &self.core {
            CoreState::Running { app, .. } => Some(app),
            _ => None,
        };
        let size = self
            .faults
            .rx_line_max
            .or(app.map(|a| a.uart_rx_buf_size as usize));
        let mut rx = match size {
            Some(n) => DeviceLineDecoder::with_max_line(n),
            None => DeviceLineDecoder::new(),
        };
        if let Some(a) = app {
            rx.set_line_count(Some(a.uart_rx_buf_count as usize));
        }
        rx.set_netbuf_size(self.rx_netbuf());
        rx
    }

    fn rx_netbuf(&self) -> Option<usize> {
        match &self.core {
            CoreState::Running { app, .. } => Some(app.buf_size as usize),
            _ => None,
        }
    }

    fn next_rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_rand() >> 11) as f64 / (1u64 << 53) as f64;
        p > 0.0 && unit < p
    }

    /// One log line as Zephyr's UART log backend prints it.
    fn noise_line(&mut self) -> String {
        let ms = self.uptime_ms;
        let us = self.next_rand() % 1000;
        let text = NOISE_LINES[(self.next_rand() % NOISE_LINES.len() as u64) as usize];
        format!(
            "[{:02}:{:02}:{:02}.{:03},{us:03}] {text}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    }

    /// Put one response frame on the UART, with the log noise the faults ask for.
    fn transmit_frame(&mut self, frame: Vec<u8>) {
        self.uptime_ms += 7;
        if self.chance(self.faults.log_noise) {
            let line = self.noise_line();
            self.emit(line);
        }
        if frame.len() > 2 && self.chance(self.faults.log_in_frame) {
            // Somewhere after the start marker and before the final newline.
            let at = 2 + (self.next_rand() % (frame.len() as u64 - 2)) as usize;
            let line = self.noise_line();
            self.tx.extend_from_slice(&frame[..at]);
            self.tx.extend_from_slice(line.as_bytes());
            self.tx.extend_from_slice(b"\r\n");
            self.tx.extend_from_slice(&frame[at..]);
            self.log.push(line);
            return;
        }
        self.tx.extend_from_slice(&frame);
    }

    pub fn core_state(&self) -> &CoreState {
        &self.core
    }

    pub fn last_boot(&self) -> &BootReport {
        &self.last_boot
    }

    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// Changes whenever the CPU stops running the app it ran (reset, power off, halt, state
    /// restore). Links with connection state (BLE) compare it to notice that the device they
    /// were connected to went away, as a real central sees a disconnect.
    pub fn app_generation(&self) -> u64 {
        self.generation
    }

    /// Power removed: RAM state (upload session, UART buffers) is gone, the CPU stops.
    pub fn power_off(&mut self) {
        self.generation += 1;
        self.reset_at = None;
        self.uart_ready_at = None;
        self.flash.clear_ram_emulated();
        self.server.reset();
        self.rx = self.new_rx();
        self.core = CoreState::Off;
    }

    pub fn halt(&mut self) {
        self.generation += 1;
        self.reset_at = None;
        self.core = CoreState::Halted;
    }

    /// The state that survives a power cycle (flash) plus what the CPU was doing, so a sweep
    /// can run the same block from the same starting point many times.
    pub fn save_state(&self) -> SavedState {
        SavedState {
            flash: self.flash.clone_without_journal(),
            core: self.core.clone(),
            hw: self.hw.clone(),
            nsib: self.nsib.clone(),
        }
    }

    /// Go back to a saved state; RAM state (upload session, UART buffers) starts empty.
    pub fn load_state(&mut self, saved: &SavedState) {
        self.generation += 1;
        self.uart_register_delay = SMP_UART_REGISTER_DELAY;
        self.reset_at = None;
        // The restored app has been up for a while: its transport is registered.
        self.uart_ready_at = None;
        self.flash = saved.flash.clone();
        self.hw = saved.hw.clone();
        self.nsib = saved.nsib.clone();
        self.server.reset();
        self.rx = self.new_rx();
        self.tx.clear();
        self.core = saved.core.clone();
        self.rx = self.new_rx();
    }

    /// A second board in this one's persistent state (flash, core, OTP) with its settings (flash
    /// timing, UART faults): RAM state, log and clock start fresh. A sweep checks cut points
    /// on twins in parallel; each twin only ever runs from a state loaded into it.
    pub fn twin(&self) -> SimBoard {
        let mut t = SimBoard::new(self.flash.layout.clone());
        t.faults = self.faults.clone();
        t.rng = self.rng;
        t.load_state(&self.save_state());
        t
    }

    /// Start recording the flash operations of a run (see [`FlashRecord`]).
    pub fn record_flash_ops(&mut self) {
        self.flash.start_journal(flash_journal::DEFAULT_INTERVAL);
        self.recording_from = Some((self.hw.clone(), self.nsib.clone()));
    }

    /// Stop recording. `None` when no recording ran, or when the run changed state outside
    /// the flash (security counters, the network core, an NSIB boot chain), which a rebuilt
    /// cut could not reproduce: then a sweep must replay each cut instead.
    pub fn take_flash_record(&mut self) -> Option<FlashRecord> {
        let journal = self.flash.take_journal()?;
        let (hw, nsib) = self.recording_from.take()?;
        let only_flash =
            hw == self.hw && nsib.is_none() && self.nsib.is_none() && !B0::present(&self.flash);
        only_flash.then_some(FlashRecord { journal })
    }

    /// The board as a power cut before recorded operation `k` (1-based) leaves it, without
    /// running anything: `start` (the state the recording began in), the flash after the
    /// first k - 1 operations, power off. False (board unchanged) when `k` is outside the
    /// record.
    pub fn load_cut_state(&mut self, start: &SavedState, record: &FlashRecord, k: u64) -> bool {
        if k == 0 || k > record.journal.len() {
            return false;
        }
        self.load_state(start);
        if !self.flash.rebuild_cut(&record.journal, k) {
            return false;
        }
        self.power_off();
        // A sweep checks thousands of recoveries here: its host probes at once instead of
        // waiting out the registration window in real time, so the window is not modelled on
        // a rebuilt cut state (the replaying sweep keeps it).
        self.uart_register_delay = Duration::ZERO;
        true
    }

    fn emit(&mut self, line: String) {
        self.tx.extend_from_slice(line.as_bytes());
        self.tx.extend_from_slice(b"\r\n");
        self.log.push(line);
    }

    fn boot_build(&self) -> Option<BootloaderBuild> {
        if let Some(n) = &self.nsib {
            return Some(n.build.clone());
        }
        let p = self.flash.partition(BOOT_PARTITION).ok()?;
        let bytes = self.flash.read(BOOT_PARTITION, 0, p.size).ok()?;
        firmware::read_bootloader(&bytes)
    }

    /// Power-on reset: RAM state is lost, (b0 then) MCUboot runs, then the CPU jumps where it
    /// says.
    pub fn reset(&mut self) -> &BootReport {
        self.generation += 1;
        self.reset_at = None;
        self.uart_ready_at = None;
        self.uart_drained = 0;
        self.server.reset();
        self.flash.clear_ram_emulated();
        self.rx = self.new_rx();
        self.boots += 1;
        let mut report = BootReport {
            n: self.boots,
            ..BootReport::default()
        };
        // MCUboot may reboot the SoC itself (after an NSIB update); bounded like a watchdog.
        for _ in 0..4 {
            self.nsib = None;
            let (build, boot_base) = if B0::present(&self.flash) {
                let mut b0 = B0::new();
                let r = b0.run(&mut self.flash);
                for line in std::mem::take(&mut b0.log) {
                    self.emit(line);
                }
                match r {
                    Ok(n) => {
                        let base = self
                            .flash
                            .partition(&n.partition)
                            .map(|p| self.flash.layout.address(p) + dfu_hil_firmware::nsib::PAD)
                            .unwrap_or(0);
                        let build = n.build.clone();
                        self.nsib = Some(n);
                        (build, base)
                    }
                    Err(B0Stop::Cut(op)) => {
                        self.core = CoreState::Off;
                        report.outcome = Some(BootOutcome::PowerCut { op });
                        break;
                    }
                    Err(B0Stop::NoBootable) => {
                        let b0_base = self
                            .flash
                            .partition(dfu_hil_firmware::nsib::B0_PARTITION)
                            .map(|p| self.flash.layout.address(p))
                            .unwrap_or(0);
                        self.core = CoreState::FaultLoop {
                            pc: b0_base + 0x0c2e,
                            symbol: Some("b0_main_no_bootable_image".into()),
                        };
                        report.outcome = Some(BootOutcome::Halt {
                            reason: "No bootable image found. Aborting boot.".into(),
                        });
                        break;
                    }
                }
            } else {
                let Some(build) = self.boot_build() else {
                    // No bootloader: the vector table at 0 is erased, the core locks up at once.
                    self.core = CoreState::LockedUp;
                    self.last_boot = report;
                    return &self.last_boot;
                };
                let base = self
                    .flash
                    .partition(BOOT_PARTITION)
                    .map(|p| self.flash.layout.address(p))
                    .unwrap_or(0);
                (build, base)
            };
            let mut bl = Bootloader::new(&build);
            bl.hw = self.hw.clone();
            let outcome = bl.boot(&mut self.flash);
            self.hw = std::mem::take(&mut bl.hw);
            report.decisions.extend(bl.decisions.iter().cloned());
            for line in std::mem::take(&mut bl.log) {
                self.emit(line);
            }
            if outcome == BootOutcome::Reboot {
                self.flash.clear_ram_emulated();
                continue;
            }
            self.core = match &outcome {
                BootOutcome::PowerCut { .. } | BootOutcome::Reboot => CoreState::Off,
                BootOutcome::Halt { .. } => CoreState::FaultLoop {
                    pc: boot_base + 0x1b40,
                    symbol: Some("fih_panic_loop".into()),
                },
                BootOutcome::Jump {
                    partition,
                    hdr_size,
                    ..
                } => self.handoff(partition, *hdr_size, boot_base, &build),
            };
            report.outcome = Some(outcome);
            break;
        }
        report.log = self.log[self.log.len().saturating_sub(64)..].to_vec();
        self.last_boot = report;
        &self.last_boot
    }

    /// The hardware security counter (`MCUBOOT_HW_ROLLBACK_PROT`) of MCUboot image `image`
    /// (0 until first raised). Survives resets like OTP.
    pub fn security_counter(&self, image: usize) -> u32 {
        self.hw.security_counters.get(&image).copied().unwrap_or(0)
    }

    /// State outside the flash map (OTP counters, netcore flash).
    pub fn hw_state(&self) -> &HwState {
        &self.hw
    }

    /// Version of the firmware in the nRF5340 network core's flash (what B0n last installed
    /// through PCD); `None` before the first netcore update.
    pub fn netcore_version(&self) -> Option<dfu_hil_mcuboot::image::Version> {
        self.hw.netcore.as_ref().map(|n| n.version)
    }

    /// The network core's flash image as its own access port would show it (header, payload,
    /// TLVs of the installed image).
    pub fn netcore_flash(&self) -> Option<&[u8]> {
        self.hw.netcore.as_ref().map(|n| n.image.as_slice())
    }

    /// Install a factory netcore image (what `nrfjprog --coprocessor CP_NETWORK` would flash).
    pub fn program_netcore(&mut self, image: &[u8]) -> Result<(), String> {
        let img = dfu_hil_mcuboot::image::Image::parse(image).map_err(|e| e.to_string())?;
        self.hw.netcore = Some(NetcoreFw {
            version: img.header.version,
            image: image[..img.total_size].to_vec(),
            updates: 0,
        });
        Ok(())
    }

    /// NSIB: the slot (`s0`/`s1`) b0 booted MCUboot from at the last reset, if b0 is present.
    pub fn nsib_active_slot(&self) -> Option<&str> {
        self.nsib.as_ref().map(|n| n.partition.as_str())
    }

    /// NSIB: the `fw_info` version of the MCUboot b0 booted at the last reset.
    pub fn nsib_active_version(&self) -> Option<u32> {
        self.nsib.as_ref().map(|n| n.fw_info_version)
    }

    /// NSIB: the monotonic counter in the provision partition (slots used / total, value).
    pub fn nsib_counter(&self) -> Option<dfu_hil_firmware::provision::Counter> {
        nsib::read_counter(&self.flash)
    }

    /// Read a partition as a debug probe does: RAM-emulated partitions (the netcore's
    /// `mcuboot_primary_1`) are not reachable and give [`MapError::RamEmulated`].
    pub fn probe_read(&self, partition: &str, off: u32, len: u32) -> Result<Vec<u8>, MapError> {
        self.flash.read(partition, off, len)
    }

    /// `do_boot` (`boot/zephyr/main.c`): load SP and reset vector from `slot + hdr_size` and
    /// jump. Nothing checks the vector table before the jump, so the simulated CPU concludes a
    /// fault only from evidence it can check (see docs/simulated-board.md, "The handoff"):
    ///
    /// - the initial SP outside the chip's RAM, or a reset vector that is not Thumb or not in
    ///   the slot's code: the first instruction or stack push faults;
    /// - the reset vector lands on code linked for another header room: known for our
    ///   synthetic apps (their descriptor is elsewhere in the slot) and for a real image when
    ///   the build says where the app was linked (`AppDescriptor::link_offset`).
    ///
    /// A fault right after the jump is taken before the app set VTOR, so MCUboot's handler runs
    /// and Zephyr's fatal error handler ends in `arch_system_halt` (the user's "endless loop";
    /// a plain reset then boots MCUboot again, which reverts an unconfirmed test swap).
    ///
    /// A real image (no simulated-app descriptor anywhere) is never executed in pretence: the
    /// board runs a model of the app — from the build's `.config`, else Zephyr's defaults —
    /// and says so in the boot log.
    fn handoff(
        &mut self,
        partition: &str,
        hdr_size: u16,
        boot_base: u32,
        build: &BootloaderBuild,
    ) -> CoreState {
        let Ok(part) = self.flash.partition(partition).cloned() else {
            return CoreState::LockedUp;
        };
        let base = self.flash.layout.address(&part);
        let hdr = u32::from(hdr_size);
        let vt = self.flash.read(partition, hdr, 8).unwrap_or_default();
        let word = |o: usize| {
            vt.get(o..o + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0)
        };
        let (sp, pc) = (word(0), word(4));
        let target = pc & !1;
        let code_start = base + hdr;
        let in_slot = target >= code_start && target < base + part.size;
        let sp_ok = (firmware::RAM_START..=firmware::RAM_END).contains(&sp);
        if pc & 1 == 0 {
            // BX to an even address: INVSTATE, stacked PC = the branch target.
            return self.fault(boot_base, "Illegal use of the EPSR", target);
        }
        if !in_slot || !sp_ok {
            return self.fault(
                boot_base,
                "Attempt to execute undefined instruction",
                target,
            );
        }
        let code = self
            .flash
            .read(
                partition,
                target - base,
                (base + part.size - target).min(4096),
            )
            .unwrap_or_default();
        let app = match firmware::read_app(&code) {
            Some(app) => app,
            None => {
                let window = part.size.min(0x1_0000);
                let slot = self.flash.read(partition, 0, window).unwrap_or_default();
                if firmware::find_app(&slot).is_some() {
                    // Our app is in the slot, but not where the reset vector points: its code
                    // was linked for another offset, and the CPU executes whatever is there.
                    return self.fault(
                        boot_base,
                        "Attempt to execute undefined instruction",
                        target,
                    );
                }
                let app = self.stand_in(partition, hdr_size, build);
                if app.link_offset.is_some_and(|l| l != hdr) {
                    return self.fault(
                        boot_base,
                        "Attempt to execute undefined instruction",
                        target,
                    );
                }
                app
            }
        };
        // Zephyr's boot banner (`kernel/banner.c`) names the kernel version the app was built
        // from; NCS releases print their own banner too, which is not modelled.
        self.emit(format!(
            "*** Booting Zephyr OS build v{} ***",
            app.release.zephyr
        ));
        match &app.modelled_from {
            Some(from) => self.emit(format!(
                "{} {}: the application is modelled from {from}, not run (the simulator \
                 cannot execute a real image)",
                app.name, app.version
            )),
            None => self.emit(format!("{} {} (sim)", app.name, app.version)),
        }
        let running = CoreState::Running {
            partition: partition.to_owned(),
            app: app.clone(),
        };
        self.core = running.clone();
        self.rx = self.new_rx();
        self.uart_ready_at = Some(self.now() + self.uart_register_delay);
        if app.confirm_on_boot {
            self.app_confirm_self(&app, build);
        }
        running
    }

    /// A fault right after MCUboot's jump, as Zephyr's ARM fault handler reports it
    /// (`arch/arm/core/cortex_m/fault.c`: the fault kind, then `esf_dump`'s "Faulting
    /// instruction address (r15/pc)" — the stacked PC, always even: the Thumb bit lives in
    /// xPSR, not in the PC), then `z_fatal_error` and `arch_system_halt`.
    fn fault(&mut self, boot_base: u32, what: &str, stacked_pc: u32) -> CoreState {
        self.emit("E: ***** USAGE FAULT *****".into());
        self.emit(format!("E:   {what}"));
        self.emit(format!(
            "E: Faulting instruction address (r15/pc): 0x{:08x}",
            stacked_pc & !1
        ));
        self.emit("E: >>> ZEPHYR FATAL ERROR 0: CPU exception on CPU 0".into());
        self.emit("E: Halting system".into());
        CoreState::FaultLoop {
            pc: boot_base + firmware::BOOT_ARCH_SYSTEM_HALT,
            symbol: Some("arch_system_halt".into()),
        }
    }

    /// The model of a real application image, with the version of the image header in
    /// `partition`: the build's model (`BootloaderBuild::stand_in_app`, from its `.config`)
    /// when there is one, else an smp_svr-like app with Zephyr's defaults. Either way it is
    /// marked as a model (`modelled_from`).
    fn stand_in(&self, partition: &str, hdr_size: u16, build: &BootloaderBuild) -> AppDescriptor {
        let mut app = match build.stand_in_app.clone() {
            Some(mut app) => {
                app.modelled_from
                    .get_or_insert_with(|| "the build's .config".into());
                app
            }
            None => {
                let mut app = AppDescriptor::new("app", "0.0.0");
                app.release = build.release;
                app.modelled_from = Some(
                    "Zephyr's defaults (no build given: an smp_svr-like app with the OS and \
                     image groups, CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE 384, no self-confirm)"
                        .into(),
                );
                app
            }
        };
        if let Ok(header) = self.flash.read(partition, 0, u32::from(hdr_size).max(32)) {
            if let Ok(h) = dfu_hil_mcuboot::image::ImageHeader::parse(&header) {
                app.version = h.version.to_string();
            }
        }
        app
    }

    fn app_confirm_self(&mut self, app: &AppDescriptor, build: &BootloaderBuild) {
        let confirm = dfu_hil_smp::Packet::request(
            dfu_hil_smp::Version::V2,
            dfu_hil_smp::Op::Write,
            dfu_hil_smp::group::IMAGE,
            dfu_hil_smp::img_cmd::STATE,
            0,
            dfu_hil_smp::Value::Map(vec![(
                dfu_hil_smp::Value::Text("confirm".into()),
                dfu_hil_smp::Value::Bool(true),
            )]),
        );
        let mut view = AppView {
            flash: &mut self.flash,
            app,
            boot: build,
            active_image: 0,
        };
        let _ = self.server.handle(&mut view, &confirm.encode());
        self.emit("app: image confirmed".into());
    }

    /// Handle one raw SMP packet as the app would: the packet-level entry point of the
    /// transports that carry whole packets (BLE after reassembly, UDP datagrams; serial goes
    /// through [`SimBoard::uart_write`], which shares the same server).
    /// Returns the response packets; empty when nothing answers (no app running, no SMP).
    /// An accepted `os reset` is answered, and the board reboots the app's
    /// `CONFIG_MCUMGR_GRP_OS_RESET_MS` later ([`SimBoard::settle`]); until then the old app
    /// keeps answering, as Zephyr's os_mgmt does.
    pub fn smp_request(&mut self, packet: &[u8]) -> Vec<Vec<u8>> {
        self.settle();
        let (packets, reset) = self.serve(packet);
        if reset {
            self.schedule_reset();
        }
        packets
    }

    /// `os_mgmt_reset`: the reboot is a delayed work item; a second request while it is
    /// pending does not move it (`k_work_schedule` leaves a scheduled item alone).
    fn schedule_reset(&mut self) {
        if self.reset_at.is_some() {
            return;
        }
        let ms = match &self.core {
            CoreState::Running { app, .. } => app.reset_ms,
            _ => 0,
        };
        self.reset_at = Some(self.now() + Duration::from_millis(ms as u64));
        self.settle();
    }

    /// Run the app's SMP server on one packet; `true` when it asked for a reset.
    fn serve(&mut self, packet: &[u8]) -> (Vec<Vec<u8>>, bool) {
        let CoreState::Running { app, .. } = self.core.clone() else {
            return (vec![], false);
        };
        let Some(build) = self.boot_build() else {
            return (vec![], false);
        };
        let mut view = AppView {
            flash: &mut self.flash,
            app: &app,
            boot: &build,
            active_image: 0,
        };
        let reply = self.server.handle(&mut view, packet);
        for line in reply.log {
            self.emit(line);
        }
        (reply.packets, reply.reset)
    }

    /// One burst of bytes from the host on the SMP UART, as the interrupt handler takes it:
    /// complete lines wait in the app's line buffers (at most `CONFIG_UART_MCUMGR_RX_BUF_COUNT`
    /// of them; further lines are dropped silently) until the board next runs its work queue
    /// ([`SimBoard::uart_read`]). Bytes that arrive before the SMP transport registered after
    /// a boot are drained.
    pub fn uart_write(&mut self, bytes: &[u8]) {
        self.settle();
        if !matches!(self.core, CoreState::Running { .. }) {
            return;
        }
        if self.uart_ready_at.is_some_and(|t| self.now() < t) {
            self.uart_drained += bytes.len() as u64;
            return;
        }
        self.rx.receive(bytes);
    }

    /// The board gets the CPU: its work queue decodes the received lines (freeing their
    /// buffers) and the SMP server answers each complete request; then the bytes the device
    /// sent since the last call (SMP lines and log text). An accepted `os reset` is answered
    /// and the app keeps serving until its reset delay has passed.
    pub fn uart_read(&mut self) -> Vec<u8> {
        self.settle();
        if matches!(self.core, CoreState::Running { .. }) {
            for packet in self.rx.process() {
                let (responses, reset) = self.serve(&packet);
                for resp in responses {
                    self.transmit_frame(serial::encode_zephyr(&resp));
                }
                if reset {
                    let generation = self.generation;
                    self.schedule_reset();
                    if self.generation != generation {
                        // Rebooted at once (no reset delay): the other requests died with it.
                        break;
                    }
                }
            }
        }
        std::mem::take(&mut self.tx)
    }

    /// Program a partition as a debug probe does (not counted towards power cuts... but it
    /// goes through the same flash rules).
    ///
    /// A RAM-emulated partition (the nRF5340 network core's primary slot) stands for the
    /// network core's own flash: a probe programs that through the network core's access
    /// port (`nrfjprog --coprocessor CP_NETWORK`), so the image becomes the netcore firmware
    /// B0n boots, exactly as [`SimBoard::program_netcore`].
    pub fn probe_program(&mut self, partition: &str, data: &[u8]) -> Result<(), MapError> {
        if self.flash.is_ram_emulated(partition) {
            return self.probe_program_netcore(partition, data);
        }
        self.flash.program(partition, data)
    }

    /// [`probe_program`](Self::probe_program) a sector at a time, reporting progress
    /// ([`FlashMap::program_with_progress`]); the network core is programmed whole.
    pub fn probe_program_with_progress(
        &mut self,
        partition: &str,
        data: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), MapError> {
        if self.flash.is_ram_emulated(partition) {
            self.probe_program_netcore(partition, data)?;
            progress(data.len() as u64, data.len() as u64);
            return Ok(());
        }
        self.flash.program_with_progress(partition, data, progress)
    }

    fn probe_program_netcore(&mut self, partition: &str, data: &[u8]) -> Result<(), MapError> {
        self.flash.partition(partition)?;
        self.program_netcore(data)
            .map_err(|message| MapError::NotAnImage {
                partition: partition.to_owned(),
                message,
            })
    }
}
