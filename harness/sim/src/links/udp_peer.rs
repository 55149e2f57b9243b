//! The simulated board as Zephyr's SMP UDP server (`subsys/mgmt/mcumgr/transport/src/smp_udp.c`):
//! one datagram is one SMP packet, with no framing, and every response goes back as one datagram.
//!
//! [`SimUdp`] is the host's socket, a [`Transport`] straight away (UDP needs no framing
//! code on the host either). The device side follows `smp_udp.c`: the receive thread reads
//! each datagram into a buffer of `CONFIG_MCUMGR_TRANSPORT_UDP_MTU` bytes, so a longer one
//! arrives truncated (and the SMP layer answers the short packet with ECORRUPT), then copies
//! it into an SMP net_buf (`CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`, the app's `buf_size`). UDP
//! has no connection: while no app runs, datagrams are lost without a word and the host
//! times out, as it does on the serial link.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfu_hil_smp::{SmpError, Transport};

use crate::device::board::{CoreState, SimBoard};

/// Default `CONFIG_MCUMGR_TRANSPORT_UDP_MTU`: 1500 in Zephyr's
/// `subsys/mgmt/mcumgr/transport/Kconfig.udp` ("maximum size of SMP frames sent and received
/// over UDP"). It is the SMP packet size, not an IP MTU.
pub const DEFAULT_UDP_MTU: usize = 1500;
/// Smallest accepted: an SMP header.
pub const MIN_UDP_MTU: usize = dfu_hil_smp::HEADER_LEN;
/// Largest UDP payload over IPv4.
pub const MAX_UDP_MTU: usize = 65_507;

/// Check a datagram size for the simulated link.
pub fn check_udp_mtu(mtu: usize) -> Result<usize, String> {
    if (MIN_UDP_MTU..=MAX_UDP_MTU).contains(&mtu) {
        Ok(mtu)
    } else {
        Err(format!(
            "UDP MTU {mtu} is outside {MIN_UDP_MTU}..={MAX_UDP_MTU} (an SMP header up to the \
             largest UDP payload)"
        ))
    }
}

/// What happened to the datagrams, for tests and evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams the host sent.
    pub sent: u64,
    /// Lost because no app was running (nothing listens on port 1337).
    pub lost: u64,
    /// Longer than the device's receive buffer: cut to its size.
    pub truncated: u64,
    /// Larger than the app's net_buf after truncation: dropped.
    pub oversize: u64,
    /// Response datagrams the device sent.
    pub responses: u64,
}

/// The host's UDP socket "connected" to the simulated board.
pub struct SimUdp {
    board: Arc<Mutex<SimBoard>>,
    mtu: usize,
    inbox: VecDeque<Vec<u8>>,
    stats: UdpStats,
}

impl SimUdp {
    /// A link whose device reads datagrams of up to `mtu` bytes
    /// (`CONFIG_MCUMGR_TRANSPORT_UDP_MTU`).
    ///
    /// # Panics
    /// When `mtu` is outside 8..=65507 (see [`check_udp_mtu`]).
    pub fn new(board: Arc<Mutex<SimBoard>>, mtu: usize) -> Self {
        if let Err(e) = check_udp_mtu(mtu) {
            panic!("{e}");
        }
        SimUdp {
            board,
            mtu,
            inbox: VecDeque::new(),
            stats: UdpStats::default(),
        }
    }

    pub fn mtu(&self) -> usize {
        self.mtu
    }

    pub fn stats(&self) -> UdpStats {
        self.stats
    }
}

impl Transport for SimUdp {
    fn describe(&self) -> String {
        let s = self.stats;
        format!(
            "simulated UDP, MTU {} B; {} datagrams sent, {} lost (no app running), {} truncated, {} responses",
            self.mtu, s.sent, s.lost, s.truncated, s.responses
        )
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        self.stats.sent += 1;
        let mut board = self.board.lock().expect("sim board lock");
        let CoreState::Running { app, .. } = board.core_state() else {
            self.stats.lost += 1;
            return Ok(());
        };
        let netbuf = app.buf_size as usize;
        let data = if packet.len() > self.mtu {
            self.stats.truncated += 1;
            &packet[..self.mtu]
        } else {
            packet
        };
        if data.len() > netbuf {
            self.stats.oversize += 1;
            return Ok(());
        }
        for rsp in board.smp_request(data) {
            self.stats.responses += 1;
            self.inbox.push_back(rsp);
        }
        Ok(())
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        if let Some(p) = self.inbox.pop_front() {
            return Ok(p);
        }
        // Responses are produced while sending, so none is coming: wait the timeout out as a
        // socket read on a silent device does.
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(SmpError::Timeout);
            }
            // A pending reset happens when its time comes (the board's clock jumps there);
            // it answers nothing, so the wait goes on.
            if !self
                .board
                .lock()
                .expect("sim board lock")
                .idle(deadline - now)
            {
                std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
            }
        }
    }

    /// The device's receive buffer; the client also caps requests at `buf_size`.
    fn max_packet(&self) -> usize {
        self.mtu
    }

    /// The datagram lands in the net_buf as is.
    fn device_buffer_overhead(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtu_bounds() {
        assert!(check_udp_mtu(7).is_err());
        assert_eq!(check_udp_mtu(8), Ok(8));
        assert_eq!(check_udp_mtu(DEFAULT_UDP_MTU), Ok(1500));
        assert!(check_udp_mtu(70_000).unwrap_err().contains("outside"));
    }

    #[test]
    fn silent_board_times_out_and_loses_datagrams() {
        let layout = dfu_hil_mcuboot::layout::Layout::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../partitions/nrf52840-internal.yaml"),
        )
        .expect("layout");
        let board = Arc::new(Mutex::new(SimBoard::new(layout)));
        let mut t = SimUdp::new(board, 1024);
        assert_eq!(t.max_packet(), 1024);
        t.send(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        let start = Instant::now();
        assert!(matches!(
            t.recv(Duration::from_millis(20)),
            Err(SmpError::Timeout)
        ));
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(t.stats().lost, 1);
    }
}
