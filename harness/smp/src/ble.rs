//! SMP over BLE GATT as Zephyr's transport speaks it (`subsys/mgmt/mcumgr/transport/src/smp_bt.c`,
//! `smp_reassembly.c`), independent of any Bluetooth stack.
//!
//! The GATT side is the small [`GattLink`] trait so the framing rules — split requests into
//! ATT_MTU − 3 writes, rebuild responses from notifications by the SMP header's length — are
//! tested here against a fake peer, and a real stack (btleplug, in the board crate) only has
//! to move bytes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::errors::SmpError;
use crate::header::{RawHeader, HEADER_LEN};
use crate::transport::Transport;

/// SMP GATT service.
pub const SMP_SERVICE_UUID: &str = "8d53dc1d-1db7-4cd3-868b-8a527460aa84";
/// SMP characteristic: write without response (requests) + notify (responses).
pub const SMP_CHARACTERISTIC_UUID: &str = "da2e7828-fbce-4e01-ae9e-261174997c48";
/// ATT header bytes in a write or notification (opcode + handle).
pub const ATT_OVERHEAD: usize = 3;
/// The smallest ATT MTU BLE allows.
pub const MIN_ATT_MTU: usize = 23;
/// Gap between notifications after which a half-built response is abandoned: the device sends
/// a response's notifications back to back, so a long silence means the rest was lost and the
/// next notification starts a new packet.
pub const DEFAULT_FRAGMENT_GAP: Duration = Duration::from_secs(2);

/// What a GATT connection to the SMP characteristic must do.
pub trait GattLink: Send {
    /// One Write Command (write without response) of at most `mtu() − 3` bytes.
    fn write_without_response(&mut self, data: &[u8]) -> Result<(), SmpError>;
    /// The next notification's value, or `None` when `timeout` passed without one.
    fn next_notification(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, SmpError>;
    /// Negotiated ATT MTU.
    fn mtu(&self) -> usize;
}

impl<G: GattLink + ?Sized> GattLink for Box<G> {
    fn write_without_response(&mut self, data: &[u8]) -> Result<(), SmpError> {
        (**self).write_without_response(data)
    }
    fn next_notification(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, SmpError> {
        (**self).next_notification(timeout)
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
    }
}

/// Reassembly counters, for diagnosing a flaky link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BleStats {
    /// First fragments shorter than the header, or whose header is not a response.
    pub bad_first: u64,
    /// Partial packets abandoned after [`DEFAULT_FRAGMENT_GAP`].
    pub stale_partial: u64,
    /// Bytes beyond the header's length in the last fragment (dropped).
    pub surplus_bytes: u64,
}

/// SMP [`Transport`] over a [`GattLink`].
pub struct BleTransport<G: GattLink> {
    link: G,
    partial: Vec<u8>,
    expected: usize,
    last_fragment: Option<Instant>,
    ready: VecDeque<Vec<u8>>,
    reassembly: bool,
    buf_size: Option<usize>,
    fragment_gap: Duration,
    stats: BleStats,
}

impl<G: GattLink> BleTransport<G> {
    /// Assumes the device reassembles fragmented requests
    /// (`CONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY`, on in NCS's DFU samples).
    pub fn new(link: G) -> Self {
        BleTransport {
            link,
            partial: Vec::new(),
            expected: 0,
            last_fragment: None,
            ready: VecDeque::new(),
            reassembly: true,
            buf_size: None,
            fragment_gap: DEFAULT_FRAGMENT_GAP,
            stats: BleStats::default(),
        }
    }

    /// Without reassembly on the device, a request must fit one write (`MTU − 3`): a
    /// fragmented one gets ECORRUPT (Zephyr `smp.c`, `smp_process_request_packet`: the header
    /// claims more payload than the write holds).
    pub fn set_device_reassembly(&mut self, on: bool) {
        self.reassembly = on;
    }

    /// The device's `buf_size` (params): a reassembled request larger than it is dropped
    /// silently, so it caps [`Transport::max_packet`].
    pub fn set_device_buf_size(&mut self, n: Option<usize>) {
        self.buf_size = n;
    }

    pub fn set_fragment_gap(&mut self, gap: Duration) {
        self.fragment_gap = gap;
    }

    pub fn stats(&self) -> BleStats {
        self.stats
    }

    pub fn link_mut(&mut self) -> &mut G {
        &mut self.link
    }

    /// Payload bytes of one write or notification.
    pub fn fragment_size(&self) -> usize {
        self.link.mtu().max(MIN_ATT_MTU) - ATT_OVERHEAD
    }

    /// Feed one notification into reassembly.
    fn absorb(&mut self, frag: &[u8], now: Instant) {
        if !self.partial.is_empty()
            && self
                .last_fragment
                .is_some_and(|t| now.duration_since(t) > self.fragment_gap)
        {
            self.stats.stale_partial += 1;
            self.partial.clear();
        }
        self.last_fragment = Some(now);
        if self.partial.len() < HEADER_LEN {
            // No header yet. Zephyr never sends a first notification shorter than the header
            // (MTU − 3 ≥ 20), but one halved after -ENOMEM can be, so a short start is kept
            // and completed by the next fragment. If the joined header is not a response
            // header, the short start was noise: drop it and try the fragment on its own.
            let had_start = !self.partial.is_empty();
            self.partial.extend_from_slice(frag);
            if self.partial.len() < HEADER_LEN {
                return;
            }
            let len = match response_header(&self.partial) {
                Some(len) => len,
                None => {
                    self.stats.bad_first += 1;
                    self.partial.clear();
                    match response_header(frag).filter(|_| had_start) {
                        Some(len) => {
                            self.partial.extend_from_slice(frag);
                            len
                        }
                        None => return,
                    }
                }
            };
            self.expected = HEADER_LEN + len;
        } else {
            self.partial.extend_from_slice(frag);
        }
        if self.partial.len() >= self.expected {
            let surplus = self.partial.len() - self.expected;
            self.stats.surplus_bytes += surplus as u64;
            self.partial.truncate(self.expected);
            self.ready.push_back(std::mem::take(&mut self.partial));
        }
    }
}

/// Payload length announced by `b`'s header when it is a valid SMP response header.
fn response_header(b: &[u8]) -> Option<usize> {
    let h = RawHeader::decode(b).ok()?.to_header().ok()?;
    h.op.is_response().then_some(h.len as usize)
}

impl<G: GattLink> Transport for BleTransport<G> {
    fn forget_partial(&mut self) {
        if !self.partial.is_empty() {
            self.stats.stale_partial += 1;
            self.partial.clear();
        }
    }

    fn describe(&self) -> String {
        let s = self.stats;
        format!(
            "BLE GATT, ATT MTU {} (writes and notifications of up to {} B); reassembly: {} bad first fragments, {} stale partial packets, {} surplus bytes",
            self.link.mtu(),
            self.fragment_size(),
            s.bad_first,
            s.stale_partial,
            s.surplus_bytes
        )
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        let n = self.fragment_size();
        for chunk in packet.chunks(n) {
            self.link.write_without_response(chunk)?;
        }
        Ok(())
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(p);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SmpError::Timeout);
            }
            if let Some(frag) = self.link.next_notification(deadline - now)? {
                self.absorb(&frag, Instant::now());
            }
        }
    }

    fn max_packet(&self) -> usize {
        let link = if self.reassembly {
            HEADER_LEN + u16::MAX as usize
        } else {
            self.fragment_size()
        };
        self.buf_size.map_or(link, |b| link.min(b))
    }

    /// Reassembly puts the bare packet in the net_buf.
    fn device_buffer_overhead(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{group, os_cmd, Header, Op, Version};
    use crate::packet::{map, Packet};
    use crate::Value;
    use std::sync::mpsc;

    /// A GATT peer that records writes and plays back queued notifications.
    struct FakeGatt {
        mtu: usize,
        writes: Vec<Vec<u8>>,
        notes: mpsc::Receiver<Vec<u8>>,
    }

    impl GattLink for FakeGatt {
        fn write_without_response(&mut self, data: &[u8]) -> Result<(), SmpError> {
            assert!(data.len() <= self.mtu - 3, "write exceeds MTU − 3");
            self.writes.push(data.to_vec());
            Ok(())
        }
        fn next_notification(&mut self, t: Duration) -> Result<Option<Vec<u8>>, SmpError> {
            match self.notes.recv_timeout(t) {
                Ok(n) => Ok(Some(n)),
                Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
                Err(_) => Err(SmpError::Transport("gone".into())),
            }
        }
        fn mtu(&self) -> usize {
            self.mtu
        }
    }

    fn fake(mtu: usize) -> (BleTransport<FakeGatt>, mpsc::Sender<Vec<u8>>) {
        let (tx, rx) = mpsc::channel();
        let g = FakeGatt {
            mtu,
            writes: Vec::new(),
            notes: rx,
        };
        (BleTransport::new(g), tx)
    }

    fn response(seq: u8, text_len: usize) -> Vec<u8> {
        let h = Header {
            op: Op::WriteRsp,
            version: Version::V2,
            flags: 0,
            len: 0,
            group: group::OS,
            seq,
            id: os_cmd::ECHO,
        };
        Packet::response_to(&h, map([("r", Value::Text("x".repeat(text_len)))])).encode_zephyr()
    }

    #[test]
    fn writes_are_split_at_mtu_minus_3() {
        for mtu in [23usize, 27, 185, 247, 498] {
            let (mut t, _tx) = fake(mtu);
            let pkt: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
            t.send(&pkt).unwrap();
            let w = &t.link_mut().writes;
            assert!(w[..w.len() - 1].iter().all(|c| c.len() == mtu - 3));
            assert_eq!(w.concat(), pkt);
        }
    }

    #[test]
    fn notifications_reassemble_at_various_mtus() {
        for mtu in [23usize, 24, 30, 64, 247, 498] {
            let (mut t, tx) = fake(mtu);
            let a = response(1, 300);
            let b = response(2, 5);
            for p in [&a, &b] {
                for c in p.chunks(mtu - 3) {
                    tx.send(c.to_vec()).unwrap();
                }
            }
            assert_eq!(t.recv(Duration::from_millis(100)).unwrap(), a, "mtu {mtu}");
            assert_eq!(t.recv(Duration::from_millis(100)).unwrap(), b, "mtu {mtu}");
            assert!(matches!(
                t.recv(Duration::from_millis(5)),
                Err(SmpError::Timeout)
            ));
        }
    }

    #[test]
    fn header_split_across_notifications_reassembles() {
        for cut in 1..8 {
            let (mut t, tx) = fake(247);
            let a = response(1, 40);
            tx.send(a[..cut].to_vec()).unwrap();
            tx.send(a[cut..].to_vec()).unwrap();
            assert_eq!(t.recv(Duration::from_millis(100)).unwrap(), a, "cut {cut}");
            assert_eq!(t.stats().bad_first, 0);
        }
    }

    #[test]
    fn short_garbage_before_a_packet_is_dropped() {
        let (mut t, tx) = fake(247);
        tx.send(vec![0x55; 5]).unwrap();
        let b = response(2, 3);
        tx.send(b.clone()).unwrap();
        assert_eq!(t.recv(Duration::from_millis(100)).unwrap(), b);
        assert_eq!(t.stats().bad_first, 1);
    }

    #[test]
    fn garbage_first_fragment_dropped() {
        let (mut t, tx) = fake(64);
        // A request op (0x0a) in a notification is not a response.
        tx.send(vec![0x0a, 0, 0, 1, 0, 0, 0, 0, 0xa0]).unwrap();
        // Nor are undefined op bits.
        tx.send(vec![0xff; 12]).unwrap();
        let good = response(9, 100);
        for c in good.chunks(61) {
            tx.send(c.to_vec()).unwrap();
        }
        assert_eq!(t.recv(Duration::from_millis(100)).unwrap(), good);
        assert_eq!(t.stats().bad_first, 2);
    }

    #[test]
    fn header_split_after_eight_bytes_works() {
        // A notification boundary right after the header, and one inside the body.
        let (mut t, tx) = fake(498);
        let a = response(3, 50);
        tx.send(a[..8].to_vec()).unwrap();
        tx.send(a[8..20].to_vec()).unwrap();
        tx.send(a[20..].to_vec()).unwrap();
        assert_eq!(t.recv(Duration::from_millis(100)).unwrap(), a);
    }

    #[test]
    fn stale_partial_is_abandoned() {
        let (mut t, tx) = fake(64);
        t.set_fragment_gap(Duration::from_millis(20));
        let a = response(1, 100);
        tx.send(a[..61].to_vec()).unwrap();
        assert!(t.recv(Duration::from_millis(40)).is_err());
        std::thread::sleep(Duration::from_millis(30));
        let b = response(2, 4);
        tx.send(b.clone()).unwrap();
        assert_eq!(t.recv(Duration::from_millis(100)).unwrap(), b);
        assert_eq!(t.stats().stale_partial, 1);
    }

    #[test]
    fn max_packet_rules() {
        let (mut t, _tx) = fake(247);
        assert_eq!(t.max_packet(), 8 + 65535);
        t.set_device_buf_size(Some(2475));
        assert_eq!(t.max_packet(), 2475);
        t.set_device_reassembly(false);
        assert_eq!(t.max_packet(), 244);
        assert_eq!(t.device_buffer_overhead(), 0);
    }
}
