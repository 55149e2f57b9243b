//! The simulated board as a BLE GATT SMP peripheral (Zephyr
//! `subsys/mgmt/mcumgr/transport/src/smp_bt.c`, `smp_reassembly.c`), built like Zephyr's SMP
//! Bluetooth transport with `CONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY=y`:
//!
//! * requests arrive as Write Commands (write without response) of at most ATT_MTU − 3 bytes;
//!   the device collects them by the SMP header's length and hands the whole packet to the
//!   app's SMP server ([`SimBoard::smp_request`], the same server the UART feeds);
//! * a fragment the reassembly refuses (first one shorter than the header, more bytes than the
//!   header announced, a packet larger than the app's net_buf) drops the partial packet. Zephyr
//!   answers it with an ATT error, which a Write Command never reports, so the host sees
//!   nothing ([`BlePeerStats::rejected_writes`] counts them);
//! * each response goes back as notifications of at most ATT_MTU − 3 bytes;
//! * the connection lives as long as the app that accepted it: after a reset or a power cut the
//!   link is down (writes fail) until the app runs again, and the next write then reconnects.
//!
//! [`BlePeer`] is the device side (it owns the reassembly buffer and the notification queue);
//! [`SimGatt`] is the host's end of the connection, a [`GattLink`], so the harness's real
//! [`dfu_hil_smp::ble::BleTransport`] framing and reassembly run against it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfu_hil_smp::ble::{GattLink, ATT_OVERHEAD, MIN_ATT_MTU};
use dfu_hil_smp::header::HEADER_LEN;
use dfu_hil_smp::SmpError;

use crate::device::board::{CoreState, SimBoard};

/// Default ATT MTU of the simulated connection: nRF Connect SDK's DFU-over-BLE configuration
/// (`samples/common/mcumgr_bt_ota_dfu/Kconfig`) sets `CONFIG_BT_L2CAP_TX_MTU=498` (two full
/// 251-byte LL PDUs per 495-byte write; set with `NCS_SAMPLE_MCUMGR_BT_OTA_DFU_SPEEDUP`), so a
/// central that asks for more ends up at 498.
pub const DEFAULT_ATT_MTU: usize = 498;
/// Largest ATT MTU accepted: a 512-byte attribute value plus 5 bytes of header, the most any
/// common stack negotiates (Android's limit).
pub const MAX_ATT_MTU: usize = 517;

/// Check an ATT MTU for the simulated link (23..=517).
pub fn check_att_mtu(mtu: usize) -> Result<usize, String> {
    if (MIN_ATT_MTU..=MAX_ATT_MTU).contains(&mtu) {
        Ok(mtu)
    } else {
        Err(format!(
            "ATT MTU {mtu} is outside {MIN_ATT_MTU}..={MAX_ATT_MTU} (23 is the BLE minimum, 517 \
             the largest stacks negotiate)"
        ))
    }
}

/// Why the device-side reassembly refused a fragment (the `smp_reassembly_collect` errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// First fragment shorter than the 8-byte header (`-ENODATA`).
    ShortFirst,
    /// The packet (header + announced length) or the fragment exceeds the net_buf (`-ENOSR`).
    TooLarge,
    /// More bytes than the header announced (`-EOVERFLOW`).
    Overflow,
}

/// Zephyr's SMP reassembly with the app's net_buf size: collects fragments by the header's
/// length. Pure state, RAM of the device.
#[derive(Debug, Clone, Default)]
pub struct Reassembler {
    buf: Vec<u8>,
    /// Bytes still missing; meaningful while `started`.
    expected: usize,
    started: bool,
}

impl Reassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// A packet is being collected.
    pub fn in_progress(&self) -> bool {
        self.started
    }

    /// Forget a partial packet.
    pub fn drop_partial(&mut self) {
        *self = Reassembler::default();
    }

    /// Take one fragment. `Ok(Some(packet))` when it completed a packet, `Ok(None)` when more
    /// is expected, `Err` when it was refused (a partial packet is dropped with it).
    pub fn collect(&mut self, frag: &[u8], netbuf: usize) -> Result<Option<Vec<u8>>, Refused> {
        if !self.started {
            if frag.len() < HEADER_LEN {
                return Err(Refused::ShortFirst);
            }
            let total = HEADER_LEN + u16::from_be_bytes([frag[2], frag[3]]) as usize;
            if frag.len() > netbuf || total > netbuf {
                return Err(Refused::TooLarge);
            }
            if frag.len() > total {
                return Err(Refused::Overflow);
            }
            self.started = true;
            self.expected = total;
            self.buf.clear();
        }
        if frag.len() > self.expected {
            self.drop_partial();
            return Err(Refused::Overflow);
        }
        self.buf.extend_from_slice(frag);
        self.expected -= frag.len();
        if self.expected > 0 {
            return Ok(None);
        }
        let packet = std::mem::take(&mut self.buf);
        self.drop_partial();
        Ok(Some(packet))
    }
}

/// What the peripheral did, for tests and evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlePeerStats {
    /// Connections made (the first write, and the first after every app restart).
    pub connections: u64,
    /// Connections lost (the app stopped: reset, power cut, halt).
    pub disconnects: u64,
    /// Write Commands accepted by the link.
    pub writes: u64,
    /// Writes the reassembly refused (the partial packet was dropped with them).
    pub rejected_writes: u64,
    /// Whole requests handed to the SMP server.
    pub requests: u64,
    /// Notifications the device sent (including dropped ones).
    pub notifications: u64,
    /// Notifications lost by the fault switch ([`BlePeer::drop_notification`]).
    pub dropped_notifications: u64,
}

/// The device side of the GATT SMP service.
#[derive(Debug)]
pub struct BlePeer {
    mtu: usize,
    /// [`SimBoard::app_generation`] of the app holding the connection; `None` = disconnected.
    conn: Option<u64>,
    rx: Reassembler,
    /// Notifications sent and not yet read by the host.
    tx: VecDeque<Vec<u8>>,
    /// Value of `stats.notifications` at which the next notification is dropped.
    drop_at: Option<u64>,
    stats: BlePeerStats,
}

impl BlePeer {
    /// A peripheral with this ATT MTU.
    ///
    /// # Panics
    /// When `att_mtu` is outside 23..=517 (see [`check_att_mtu`]).
    pub fn new(att_mtu: usize) -> Self {
        if let Err(e) = check_att_mtu(att_mtu) {
            panic!("{e}");
        }
        BlePeer {
            mtu: att_mtu,
            conn: None,
            rx: Reassembler::new(),
            tx: VecDeque::new(),
            drop_at: None,
            stats: BlePeerStats::default(),
        }
    }

    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Payload bytes of one write or notification.
    pub fn fragment_size(&self) -> usize {
        self.mtu - ATT_OVERHEAD
    }

    pub fn stats(&self) -> BlePeerStats {
        self.stats
    }

    /// Fault switch: lose the `n`-th notification the device sends from now on (1 = the next
    /// one), once. `0` disarms it.
    pub fn drop_notification(&mut self, n: u64) {
        self.drop_at = (n > 0).then(|| self.stats.notifications + n);
    }

    /// Connected to a running app right now (as of the last write or wait).
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Bring the connection in line with the board: down while no app runs, a new connection
    /// once a (re)started app runs. Returns the app's net_buf size when connected.
    fn sync(&mut self, board: &SimBoard) -> Result<usize, SmpError> {
        let CoreState::Running { app, .. } = board.core_state() else {
            self.disconnect();
            return Err(disconnected(board.core_state()));
        };
        let gen = board.app_generation();
        if self.conn != Some(gen) {
            if self.conn.is_some() {
                self.stats.disconnects += 1;
            }
            // The old connection's partial packet died with the old app's RAM.
            self.rx.drop_partial();
            self.conn = Some(gen);
            self.stats.connections += 1;
        }
        Ok(app.buf_size as usize)
    }

    fn disconnect(&mut self) {
        if self.conn.take().is_some() {
            self.stats.disconnects += 1;
        }
        self.rx.drop_partial();
    }

    /// One Write Command from the host. Errors when the link is down (no app running) or the
    /// write exceeds ATT_MTU − 3 (the host stack would refuse it); a fragment the reassembly
    /// refuses is accepted by the link and dropped silently, as on the device.
    pub fn write(&mut self, board: &mut SimBoard, frag: &[u8]) -> Result<(), SmpError> {
        let netbuf = self.sync(board)?;
        if frag.len() > self.fragment_size() {
            return Err(SmpError::Transport(format!(
                "BLE write of {} bytes exceeds ATT_MTU − 3 = {} bytes",
                frag.len(),
                self.fragment_size()
            )));
        }
        self.stats.writes += 1;
        match self.rx.collect(frag, netbuf) {
            Err(_) => self.stats.rejected_writes += 1,
            Ok(None) => {}
            Ok(Some(packet)) => {
                self.stats.requests += 1;
                // An accepted `os reset` reboots inside; the responses were sent before it.
                let responses = board.smp_request(&packet);
                for rsp in responses {
                    self.notify(&rsp);
                }
            }
        }
        Ok(())
    }

    /// Send one response as notifications of at most ATT_MTU − 3 bytes.
    fn notify(&mut self, packet: &[u8]) {
        for chunk in packet.chunks(self.fragment_size()) {
            self.stats.notifications += 1;
            if self.drop_at == Some(self.stats.notifications) {
                self.drop_at = None;
                self.stats.dropped_notifications += 1;
                continue;
            }
            self.tx.push_back(chunk.to_vec());
        }
    }

    /// The oldest notification the host has not read yet.
    pub fn take_notification(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }
}

fn disconnected(core: &CoreState) -> SmpError {
    let why = match core {
        CoreState::Off => "powered off".to_owned(),
        CoreState::Halted => "halted by the debugger".to_owned(),
        CoreState::LockedUp => "locked up".to_owned(),
        CoreState::FaultLoop { pc, symbol } => match symbol {
            Some(s) => format!("in a fault loop in {s}"),
            None => format!("in a fault loop at 0x{pc:08x}"),
        },
        CoreState::Running { .. } => "running".to_owned(),
    };
    SmpError::Transport(format!(
        "BLE disconnected: the simulated device is {why}, so its app is not advertising; the \
         link reconnects once the app runs again"
    ))
}

/// The host's end of a simulated BLE connection to the board's SMP service: plug it into
/// [`dfu_hil_smp::ble::BleTransport`].
pub struct SimGatt {
    board: Arc<Mutex<SimBoard>>,
    peer: Arc<Mutex<BlePeer>>,
    mtu: usize,
}

impl SimGatt {
    /// A connection with this ATT MTU.
    ///
    /// # Panics
    /// When `att_mtu` is outside 23..=517 (see [`check_att_mtu`]).
    pub fn new(board: Arc<Mutex<SimBoard>>, att_mtu: usize) -> Self {
        SimGatt {
            board,
            peer: Arc::new(Mutex::new(BlePeer::new(att_mtu))),
            mtu: att_mtu,
        }
    }

    /// The device side, for fault switches and statistics. Lock it before the board when
    /// both are needed.
    pub fn peer(&self) -> Arc<Mutex<BlePeer>> {
        self.peer.clone()
    }
}

impl GattLink for SimGatt {
    fn write_without_response(&mut self, data: &[u8]) -> Result<(), SmpError> {
        let mut peer = self.peer.lock().expect("BLE peer lock");
        let mut board = self.board.lock().expect("sim board lock");
        board.settle();
        peer.write(&mut board, data)
    }

    /// Notifications already sent arrive even after the device went down (they were on air
    /// before it); with none left, a link whose device is down reports the disconnect at once
    /// rather than waiting out the timeout.
    fn next_notification(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, SmpError> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut peer = self.peer.lock().expect("BLE peer lock");
                if let Some(n) = peer.take_notification() {
                    return Ok(Some(n));
                }
                let mut board = self.board.lock().expect("sim board lock");
                board.settle();
                if !matches!(board.core_state(), CoreState::Running { .. }) {
                    peer.disconnect();
                    return Err(disconnected(board.core_state()));
                }
                if peer.conn.is_some_and(|g| g != board.app_generation()) {
                    // The app this connection was with rebooted: the central sees the link
                    // drop; the next write connects to the new app.
                    peer.disconnect();
                    return Err(SmpError::Transport(
                        "BLE disconnected: the device reset; it reconnects on the next write"
                            .into(),
                    ));
                }
            }
            // Nothing is on its way unless a request is being served or the board has
            // something scheduled (its clock then jumps there); otherwise wait as a real
            // central waits for a silent peripheral, in small steps.
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
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

    fn mtu(&self) -> usize {
        self.mtu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u16) -> Vec<u8> {
        let mut h = vec![0x02, 0, 0, 0, 0, 0, 7, 0];
        h[2..4].copy_from_slice(&len.to_be_bytes());
        h
    }

    fn packet(body: usize) -> Vec<u8> {
        let mut p = hdr(body as u16);
        p.extend((0..body).map(|i| i as u8));
        p
    }

    #[test]
    fn reassembles_by_header_length_at_any_split() {
        let p = packet(300);
        for size in [20usize, 21, 64, 244, 495] {
            let mut r = Reassembler::new();
            let chunks: Vec<&[u8]> = p.chunks(size).collect();
            for (i, c) in chunks.iter().enumerate() {
                let out = r.collect(c, 384).unwrap();
                if i + 1 < chunks.len() {
                    assert!(out.is_none());
                    assert!(r.in_progress());
                } else {
                    assert_eq!(out.as_deref(), Some(&p[..]), "fragment size {size}");
                    assert!(!r.in_progress());
                }
            }
        }
    }

    #[test]
    fn header_only_packet_completes_at_once() {
        let mut r = Reassembler::new();
        assert_eq!(r.collect(&hdr(0), 384).unwrap(), Some(hdr(0)));
    }

    #[test]
    fn refusals_follow_zephyr() {
        let mut r = Reassembler::new();
        // Shorter than the header: nothing starts.
        assert_eq!(r.collect(&[0x02, 0, 0], 384), Err(Refused::ShortFirst));
        assert!(!r.in_progress());
        // Announced packet larger than the net_buf.
        assert_eq!(r.collect(&hdr(377), 384), Err(Refused::TooLarge));
        assert!(r.collect(&hdr(376), 384).unwrap().is_none());
        r.drop_partial();
        // A first fragment holding more than its packet.
        let mut two = packet(4);
        two.extend_from_slice(&packet(4));
        assert_eq!(r.collect(&two, 384), Err(Refused::Overflow));
        assert!(!r.in_progress());
        // A later fragment overflowing drops the partial packet.
        let p = packet(30);
        assert!(r.collect(&p[..20], 384).unwrap().is_none());
        assert_eq!(r.collect(&[0u8; 20], 384), Err(Refused::Overflow));
        assert!(!r.in_progress());
        // And the next packet starts clean.
        assert_eq!(r.collect(&p, 384).unwrap(), Some(p));
    }

    #[test]
    fn mtu_bounds() {
        assert!(check_att_mtu(22).is_err());
        assert_eq!(check_att_mtu(23), Ok(23));
        assert_eq!(check_att_mtu(517), Ok(517));
        assert!(check_att_mtu(518).unwrap_err().contains("23..=517"));
        assert_eq!(BlePeer::new(DEFAULT_ATT_MTU).fragment_size(), 495);
    }

    #[test]
    #[should_panic(expected = "outside 23..=517")]
    fn bad_mtu_panics() {
        BlePeer::new(600);
    }
}
