//! Throughput ceilings, to compare a measured upload against what the link allows.
//!
//! [`serial_ceiling`] is the model of smp.md §6.3: 8N1 framing, console framing of §4.1,
//! full-buffer continuation chunks, device flash time and host latency ignored. A measured
//! rate far below it points at the device or the host, not the baud rate.

use std::fmt;

/// Base64 characters per console line (127 bytes minus the 2-byte marker and the newline).
pub const LINE_CHARS: usize = 124;
/// Marker + newline bytes per console line.
pub const LINE_OVERHEAD: usize = 3;
/// Header + CBOR overhead of a continuation chunk at off ≥ 64 KiB with ≥ 256 data bytes:
/// header 8, map 1, `"off"` 4 + u32 5, `"data"` 5 + bstr head 3 (smp.md §3.4).
pub const CONTINUATION_OVERHEAD: usize = 26;
/// Zephyr's upload answer `{"off": u32}` as an SMP packet: header 8 + CBOR 11.
pub const UPLOAD_RESPONSE_PACKET: usize = 19;

/// Serial upload ceiling for one baud rate and device buffer, with the arithmetic kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SerialCeiling {
    pub baud: u32,
    pub buf_size: usize,
    /// Line bytes per second (8N1: 10 bits a byte).
    pub bytes_per_sec: f64,
    /// S: request size (header + CBOR) = buf_size − 4.
    pub request: usize,
    /// N: image bytes per request = S − 26.
    pub data: usize,
    /// D = S + 4 (length prefix and CRC).
    pub decoded: usize,
    /// B = 4·⌈D/3⌉.
    pub base64: usize,
    /// L = ⌈B/124⌉.
    pub lines: usize,
    /// W = B + 3L.
    pub wire: usize,
    /// Wire bytes of the device's answer.
    pub response_wire: usize,
    /// N / ((W + response) / Bps).
    pub stop_and_wait: f64,
    /// N / (W / Bps): answers overlap the next request.
    pub pipelined: f64,
    /// 93 data bytes per 127 line bytes: the limit for an infinite buffer.
    pub asymptote: f64,
}

/// Wire bytes of a packet of `packet` bytes in console framing: (base64 chars, lines, total).
pub fn console_wire(packet: usize) -> (usize, usize, usize) {
    let decoded = packet + 4;
    let b64 = 4 * decoded.div_ceil(3);
    let lines = b64.div_ceil(LINE_CHARS);
    (b64, lines, b64 + LINE_OVERHEAD * lines)
}

/// The §6.3 model for `baud` and a device `buf_size` (NETBUF). `None` when the buffer is too
/// small for a continuation chunk.
pub fn serial_ceiling(baud: u32, buf_size: usize) -> Option<SerialCeiling> {
    let request = buf_size.checked_sub(4)?;
    let data = request.checked_sub(CONTINUATION_OVERHEAD)?;
    let bps = baud as f64 / 10.0;
    let (base64, lines, wire) = console_wire(request);
    let response_wire = console_wire(UPLOAD_RESPONSE_PACKET).2;
    let n = data as f64;
    Some(SerialCeiling {
        baud,
        buf_size,
        bytes_per_sec: bps,
        request,
        data,
        decoded: request + 4,
        base64,
        lines,
        wire,
        response_wire,
        stop_and_wait: n / ((wire + response_wire) as f64 / bps),
        pipelined: n / (wire as f64 / bps),
        asymptote: bps * 93.0 / 127.0,
    })
}

fn kib(bps: f64) -> f64 {
    bps / 1024.0
}

impl fmt::Display for SerialCeiling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "serial {} baud 8N1 = {:.0} B/s, buf_size {}",
            self.baud, self.bytes_per_sec, self.buf_size
        )?;
        writeln!(
            f,
            "  request S = {} − 4 = {} B, image data N = S − {} = {} B",
            self.buf_size, self.request, CONTINUATION_OVERHEAD, self.data
        )?;
        writeln!(
            f,
            "  D = S + 4 = {}, B = 4·⌈D/3⌉ = {}, L = ⌈B/{}⌉ = {}, W = B + 3L = {} wire bytes",
            self.decoded, self.base64, LINE_CHARS, self.lines, self.wire
        )?;
        writeln!(
            f,
            "  stop-and-wait: N / ((W + {}) / Bps) = {} / {:.2} ms = {:.2} KiB/s",
            self.response_wire,
            self.data,
            (self.wire + self.response_wire) as f64 / self.bytes_per_sec * 1000.0,
            kib(self.stop_and_wait)
        )?;
        writeln!(
            f,
            "  pipelined:     N / (W / Bps) = {} / {:.2} ms = {:.2} KiB/s",
            self.data,
            self.wire as f64 / self.bytes_per_sec * 1000.0,
            kib(self.pipelined)
        )?;
        write!(
            f,
            "  asymptote:     93/127 · Bps = {:.2} KiB/s",
            kib(self.asymptote)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r2(x: f64) -> f64 {
        (kib(x) * 100.0).round() / 100.0
    }

    /// smp.md §6.3 table: baud, buf, S, N, W, lines, stop-and-wait, pipelined (KiB/s).
    type Row = (u32, usize, usize, usize, usize, usize, f64, f64);
    const TABLE: [Row; 6] = [
        (115_200, 384, 380, 354, 527, 5, 7.09, 7.56),
        (115_200, 1024, 1020, 994, 1404, 12, 7.77, 7.96),
        (115_200, 2048, 2044, 2018, 2801, 23, 8.01, 8.11),
        (115_200, 4096, 4092, 4066, 5599, 45, 8.12, 8.17),
        (1_000_000, 384, 380, 354, 527, 5, 61.5, 65.6),
        (1_000_000, 2048, 2044, 2018, 2801, 23, 69.5, 70.4),
    ];

    #[test]
    fn table_rows() {
        for (baud, buf, s, n, w, lines, saw, pipe) in TABLE {
            let c = serial_ceiling(baud, buf).unwrap();
            assert_eq!((c.request, c.data, c.wire, c.lines), (s, n, w, lines));
            assert_eq!(c.response_wire, 35);
            // The table rounds to 3 significant digits.
            let close = |a: f64, b: f64| (a - b).abs() <= 0.051;
            assert!(close(r2(c.stop_and_wait), saw), "{c}");
            assert!(close(r2(c.pipelined), pipe), "{c}");
        }
    }

    #[test]
    fn asymptote_and_display() {
        let c = serial_ceiling(115_200, 384).unwrap();
        assert_eq!(r2(c.asymptote), 8.24);
        assert_eq!(r2(c.stop_and_wait), 7.09);
        assert_eq!(r2(c.pipelined), 7.56);
        let text = c.to_string();
        assert!(text.contains("354 / 48.78 ms = 7.09 KiB/s"), "{text}");
        assert!(text.contains("W = B + 3L = 527"), "{text}");
        assert!((kib(serial_ceiling(1_000_000, 384).unwrap().asymptote) - 71.5).abs() < 0.05);
        assert!(serial_ceiling(115_200, 20).is_none());
    }
}
