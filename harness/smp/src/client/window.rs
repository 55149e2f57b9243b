//! Windowed (pipelined) upload.
//!
//! Stop-and-wait spends most of a BLE or fast-serial upload waiting for round trips
//! (docs/protocol-facts.md, "Throughput ceilings", "Pipelined uploads"); keeping several requests
//! in flight is what takes Nordic's apps from 2–4 kB/s to 20–70 kB/s. The device processes requests
//! strictly in order and answers every accepted one with the offset it expects next, which gives
//! the rules used here:
//!
//! * The first chunk always goes alone: the device erases the slot before answering, may
//!   resume an earlier session at another offset, or may reject the image outright.
//! * Responses are matched to requests by sequence number. Because the device answers in
//!   order, an answer to request *k* means every earlier request without an answer was lost
//!   (or its answer was).
//! * An answer whose `off` is not the end of its request means the device dropped something (Zephyr
//!   discards a chunk whose offset is not the expected one and replies with the expected offset:
//!   `img_mgmt.c`, `img_mgmt_upload`). The remaining answers are drained, and sending resumes from
//!   the offset of the last answer, which is the device's current state.
//! * `off: 0` mid-upload means the session is gone (reset, erase): the first chunk is resent
//!   with `len` and `sha`.
//! * A timeout or EBUSY shrinks the window to 1 (stop-and-wait); it grows back by one after
//!   [`DEFAULT_GROW_AFTER`] clean acknowledgements, as Go mcumgr's window does.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{format_packet, unexpected, upload_chunk, Client, UploadReport, MAX_STALLS};
use crate::errors::{response_error, SmpError};
use crate::header::{group, img_cmd, Op, HEADER_LEN};
use crate::packet::{map_bool, map_bytes, map_uint, Packet};
use crate::transport::Transport;

/// Upper bound for the upload window, whatever `buf_count` claims: more requests in flight
/// than this buys nothing on any link we know and only makes recovery after a loss slower.
pub const MAX_WINDOW: usize = 16;
/// Clean acknowledgements after which a window shrunk by a loss grows back by one.
pub const DEFAULT_GROW_AFTER: u32 = 8;

/// Upload progress: enough to draw a bar with rate and ETA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UploadProgress {
    /// Bytes the device has acknowledged (its `off`); can go back after a session loss.
    pub sent: usize,
    pub total: usize,
    /// Since the upload started.
    pub elapsed: Duration,
    /// Requests allowed in flight when this was reported.
    pub window: usize,
}

impl UploadProgress {
    pub fn new(sent: usize, total: usize, elapsed: Duration, window: usize) -> Self {
        UploadProgress {
            sent,
            total,
            elapsed,
            window,
        }
    }

    /// Average rate so far in bytes per second (`None` before any time has passed).
    pub fn rate(&self) -> Option<f64> {
        let s = self.elapsed.as_secs_f64();
        (s > 0.0 && self.sent > 0).then(|| self.sent as f64 / s)
    }

    /// Remaining time at the average rate so far.
    pub fn eta(&self) -> Option<Duration> {
        let r = self.rate()?;
        let left = self.total.saturating_sub(self.sent) as f64;
        Some(Duration::from_secs_f64(left / r))
    }

    /// 0.0 ..= 1.0.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.sent as f64 / self.total as f64
        }
    }
}

/// One upload request waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    seq: u8,
    off: usize,
    end: usize,
    sent: Instant,
    /// Index of its exchange in the transcript.
    ex: usize,
}

impl<T: Transport> Client<T> {
    /// Requests kept in flight during an upload. `None` (the default) derives it from the device's
    /// `buf_count` (params): `buf_count − 1`, capped at [`MAX_WINDOW`], and 1 (stop-and-wait) when
    /// the count is unknown. One buffer is left free because Zephyr allocates the *response* from
    /// the same net_buf pool as the requests: with every buffer holding a request the device can
    /// have no room to answer and drops frames — the reason nRF Device Manager uses buffers − 1 too
    /// (docs/protocol-facts.md, "Pipelined uploads"). `Some(n)` forces n (1 = stop-and-wait).
    pub fn set_upload_window(&mut self, window: Option<usize>) {
        self.window = window.map(|n| n.clamp(1, MAX_WINDOW));
    }

    /// The window the next upload will use (see [`Client::set_upload_window`]); `buf_count`
    /// is known only after params, which [`Client::upload_packet_limit`] asks.
    pub fn upload_window(&self) -> usize {
        match (self.window, self.buf_count) {
            (Some(n), _) => n,
            (None, Some(c)) => (c as usize).saturating_sub(1).clamp(1, MAX_WINDOW),
            (None, None) => 1,
        }
    }

    pub(super) fn upload_windowed(
        &mut self,
        image: u32,
        data: &[u8],
        limit: usize,
        max_window: usize,
        start: Instant,
        progress: &mut dyn FnMut(&UploadProgress),
    ) -> Result<UploadReport, SmpError> {
        let total = data.len();
        let sha = Sha256::digest(data).to_vec();
        let mut report = UploadReport {
            bytes: total,
            chunks: 0,
            retries: 0,
            elapsed: Duration::ZERO,
            matched: None,
            packet_limit: limit,
            restarts: 0,
            window: 1,
        };
        let mut window = max_window;
        let mut clean = 0u32;
        let mut inflight: VecDeque<InFlight> = VecDeque::new();
        // The device's expected offset as last reported, and where the next new request starts.
        let mut dev_off = 0usize;
        let mut next = 0usize;
        let mut need_first = true;
        // Consecutive timeouts/EBUSY, and realignments, without a clean acknowledgement.
        let mut failures = 0u32;
        let mut stalls = 0u32;
        let mut last_err = SmpError::Timeout;
        loop {
            if need_first {
                let off = self.upload_first(image, data, &sha, limit, &mut report)?;
                progress(&UploadProgress::new(off, total, start.elapsed(), window));
                if off == 0 {
                    stalls += 1;
                    if stalls > MAX_STALLS {
                        return Err(SmpError::Upload(
                            "device keeps answering off 0 to the first chunk".into(),
                        ));
                    }
                    continue;
                }
                need_first = false;
                dev_off = off;
                next = off;
            }
            if dev_off >= total && inflight.is_empty() {
                break;
            }
            while inflight.len() < window && next < total {
                let body = upload_chunk(image, data, &sha, next, limit)?;
                let n = map_bytes(&body, "data").map_or(0, <[u8]>::len);
                let (seq, ex) =
                    self.send_tracked(Op::Write, group::IMAGE, img_cmd::UPLOAD, body)?;
                inflight.push_back(InFlight {
                    seq,
                    off: next,
                    end: next + n,
                    sent: Instant::now(),
                    ex,
                });
                next += n;
                report.window = report.window.max(inflight.len());
            }
            let wait = match self.clip(self.timeout) {
                Ok(w) => w,
                Err(e) => {
                    self.abandon(&mut inflight);
                    return Err(e);
                }
            };
            let deadline = (inflight[0].sent + self.timeout).min(Instant::now() + wait);
            let mut realign = false;
            match self.recv_upload_answer(&inflight, deadline) {
                Ok((pos, pkt)) => {
                    let skipped: Vec<InFlight> = inflight.drain(..pos).collect();
                    let e = inflight.pop_front().expect("matched entry");
                    self.record_answer(e.ex, pkt.clone());
                    let body = &pkt.body;
                    if let Some(d) = response_error(body) {
                        self.transcript[e.ex].error = Some(d.to_string());
                        self.mark_lost(&skipped, "no answer before a later request's");
                        if !d.is_busy() {
                            self.abandon(&mut inflight);
                            return Err(SmpError::Device(d));
                        }
                        std::thread::sleep(self.busy_backoff);
                        report.retries += 1;
                        failures += 1;
                        last_err = SmpError::Device(d);
                        realign = true;
                    } else {
                        let Some(off) = map_uint(body, "off") else {
                            self.abandon(&mut inflight);
                            return Err(unexpected("upload response without `off`", body));
                        };
                        let off = off as usize;
                        if off > total {
                            self.abandon(&mut inflight);
                            return Err(SmpError::Upload(format!(
                                "device answered off {off} beyond the image length {total}"
                            )));
                        }
                        if let Some(m) = map_bool(body, "match") {
                            report.matched = Some(m);
                        }
                        report.chunks += 1;
                        dev_off = off;
                        progress(&UploadProgress::new(off, total, start.elapsed(), window));
                        if off == e.end {
                            // Skipped entries were processed (only their answers were lost):
                            // the device is exactly where the pipeline expects it.
                            self.mark_lost(&skipped, "answer lost; a later answer covers it");
                            failures = 0;
                            stalls = 0;
                            clean += 1;
                            if clean >= DEFAULT_GROW_AFTER && window < max_window {
                                window += 1;
                                clean = 0;
                            }
                        } else {
                            self.mark_lost(&skipped, "no answer; the device did not take it");
                            report.retries += skipped.len();
                            realign = true;
                            if !skipped.is_empty() {
                                window = 1;
                                clean = 0;
                            }
                        }
                    }
                }
                Err(SmpError::Timeout) => {
                    let e = inflight.pop_front().expect("non-empty window");
                    self.transcript[e.ex].error =
                        Some(format!("timeout after {:.3}s", self.timeout.as_secs_f64()));
                    report.retries += 1;
                    failures += 1;
                    last_err = SmpError::Timeout;
                    realign = true;
                    window = 1;
                    clean = 0;
                }
                Err(e) => {
                    self.abandon(&mut inflight);
                    return Err(e);
                }
            }
            if failures >= self.upload_tries {
                self.abandon(&mut inflight);
                return Err(last_err);
            }
            if realign {
                if failures > 0 {
                    window = 1;
                    clean = 0;
                }
                dev_off = self.drain_upload(&mut inflight, dev_off, total, &mut report)?;
                next = dev_off;
                if dev_off == 0 {
                    report.restarts += 1;
                    need_first = true;
                    progress(&UploadProgress::new(0, total, start.elapsed(), window));
                }
                if failures == 0 {
                    stalls += 1;
                    if stalls > MAX_STALLS {
                        return Err(SmpError::Upload(format!(
                            "device keeps answering off {dev_off} without progress"
                        )));
                    }
                }
            }
        }
        if report.matched == Some(false) {
            return Err(SmpError::Upload(
                "device reports the received image does not match its SHA-256".into(),
            ));
        }
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// The first chunk, alone, with the long timeout and the usual retries. Returns the
    /// device's offset.
    fn upload_first(
        &mut self,
        image: u32,
        data: &[u8],
        sha: &[u8],
        limit: usize,
        report: &mut UploadReport,
    ) -> Result<usize, SmpError> {
        let body = upload_chunk(image, data, sha, 0, limit)?;
        let timeout = self.first_chunk_timeout;
        self.upload_request(body, timeout, data.len(), report)
    }

    /// Collect the answers still due after a disturbance, each until its own deadline. The
    /// last answer's offset is the device's state after everything it received.
    fn drain_upload(
        &mut self,
        inflight: &mut VecDeque<InFlight>,
        mut dev_off: usize,
        total: usize,
        report: &mut UploadReport,
    ) -> Result<usize, SmpError> {
        while let Some(front) = inflight.front().copied() {
            match self.recv_upload_answer(inflight, front.sent + self.timeout) {
                Ok((pos, pkt)) => {
                    let skipped: Vec<InFlight> = inflight.drain(..pos).collect();
                    self.mark_lost(&skipped, "no answer (drained after a realignment)");
                    let e = inflight.pop_front().expect("matched entry");
                    self.record_answer(e.ex, pkt.clone());
                    match response_error(&pkt.body) {
                        Some(d) => self.transcript[e.ex].error = Some(d.to_string()),
                        None => {
                            if let Some(off) = map_uint(&pkt.body, "off") {
                                if off as usize <= total {
                                    dev_off = off as usize;
                                }
                            }
                            if let Some(m) = map_bool(&pkt.body, "match") {
                                report.matched = Some(m);
                            }
                        }
                    }
                }
                Err(SmpError::Timeout) => {
                    let e = inflight.pop_front().expect("non-empty");
                    self.transcript[e.ex].error = Some(format!(
                        "timeout after {:.3}s (drained)",
                        self.timeout.as_secs_f64()
                    ));
                }
                Err(e) => {
                    self.abandon(inflight);
                    return Err(e);
                }
            }
        }
        Ok(dev_off)
    }

    /// Send a request without waiting; its exchange goes into the transcript now and is
    /// completed when the answer (or its loss) is known. Returns (seq, transcript index).
    pub(super) fn send_tracked(
        &mut self,
        op: Op,
        group: u16,
        id: u8,
        body: ciborium::value::Value,
    ) -> Result<(u8, usize), SmpError> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut request = Packet::request(self.version, op, group, id, seq, body);
        let bytes = request.encode();
        request.header.len = (bytes.len() - HEADER_LEN) as u16;
        self.transcript.push(super::Exchange {
            at: self.started.elapsed(),
            request,
            response: None,
            error: None,
            response_at: None,
            discarded: Vec::new(),
        });
        let idx = self.transcript.len() - 1;
        let limit = self.transport.max_packet();
        let sent = if bytes.len() > limit {
            Err(SmpError::BufferTooSmall {
                max_packet: limit,
                needed: bytes.len(),
            })
        } else {
            self.transport.send(&bytes)
        };
        match sent {
            Ok(()) => Ok((seq, idx)),
            Err(e) => {
                self.transcript[idx].error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Wait until `deadline` for the answer to any in-flight upload request. Returns its
    /// position in `inflight` and the packet; everything else received meanwhile is noted as
    /// discarded on the oldest request's exchange.
    fn recv_upload_answer(
        &mut self,
        inflight: &VecDeque<InFlight>,
        deadline: Instant,
    ) -> Result<(usize, Packet), SmpError> {
        let note = inflight.front().map(|f| f.ex);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(SmpError::Timeout);
            }
            let raw = self.transport.recv(deadline - now)?;
            let pkt = match Packet::decode(&raw) {
                Ok(p) => p,
                Err(e) => {
                    if let Some(i) = note {
                        self.transcript[i]
                            .discarded
                            .push(format!("undecodable packet {} ({e})", hex::encode(&raw)));
                    }
                    continue;
                }
            };
            let h = pkt.header;
            let pos = inflight.iter().position(|f| f.seq == h.seq);
            match pos {
                Some(p)
                    if h.group == group::IMAGE && h.id == img_cmd::UPLOAD && h.op.is_response() =>
                {
                    return Ok((p, pkt));
                }
                _ => {
                    if let Some(i) = note {
                        self.transcript[i]
                            .discarded
                            .push(format!("stale/unmatched: {}", format_packet(&pkt)));
                    }
                }
            }
        }
    }

    fn record_answer(&mut self, idx: usize, pkt: Packet) {
        let at = self.started.elapsed();
        let ex = &mut self.transcript[idx];
        ex.response_at = Some(at);
        ex.response = Some(pkt);
    }

    fn mark_lost(&mut self, entries: &[InFlight], why: &str) {
        for e in entries {
            self.transcript[e.ex].error = Some(format!("{why} (off {})", e.off));
        }
    }

    /// Close the exchanges of requests whose answers will no longer be read.
    fn abandon(&mut self, inflight: &mut VecDeque<InFlight>) {
        for e in inflight.drain(..) {
            self.transcript[e.ex].error = Some("abandoned: the upload stopped".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rate_and_eta() {
        let p = UploadProgress::new(5000, 20000, Duration::from_secs(2), 3);
        assert_eq!(p.rate(), Some(2500.0));
        assert_eq!(p.eta(), Some(Duration::from_secs(6)));
        assert_eq!(p.fraction(), 0.25);
        assert_eq!(UploadProgress::new(0, 10, Duration::ZERO, 1).rate(), None);
    }
}
