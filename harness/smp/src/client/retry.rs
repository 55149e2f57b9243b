//! How one request is sent again when its answer does not come.
//!
//! Three facts of real links shape it:
//!
//! * **Answers get lost, requests get lost, and the client cannot tell which.** Device log
//!   text printed into the middle of an answer's lines, a truncated line, a frame the device
//!   dropped for want of a line buffer: all look the same from the host — silence. Sending the
//!   request again is the only cure, so a request the device may safely see twice (a read, an
//!   echo, a state write that sets what is already set, an upload chunk by offset) is sent a
//!   second time halfway through its timeout. The caller's timeout still bounds the wait.
//! * **A late answer is still the answer.** A resend carries a new sequence number, but the
//!   device answers the first copy too (Zephyr handles requests in order); whichever answer
//!   comes first completes the request, and the other one arrives later as a stale answer the
//!   next request discards by its sequence number (smpclient and Go mcumgr match by sequence
//!   number too, and drop what does not match).
//! * **A silent device may be busy, not gone.** Zephyr's img_mgmt erases the slot before it
//!   answers the first upload chunk (`img_mgmt.c`, `img_mgmt_upload`, calling
//!   `img_mgmt_erase_image_data()` unless `CONFIG_IMG_ERASE_PROGRESSIVELY`): seconds for a
//!   large slot. The long wait for that erase is granted only while the device is known to be
//!   there — it answered the request before — so a dead link still fails within the caller's
//!   timeout × tries instead of the erase allowance × tries.

use std::time::{Duration, Instant};

use ciborium::value::Value;

use super::{Client, Request, RequestOptions};
use crate::errors::{response_error, SmpError};
use crate::header::{group, img_cmd, os_cmd, Op};
use crate::transport::Transport;

/// Shortest half-timeout at which a request is sent a second time within its timeout. Shorter
/// waits (readiness probes, a powered-off board's 300 ms) are themselves retried by their
/// callers; resending inside them would only fill the device's receive lines.
pub const MIN_RESEND_WAIT: Duration = Duration::from_millis(200);

/// Whether the device may receive this request twice with the same outcome, so a lost answer
/// can be recovered by sending it again. Reads are; of the writes, echo, image state (test and
/// confirm set what a second copy sets again) and upload (the device takes a chunk only at the
/// offset it expects and answers any other with that offset). Not `os reset` (a second copy
/// reaching the rebooted device resets it again, which reverts a test swap) and not the erases
/// (each copy erases again, blocking the device for the whole erase once more).
pub fn resend_safe(op: Op, grp: u16, id: u8) -> bool {
    if op == Op::Read {
        return true;
    }
    match grp {
        group::OS => id == os_cmd::ECHO,
        group::IMAGE => matches!(id, img_cmd::STATE | img_cmd::UPLOAD),
        _ => false,
    }
}

/// What a request does when its answer is late.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience {
    /// Pause before resending after EBUSY.
    pub(crate) busy_backoff: Duration,
    /// The wait of one attempt while the device is known alive (it answered the last request
    /// waited for), when the request makes the device work before answering (the first upload
    /// chunk's slot erase); otherwise every attempt waits the options' timeout.
    pub(crate) alive_wait: Option<Duration>,
    /// Send the request a second time halfway through an attempt ([`resend_safe`]).
    pub(crate) resend_within: bool,
    /// Attempts that may time out beyond `tries` while the device was heard meanwhile
    /// ([`Transport::bytes_heard`]): its answers are being lost to noise, the link is not dead.
    pub(crate) heard_losses: u32,
}

/// Lost answers an upload request or window forgives, beyond its tries, while the device keeps
/// talking (log text, corrupt frames, late answers): at 20 % of frames corrupted, three losses
/// in a row happen every ~125 requests, so counting them as a dead link would fail most large
/// uploads on a noisy console. The device's silence is still caught by `tries`.
pub const MAX_HEARD_LOSSES: u32 = 16;

impl<T: Transport> Client<T> {
    /// The retry policy shared by single requests and upload requests: a timeout resends at
    /// once, EBUSY after `patience.busy_backoff`; `retries` counts the resends. An answer to any
    /// earlier copy of the request is taken as the answer.
    pub(crate) fn request_retrying(
        &mut self,
        request: &Request,
        options: &RequestOptions,
        patience: &Patience,
        retries: &mut usize,
    ) -> Result<Value, SmpError> {
        let mut sent = Vec::new();
        let mut attempt = 1;
        let mut heard_losses = 0;
        loop {
            let wait = match patience.alive_wait {
                Some(long) if self.alive => long.max(options.timeout),
                _ => options.timeout,
            };
            let heard = self.transport.bytes_heard();
            let resend = patience.resend_within;
            match self.request_once(request, wait, resend, &mut sent, retries) {
                Err(SmpError::Timeout)
                    if heard_losses < patience.heard_losses
                        && heard.is_some()
                        && self.transport.bytes_heard() != heard =>
                {
                    heard_losses += 1;
                    *retries += 1;
                }
                Err(e) if e.is_retryable() && attempt < options.tries => {
                    if !matches!(e, SmpError::Timeout) {
                        std::thread::sleep(patience.busy_backoff);
                    }
                    attempt += 1;
                    *retries += 1;
                }
                other => return other,
            }
        }
    }

    /// Send one request and wait for the answer with the same group and command and the
    /// sequence number of this or an earlier copy (`sent`, which gains this copy's numbers);
    /// with `resend`, send it once more halfway through (counted in `resends`). The exchange is
    /// recorded in the transcript whatever happens.
    fn request_once(
        &mut self,
        request: &Request,
        timeout: Duration,
        resend: bool,
        sent: &mut Vec<u8>,
        resends: &mut usize,
    ) -> Result<Value, SmpError> {
        let Request {
            op,
            group,
            id,
            ref body,
        } = *request;
        let timeout = self.clip(timeout)?;
        let (seq, idx) = self.send_tracked(op, group, id, body.clone())?;
        sent.push(seq);
        let start = Instant::now();
        let deadline = start + timeout;
        let half = timeout / 2;
        let mut resend_at = (resend && half >= MIN_RESEND_WAIT).then(|| start + half);
        let answer = loop {
            let until = resend_at.map_or(deadline, |r| r.min(deadline));
            let seqs: &[u8] = sent;
            let got = self.recv_answer(until, Some(idx), |h| {
                (seqs.contains(&h.seq) && h.group == group && h.id == id && h.op.is_response())
                    .then_some(h.seq)
            });
            match got {
                Err(SmpError::Timeout) if resend_at.is_some() && Instant::now() < deadline => {
                    resend_at = None;
                    self.transport.forget_partial();
                    let again = self.resend_tracked(idx, op, group, id, body.clone(), start)?;
                    sent.push(again);
                    *resends += 1;
                }
                other => break other,
            }
        };
        let result = match answer {
            Ok((answered, pkt)) => {
                let mut notes = Vec::new();
                if answered != seq {
                    notes.push(format!(
                        "note: the answer is to the copy with seq {answered}"
                    ));
                }
                if pkt.header.op != op.response() {
                    notes.push(format!(
                        "note: response op {} for request op {}",
                        pkt.header.op.short(),
                        op.short()
                    ));
                }
                if let Some(ex) = self.transcript.get_mut(idx) {
                    ex.discarded.extend(notes);
                }
                let body = pkt.body.clone();
                self.record_answer(idx, pkt);
                match response_error(&body) {
                    Some(d) => Err(SmpError::Device(d)),
                    None => Ok(body),
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            let text = match e {
                SmpError::Timeout => {
                    self.alive = false;
                    format!("timeout after {:.3}s", timeout.as_secs_f64())
                }
                other => other.to_string(),
            };
            self.record_error(idx, text);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::zephyr_cmd;

    #[test]
    fn only_requests_that_can_arrive_twice_are_resent() {
        assert!(resend_safe(Op::Read, group::IMAGE, img_cmd::STATE));
        assert!(resend_safe(Op::Read, group::OS, os_cmd::PARAMS));
        assert!(resend_safe(Op::Write, group::OS, os_cmd::ECHO));
        assert!(resend_safe(Op::Write, group::IMAGE, img_cmd::STATE));
        assert!(resend_safe(Op::Write, group::IMAGE, img_cmd::UPLOAD));
        assert!(!resend_safe(Op::Write, group::OS, os_cmd::RESET));
        assert!(!resend_safe(Op::Write, group::IMAGE, img_cmd::ERASE));
        assert!(!resend_safe(
            Op::Write,
            group::ZEPHYR_BASIC,
            zephyr_cmd::ERASE_STORAGE
        ));
    }
}
