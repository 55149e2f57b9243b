//! Finding out how many serial receive lines a device has, when nobody said.
//!
//! Nothing in SMP reports `CONFIG_UART_MCUMGR_RX_BUF_COUNT`: `os params` describes the net_buf
//! pool, not the UART's line buffers, and a request that needs more lines than the device has
//! is dropped without an answer. So the only way to learn it is to ask: start from what fits
//! Zephyr's defaults, send echo requests one line longer each time while they are answered,
//! and step back to the last answered size at the first silence. The line *size* cannot be
//! found this way (clients never send lines over 127 bytes, which fit the default 128), so it
//! stays as configured.

use std::time::Duration;

use ciborium::value::Value;

use super::Client;
use crate::errors::SmpError;
use crate::header::{group, os_cmd, Op, HEADER_LEN};
use crate::limits::LineLimits;
use crate::packet::{cbor_len, map};
use crate::transport::Transport;

/// Most lines discovery tries: requests beyond this buy nothing over a serial line.
pub const MAX_DISCOVERED_LINES: usize = 16;

/// What discovery found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineDiscovery {
    /// The limits settled on (and set on the link).
    pub limits: LineLimits,
    /// Most lines a request took that was answered.
    pub answered: usize,
    /// Lines of the first request that was not answered (`None`: never silent, the search
    /// stopped at the device's `buf_size` or [`MAX_DISCOVERED_LINES`]).
    pub silent_at: Option<usize>,
}

impl std::fmt::Display for LineDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "discovered: echo answered with {} line(s)",
            self.answered
        )?;
        match self.silent_at {
            Some(n) => write!(f, ", silent with {n}"),
            None => write!(f, ", larger requests exceed the device's buffer"),
        }
    }
}

/// An echo body whose request packet needs exactly `lines` lines at `limits` (the largest
/// such request), or `None` when no echo request has that many lines.
fn echo_for_lines(limits: &LineLimits, lines: usize) -> Option<Value> {
    let target = limits.packet_for_lines(lines);
    let body = |n: usize| map([("d", Value::Text("L".repeat(n)))]);
    let fixed = HEADER_LEN + cbor_len(&body(0));
    let mut n = target.checked_sub(fixed)?;
    while n > 0 && HEADER_LEN + cbor_len(&body(n)) > target {
        n -= 1;
    }
    let b = body(n);
    (limits.lines_for(HEADER_LEN + cbor_len(&b)) == lines).then_some(b)
}

impl<T: Transport> Client<T> {
    /// Find the device's serial line-buffer count (see the module docs), set it on the link
    /// and return what was found. `max_packet` bounds the probes (the device's `buf_size − 4`:
    /// a larger request would be refused for another reason). `None` on links without lines.
    pub fn discover_line_count(
        &mut self,
        max_packet: usize,
        probe_timeout: Duration,
    ) -> Result<Option<LineDiscovery>, SmpError> {
        let Some(start) = self.transport.line_limits() else {
            return Ok(None);
        };
        let mut answered = 0usize;
        let mut silent_at = None;
        // Confirm the assumed count first (stepping down on silence), then grow.
        let mut lines = start.line_count.clamp(1, MAX_DISCOVERED_LINES);
        loop {
            match self.line_probe(start, lines, max_packet, probe_timeout)? {
                Some(true) => {
                    answered = lines;
                    break;
                }
                Some(false) => silent_at = Some(lines),
                None => {}
            }
            if lines == 1 {
                break;
            }
            lines -= 1;
        }
        if answered == start.line_count {
            for lines in start.line_count + 1..=MAX_DISCOVERED_LINES {
                match self.line_probe(start, lines, max_packet, probe_timeout)? {
                    Some(true) => answered = lines,
                    Some(false) => {
                        silent_at = Some(lines);
                        break;
                    }
                    None => break,
                }
            }
        }
        let limits = LineLimits {
            line_count: answered.max(1),
            ..start
        };
        let found = LineDiscovery {
            limits,
            answered,
            silent_at,
        };
        self.transport.set_line_limits(limits, &found.to_string());
        Ok(Some(found))
    }
}

impl<T: Transport> Client<T> {
    /// One discovery probe: an echo needing exactly `lines` lines. `Some(true)` answered,
    /// `Some(false)` silent, `None` when no such probe fits `max_packet`.
    fn line_probe(
        &mut self,
        start: LineLimits,
        lines: usize,
        max_packet: usize,
        probe_timeout: Duration,
    ) -> Result<Option<bool>, SmpError> {
        let trial = LineLimits {
            line_count: lines,
            ..start
        };
        let Some(body) = echo_for_lines(&trial, lines) else {
            return Ok(None);
        };
        if HEADER_LEN + cbor_len(&body) > max_packet {
            return Ok(None);
        }
        self.transport
            .set_line_limits(trial, "discovery in progress");
        match self.request_with_timeout(Op::Write, group::OS, os_cmd::ECHO, body, probe_timeout) {
            Ok(_) | Err(SmpError::Device(_)) => Ok(Some(true)),
            Err(SmpError::Timeout) => Ok(Some(false)),
            Err(e) => {
                self.transport.set_line_limits(start, "configured");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_probes_have_the_asked_line_count() {
        let l = LineLimits::default();
        for lines in 1..=8 {
            let b = echo_for_lines(&l, lines).unwrap();
            let size = HEADER_LEN + cbor_len(&b);
            assert_eq!(l.lines_for(size), lines, "{lines}: {size}");
        }
        let short = LineLimits::new(16, 2).unwrap();
        // 12 chars = 9 frame bytes per line: one line cannot hold a header + echo.
        assert!(echo_for_lines(&short, 1).is_none());
        assert!(echo_for_lines(&short, 3).is_some());
    }
}
