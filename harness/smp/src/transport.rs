//! Packet transports. The client only needs "one SMP packet out, packets back"; how packets are
//! framed (serial lines, BLE notifications, UDP datagrams) is the transport's business.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::errors::SmpError;
use crate::limits::LineLimits;
use crate::serial::{encode_client_lines, LineDecoder, SerialEvent};

/// One SMP packet out, packets back. Implemented by serial (over any byte stream), in-memory,
/// UDP, BLE later.
pub trait Transport: Send {
    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError>;
    /// Next complete SMP packet, or Err(SmpError::Timeout) after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError>;
    /// Largest SMP packet (header + CBOR) this link carries in one request, before the
    /// device's own buf_size.
    fn max_packet(&self) -> usize;
    /// Bytes that were not SMP (device log, prompts) seen since the last call.
    fn take_noise(&mut self) -> Vec<u8> {
        Vec::new()
    }
    /// Bytes of the device's receive buffer (`buf_size` from params) this link's framing uses up
    /// besides the SMP packet. Serial decodes the 2-byte length and the 2-byte CRC into the same
    /// net_buf, so it is 4 there (Zephyr `serial_util.c`, `mcumgr_serial_process_frag`); BLE
    /// reassembly (`smp_reassembly.c`) and UDP put the bare packet in the buffer (0). The default
    /// is the cautious serial value.
    fn device_buffer_overhead(&self) -> usize {
        4
    }
    /// One line for the evidence: what this link is and its counters (a flaky BLE link shows
    /// up here before anyone blames the device).
    fn describe(&self) -> String {
        format!("SMP link, max packet {} B", self.max_packet())
    }
    /// The device's serial receive lines this link sizes requests for (`None`: not a serial
    /// link, no such limit).
    fn line_limits(&self) -> Option<LineLimits> {
        None
    }
    /// Size requests for these receive lines from now on; `source` says where the figures come
    /// from (for the evidence). Returns false on links without lines (BLE, UDP).
    fn set_line_limits(&mut self, _limits: LineLimits, _source: &str) -> bool {
        false
    }
    /// Requests of `packet` bytes that may be in flight at once without overrunning the
    /// device's receive buffers on this link (serial: its line buffers); unbounded elsewhere.
    fn max_in_flight(&self, _packet: usize) -> usize {
        usize::MAX
    }
    /// Wait until the device sends anything at all — a packet (discarded: only a late answer
    /// can arrive while nothing was asked) or log text (kept, see [`Transport::take_noise`])
    /// — or `timeout` passes. Used while waiting for a reboot, when a banner matters more
    /// than any packet.
    fn wait_activity(&mut self, timeout: Duration) -> Result<(), SmpError> {
        match self.recv(timeout) {
            Ok(_) | Err(SmpError::Timeout) => Ok(()),
            Err(e) => Err(e),
        }
    }
    /// A counter that changes whenever this link saw the device go away and come back (a
    /// reopened port, a BLE reconnect, a restarted native_sim process); `None` when the link
    /// cannot tell (a plain UART keeps its port across a device reset).
    fn link_generation(&mut self) -> Option<u64> {
        None
    }
    /// Bytes received from the device so far, whatever they were (answers, log text, corrupt
    /// frames); `None` when the link cannot tell. A wait that ends without its answer while
    /// this count moved heard a device that is talking — the answer was lost on the way —
    /// rather than a dead link, and the upload does not count it as one.
    fn bytes_heard(&self) -> Option<u64> {
        None
    }
    /// The client stopped waiting for the answer that may be half received and is about to
    /// send its request again: drop any partly reassembled packet, which can only be the
    /// remains of a lost answer and would otherwise swallow the beginning of the next one
    /// (BLE reassembly). Links that find packet starts by themselves (serial markers) ignore it.
    fn forget_partial(&mut self) {}
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        (**self).send(packet)
    }
    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        (**self).recv(timeout)
    }
    fn max_packet(&self) -> usize {
        (**self).max_packet()
    }
    fn take_noise(&mut self) -> Vec<u8> {
        (**self).take_noise()
    }
    fn device_buffer_overhead(&self) -> usize {
        (**self).device_buffer_overhead()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn line_limits(&self) -> Option<LineLimits> {
        (**self).line_limits()
    }
    fn set_line_limits(&mut self, limits: LineLimits, source: &str) -> bool {
        (**self).set_line_limits(limits, source)
    }
    fn max_in_flight(&self, packet: usize) -> usize {
        (**self).max_in_flight(packet)
    }
    fn link_generation(&mut self) -> Option<u64> {
        (**self).link_generation()
    }
    fn wait_activity(&mut self, timeout: Duration) -> Result<(), SmpError> {
        (**self).wait_activity(timeout)
    }
    fn bytes_heard(&self) -> Option<u64> {
        (**self).bytes_heard()
    }
    fn forget_partial(&mut self) {
        (**self).forget_partial()
    }
}

/// Serial framing over any byte stream (a PTY, a real port, an in-memory pipe).
pub trait ByteStream: Send {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()>;
    /// Read what is available, waiting at most `timeout`; `Ok(0)` means timed out.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize>;
}

impl<S: ByteStream + ?Sized> ByteStream for Box<S> {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        (**self).write_all(b)
    }
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        (**self).read(buf, timeout)
    }
}

/// Largest packet a serial link carries when told its device has unusually many line buffers;
/// the device's line buffers ([`LineLimits`]) and `buf_size - 4` are the real caps.
pub const SERIAL_MAX_PACKET: usize = 8192;

/// SMP over a byte stream with console framing (Zephyr `serial_util.c`). Sends lines of at most 124
/// base64 characters like every client (fewer when the device's receive lines are shorter),
/// and never a request whose frame needs more lines than the device has line buffers
/// ([`LineLimits`], Zephyr's defaults unless told otherwise); receives with the tolerant
/// [`LineDecoder`], so device log interleaved between frames is kept (see
/// [`Transport::take_noise`]) rather than breaking the exchange.
pub struct SerialTransport<S: ByteStream> {
    stream: S,
    decoder: LineDecoder,
    ready: VecDeque<Vec<u8>>,
    noise: Vec<u8>,
    corrupt: Vec<String>,
    max_packet: usize,
    line_delay: Duration,
    limits: LineLimits,
    /// Where `limits` come from, for the evidence ("Zephyr defaults", "scenario", …).
    limits_source: String,
    /// Bytes read from the stream ([`Transport::bytes_heard`]).
    heard: u64,
}

impl<S: ByteStream> SerialTransport<S> {
    pub fn new(stream: S) -> Self {
        SerialTransport {
            stream,
            decoder: LineDecoder::new(),
            ready: VecDeque::new(),
            noise: Vec::new(),
            corrupt: Vec::new(),
            max_packet: SERIAL_MAX_PACKET,
            line_delay: Duration::ZERO,
            limits: LineLimits::default(),
            limits_source: "Zephyr defaults CONFIG_UART_MCUMGR_RX_BUF_COUNT=2, \
                            CONFIG_UART_MCUMGR_RX_BUF_SIZE=128"
                .into(),
            heard: 0,
        }
    }

    /// The device's receive lines requests are sized for.
    pub fn limits(&self) -> LineLimits {
        self.limits
    }

    /// Override the advertised packet limit (e.g. for a device known to have a small buffer
    /// but no params command).
    pub fn set_max_packet(&mut self, n: usize) {
        self.max_packet = n;
    }

    /// Pause between lines of one packet. A stock Zephyr UART has only two line buffers; when
    /// the device is busy (flash erase) a burst of lines can be dropped. Go mcumgr sleeps
    /// 20 ms here; the default is no pause.
    pub fn set_line_delay(&mut self, d: Duration) {
        self.line_delay = d;
    }

    /// Descriptions of frames dropped as corrupt since the last call.
    pub fn take_corrupt(&mut self) -> Vec<String> {
        std::mem::take(&mut self.corrupt)
    }

    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    pub fn into_inner(self) -> S {
        self.stream
    }

    fn absorb(&mut self, events: Vec<SerialEvent>) {
        for e in events {
            match e {
                SerialEvent::Packet(p) => self.ready.push_back(p),
                SerialEvent::Noise(n) => self.noise.extend_from_slice(&n),
                SerialEvent::Corrupt(c) => self.corrupt.push(c),
            }
        }
    }
}

impl<S: ByteStream> Transport for SerialTransport<S> {
    fn describe(&self) -> String {
        let l = self.limits;
        format!(
            "serial (SMP console framing: base64 + CRC16, lines of ≤ {} B), device receive lines \
             {l} ({}) → requests ≤ {} B, {} request(s) of that size in flight",
            l.chars_per_line() + 3,
            self.limits_source,
            self.max_packet(),
            l.window_for(self.max_packet()),
        )
    }

    fn line_limits(&self) -> Option<LineLimits> {
        Some(self.limits)
    }

    fn set_line_limits(&mut self, limits: LineLimits, source: &str) -> bool {
        self.limits = limits;
        self.limits_source = source.to_owned();
        true
    }

    fn max_in_flight(&self, packet: usize) -> usize {
        self.limits.window_for(packet)
    }

    fn wait_activity(&mut self, timeout: Duration) -> Result<(), SmpError> {
        if !self.ready.is_empty() || !self.noise.is_empty() {
            return Ok(());
        }
        let mut buf = [0u8; 1024];
        let n = self.stream.read(&mut buf, timeout)?;
        if n > 0 {
            self.heard += n as u64;
            let ev = self.decoder.push(&buf[..n]);
            self.absorb(ev);
        }
        Ok(())
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        let wire = encode_client_lines(packet, self.limits.chars_per_line());
        if self.line_delay.is_zero() {
            self.stream.write_all(&wire)?;
        } else {
            for (i, line) in wire.split_inclusive(|&b| b == b'\n').enumerate() {
                if i > 0 {
                    std::thread::sleep(self.line_delay);
                }
                self.stream.write_all(line)?;
            }
        }
        Ok(())
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1024];
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(p);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SmpError::Timeout);
            }
            let n = self.stream.read(&mut buf, deadline - now)?;
            if n == 0 {
                continue; // timed out: the loop re-checks the deadline
            }
            self.heard += n as u64;
            let ev = self.decoder.push(&buf[..n]);
            self.absorb(ev);
        }
    }

    fn max_packet(&self) -> usize {
        self.max_packet.min(self.limits.max_packet())
    }

    fn bytes_heard(&self) -> Option<u64> {
        Some(self.heard)
    }

    fn take_noise(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.noise)
    }
}
