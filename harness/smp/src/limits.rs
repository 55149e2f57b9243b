//! What a device's SMP serial receiver can take, and what that means for request sizes.
//!
//! Zephyr's UART transport (`drivers/console/uart_mcumgr.c`, `uart_mcumgr_rx_byte`) collects
//! each received line into one buffer taken from a `k_mem_slab` of
//! `CONFIG_UART_MCUMGR_RX_BUF_COUNT` buffers (default 2) of `CONFIG_UART_MCUMGR_RX_BUF_SIZE`
//! bytes (default 128, the `\n` included). A line that does not fit its buffer, or that finds
//! no free buffer, is dropped whole and silently (`uart_mcumgr_ignoring`). The shell transport
//! has the same shape (`CONFIG_MCUMGR_TRANSPORT_SHELL_RX_BUF_COUNT`, default 2). Observed
//! against Zephyr 3.4's unmodified `smp_svr` on native_sim: a request whose frame needs more
//! lines than the device has buffers is never answered, and pipelined requests overrun the same
//! buffers. `buf_size`/`buf_count` from `os params` describe the SMP net_buf pool, not these
//! line buffers, so they cannot tell a client what the serial line takes.
//!
//! So a client must size every request so that its whole frame fits `line_count` lines, and
//! keep no more requests in flight than the line buffers can hold together.

use std::fmt;

use crate::serial::MAX_LINE;

/// Zephyr's default `CONFIG_UART_MCUMGR_RX_BUF_SIZE` (bytes per received line, `\n` included).
pub const DEFAULT_LINE_SIZE: usize = 128;
/// Zephyr's default `CONFIG_UART_MCUMGR_RX_BUF_COUNT` (and
/// `CONFIG_MCUMGR_TRANSPORT_SHELL_RX_BUF_COUNT`).
pub const DEFAULT_LINE_COUNT: usize = 2;
/// Smallest line that still carries one base64 group: marker (2) + 4 characters + `\n`.
pub const MIN_LINE_SIZE: usize = 7;
/// More line buffers than any sensible build has; keeps the arithmetic bounded.
pub const MAX_LINE_COUNT: usize = 1024;

/// The device's serial receive lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLimits {
    /// Bytes per received line including the 2-byte marker and the `\n`
    /// (`CONFIG_UART_MCUMGR_RX_BUF_SIZE`).
    pub line_size: usize,
    /// Line buffers (`CONFIG_UART_MCUMGR_RX_BUF_COUNT`).
    pub line_count: usize,
}

impl Default for LineLimits {
    fn default() -> Self {
        LineLimits {
            line_size: DEFAULT_LINE_SIZE,
            line_count: DEFAULT_LINE_COUNT,
        }
    }
}

impl fmt::Display for LineLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lines × {} B", self.line_count, self.line_size)
    }
}

impl LineLimits {
    /// Checked constructor: a line must hold at least one base64 group, and there must be at
    /// least one line buffer.
    pub fn new(line_size: usize, line_count: usize) -> Result<Self, String> {
        if line_size < MIN_LINE_SIZE {
            return Err(format!(
                "serial line size {line_size} B is too small: a line needs its 2-byte marker, \
                 4 base64 characters and the newline ({MIN_LINE_SIZE} B)"
            ));
        }
        if line_count == 0 || line_count > MAX_LINE_COUNT {
            return Err(format!(
                "serial line count {line_count} out of range 1..={MAX_LINE_COUNT}"
            ));
        }
        Ok(LineLimits {
            line_size,
            line_count,
        })
    }

    /// Base64 characters the client puts on one line: whole 4-character groups (each line is
    /// decoded on its own), at most the 124 that every client uses (`MCUMGR_SERIAL_MAX_FRAME`
    /// is 127 bytes with marker and newline), and few enough that marker + text + `\n` fit
    /// the device's buffer.
    pub fn chars_per_line(&self) -> usize {
        let fit = self.line_size.saturating_sub(3) / 4 * 4;
        fit.clamp(4, (MAX_LINE - 3) / 4 * 4)
    }

    /// Frame bytes (length prefix + packet + CRC) one line carries.
    pub fn frame_bytes_per_line(&self) -> usize {
        self.chars_per_line() / 4 * 3
    }

    /// Lines the client's encoding of a `packet`-byte SMP packet takes.
    pub fn lines_for(&self, packet: usize) -> usize {
        let chars = 4 * (packet + 4).div_ceil(3);
        chars.div_ceil(self.chars_per_line()).max(1)
    }

    /// Wire bytes of that encoding (markers, base64, newlines).
    pub fn wire_for(&self, packet: usize) -> usize {
        let chars = 4 * (packet + 4).div_ceil(3);
        chars + 3 * self.lines_for(packet)
    }

    /// Largest SMP packet (header + CBOR) whose frame fits `lines` lines.
    pub fn packet_for_lines(&self, lines: usize) -> usize {
        (lines * self.frame_bytes_per_line()).saturating_sub(4)
    }

    /// Largest SMP packet that fits all the device's line buffers at once.
    pub fn max_packet(&self) -> usize {
        self.packet_for_lines(self.line_count)
    }

    /// Requests of `packet` bytes that may be in flight together without needing more lines
    /// than the device has (at least 1).
    pub fn window_for(&self, packet: usize) -> usize {
        (self.line_count / self.lines_for(packet)).max(1)
    }
}

/// What the client is told about the device's receive lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineSetting {
    /// These limits (Zephyr's defaults unless configured).
    Known(LineLimits),
    /// Find the line count with echo probes, starting from these limits
    /// (`Client::discover_line_count`).
    Discover(LineLimits),
}

impl Default for LineSetting {
    fn default() -> Self {
        LineSetting::Known(LineLimits::default())
    }
}

impl LineSetting {
    /// The limits requests are sized for before any discovery.
    pub fn limits(&self) -> LineLimits {
        match *self {
            LineSetting::Known(l) | LineSetting::Discover(l) => l,
        }
    }
}

impl fmt::Display for LineSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineSetting::Known(l) => write!(f, "{}x{}", l.line_count, l.line_size),
            LineSetting::Discover(l) if *l == LineLimits::default() => write!(f, "auto"),
            LineSetting::Discover(l) => write!(f, "auto:{}x{}", l.line_count, l.line_size),
        }
    }
}

impl std::str::FromStr for LineSetting {
    type Err = String;

    /// `COUNTxSIZE` (`2x128`: `CONFIG_UART_MCUMGR_RX_BUF_COUNT` × `_SIZE`), `COUNT` (size
    /// 128), `auto` (discover the count from Zephyr's defaults) or `auto:COUNTxSIZE`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let parse = |t: &str| -> Result<LineLimits, String> {
            let (count, size) = match t.split_once(['x', 'X', '*']) {
                Some((c, z)) => (c.trim(), z.trim()),
                None => (t, "128"),
            };
            let count: usize = count.parse().map_err(|_| {
                format!("serial lines `{s}`: `{count}` is not a line count (expected e.g. 2x128 or auto)")
            })?;
            let size: usize = size.parse().map_err(|_| {
                format!("serial lines `{s}`: `{size}` is not a line size in bytes (expected e.g. 2x128)")
            })?;
            LineLimits::new(size, count).map_err(|e| format!("serial lines `{s}`: {e}"))
        };
        if s.eq_ignore_ascii_case("auto") {
            return Ok(LineSetting::Discover(LineLimits::default()));
        }
        if let Some(rest) = s.strip_prefix("auto:") {
            return parse(rest).map(LineSetting::Discover);
        }
        parse(s).map(LineSetting::Known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serial::encode_client_lines;

    #[test]
    fn zephyr_defaults_take_182_byte_packets() {
        let l = LineLimits::default();
        assert_eq!(l.chars_per_line(), 124);
        assert_eq!(l.max_packet(), 182);
        assert_eq!(l.lines_for(182), 2);
        assert_eq!(l.lines_for(183), 3);
        assert_eq!(l.window_for(182), 1);
        assert_eq!(l.window_for(89), 2);
        // The 372-byte requests of the old client needed 5 lines: never answered.
        assert_eq!(l.lines_for(372), 5);
    }

    #[test]
    fn line_counts_match_the_encoder() {
        for size in [7usize, 16, 64, 100, 128, 256] {
            let l = LineLimits::new(size, 4).unwrap();
            for packet in [1usize, 8, 20, 89, 90, 91, 182, 183, 400, 1000] {
                let wire = encode_client_lines(&vec![0x5a; packet], l.chars_per_line());
                let lines = wire.iter().filter(|&&b| b == b'\n').count();
                assert_eq!(lines, l.lines_for(packet), "size {size} packet {packet}");
                assert_eq!(
                    wire.len(),
                    l.wire_for(packet),
                    "size {size} packet {packet}"
                );
                let longest = wire.split(|&b| b == b'\n').map(|s| s.len() + 1).max();
                assert!(longest.unwrap() <= size, "size {size} packet {packet}");
            }
        }
    }

    #[test]
    fn settings_parse() {
        let d = LineLimits::default();
        assert_eq!("2x128".parse::<LineSetting>(), Ok(LineSetting::Known(d)));
        assert_eq!("auto".parse::<LineSetting>(), Ok(LineSetting::Discover(d)));
        assert_eq!(
            "8".parse::<LineSetting>(),
            Ok(LineSetting::Known(LineLimits::new(128, 8).unwrap()))
        );
        assert_eq!(
            "auto:4x64".parse::<LineSetting>().unwrap().to_string(),
            "auto:4x64"
        );
        let e = "2xfoo".parse::<LineSetting>().unwrap_err();
        assert!(e.contains("`foo`"), "{e}");
        assert!("0x128".parse::<LineSetting>().is_err());
        assert!("2x3".parse::<LineSetting>().is_err());
    }

    #[test]
    fn bad_limits_are_refused() {
        assert!(LineLimits::new(6, 2).is_err());
        assert!(LineLimits::new(128, 0).is_err());
        assert!(LineLimits::new(128, MAX_LINE_COUNT + 1).is_err());
        assert!(LineLimits::new(7, 1).is_ok());
    }
}
