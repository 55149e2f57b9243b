//! A serial byte stream that loses, corrupts and truncates, for testing link recovery.
//!
//! Real SMP serial links fail in a few recurring ways, all of which look like silence to the
//! client: device log text printed into the middle of an answer's lines (a console sharing the
//! UART), a line cut short (a reset, a full FIFO) that leaves junk without a newline in front
//! of the next answer, a whole frame lost, and a link that simply dies. [`FaultyStream`] wraps
//! the host's end of any [`ByteStream`] and does exactly those things, by chance (seeded, so a
//! failing run can be repeated) or to chosen frames, and counts what it did and what went
//! through — the bytes the host sent are how a test proves an upload did not start over.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::serial::{MARKER_CONT, MARKER_START};
use crate::transport::ByteStream;

/// What to break. Chances are per frame, 0.0 ..= 1.0; the numbered lists pick frames by their
/// order (1-based: answers in the order the device sent them, requests in the order the host
/// sent them).
#[derive(Debug, Clone, Default)]
pub struct LinkFaults {
    /// Seed of the pseudo-random choices (the same seed breaks the same frames).
    pub seed: u64,
    /// Chance that an answer is lost whole.
    pub drop_answer: f64,
    /// Chance that a device log line lands inside an answer's line (the frame is corrupt).
    pub noise_in_frame: f64,
    /// Chance that an answer's first line is cut before its newline: the frame is lost and
    /// junk without a newline is left in front of whatever comes next.
    pub truncate_line: f64,
    /// Chance that a request is lost whole before it reaches the device.
    pub drop_request: f64,
    /// These answers are lost whole.
    pub drop_answers: Vec<usize>,
    /// These answers have their first line cut before its newline.
    pub truncate_answers: Vec<usize>,
    /// After this many answers nothing more gets through in either direction (the cable is
    /// pulled); `Some(0)`: a dead link from the start.
    pub dead_after: Option<usize>,
}

/// What a [`FaultyStream`] did, shared with the test that owns it ([`FaultyStream::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Answer frames the device started (whatever happened to them).
    pub answers: usize,
    pub answers_dropped: usize,
    pub answers_noised: usize,
    pub answers_truncated: usize,
    /// Requests the host wrote, and those that never reached the device.
    pub requests: usize,
    pub requests_dropped: usize,
    /// Bytes the host wrote that reached the device.
    pub bytes_to_device: usize,
}

/// What happens to the answer frame being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pass,
    /// Drop every line until the next start line.
    Drop,
}

/// A [`ByteStream`] (the host's end of a serial link) that breaks frames as [`LinkFaults`]
/// says.
pub struct FaultyStream<S: ByteStream> {
    inner: S,
    faults: LinkFaults,
    rng: u64,
    /// Bytes from the device not yet split into lines.
    partial: Vec<u8>,
    /// Bytes ready for the host.
    ready: VecDeque<u8>,
    fate: Fate,
    stats: Arc<Mutex<FaultStats>>,
}

/// Text a Zephyr console prints, used as the noise.
const LOG_LINE: &[u8] = b"[00:00:02.081,024] <inf> app: tick\r\n";

impl<S: ByteStream> FaultyStream<S> {
    pub fn new(inner: S, faults: LinkFaults) -> Self {
        FaultyStream {
            inner,
            // xorshift must not start at 0.
            rng: faults.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            faults,
            partial: Vec::new(),
            ready: VecDeque::new(),
            fate: Fate::Pass,
            stats: Arc::new(Mutex::new(FaultStats::default())),
        }
    }

    /// A handle on the counters that stays valid after the stream moved into a transport.
    pub fn stats(&self) -> Arc<Mutex<FaultStats>> {
        self.stats.clone()
    }

    fn with_stats<R>(&self, f: impl FnOnce(&mut FaultStats) -> R) -> R {
        let mut g = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ((self.rng >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn dead(&self) -> bool {
        let answers = self.with_stats(|s| s.answers);
        self.faults.dead_after.is_some_and(|n| answers >= n)
    }

    /// Pass, drop, corrupt or cut one complete line from the device.
    fn line(&mut self, line: Vec<u8>) {
        if line.starts_with(&MARKER_START) {
            if self.dead() {
                self.fate = Fate::Drop;
                return;
            }
            let k = self.with_stats(|s| {
                s.answers += 1;
                s.answers
            });
            self.fate = Fate::Pass;
            if self.faults.drop_answers.contains(&k) || self.chance(self.faults.drop_answer) {
                self.with_stats(|s| s.answers_dropped += 1);
                self.fate = Fate::Drop;
                return;
            }
            if self.faults.truncate_answers.contains(&k) || self.chance(self.faults.truncate_line) {
                self.with_stats(|s| s.answers_truncated += 1);
                self.fate = Fate::Drop;
                let keep = (line.len() / 2).max(MARKER_START.len());
                self.ready.extend(&line[..keep]);
                return;
            }
            if self.chance(self.faults.noise_in_frame) {
                self.with_stats(|s| s.answers_noised += 1);
                let mid = (line.len() / 2).max(MARKER_START.len());
                self.ready.extend(&line[..mid]);
                self.ready.extend(LOG_LINE);
                self.ready.extend(&line[mid..]);
                return;
            }
            self.ready.extend(line);
            return;
        } else if !line.starts_with(&MARKER_CONT) {
            // Device log between frames: it ends the frame being dropped.
            self.fate = Fate::Pass;
        }
        if self.fate == Fate::Pass && (line.starts_with(&MARKER_CONT) || !self.dead()) {
            // Continuations follow their frame's fate; log text stops when the link dies.
            self.ready.extend(line);
        }
    }
}

impl<S: ByteStream> ByteStream for FaultyStream<S> {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        // The serial transport writes one request per call (unless it paces its lines; then
        // each line is a call and a loss takes one line).
        let starts = b.starts_with(&MARKER_START);
        if starts {
            self.with_stats(|s| s.requests += 1);
        }
        if self.dead() || (starts && self.chance(self.faults.drop_request)) {
            if starts {
                self.with_stats(|s| s.requests_dropped += 1);
            }
            return Ok(());
        }
        self.inner.write_all(b)?;
        self.with_stats(|s| s.bytes_to_device += b.len());
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        if self.ready.is_empty() {
            let mut tmp = [0u8; 1024];
            let n = self.inner.read(&mut tmp, timeout)?;
            self.partial.extend_from_slice(&tmp[..n]);
            while let Some(end) = self.partial.iter().position(|&c| c == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                self.line(line);
            }
        }
        // Nothing ready after a read that brought only dropped bytes: report a short wait;
        // the transport checks its deadline and reads again.
        let n = buf.len().min(self.ready.len());
        for (dst, src) in buf.iter_mut().zip(self.ready.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::pipe;
    use crate::serial::{encode_zephyr, LineDecoder, SerialEvent};

    fn frames(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| encode_zephyr(&[i as u8; 150]))
            .collect()
    }

    fn read_all(s: &mut FaultyStream<crate::mem::PipeEnd>) -> Vec<SerialEvent> {
        let mut dec = LineDecoder::new();
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = s.read(&mut buf, Duration::from_millis(20)).unwrap();
            if n == 0 && s.ready.is_empty() && s.partial.is_empty() {
                break;
            }
            out.extend(dec.push(&buf[..n]));
        }
        out
    }

    fn packets(ev: &[SerialEvent]) -> usize {
        ev.iter()
            .filter(|e| matches!(e, SerialEvent::Packet(_)))
            .count()
    }

    #[test]
    fn chosen_answers_are_lost_and_the_rest_get_through() {
        let (host, mut dev) = pipe();
        let mut s = FaultyStream::new(
            host,
            LinkFaults {
                drop_answers: vec![2],
                truncate_answers: vec![4],
                ..LinkFaults::default()
            },
        );
        dev.write_all(&frames(5)).unwrap();
        let ev = read_all(&mut s);
        assert_eq!(packets(&ev), 3, "{ev:?}");
        let st = *s.stats().lock().unwrap();
        assert_eq!(
            (st.answers, st.answers_dropped, st.answers_truncated),
            (5, 1, 1)
        );
    }

    #[test]
    fn noise_corrupts_about_the_chance_asked() {
        let (host, mut dev) = pipe();
        let mut s = FaultyStream::new(
            host,
            LinkFaults {
                seed: 7,
                noise_in_frame: 0.2,
                ..LinkFaults::default()
            },
        );
        dev.write_all(&frames(200)).unwrap();
        let ev = read_all(&mut s);
        let noised = s.stats().lock().unwrap().answers_noised;
        assert!((20..=60).contains(&noised), "{noised}");
        assert_eq!(packets(&ev), 200 - noised);
    }

    #[test]
    fn a_dead_link_passes_nothing() {
        let (host, mut dev) = pipe();
        let mut s = FaultyStream::new(
            host,
            LinkFaults {
                dead_after: Some(1),
                ..LinkFaults::default()
            },
        );
        dev.write_all(&frames(3)).unwrap();
        assert_eq!(packets(&read_all(&mut s)), 1);
        s.write_all(&encode_zephyr(&[1, 2, 3])).unwrap();
        assert_eq!(s.stats().lock().unwrap().bytes_to_device, 0);
    }
}
