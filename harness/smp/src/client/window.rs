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

#[cfg(doc)]
use super::UploadOptions;
use super::{Client, Upload, UploadReport, MAX_HEARD_LOSSES, MAX_STALLS};
use crate::errors::{response_error, SmpError};
use crate::header::{group, img_cmd, Op};
use crate::packet::{map_bool, map_uint, Packet};
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
    /// Requests kept in flight by [`Client::upload`]: `None` (the default) derives it from the
    /// device's `buf_count` (params): `buf_count − 1`, capped at [`MAX_WINDOW`], and 1
    /// (stop-and-wait) when the count is unknown. One buffer is left free because Zephyr
    /// allocates the *response* from the same net_buf pool as the requests: with every buffer
    /// holding a request the device can have no room to answer and drops frames — the reason
    /// nRF Device Manager uses buffers − 1 too (docs/protocol-facts.md, "Pipelined uploads").
    /// `Some(n)` forces n (1 = stop-and-wait).
    ///
    /// A connection-wide default of [`Client::upload`]; per call: [`UploadOptions::window`].
    pub fn set_upload_window(&mut self, window: Option<usize>) {
        self.upload_options.window = window.map(|n| n.clamp(1, MAX_WINDOW));
    }

    /// The window [`Client::upload`] will use (see [`Client::set_upload_window`]); `buf_count`
    /// is known only after params, which [`Client::upload_packet_limit`] asks.
    pub fn upload_window(&self) -> usize {
        self.window_for(self.upload_options.window)
    }

    /// The window an upload with [`UploadOptions::window`] = `window` uses, before the cap
    /// from the receive lines.
    pub(crate) fn window_for(&self, window: Option<usize>) -> usize {
        match (window, self.buf_count) {
            (Some(n), _) => n.clamp(1, MAX_WINDOW),
            (None, Some(c)) => (c as usize).saturating_sub(1).clamp(1, MAX_WINDOW),
            (None, None) => 1,
        }
    }

    pub(super) fn upload_windowed(
        &mut self,
        up: &mut Upload<'_>,
        max_window: usize,
        progress: &mut dyn FnMut(&UploadProgress),
    ) -> Result<UploadReport, SmpError> {
        let total = up.data.len();
        let timeout = up.options.timeout;
        let mut window = max_window;
        let mut clean = 0u32;
        let mut inflight: VecDeque<InFlight> = VecDeque::new();
        // The device's expected offset as last reported, and where the next new request starts.
        let mut dev_off = 0usize;
        let mut next = 0usize;
        let mut need_first = true;
        // Highest offset the device acknowledged in this session: the upload's progress.
        let mut best = 0usize;
        // Timeouts/EBUSY, and realignments, since the device's offset last moved forward.
        let mut failures = 0u32;
        let mut stalls = 0u32;
        let mut last_err = SmpError::Timeout;
        // Timeouts forgiven because the device was heard meanwhile (see `MAX_HEARD_LOSSES`).
        let mut heard_losses = 0u32;
        let mut heard = self.transport.bytes_heard();
        loop {
            if need_first {
                // The first chunk goes alone, with the erase wait and the usual retries.
                let off = self.upload_request(up, 0)?;
                progress(&up.progress(off, window));
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
                best = off;
                failures = 0;
                stalls = 0;
            }
            if dev_off >= total && inflight.is_empty() {
                break;
            }
            while inflight.len() < window && next < total {
                let (body, end) = up.chunk(next)?;
                let (seq, ex) =
                    self.send_tracked(Op::Write, group::IMAGE, img_cmd::UPLOAD, body)?;
                inflight.push_back(InFlight {
                    seq,
                    off: next,
                    end,
                    sent: Instant::now(),
                    ex,
                });
                next = end;
                up.report.window = up.report.window.max(inflight.len());
            }
            let wait = match self.clip(timeout) {
                Ok(w) => w,
                Err(e) => {
                    self.abandon(&mut inflight);
                    return Err(e);
                }
            };
            let Some(front) = inflight.front().copied() else {
                // Nothing in flight yet the device is not done: resend from its offset.
                next = dev_off;
                continue;
            };
            let deadline = (front.sent + timeout).min(Instant::now() + wait);
            let mut realign = false;
            match self.recv_upload_answer(&inflight, deadline) {
                Ok((pos, pkt)) => {
                    let skipped: Vec<InFlight> = inflight.drain(..pos).collect();
                    let Some(e) = inflight.pop_front() else {
                        continue;
                    };
                    self.record_answer(e.ex, pkt.clone());
                    let body = &pkt.body;
                    if let Some(d) = response_error(body) {
                        up.answers += 1;
                        self.record_error(e.ex, d.to_string());
                        self.mark_lost(&skipped, "no answer before a later request's");
                        if !d.is_busy() {
                            self.abandon(&mut inflight);
                            return Err(SmpError::Device(d));
                        }
                        std::thread::sleep(up.options.busy_backoff);
                        up.report.retries += 1;
                        failures += 1;
                        last_err = SmpError::Device(d);
                        realign = true;
                    } else {
                        let off = match up.take_answer(body) {
                            Ok(off) => off,
                            Err(err) => {
                                self.abandon(&mut inflight);
                                return Err(err);
                            }
                        };
                        up.report.chunks += 1;
                        dev_off = off;
                        progress(&up.progress(off, window));
                        if off == e.end {
                            // Skipped entries were processed (only their answers were lost):
                            // the device is exactly where the pipeline expects it.
                            self.mark_lost(&skipped, "answer lost; a later answer covers it");
                            clean += 1;
                            if clean >= DEFAULT_GROW_AFTER && window < max_window {
                                window += 1;
                                clean = 0;
                            }
                        } else {
                            self.mark_lost(&skipped, "no answer; the device did not take it");
                            up.report.retries += skipped.len();
                            realign = true;
                            if !skipped.is_empty() {
                                window = 1;
                                clean = 0;
                            }
                        }
                    }
                }
                Err(SmpError::Timeout) => {
                    if let Some(e) = inflight.pop_front() {
                        self.record_error(
                            e.ex,
                            format!("timeout after {:.3}s", timeout.as_secs_f64()),
                        );
                    }
                    up.report.retries += 1;
                    let now_heard = self.transport.bytes_heard();
                    if now_heard.is_some() && now_heard != heard && heard_losses < MAX_HEARD_LOSSES
                    {
                        // The device kept talking: its answer was lost, the link is alive.
                        heard_losses += 1;
                    } else {
                        self.alive = false;
                        failures += 1;
                    }
                    heard = now_heard;
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
            if realign {
                if failures > 0 {
                    window = 1;
                    clean = 0;
                }
                // The answers still due tell where the device is after everything it got.
                dev_off = self.drain_upload(&mut inflight, dev_off, up)?;
                next = dev_off;
            }
            // Progress, not exact answers, is what keeps an upload going: answers lost to
            // noise cost resends, never the upload, while the device's offset moves forward.
            let progressed = dev_off > best;
            if progressed {
                best = dev_off;
                failures = 0;
                stalls = 0;
                heard_losses = 0;
                heard = self.transport.bytes_heard();
            }
            if failures >= up.options.tries {
                self.abandon(&mut inflight);
                return Err(last_err);
            }
            if realign {
                if dev_off == 0 {
                    if self.landed(up)? {
                        progress(&up.progress(total, window));
                        break;
                    }
                    up.restarted()?;
                    best = 0;
                    need_first = true;
                    progress(&up.progress(0, window));
                } else if failures == 0 && !progressed {
                    stalls += 1;
                    if stalls > MAX_STALLS {
                        return Err(SmpError::Upload(format!(
                            "device keeps answering off {dev_off} without progress"
                        )));
                    }
                }
            }
        }
        up.finish()
    }

    /// Collect the answers still due after a disturbance, each until its own deadline. The
    /// last answer's offset is the device's state after everything it received.
    fn drain_upload(
        &mut self,
        inflight: &mut VecDeque<InFlight>,
        mut dev_off: usize,
        up: &mut Upload<'_>,
    ) -> Result<usize, SmpError> {
        let timeout = up.options.timeout;
        while let Some(front) = inflight.front().copied() {
            match self.recv_upload_answer(inflight, front.sent + timeout) {
                Ok((pos, pkt)) => {
                    let skipped: Vec<InFlight> = inflight.drain(..pos).collect();
                    self.mark_lost(&skipped, "no answer (drained after a realignment)");
                    let Some(e) = inflight.pop_front() else {
                        continue;
                    };
                    self.record_answer(e.ex, pkt.clone());
                    match response_error(&pkt.body) {
                        Some(d) => self.record_error(e.ex, d.to_string()),
                        None => {
                            up.answers += 1;
                            if let Some(off) = map_uint(&pkt.body, "off") {
                                if off as usize <= up.data.len() {
                                    dev_off = off as usize;
                                    up.last_off = dev_off;
                                    up.acked = up.acked.max(dev_off);
                                }
                            }
                            if let Some(m) = map_bool(&pkt.body, "match") {
                                up.report.matched = Some(m);
                            }
                        }
                    }
                }
                Err(SmpError::Timeout) => {
                    if let Some(e) = inflight.pop_front() {
                        self.record_error(
                            e.ex,
                            format!("timeout after {:.3}s (drained)", timeout.as_secs_f64()),
                        );
                    }
                }
                Err(e) => {
                    self.abandon(inflight);
                    return Err(e);
                }
            }
        }
        Ok(dev_off)
    }

    /// Wait until `deadline` for the answer to any in-flight upload request: its position in
    /// `inflight` and the packet. Anything else is noted on the oldest request's exchange.
    fn recv_upload_answer(
        &mut self,
        inflight: &VecDeque<InFlight>,
        deadline: Instant,
    ) -> Result<(usize, Packet), SmpError> {
        let note = inflight.front().map(|f| f.ex);
        self.recv_answer(deadline, note, |h| {
            if h.group == group::IMAGE && h.id == img_cmd::UPLOAD && h.op.is_response() {
                inflight.iter().position(|f| f.seq == h.seq)
            } else {
                None
            }
        })
    }

    fn mark_lost(&mut self, entries: &[InFlight], why: &str) {
        for e in entries {
            self.record_error(e.ex, format!("{why} (off {})", e.off));
        }
    }

    /// Close the exchanges of requests whose answers will no longer be read.
    fn abandon(&mut self, inflight: &mut VecDeque<InFlight>) {
        for e in inflight.drain(..) {
            self.record_error(e.ex, "abandoned: the upload stopped".into());
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
