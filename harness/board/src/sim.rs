//! The `sim` backend: the built-in simulated board, in process. The probe reads its flash
//! directly; the link is real serial framing over an in-memory UART, or the harness's BLE
//! framing against a simulated GATT peripheral, or unframed datagrams ([`SimTransport`]).

use crate::hw::Capability;
use crate::probe::{
    BoardError, CoreState, CutRecord, FlashOpCuts, PowerControl, Probe, ResetKind, Snapshot,
    Snapshots,
};
use crate::{Board, BoardKind, Link};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_sim::SimBoard;
use dfu_hil_smp::{ByteStream, SerialTransport};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type Shared = Arc<Mutex<SimBoard>>;

/// How the host talks SMP to the simulated board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimTransport {
    /// Console framing over the in-memory UART ([`SimUart`]).
    #[default]
    Serial,
    /// GATT with the device reassembling requests (`CONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY`);
    /// `mtu` is the ATT MTU, 23..=517 (498 in NCS's DFU samples:
    /// [`dfu_hil_sim::links::ble_peer::DEFAULT_ATT_MTU`]). The host side is the harness's real
    /// [`dfu_hil_smp::BleTransport`].
    Ble { mtu: usize },
    /// One packet per datagram; `mtu` is the device's `CONFIG_MCUMGR_TRANSPORT_UDP_MTU`
    /// (Zephyr's default 1500: [`dfu_hil_sim::links::udp_peer::DEFAULT_UDP_MTU`]).
    Udp { mtu: usize },
}

impl SimTransport {
    /// BLE at NCS's ATT MTU 498.
    pub fn ble() -> Self {
        SimTransport::Ble {
            mtu: dfu_hil_sim::links::ble_peer::DEFAULT_ATT_MTU,
        }
    }

    /// UDP at Zephyr's default 1500.
    pub fn udp() -> Self {
        SimTransport::Udp {
            mtu: dfu_hil_sim::links::udp_peer::DEFAULT_UDP_MTU,
        }
    }

    /// Whether [`open_with`] accepts this (it panics otherwise).
    pub fn check(&self) -> Result<(), String> {
        match *self {
            SimTransport::Serial => Ok(()),
            SimTransport::Ble { mtu } => dfu_hil_sim::links::ble_peer::check_att_mtu(mtu).map(drop),
            SimTransport::Udp { mtu } => dfu_hil_sim::links::udp_peer::check_udp_mtu(mtu).map(drop),
        }
    }

    /// The SMP link to `board` over this transport.
    ///
    /// # Panics
    /// When [`SimTransport::check`] fails.
    pub fn link(&self, board: &Shared) -> Link {
        if let Err(e) = self.check() {
            panic!("{e}");
        }
        match *self {
            SimTransport::Serial => Link(Box::new(SerialTransport::new(SimUart {
                board: board.clone(),
                pending: Vec::new(),
            }))),
            SimTransport::Ble { mtu } => Link(Box::new(dfu_hil_smp::BleTransport::new(
                dfu_hil_sim::SimGatt::new(board.clone(), mtu),
            ))),
            SimTransport::Udp { mtu } => {
                Link(Box::new(dfu_hil_sim::SimUdp::new(board.clone(), mtu)))
            }
        }
    }
}

/// What the simulated board can do: everything the harness knows about. It counts every flash
/// operation (power cuts at an exact one), reads any flash device, has every link, and runs
/// the images it boots. Declared here, once, for `run`, `lint` and the farm to match
/// scenarios against before a board is opened.
pub fn capabilities() -> BTreeSet<Capability> {
    Capability::ALL.iter().copied().collect()
}

/// Build a sim board for a layout; returns the runner's `Board` and a handle on the simulator
/// (for fault switches and evidence the real world would not give). The link is serial.
pub fn open(layout: Layout, name: &str) -> (Board, Shared) {
    open_with(layout, name, SimTransport::Serial)
}

/// [`open`] with the SMP link over `transport`.
///
/// # Panics
/// When the transport's MTU is out of range ([`SimTransport::check`]).
pub fn open_with(layout: Layout, name: &str, transport: SimTransport) -> (Board, Shared) {
    let shared = Arc::new(Mutex::new(SimBoard::new(layout)));
    let link = transport.link(&shared);
    let probe = SimProbe {
        board: shared.clone(),
        log_seen: 0,
        transport,
    };
    let board = Board {
        kind: BoardKind::Sim,
        name: name.to_owned(),
        probe: Box::new(probe),
        link,
    };
    (board, shared)
}

pub struct SimProbe {
    board: Shared,
    log_seen: usize,
    /// The link this board was opened with (a twin gets the same kind).
    transport: SimTransport,
}

impl SimProbe {
    /// The board, its clock caught up first (a reset whose delay passed has happened).
    fn lock(&self) -> std::sync::MutexGuard<'_, SimBoard> {
        let mut b = self.board.lock().expect("sim board lock");
        b.settle();
        b
    }
}

fn flash_err(region: &str, e: impl std::fmt::Display) -> BoardError {
    BoardError::Flash {
        region: region.to_owned(),
        message: e.to_string(),
    }
}

impl Probe for SimProbe {
    fn flash(&mut self, region: &str, bytes: &[u8]) -> Result<(), BoardError> {
        let mut b = self.lock();
        b.flash
            .partition(region)
            .map_err(|_| BoardError::NoRegion(region.to_owned()))?;
        b.probe_program(region, bytes)
            .map_err(|e| flash_err(region, e))
    }

    /// Same bytes on the flash as [`flash`](Probe::flash), but programmed a sector at a time
    /// (an erase and a write each, as a probe's flasher does), reporting after every sector.
    /// So it counts two flash operations per sector where `flash` counts two in all: a power
    /// cut armed before it lands between sectors.
    fn flash_with_progress(
        &mut self,
        region: &str,
        bytes: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BoardError> {
        let mut b = self.lock();
        b.flash
            .partition(region)
            .map_err(|_| BoardError::NoRegion(region.to_owned()))?;
        b.probe_program_with_progress(region, bytes, progress)
            .map_err(|e| flash_err(region, e))
    }

    fn read(&mut self, region: &str, offset: u32, len: u32) -> Result<Vec<u8>, BoardError> {
        let b = self.lock();
        b.flash
            .partition(region)
            .map_err(|_| BoardError::NoRegion(region.to_owned()))?;
        b.flash
            .read(region, offset, len)
            .map_err(|e| flash_err(region, e))
    }

    fn erase(&mut self, region: &str, offset: u32, len: u32) -> Result<(), BoardError> {
        let mut b = self.lock();
        b.flash
            .erase(region, offset, len)
            .map_err(|e| flash_err(region, e))
    }

    fn region_size(&self, region: &str) -> Result<u32, BoardError> {
        let b = self.lock();
        b.flash
            .size(region)
            .map_err(|_| BoardError::NoRegion(region.to_owned()))
    }

    fn reset(&mut self, kind: ResetKind) -> Result<(), BoardError> {
        let mut b = self.lock();
        match kind {
            ResetKind::Run => {
                b.reset();
            }
            ResetKind::Halt => b.halt(),
        }
        Ok(())
    }

    fn core_state(&mut self) -> Result<CoreState, BoardError> {
        let b = self.lock();
        Ok(match b.core_state() {
            dfu_hil_sim::CoreState::Off => CoreState::Off,
            dfu_hil_sim::CoreState::Halted => CoreState::Halted,
            dfu_hil_sim::CoreState::Running { .. } => CoreState::Running,
            dfu_hil_sim::CoreState::LockedUp => CoreState::LockedUp,
            dfu_hil_sim::CoreState::FaultLoop { pc, symbol } => CoreState::FaultLoop {
                pc: *pc,
                symbol: symbol.clone(),
            },
        })
    }

    fn snapshots(&mut self) -> Option<&mut dyn Snapshots> {
        Some(self)
    }

    fn flash_op_cuts(&mut self) -> Option<&mut dyn FlashOpCuts> {
        Some(self)
    }

    fn power_control(&mut self) -> Option<&mut dyn PowerControl> {
        Some(self)
    }

    fn boot_chain(&mut self) -> Result<crate::BootChainFacts, BoardError> {
        let b = self.lock();
        Ok(crate::BootChainFacts {
            nsib_slot: b.nsib_active_slot().map(str::to_owned),
            nsib_version: b.nsib_active_version(),
            nsib_counter: b
                .nsib_counter()
                .map(|c| (u32::from(c.used), u32::from(c.total))),
            netcore_version: b.netcore_version().map(|v| v.to_string()),
            security_counters: (0..b.flash.layout.images.len())
                .map(|i| (i as u32, b.security_counter(i)))
                .collect(),
        })
    }

    fn take_log(&mut self) -> Vec<String> {
        let (new, seen) = {
            let b = self.lock();
            let log = b.log();
            (log[self.log_seen.min(log.len())..].to_vec(), log.len())
        };
        self.log_seen = seen;
        new
    }
}

impl Snapshots for SimProbe {
    fn snapshot(&mut self) -> Result<Snapshot, BoardError> {
        let b = self.lock();
        Ok(Snapshot(Box::new(b.save_state())))
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), BoardError> {
        let saved = snapshot
            .0
            .downcast_ref::<dfu_hil_sim::device::board::SavedState>()
            .ok_or_else(|| BoardError::Probe("snapshot from another board kind".into()))?;
        let mut b = self.lock();
        b.load_state(saved);
        b.flash.disarm_power_cut();
        Ok(())
    }
}

impl FlashOpCuts for SimProbe {
    fn cut_before_flash_op(&mut self, n: u64) -> Result<(), BoardError> {
        self.lock().flash.arm_power_cut(n);
        Ok(())
    }

    fn flash_op_count(&mut self) -> u64 {
        self.lock().flash.op_count()
    }

    fn last_flash_op(&mut self) -> Option<String> {
        let b = self.lock();
        b.flash.last_op().map(|op| {
            format!(
                "#{} {} {} 0x{:x}+0x{:x}",
                op.n, op.kind, op.partition, op.offset, op.len
            )
        })
    }

    fn twin(&mut self) -> Option<Board> {
        let twin = Arc::new(Mutex::new(self.lock().twin()));
        let link = self.transport.link(&twin);
        Some(Board {
            kind: BoardKind::Sim,
            name: "sim (twin)".into(),
            probe: Box::new(SimProbe {
                board: twin,
                log_seen: 0,
                transport: self.transport,
            }),
            link,
        })
    }

    fn record_flash_ops(&mut self) -> bool {
        self.lock().record_flash_ops();
        true
    }

    fn take_flash_record(&mut self) -> Option<CutRecord> {
        let r = self.lock().take_flash_record()?;
        Some(CutRecord(Box::new(r)))
    }

    fn restore_cut(
        &mut self,
        start: &Snapshot,
        record: &CutRecord,
        k: u64,
    ) -> Result<(), BoardError> {
        let saved = start
            .0
            .downcast_ref::<dfu_hil_sim::device::board::SavedState>()
            .ok_or_else(|| BoardError::Probe("snapshot from another board kind".into()))?;
        let record = record
            .0
            .downcast_ref::<dfu_hil_sim::device::board::FlashRecord>()
            .ok_or_else(|| BoardError::Probe("flash record from another board kind".into()))?;
        if self.lock().load_cut_state(saved, record, k) {
            Ok(())
        } else {
            Err(BoardError::Probe(format!(
                "cut point {k} is not in the record ({} operations)",
                record.len()
            )))
        }
    }
}

impl PowerControl for SimProbe {
    fn cut_power_now(&mut self) -> Result<(), BoardError> {
        self.lock().power_off();
        Ok(())
    }
}

/// The board's SMP UART as a byte stream: writes go to the simulated device, reads return what
/// it transmitted (SMP lines and log text, interleaved as on a real shared UART).
pub struct SimUart {
    board: Shared,
    pending: Vec<u8>,
}

impl ByteStream for SimUart {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        let mut board = self.board.lock().expect("sim board lock");
        board.uart_write(b);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.pending.is_empty() {
                let mut board = self.board.lock().expect("sim board lock");
                self.pending = board.uart_read();
            }
            if !self.pending.is_empty() {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                self.pending.drain(..n);
                return Ok(n);
            }
            // Nothing to read: if the board has something scheduled within the wait (a reset
            // after its delay), its clock jumps there; otherwise wait out the timeout the way
            // a silent real device makes the host wait, in small steps.
            let now = Instant::now();
            if now >= deadline {
                return Ok(0);
            }
            if self
                .board
                .lock()
                .expect("sim board lock")
                .idle(deadline - now)
            {
                continue;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
        }
    }
}
