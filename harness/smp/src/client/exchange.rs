//! Sending a request and receiving its answer, with the transcript.
//!
//! One request at a time and the windowed upload wait for answers the same way: until a
//! deadline, reading packets that may be noise, undecodable, stale answers to earlier requests
//! or answers to other requests in flight. That loop lives here once; the callers differ only
//! in which headers they accept.

use std::time::Instant;

use ciborium::value::Value;

use super::{format_packet, Client, Exchange};
use crate::errors::SmpError;
use crate::header::{Header, Op, HEADER_LEN};
use crate::packet::Packet;
use crate::transport::Transport;

impl<T: Transport> Client<T> {
    /// Send a request without waiting. Its exchange goes into the transcript now (with the
    /// error when it could not be sent) and is completed when its answer or its loss is known.
    /// Returns (seq, transcript index).
    pub(super) fn send_tracked(
        &mut self,
        op: Op,
        group: u16,
        id: u8,
        body: Value,
    ) -> Result<(u8, usize), SmpError> {
        let (request, bytes) = self.next_packet(op, group, id, body);
        let seq = request.header.seq;
        self.transcript.push(Exchange {
            at: self.started.elapsed(),
            request,
            response: None,
            error: None,
            response_at: None,
            discarded: Vec::new(),
        });
        let idx = self.transcript.len() - 1;
        match self.send_bytes(&bytes) {
            Ok(()) => Ok((seq, idx)),
            Err(e) => {
                self.record_error(idx, e.to_string());
                Err(e)
            }
        }
    }

    /// Send the request of the exchange at `idx` once more under a new sequence number, noted
    /// on that exchange (`since`: when it was first sent). Returns the new sequence number.
    pub(super) fn resend_tracked(
        &mut self,
        idx: usize,
        op: Op,
        group: u16,
        id: u8,
        body: Value,
        since: Instant,
    ) -> Result<u8, SmpError> {
        let (request, bytes) = self.next_packet(op, group, id, body);
        let seq = request.header.seq;
        let note = format!(
            "no answer after {:.3}s: sent again as seq {seq}",
            since.elapsed().as_secs_f64()
        );
        if let Some(ex) = self.transcript.get_mut(idx) {
            ex.discarded.push(note);
        }
        match self.send_bytes(&bytes) {
            Ok(()) => Ok(seq),
            Err(e) => {
                self.record_error(idx, e.to_string());
                Err(e)
            }
        }
    }

    /// The next request packet (its header's length filled in) and its bytes.
    fn next_packet(&mut self, op: Op, group: u16, id: u8, body: Value) -> (Packet, Vec<u8>) {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut request = Packet::request(self.version, op, group, id, seq, body);
        let bytes = request.encode();
        request.header.len = (bytes.len() - HEADER_LEN) as u16;
        (request, bytes)
    }

    /// Hand encoded bytes to the transport, refusing what the link cannot carry.
    fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), SmpError> {
        let limit = self.transport.max_packet();
        if bytes.len() > limit {
            return Err(SmpError::BufferTooSmall {
                max_packet: limit,
                needed: bytes.len(),
            });
        }
        self.transport.send(bytes)
    }

    /// Wait until `deadline` for a packet that `accept` takes (it returns `Some` for a header
    /// it wants). Everything else read meanwhile — undecodable frames, stale or unmatched
    /// answers — is noted as discarded on the exchange at transcript index `note`.
    /// [`SmpError::Timeout`] when the deadline passes; transport errors as they come.
    pub(super) fn recv_answer<R>(
        &mut self,
        deadline: Instant,
        note: Option<usize>,
        mut accept: impl FnMut(&Header) -> Option<R>,
    ) -> Result<(R, Packet), SmpError> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(SmpError::Timeout);
            }
            let raw = self.transport.recv(deadline - now)?;
            let why = match Packet::decode(&raw) {
                Ok(pkt) => match accept(&pkt.header) {
                    Some(r) => return Ok((r, pkt)),
                    None => format!("stale/unmatched: {}", format_packet(&pkt)),
                },
                Err(e) => format!("undecodable packet {} ({e})", hex::encode(&raw)),
            };
            if let Some(ex) = note.and_then(|i| self.transcript.get_mut(i)) {
                ex.discarded.push(why);
            }
        }
    }

    /// Complete the exchange at `idx` with its answer; the device is known to be there.
    pub(super) fn record_answer(&mut self, idx: usize, pkt: Packet) {
        self.answered = true;
        self.alive = true;
        let at = self.started.elapsed();
        if let Some(ex) = self.transcript.get_mut(idx) {
            ex.response_at = Some(at);
            ex.response = Some(pkt);
        }
    }

    /// Set the error text of the exchange at `idx`.
    pub(super) fn record_error(&mut self, idx: usize, error: String) {
        if let Some(ex) = self.transcript.get_mut(idx) {
            ex.error = Some(error);
        }
    }
}
