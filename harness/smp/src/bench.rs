//! Upload throughput over a serial line, as arithmetic: what a device's receive lines let a
//! client send per request, what that costs on the wire, and what rate follows once the device
//! time per request (its flash work, from `dfu_hil_sim::device::flash_timing`) is added.
//! `dfu-hil bench upload` prints every step.
//!
//! The link model:
//! * 8N1: 10 line bits per byte, so `baud / 10` bytes per second each way.
//! * A request is as large as both device limits allow: the SMP buffer (`buf_size − 4`: the
//!   length prefix and CRC share it) and the receive lines (`LineLimits::max_packet`: the whole
//!   frame must fit `line_count` lines of `line_size` bytes). Data bytes per request are what is
//!   left after the continuation request's header and CBOR (`{off, data}`, with an offset past
//!   64 KiB: most of any real image).
//! * Each request is framed as the client sends it: `LineLimits::chars_per_line` base64
//!   characters a line, marker and newline around each (`LineLimits::wire_for`). The device's
//!   answer `{off}` is one 35-byte line.
//! * At most `LineLimits::window_for(request)` requests are in flight (1 with Zephyr's default
//!   2 × 128-byte lines: the next request goes out when the answer is in).
//!
//! Not modelled: the device's CPU time to decode a request (base64, CRC, CBOR), host and
//! USB-serial latency, retries.

use crate::header::HEADER_LEN;
use crate::limits::LineLimits;
use crate::packet::head_len;
use std::fmt;
use std::time::Duration;

/// Bytes of the device's SMP buffer (`buf_size`) a serial request cannot use for its packet:
/// the frame's 2-byte length prefix and 2-byte CRC are reassembled into the same buffer.
pub const SERIAL_BUF_OVERHEAD: usize = 4;
/// Zephyr's default `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE` (what `os params` reports as
/// `buf_size`).
pub const DEFAULT_BUF_SIZE: usize = 384;
/// Zephyr's upload answer `{"off": u32}` as an SMP packet: header 8 + CBOR 11 (an
/// indefinite-length map: start 1 + `"off"` 4 + u32 5 + break 1).
pub const UPLOAD_RESPONSE_PACKET: usize = 19;
/// The offset the model assumes for a continuation request: past 64 KiB, where the offset
/// takes a 5-byte CBOR head (the largest a real image needs, so the smallest data share).
pub const MODEL_OFFSET: u64 = 0x1_0000;

/// Base64 characters per line in the device's own output (`MCUMGR_SERIAL_MAX_FRAME` 127 minus
/// marker and newline, rounded down to whole groups).
const DEVICE_LINE_CHARS: usize = 124;

/// Header + CBOR bytes of a continuation upload request `{"off": off, "data": <data bytes>}`
/// besides the data itself: header 8, map head 1, `"off"` 4, the offset's head, `"data"` 5, the
/// byte string's head.
pub fn continuation_overhead(off: u64, data: usize) -> usize {
    HEADER_LEN + 1 + 4 + head_len(off) + 5 + head_len(data as u64)
}

/// Most data bytes a continuation request at `off` carries in `request` bytes (header + CBOR).
pub fn continuation_data(request: usize, off: u64) -> usize {
    let room = request.saturating_sub(continuation_overhead(off, 0) - 1);
    let mut n = room.saturating_sub(head_len(room as u64));
    while n + 1 + head_len(n as u64 + 1) <= room {
        n += 1;
    }
    n
}

/// Wire bytes of a packet of `packet` bytes as the device sends it: base64 of length + packet +
/// CRC in lines of up to 124 characters, each with its 2-byte marker and newline.
pub fn device_wire(packet: usize) -> usize {
    let chars = 4 * (packet + 4).div_ceil(3);
    chars + 3 * chars.div_ceil(DEVICE_LINE_CHARS)
}

fn kib(bytes_per_sec: f64) -> f64 {
    bytes_per_sec / 1024.0
}

fn ms(secs: f64) -> f64 {
    secs * 1e3
}

/// The serial upload ceiling for one baud rate, device receive lines and device `buf_size`,
/// with the arithmetic kept so it can be printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SerialCeiling {
    pub baud: u32,
    /// Line bytes per second (8N1: 10 bits a byte).
    pub bytes_per_sec: f64,
    pub limits: LineLimits,
    pub buf_size: usize,
    /// `buf_size − 4`.
    pub buf_limit: usize,
    /// `LineLimits::max_packet()`: the largest request whose frame fits the line buffers.
    pub line_limit: usize,
    /// S = min(buf_limit, line_limit): request size (header + CBOR).
    pub request: usize,
    /// N: image bytes per continuation request at [`MODEL_OFFSET`].
    pub data: usize,
    /// D = S + 4 (length prefix and CRC).
    pub decoded: usize,
    /// B = 4·⌈D/3⌉ base64 characters.
    pub base64: usize,
    /// Base64 characters per line the client uses.
    pub chars_per_line: usize,
    /// L: lines per request.
    pub lines: usize,
    /// W: wire bytes per request (base64 + 3 per line).
    pub wire: usize,
    /// Wire bytes of the device's answer.
    pub response_wire: usize,
    /// Requests in flight: ⌊line_count / L⌋ (at least 1).
    pub window: usize,
    /// Link only, one request at a time: N / ((W + answer) / Bps).
    pub stop_and_wait: f64,
    /// Link only, `window` requests in flight (see [`SerialCeiling::windowed_with`]).
    pub windowed: f64,
}

/// The link model for `baud`, the device's receive lines and its `buf_size`. `None` when a
/// request would carry no image data (or the baud rate is 0).
pub fn serial_ceiling(baud: u32, limits: LineLimits, buf_size: usize) -> Option<SerialCeiling> {
    if baud == 0 {
        return None;
    }
    let buf_limit = buf_size.checked_sub(SERIAL_BUF_OVERHEAD)?;
    let line_limit = limits.max_packet();
    let request = buf_limit.min(line_limit);
    let data = continuation_data(request, MODEL_OFFSET);
    if data == 0 {
        return None;
    }
    let decoded = request + 4;
    let base64 = 4 * decoded.div_ceil(3);
    let mut c = SerialCeiling {
        baud,
        bytes_per_sec: baud as f64 / 10.0,
        limits,
        buf_size,
        buf_limit,
        line_limit,
        request,
        data,
        decoded,
        base64,
        chars_per_line: limits.chars_per_line(),
        lines: limits.lines_for(request),
        wire: limits.wire_for(request),
        response_wire: device_wire(UPLOAD_RESPONSE_PACKET),
        window: limits.window_for(request),
        stop_and_wait: 0.0,
        windowed: 0.0,
    };
    c.stop_and_wait = c.stop_and_wait_with(0.0);
    c.windowed = c.windowed_with(0.0);
    Some(c)
}

impl SerialCeiling {
    /// Does the line-buffer limit (rather than `buf_size`) set the request size?
    pub fn line_bound(&self) -> bool {
        self.line_limit < self.buf_limit
    }

    /// Seconds to send one request.
    pub fn request_secs(&self) -> f64 {
        self.wire as f64 / self.bytes_per_sec
    }

    /// Seconds to receive one answer.
    pub fn response_secs(&self) -> f64 {
        self.response_wire as f64 / self.bytes_per_sec
    }

    /// Seconds per request when the device spends `device_secs` on each before answering and
    /// requests go one at a time.
    pub fn stop_and_wait_secs(&self, device_secs: f64) -> f64 {
        self.request_secs() + device_secs + self.response_secs()
    }

    /// Image bytes per second, one request at a time, `device_secs` of device time each.
    pub fn stop_and_wait_with(&self, device_secs: f64) -> f64 {
        self.data as f64 / self.stop_and_wait_secs(device_secs)
    }

    /// Seconds per request with `window` requests in flight: the longest of the uplink time
    /// of one request, the device time of one request, and one round trip shared by the
    /// window. It assumes the device keeps receiving while it works on the previous request;
    /// with a window of 1 it is the stop-and-wait time.
    pub fn windowed_secs(&self, device_secs: f64) -> f64 {
        let round_trip = self.stop_and_wait_secs(device_secs) / self.window as f64;
        self.request_secs().max(device_secs).max(round_trip)
    }

    /// Image bytes per second with `window` requests in flight.
    pub fn windowed_with(&self, device_secs: f64) -> f64 {
        self.data as f64 / self.windowed_secs(device_secs)
    }

    /// Requests an upload of `image_len` bytes takes (the first carries less data; the model
    /// counts it like the others).
    pub fn requests_for(&self, image_len: usize) -> usize {
        image_len.div_ceil(self.data)
    }
}

impl fmt::Display for SerialCeiling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.limits;
        writeln!(
            f,
            "serial {} baud 8N1 = {:.0} B/s; device receive lines {} ({} base64 chars a line), \
             buf_size {}",
            self.baud, self.bytes_per_sec, l, self.chars_per_line, self.buf_size
        )?;
        writeln!(
            f,
            "  request S = min(buf_size − 4 = {}, {} lines × {} frame bytes − 4 = {}) = {} B \
             (set by the {})",
            self.buf_limit,
            l.line_count,
            l.frame_bytes_per_line(),
            self.line_limit,
            self.request,
            if self.line_bound() {
                "line buffers"
            } else {
                "SMP buffer"
            }
        )?;
        writeln!(
            f,
            "  image data N = S − {} = {} B per continuation request (header 8 + CBOR \
             {{off ≥ 64 KiB, data}})",
            self.request - self.data,
            self.data
        )?;
        writeln!(
            f,
            "  D = S + 4 = {}, B = 4·⌈D/3⌉ = {}, L = ⌈B/{}⌉ = {} lines, W = B + 3L = {} wire \
             bytes; answer {} wire bytes",
            self.decoded,
            self.base64,
            self.chars_per_line,
            self.lines,
            self.wire,
            self.response_wire
        )?;
        writeln!(
            f,
            "  window = ⌊{} line buffers / {} lines⌋ = {} request{} in flight",
            l.line_count,
            self.lines,
            self.window,
            if self.window == 1 { "" } else { "s" }
        )?;
        writeln!(
            f,
            "  link only, stop-and-wait: N / ((W + {}) / Bps) = {} / {:.2} ms = {:.2} KiB/s",
            self.response_wire,
            self.data,
            ms(self.stop_and_wait_secs(0.0)),
            kib(self.stop_and_wait)
        )?;
        write!(
            f,
            "  link only, window {}:      N / max(W/Bps, (W + {})/Bps / {}) = {} / {:.2} ms = \
             {:.2} KiB/s",
            self.window,
            self.response_wire,
            self.window,
            self.data,
            ms(self.windowed_secs(0.0)),
            kib(self.windowed)
        )
    }
}

/// `NewXportCfg` default `Mtu` of the Go client's serial transport (newtmgr `nmxact/nmserial`).
pub const GO_MCUMGR_MTU: usize = 512;
/// `omp.OMP_MSG_OVERHEAD`, which the Go serial session subtracts from its MTU even for SMP.
pub const GO_OMP_OVERHEAD: usize = 13;
/// The Go client's sleep before each continuation line (`SerialXport.Tx`).
pub const GO_LINE_GAP: Duration = Duration::from_millis(20);

/// The Go `mcumgr`/`newtmgr` client's serial upload, as its source sizes and paces it:
/// requests of `MtuOut = mtu·3/4 − 13` bytes (`SerialSesn.MtuOut`, `findChunkLen` in
/// `nmxact/xact/image.go`), 124 base64 characters a line, and a 20 ms sleep before every line
/// but the first (`SerialXport.Tx`: "slower platforms take some time to process each
/// segment"). Its data share assumes the request `{image: 0, off ≥ 64 KiB, data}` (the Go
/// request struct always carries `image`); that encoding was read from the source, not
/// observed on a wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoMcumgrSerial {
    pub baud: u32,
    pub bytes_per_sec: f64,
    pub mtu: usize,
    /// mtu·3/4 − 13.
    pub request: usize,
    /// Image bytes per continuation request.
    pub data: usize,
    pub lines: usize,
    pub wire: usize,
    pub response_wire: usize,
    /// Sleeps per request: one before each continuation line.
    pub gaps: usize,
}

/// The Go client's serial upload for `baud` and its `mtu` setting (default
/// [`GO_MCUMGR_MTU`]). `None` when a request could carry no data.
pub fn go_mcumgr_serial(baud: u32, mtu: usize) -> Option<GoMcumgrSerial> {
    if baud == 0 {
        return None;
    }
    let request = (mtu * 3 / 4).checked_sub(GO_OMP_OVERHEAD)?;
    // `{"image": 0}` adds 7 bytes to our continuation request's overhead.
    let data = continuation_data(request.checked_sub(7)?, MODEL_OFFSET);
    if data == 0 {
        return None;
    }
    let chars = 4 * (request + 4).div_ceil(3);
    let lines = chars.div_ceil(DEVICE_LINE_CHARS);
    Some(GoMcumgrSerial {
        baud,
        bytes_per_sec: baud as f64 / 10.0,
        mtu,
        request,
        data,
        lines,
        wire: chars + 3 * lines,
        response_wire: device_wire(UPLOAD_RESPONSE_PACKET),
        gaps: lines - 1,
    })
}

impl GoMcumgrSerial {
    /// Seconds per request (it waits for each answer), `device_secs` of device time each.
    pub fn secs_per_request(&self, device_secs: f64) -> f64 {
        (self.wire + self.response_wire) as f64 / self.bytes_per_sec
            + self.gaps as f64 * GO_LINE_GAP.as_secs_f64()
            + device_secs
    }

    /// Image bytes per second.
    pub fn rate(&self, device_secs: f64) -> f64 {
        self.data as f64 / self.secs_per_request(device_secs)
    }
}

impl fmt::Display for GoMcumgrSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests of mtu·3/4 − {} = {} B (mtu {}), ≈{} data bytes, {} lines of ≤ {} chars \
             = {} wire bytes, {} × {} ms sleep before the continuation lines",
            GO_OMP_OVERHEAD,
            self.request,
            self.mtu,
            self.data,
            self.lines,
            DEVICE_LINE_CHARS,
            self.wire,
            self.gaps,
            GO_LINE_GAP.as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{encode_cbor, map, uint};
    use crate::serial::{encode_client_lines, encode_zephyr};
    use crate::Value;

    fn r2(bytes_per_sec: f64) -> f64 {
        (kib(bytes_per_sec) * 100.0).round() / 100.0
    }

    fn defaults(baud: u32) -> SerialCeiling {
        serial_ceiling(baud, LineLimits::default(), DEFAULT_BUF_SIZE).unwrap()
    }

    #[test]
    fn zephyr_defaults_182_byte_requests_in_two_lines() {
        let c = defaults(115_200);
        assert_eq!((c.buf_limit, c.line_limit, c.request), (380, 182, 182));
        assert!(c.line_bound());
        assert_eq!(c.chars_per_line, 124);
        assert_eq!((c.decoded, c.base64, c.lines, c.wire), (186, 248, 2, 254));
        assert_eq!(c.data, 157);
        assert_eq!(c.response_wire, 35);
        assert_eq!(c.window, 1);
        // 157 B / (289 B / 11520 B/s) = 6258 B/s.
        assert_eq!(r2(c.stop_and_wait), 6.11);
        assert_eq!(c.windowed, c.stop_and_wait);
        let text = c.to_string();
        assert!(text.contains("= 182 B (set by the line buffers)"), "{text}");
        assert!(text.contains("W = B + 3L = 254"), "{text}");
        assert!(text.contains("157 / 25.09 ms = 6.11 KiB/s"), "{text}");
    }

    #[test]
    fn wire_bytes_match_the_encoders() {
        for (size, count, buf) in [(128, 2, 384), (64, 4, 384), (128, 8, 384), (128, 16, 2048)] {
            let l = LineLimits::new(size, count).unwrap();
            let c = serial_ceiling(115_200, l, buf).unwrap();
            let wire = encode_client_lines(&vec![0xa5; c.request], l.chars_per_line());
            assert_eq!(wire.len(), c.wire, "{l} buf {buf}");
            assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), c.lines);
            assert!(wire.split(|&b| b == b'\n').all(|line| line.len() < size));
        }
        let answer = encode_zephyr(&[0u8; UPLOAD_RESPONSE_PACKET]);
        assert_eq!(answer.len(), device_wire(UPLOAD_RESPONSE_PACKET));
    }

    #[test]
    fn data_share_matches_the_cbor_encoding() {
        for request in [40usize, 60, 182, 300, 380, 1020, 2044] {
            for off in [0u64, 23, 24, 255, 256, 65_535, 65_536, 1 << 20] {
                let n = continuation_data(request, off);
                let body =
                    |n: usize| map([("off", uint(off)), ("data", Value::Bytes(vec![0x5a; n]))]);
                assert_eq!(
                    HEADER_LEN + encode_cbor(&body(n)).len(),
                    n + continuation_overhead(off, n)
                );
                assert!(
                    n + continuation_overhead(off, n) <= request,
                    "{request} {off}"
                );
                assert!(
                    n + 1 + continuation_overhead(off, n + 1) > request,
                    "{request} {off}: one more byte fits"
                );
            }
        }
    }

    #[test]
    fn windows_need_spare_line_buffers() {
        // More lines than one request needs, but the request grows to use them: still 1.
        let c =
            serial_ceiling(115_200, LineLimits::new(128, 4).unwrap(), DEFAULT_BUF_SIZE).unwrap();
        assert_eq!((c.request, c.lines, c.window), (368, 4, 1));
        // buf_size binds: 380-byte requests take 5 lines, 10 buffers hold two of them.
        let c =
            serial_ceiling(115_200, LineLimits::new(128, 10).unwrap(), DEFAULT_BUF_SIZE).unwrap();
        assert_eq!((c.request, c.lines, c.window), (380, 5, 2));
        assert!(!c.line_bound());
        assert!(c.windowed > c.stop_and_wait);
        // Uplink-bound: the answer hides behind the next request.
        assert!((c.windowed - c.data as f64 / c.request_secs()).abs() < 1e-6);
        // Device time longer than a request's uplink time: the device sets the pace.
        assert!((c.windowed_with(0.5) - c.data as f64 / 0.5).abs() < 1e-6);
    }

    #[test]
    fn device_time_adds_to_each_request() {
        let c = defaults(115_200);
        let flash = 157.0 / 4.0 * 41e-6;
        assert_eq!(r2(c.stop_and_wait_with(flash)), 5.74);
        assert!(c.stop_and_wait_with(flash) < c.stop_and_wait);
        assert_eq!(c.requests_for(157 * 10 + 1), 11);
    }

    #[test]
    fn too_small_or_no_baud() {
        assert!(serial_ceiling(115_200, LineLimits::default(), 20).is_none());
        assert!(serial_ceiling(0, LineLimits::default(), 384).is_none());
        assert!(serial_ceiling(115_200, LineLimits::new(7, 1).unwrap(), 384).is_none());
    }

    #[test]
    fn go_mcumgr_sizing() {
        let g = go_mcumgr_serial(115_200, GO_MCUMGR_MTU).unwrap();
        assert_eq!((g.request, g.lines, g.wire, g.gaps), (371, 5, 515, 4));
        assert_eq!(g.data, 338);
        // 515 + 35 wire bytes at 11520 B/s + 80 ms of sleeps = 127.74 ms per 338 bytes.
        assert_eq!(r2(g.rate(0.0)), 2.58);
        assert!(go_mcumgr_serial(115_200, 40).is_none());
    }
}
