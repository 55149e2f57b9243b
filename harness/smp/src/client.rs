//! Stop-and-wait SMP client with a transcript of every exchange.
//!
//! The upload follows what the robust peer clients converged on (docs/protocol-facts.md, "The
//! upload recipe"): send the full SHA-256 of the file on the first chunk (so a retried first chunk
//! resumes instead of re-erasing), always continue from the offset the device returns, resend the
//! first-chunk fields when the device says `off: 0` (session lost after a reset or erase), use a
//! long timeout for the first chunk while the device is known alive (it erases the slot before
//! answering; a dead link still fails within the caller's timeout), and retry a chunk that got no
//! answer (the device drops bad frames silently). How requests are resent is in `retry.rs`.

use std::time::{Duration, Instant};

use ciborium::value::Value;
use sha2::{Digest, Sha256};

use crate::errors::SmpError;
use crate::header::{command_name, group, group_name, img_cmd, os_cmd, Op, Version, HEADER_LEN};
use crate::packet::{
    cbor_len, head_len, map, map_array, map_bool, map_bytes, map_text, map_uint, render_value,
    uint, Packet,
};
use crate::transport::Transport;

mod boot;
mod commands;
mod exchange;
mod lines;
mod options;
mod retry;
mod scoped;
mod window;

pub use boot::{BootWait, ReadyReport, RebootSign};
pub use commands::{
    parse_slot_info, parse_taskstat, BootloaderMode, ImageSlots, SlotInfo, TaskStat,
};
pub use lines::LineDiscovery;
pub use options::{
    RequestOptions, UploadOptions, DEFAULT_BUSY_BACKOFF, DEFAULT_FIRST_CHUNK_TIMEOUT,
    DEFAULT_TIMEOUT, DEFAULT_UPLOAD_TRIES,
};
pub(crate) use retry::Patience;
pub use retry::{resend_safe, MAX_HEARD_LOSSES, MIN_RESEND_WAIT};
pub use scoped::Using;
pub use window::{UploadProgress, DEFAULT_GROW_AFTER, MAX_WINDOW};

/// Zephyr's default `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`, assumed when params is unanswered.
pub const DEFAULT_BUF_SIZE: u32 = 384;
/// Zephyr refuses a first upload chunk with less than the 32-byte MCUboot header.
pub const MIN_FIRST_CHUNK: usize = 32;
/// Consecutive upload responses without forward progress tolerated before giving up; guards
/// against a device stuck answering the same offset (zephyrproject-rtos/zephyr#44219).
pub const MAX_STALLS: u32 = 5;

/// `mcumgr params` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub buf_size: u32,
    pub buf_count: u32,
}

/// One slot as reported by the image state command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotState {
    pub image: u32,
    pub slot: u32,
    pub version: String,
    /// SHA-256 TLV of the image (not the file hash).
    pub hash: Vec<u8>,
    pub bootable: bool,
    pub pending: bool,
    pub confirmed: bool,
    pub active: bool,
    pub permanent: bool,
}

/// Parse an image-state body. Tolerates unknown keys and missing flags (frugal list: only true
/// flags are sent), a missing `image` (single-image builds) and missing `splitStatus`.
pub fn parse_image_state(body: &Value) -> Result<Vec<SlotState>, SmpError> {
    let images = map_array(body, "images").ok_or_else(|| {
        SmpError::UnexpectedResponse(format!(
            "image state without an `images` list: {}",
            render_value(body)
        ))
    })?;
    images
        .iter()
        .map(|m| {
            if !matches!(m, Value::Map(_)) {
                return Err(SmpError::UnexpectedResponse(format!(
                    "image state entry is not a map: {}",
                    render_value(m)
                )));
            }
            let flag = |k: &str| map_bool(m, k).unwrap_or(false);
            Ok(SlotState {
                image: map_uint(m, "image").unwrap_or(0) as u32,
                slot: map_uint(m, "slot").unwrap_or(0) as u32,
                version: map_text(m, "version").unwrap_or("").to_string(),
                hash: map_bytes(m, "hash").unwrap_or(&[]).to_vec(),
                bootable: flag("bootable"),
                pending: flag("pending"),
                confirmed: flag("confirmed"),
                active: flag("active"),
                permanent: flag("permanent"),
            })
        })
        .collect()
}

/// Outcome of a successful upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    pub bytes: usize,
    /// Acknowledged upload requests (including resends after a session loss).
    pub chunks: usize,
    /// Requests that were sent again after a timeout or EBUSY.
    pub retries: usize,
    pub elapsed: Duration,
    /// The device's final `match` (None when its image check is off).
    pub matched: Option<bool>,
    /// Largest request (header + CBOR) allowed for this upload.
    pub packet_limit: usize,
    /// Times the device answered `off: 0` mid-upload and the first chunk was resent.
    pub restarts: usize,
    /// Largest number of upload requests that were in flight at once (1 = stop-and-wait).
    pub window: usize,
}

/// One request and what came back, for the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// When the request was sent, since client creation.
    pub at: Duration,
    pub request: Packet,
    pub response: Option<Packet>,
    /// Timeout, transport failure or device error, as text.
    pub error: Option<String>,
    /// When the matching response arrived.
    pub response_at: Option<Duration>,
    /// Packets received while waiting that did not match (stale seq, undecodable).
    pub discarded: Vec<String>,
}

/// Synchronous SMP client over any [`Transport`].
///
/// It keeps what belongs to the connection: the transport, the SMP version, the sequence
/// number, what the device told about itself (params), the transcript, and the caller's
/// deadline. How long one call waits and how often it retries travel with the call
/// ([`RequestOptions`], [`UploadOptions`]).
pub struct Client<T: Transport> {
    transport: T,
    version: Version,
    seq: u8,
    /// Options of the requests made without options of their own ([`Client::request`] and
    /// the command methods); fixed when the client is made ([`Client::with_request_options`]).
    request_options: RequestOptions,
    /// Options of [`Client::upload`] and [`Client::upload_with_progress`], changed only by
    /// the connection-wide setters (tools and tests); per call: [`Client::upload_with`].
    upload_options: UploadOptions,
    /// The device's SMP buffer size from params (or the 384 fallback once params went
    /// unanswered); `None` until asked.
    buf_size: Option<u32>,
    /// From params; `None` when unknown (no params asked, or not supported).
    buf_count: Option<u32>,
    started: Instant,
    transcript: Vec<Exchange>,
    /// Overall deadline (a scenario step's timeout): no request starts after it and no wait
    /// runs past it, so a stuck upload ends when the step's time is up. It stays client state
    /// because it bounds a *span* of calls — a step's upload, its `os reset`, the wait for the
    /// reboot and readiness probes — not one call, and a forgotten deadline fails loudly
    /// ([`SmpError::Deadline`]) instead of silently stretching or shortening later calls.
    deadline: Option<(Instant, String)>,
    /// Device text read while waiting for a boot, kept for [`Client::take_noise`].
    noise: Vec<u8>,
    /// Find the serial line-buffer count before the next upload ([`Client::set_discover_lines`]).
    discover_lines: bool,
    /// The device answered at least one request on this client.
    answered: bool,
    /// The device answered the last request that was waited for: it is there and listening,
    /// so a silence now may be work (a slot erase) rather than a dead link.
    alive: bool,
}

impl<T: Transport> Client<T> {
    /// SMP v2, default options, sequence numbers starting at 0.
    pub fn new(transport: T) -> Self {
        Self::with_request_options(transport, RequestOptions::default())
    }

    /// SMP v2, sequence numbers starting at 0; requests made without options of their own
    /// (`echo`, `image_state`, `reset`, …) use `options` — e.g. a slow link's longer timeout.
    pub fn with_request_options(transport: T, options: RequestOptions) -> Self {
        let options = RequestOptions {
            tries: options.tries.max(1),
            ..options
        };
        Client {
            transport,
            version: Version::V2,
            seq: 0,
            request_options: options,
            upload_options: UploadOptions {
                timeout: options.timeout,
                ..UploadOptions::default()
            },
            buf_size: None,
            buf_count: None,
            started: Instant::now(),
            transcript: Vec::new(),
            deadline: None,
            noise: Vec::new(),
            discover_lines: false,
            answered: false,
            alive: false,
        }
    }

    /// Whether the device answered any request on this client. A failure after it did is not
    /// a wrong port, baud rate or disabled transport, and should not be reported as one.
    pub fn has_answered(&self) -> bool {
        self.answered
    }

    /// The options of requests made without options of their own.
    pub fn request_options(&self) -> RequestOptions {
        self.request_options
    }

    /// Device text (log, banners, prompts) seen on the link since the last call, including
    /// what was read while waiting for a boot.
    pub fn take_noise(&mut self) -> Vec<u8> {
        let mut n = std::mem::take(&mut self.noise);
        n.extend(self.transport.take_noise());
        n
    }

    /// Stop every request at `deadline` with [`SmpError::Deadline`] carrying `why` (e.g.
    /// "step timeout 300 s"); `None` lifts it.
    pub fn set_deadline(&mut self, deadline: Option<(Instant, String)>) {
        self.deadline = deadline;
    }

    /// `timeout` shortened to the overall deadline, or the deadline error once it passed.
    pub(crate) fn clip(&self, timeout: Duration) -> Result<Duration, SmpError> {
        match &self.deadline {
            None => Ok(timeout),
            Some((d, why)) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(SmpError::Deadline(why.clone()))
                } else {
                    Ok(timeout.min(left))
                }
            }
        }
    }

    pub fn set_version(&mut self, v: Version) {
        self.version = v;
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Per-request timeout (default 2.5 s) of the calls without options of their own, and
    /// of [`Client::upload`]'s requests after the first chunk.
    ///
    /// A connection-wide default, for tools and tests that make one client for one purpose.
    /// Code that needs other options for some calls passes them with the call
    /// ([`RequestOptions`], [`UploadOptions`], [`Client::using`]) instead of changing this and
    /// restoring it (the runner does so; nothing in it calls a setter).
    pub fn set_timeout(&mut self, t: Duration) {
        self.request_options.timeout = t;
        self.upload_options.timeout = t;
    }

    /// Timeout of [`Client::upload`]'s first chunk while the device is known alive, and of the
    /// slot and storage erases (default 40 s), which wait for flash erases.
    ///
    /// A connection-wide default of [`Client::upload`]; per call:
    /// [`UploadOptions::first_chunk_timeout`].
    pub fn set_first_chunk_timeout(&mut self, t: Duration) {
        self.upload_options.first_chunk_timeout = t;
    }

    /// Attempts per request of [`Client::upload`] (default 3, minimum 1).
    ///
    /// A connection-wide default of [`Client::upload`]; per call: [`UploadOptions::tries`].
    pub fn set_upload_tries(&mut self, n: u32) {
        self.upload_options.tries = n.max(1);
    }

    /// Stand in for the device's params answer: use this buffer size instead of asking
    /// (`None`: ask with params on the next upload, falling back to 384).
    ///
    /// Connection state (what the device would answer); for one upload only:
    /// [`UploadOptions::buf_size`].
    pub fn set_buf_size(&mut self, b: Option<u32>) {
        self.buf_size = b;
    }

    /// Before the next upload, find how many serial receive lines the device has (echo
    /// probes, see [`Client::discover_line_count`]) instead of trusting the link's configured
    /// limits. Done once; the link then carries what was found.
    pub fn set_discover_lines(&mut self, on: bool) {
        self.discover_lines = on;
    }

    /// Use this buffer count instead of the one params reports (it sizes the automatic upload
    /// window). `None` forgets it.
    pub fn set_buf_count(&mut self, n: Option<u32>) {
        self.buf_count = n.filter(|&n| n > 0);
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn into_transport(self) -> T {
        self.transport
    }

    pub fn transcript(&self) -> &[Exchange] {
        &self.transcript
    }

    pub fn take_transcript(&mut self) -> Vec<Exchange> {
        std::mem::take(&mut self.transcript)
    }

    /// The whole transcript formatted with [`format_exchange`], one exchange per block.
    pub fn transcript_text(&self) -> String {
        self.transcript
            .iter()
            .map(format_exchange)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Raw request with the client's request options: returns the response body; device
    /// errors → `Err(SmpError::Device(..))`; matches responses by seq, discarding stale ones.
    pub fn request(&mut self, op: Op, group: u16, id: u8, body: Value) -> Result<Value, SmpError> {
        let o = self.request_options;
        self.request_with(&o, op, group, id, body)
    }

    /// [`Client::request`] with one attempt and an explicit timeout.
    pub fn request_with_timeout(
        &mut self,
        op: Op,
        group: u16,
        id: u8,
        body: Value,
        timeout: Duration,
    ) -> Result<Value, SmpError> {
        self.request_with(&RequestOptions::timeout(timeout), op, group, id, body)
    }

    /// [`Client::request`] with these options: after a timeout or EBUSY the request is sent
    /// again (with a new sequence number) until `options.tries` attempts were made. Within each
    /// attempt, a request the device may see twice ([`resend_safe`]) is also sent again halfway
    /// through the timeout, and an answer to any copy completes it.
    pub fn request_with(
        &mut self,
        options: &RequestOptions,
        op: Op,
        group: u16,
        id: u8,
        body: Value,
    ) -> Result<Value, SmpError> {
        let patience = Patience {
            busy_backoff: DEFAULT_BUSY_BACKOFF,
            alive_wait: None,
            resend_within: resend_safe(op, group, id),
            heard_losses: 0,
        };
        let request = Request {
            op,
            group,
            id,
            body,
        };
        self.request_retrying(&request, options, &patience, &mut 0)
    }

    /// OS echo: the device returns the text unchanged.
    pub fn echo(&mut self, text: &str) -> Result<String, SmpError> {
        let rsp = self.request(
            Op::Write,
            group::OS,
            os_cmd::ECHO,
            map([("d", Value::Text(text.to_string()))]),
        )?;
        map_text(&rsp, "r")
            .map(str::to_string)
            .ok_or_else(|| unexpected("echo response without `r`", &rsp))
    }

    /// OS reset. `force` only matters when a reset hook refused an earlier reset with EBUSY.
    pub fn reset(&mut self, force: bool) -> Result<(), SmpError> {
        let body = if force {
            map([("force", Value::Bool(true))])
        } else {
            map([])
        };
        self.request(Op::Write, group::OS, os_cmd::RESET, body)?;
        Ok(())
    }

    /// mcumgr params; remembers `buf_size` for sizing uploads.
    pub fn params(&mut self) -> Result<Params, SmpError> {
        let o = self.request_options;
        self.params_with(&o)
    }

    /// [`Client::params`] with these request options.
    pub fn params_with(&mut self, options: &RequestOptions) -> Result<Params, SmpError> {
        let rsp = self.request_with(options, Op::Read, group::OS, os_cmd::PARAMS, map([]))?;
        let buf_size = map_uint(&rsp, "buf_size")
            .ok_or_else(|| unexpected("params response without `buf_size`", &rsp))?;
        let buf_count = map_uint(&rsp, "buf_count").unwrap_or(0);
        let p = Params {
            buf_size: buf_size.min(u32::MAX as u64) as u32,
            buf_count: buf_count.min(u32::MAX as u64) as u32,
        };
        self.buf_size = Some(p.buf_size);
        self.buf_count = (p.buf_count > 0).then_some(p.buf_count);
        Ok(p)
    }

    /// Bootloader info; `query` e.g. `Some("mode")`. Returns the raw body.
    pub fn bootloader_info(&mut self, query: Option<&str>) -> Result<Value, SmpError> {
        let body = match query {
            Some(q) => map([("query", Value::Text(q.to_string()))]),
            None => map([]),
        };
        self.request(Op::Read, group::OS, os_cmd::BOOTLOADER_INFO, body)
    }

    /// Image slot info (raw body).
    pub fn slot_info(&mut self) -> Result<Value, SmpError> {
        self.request(Op::Read, group::IMAGE, img_cmd::SLOT_INFO, map([]))
    }

    pub fn image_state(&mut self) -> Result<Vec<SlotState>, SmpError> {
        let rsp = self.request(Op::Read, group::IMAGE, img_cmd::STATE, map([]))?;
        parse_image_state(&rsp)
    }

    /// Mark the image with this (TLV) hash for a one-time test boot.
    pub fn image_test(&mut self, hash: &[u8]) -> Result<Vec<SlotState>, SmpError> {
        let body = map([
            ("hash", Value::Bytes(hash.to_vec())),
            ("confirm", Value::Bool(false)),
        ]);
        let rsp = self.request(Op::Write, group::IMAGE, img_cmd::STATE, body)?;
        parse_image_state(&rsp)
    }

    /// Confirm the image with this hash, or the running image when `None`. The hash key is omitted
    /// rather than sent as null: Zephyr rejects a null hash with EINVAL (`img_mgmt_state.c`,
    /// `img_mgmt_state_write`: `zcbor_map_decode_bulk` fails on a value of the wrong type).
    pub fn image_confirm(&mut self, hash: Option<&[u8]>) -> Result<Vec<SlotState>, SmpError> {
        let mut entries = Vec::new();
        if let Some(h) = hash {
            entries.push(("hash", Value::Bytes(h.to_vec())));
        }
        entries.push(("confirm", Value::Bool(true)));
        let rsp = self.request(Op::Write, group::IMAGE, img_cmd::STATE, map(entries))?;
        parse_image_state(&rsp)
    }

    /// Erase a slot (default: the one opposite the active image). Can take long, so it waits
    /// as long as an upload's first chunk ([`Client::erase_timeout`]).
    pub fn image_erase(&mut self, slot: Option<u32>) -> Result<(), SmpError> {
        let body = match slot {
            Some(s) => map([("slot", uint(s as u64))]),
            None => map([]),
        };
        self.slow_request(Op::Write, group::IMAGE, img_cmd::ERASE, body)?;
        Ok(())
    }

    /// How long a slot or storage erase may take: the first-chunk timeout of
    /// [`Client::upload`] (40 s unless [`Client::set_first_chunk_timeout`] changed it).
    pub(crate) fn erase_timeout(&self) -> Duration {
        self.upload_options.first_chunk_timeout
    }

    /// A request that makes the device work before it answers (a slot or storage erase): it
    /// waits [`Client::erase_timeout`] only while the device is known alive (it answered the
    /// last request); on a link that never answered, each attempt waits the request timeout
    /// (`--timeout`), so a dead link fails in seconds, not after the long erase wait. When
    /// nothing was heard yet (a lone `image erase`), an image-state read asks first whether the
    /// device is there: any answer, an error included, proves it. Not sent twice within an
    /// attempt: each copy would erase again.
    pub(crate) fn slow_request(
        &mut self,
        op: Op,
        group: u16,
        id: u8,
        body: Value,
    ) -> Result<Value, SmpError> {
        if !self.alive {
            match self.request(Op::Read, group::IMAGE, img_cmd::STATE, map([])) {
                Ok(_) | Err(SmpError::Device(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let patience = Patience {
            busy_backoff: DEFAULT_BUSY_BACKOFF,
            alive_wait: Some(self.erase_timeout()),
            resend_within: false,
            heard_losses: 0,
        };
        let request = Request {
            op,
            group,
            id,
            body,
        };
        let options = RequestOptions {
            tries: 1,
            ..self.request_options
        };
        self.request_retrying(&request, &options, &patience, &mut 0)
    }

    /// Largest request (header + CBOR) for [`Client::upload`]; see
    /// [`Client::upload_packet_limit_with`].
    pub fn upload_packet_limit(&mut self) -> Result<usize, SmpError> {
        let o = self.upload_options;
        self.upload_packet_limit_with(&o)
    }

    /// Largest request (header + CBOR) for an upload with `options`: min(transport limit,
    /// buf_size - overhead) (overhead 4 on serial, where length and CRC share the buffer; 0 on
    /// BLE and UDP); on serial the transport limit is what fits the device's receive lines
    /// ([`crate::LineLimits`]: 182 bytes on Zephyr's defaults). buf_size is the options'
    /// override, else params' answer (asked once per connection), else 384. Only a device
    /// error or a timeout falls back; a broken link is reported.
    pub fn upload_packet_limit_with(&mut self, options: &UploadOptions) -> Result<usize, SmpError> {
        let buf = match options.buf_size.or(self.buf_size) {
            Some(b) => b,
            None => match self.params_with(&RequestOptions::timeout(options.timeout)) {
                Ok(p) => p.buf_size,
                Err(SmpError::Device(_)) | Err(SmpError::Timeout) => {
                    self.buf_size = Some(DEFAULT_BUF_SIZE);
                    DEFAULT_BUF_SIZE
                }
                Err(e) => return Err(e),
            },
        };
        let overhead = self.transport.device_buffer_overhead();
        let device_max = (buf as usize).saturating_sub(overhead);
        if self.discover_lines {
            self.discover_lines = false;
            let probe = options.timeout.min(Duration::from_millis(500));
            self.discover_line_count(device_max, probe)?;
        }
        Ok(self.transport.max_packet().min(device_max))
    }

    /// Upload `data` (a whole signed image file) to image number `image` with the client's
    /// upload options, calling `progress(sent, total)` after each acknowledged request. See
    /// [`Client::upload_with`] for the behaviour.
    pub fn upload(
        &mut self,
        image: u32,
        data: &[u8],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<UploadReport, SmpError> {
        self.upload_with_progress(image, data, &mut |p| progress(p.sent, p.total))
    }

    /// [`Client::upload_with`] with the client's upload options (the defaults, or what the
    /// connection-wide setters changed).
    pub fn upload_with_progress(
        &mut self,
        image: u32,
        data: &[u8],
        progress: &mut dyn FnMut(&UploadProgress),
    ) -> Result<UploadReport, SmpError> {
        let o = self.upload_options;
        self.upload_with(image, data, &o, progress)
    }

    /// Upload `data` (a whole signed image file) to image number `image` with `options`,
    /// which hold for this upload only.
    ///
    /// Sends len + full 32-byte sha (SHA-256 of data) on the first chunk, always continues
    /// from the offset the device returns, resends first-chunk fields when the device answers
    /// off 0 after a session loss, retries a chunk on timeout or EBUSY, and calls `progress`
    /// after each acknowledged request (with the elapsed time, for rate and ETA). Every
    /// request fits [`Client::upload_packet_limit_with`], computed from the exact encoded size.
    ///
    /// With an upload window above 1 ([`UploadOptions::window`]) the requests after the first
    /// chunk are pipelined; otherwise each waits for its answer (stop-and-wait).
    pub fn upload_with(
        &mut self,
        image: u32,
        data: &[u8],
        options: &UploadOptions,
        progress: &mut dyn FnMut(&UploadProgress),
    ) -> Result<UploadReport, SmpError> {
        let start = Instant::now();
        if data.is_empty() {
            return Err(SmpError::Upload("refusing to upload an empty image".into()));
        }
        let options = options.normalized();
        let limit = self.upload_packet_limit_with(&options)?;
        // However many buffers the SMP pool has, the requests in flight must fit the device's
        // serial receive lines together (one 2-line request on Zephyr's defaults).
        let window = self
            .window_for(options.window)
            .min(self.transport.max_in_flight(limit))
            .max(1);
        let mut upload = Upload::new(image, data, limit, &options, start);
        let result = if window > 1 {
            self.upload_windowed(&mut upload, window, progress)
        } else {
            self.upload_stop_and_wait(&mut upload, progress)
        };
        result.map_err(|e| upload.stopped(e))
    }

    fn upload_stop_and_wait(
        &mut self,
        up: &mut Upload<'_>,
        progress: &mut dyn FnMut(&UploadProgress),
    ) -> Result<UploadReport, SmpError> {
        let total = up.data.len();
        let mut off = 0usize;
        let mut stalls = 0u32;
        while off < total {
            let new_off = self.upload_request(up, off)?;
            if new_off == 0 && off != 0 {
                if self.landed(up)? {
                    progress(&up.progress(total, 1));
                    return up.finish();
                }
                up.restarted()?;
            }
            if new_off <= off {
                stalls += 1;
                if stalls > MAX_STALLS {
                    return Err(SmpError::Upload(format!(
                        "device keeps answering off {new_off} without progress"
                    )));
                }
            } else {
                stalls = 0;
            }
            off = new_off;
            progress(&up.progress(off, 1));
        }
        up.finish()
    }

    /// After the device answered `off: 0` to a request once the whole image had been sent:
    /// did the upload land, and only the answer to its last chunk was lost? Zephyr forgets the
    /// upload session when the last chunk is written (`img_mgmt.c`, `img_mgmt_upload`, resetting
    /// the upload state), so a resent last chunk is answered `off: 0` as if the session were
    /// lost; sending the whole image again would be the wrong cure. The device's image list
    /// tells: a slot of this image that is not the running one holds the file's hash TLV only
    /// if every byte up to the TLVs was written. Unknown (not an MCUboot image, no image list)
    /// means no.
    fn landed(&mut self, up: &Upload<'_>) -> Result<bool, SmpError> {
        let Some(hash) = up.hash_tlv.as_deref().filter(|_| up.sent_end) else {
            return Ok(false);
        };
        // Asked like an upload request: its answer may be lost to the same noise.
        let patience = Patience {
            busy_backoff: up.options.busy_backoff,
            alive_wait: None,
            resend_within: true,
            heard_losses: MAX_HEARD_LOSSES,
        };
        let request = Request {
            op: Op::Read,
            group: group::IMAGE,
            id: img_cmd::STATE,
            body: map([]),
        };
        let options = up.options.chunk_request();
        let state = match self.request_retrying(&request, &options, &patience, &mut 0) {
            Ok(body) => body,
            Err(SmpError::Device(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let slots = parse_image_state(&state).unwrap_or_default();
        Ok(slots
            .iter()
            .any(|s| s.image == up.image && !s.active && s.hash == hash))
    }
}

/// Times the device may lose the upload session (answer `off: 0` mid-upload) before the
/// upload gives up: each loss starts the image again, so a device that keeps losing it would
/// otherwise keep the upload going for ever.
pub const MAX_RESTARTS: usize = 5;

/// One SMP request: what is asked of which group and command.
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) group: u16,
    pub(crate) id: u8,
    pub(crate) body: Value,
}

/// One upload under way: what is sent, how, and what happened so far.
pub(crate) struct Upload<'a> {
    pub(crate) image: u32,
    pub(crate) data: &'a [u8],
    /// SHA-256 of the whole file, sent with the first chunk.
    pub(crate) sha: Vec<u8>,
    /// Largest request (header + CBOR).
    pub(crate) limit: usize,
    pub(crate) options: UploadOptions,
    pub(crate) start: Instant,
    pub(crate) report: UploadReport,
    /// The image's hash TLV (what the device's image list shows), when `data` parses as an
    /// MCUboot image.
    pub(crate) hash_tlv: Option<Vec<u8>>,
    /// The last chunk was sent in the current session (its answer may be what got lost).
    pub(crate) sent_end: bool,
    /// Highest offset the device acknowledged, and the offset it reported last.
    pub(crate) acked: usize,
    pub(crate) last_off: usize,
    /// Upload requests the device answered (with an offset or an error).
    pub(crate) answers: usize,
}

impl<'a> Upload<'a> {
    fn new(
        image: u32,
        data: &'a [u8],
        limit: usize,
        options: &UploadOptions,
        start: Instant,
    ) -> Self {
        Upload {
            image,
            data,
            sha: Sha256::digest(data).to_vec(),
            limit,
            options: *options,
            start,
            hash_tlv: dfu_hil_mcuboot::image::Image::parse(data)
                .ok()
                .and_then(|i| i.hash_tlv().map(<[u8]>::to_vec)),
            sent_end: false,
            acked: 0,
            last_off: 0,
            answers: 0,
            report: UploadReport {
                bytes: data.len(),
                chunks: 0,
                retries: 0,
                elapsed: Duration::ZERO,
                matched: None,
                packet_limit: limit,
                restarts: 0,
                window: 1,
            },
        }
    }

    /// The request body for the chunk starting at `off`, and the offset after it.
    pub(crate) fn chunk(&mut self, off: usize) -> Result<(Value, usize), SmpError> {
        let body = upload_chunk(self.image, self.data, &self.sha, off, self.limit)?;
        let end = off + map_bytes(&body, "data").map_or(0, <[u8]>::len);
        if end >= self.data.len() {
            self.sent_end = true;
        }
        Ok((body, end))
    }

    /// The device lost the session (answered `off: 0`): count it, and give up after
    /// [`MAX_RESTARTS`].
    pub(crate) fn restarted(&mut self) -> Result<(), SmpError> {
        self.report.restarts += 1;
        self.sent_end = false;
        if self.report.restarts > MAX_RESTARTS {
            return Err(SmpError::Upload(format!(
                "the device lost the upload session {} times (answered off 0 mid-upload)",
                self.report.restarts
            )));
        }
        Ok(())
    }

    /// `e` with how far this upload got, once the device had answered any of it. A device
    /// error stays itself (it is the device's verdict, matched by name), and so does the
    /// caller's deadline (it is the step's timeout, not the link's failure).
    pub(crate) fn stopped(&self, e: SmpError) -> SmpError {
        match e {
            SmpError::Device(_) | SmpError::Deadline(_) | SmpError::UploadStopped { .. } => e,
            _ if self.answers == 0 => e,
            cause => SmpError::UploadStopped {
                acked: self.acked,
                total: self.data.len(),
                last_off: self.last_off,
                answers: self.answers,
                cause: Box::new(cause),
            },
        }
    }

    pub(crate) fn progress(&self, sent: usize, window: usize) -> UploadProgress {
        UploadProgress::new(sent, self.data.len(), self.start.elapsed(), window)
    }

    /// Check the device's answer to one upload request: returns its `off` and records a
    /// final `match`.
    pub(crate) fn take_answer(&mut self, rsp: &Value) -> Result<usize, SmpError> {
        self.answers += 1;
        let total = self.data.len();
        let off = map_uint(rsp, "off")
            .ok_or_else(|| unexpected("upload response without `off`", rsp))?
            as usize;
        if off > total {
            return Err(SmpError::Upload(format!(
                "device answered off {off} beyond the image length {total}"
            )));
        }
        if let Some(m) = map_bool(rsp, "match") {
            self.report.matched = Some(m);
        }
        self.last_off = off;
        self.acked = self.acked.max(off);
        Ok(off)
    }

    /// The report of a finished upload, or the device's verdict that the image is not the
    /// one it was told.
    pub(crate) fn finish(&mut self) -> Result<UploadReport, SmpError> {
        if self.report.matched == Some(false) {
            return Err(SmpError::Upload(
                "device reports the received image does not match its SHA-256".into(),
            ));
        }
        self.report.elapsed = self.start.elapsed();
        Ok(self.report.clone())
    }
}

impl<T: Transport> Client<T> {
    /// One upload request for the chunk at `off` with the upload's retry policy (EBUSY backs
    /// off, a timeout resends; the first chunk waits for the slot erase while the device is
    /// known alive, see [`Patience::alive_wait`]), its answer checked: returns the device's
    /// `off`. Shared by the stop-and-wait loop and the windowed upload's first chunk.
    pub(crate) fn upload_request(
        &mut self,
        up: &mut Upload<'_>,
        off: usize,
    ) -> Result<usize, SmpError> {
        let (body, _) = up.chunk(off)?;
        let patience = Patience {
            busy_backoff: up.options.busy_backoff,
            alive_wait: (off == 0).then_some(up.options.first_chunk_timeout),
            // A chunk after the first may reach the device twice: it takes only the offset it
            // expects and answers any other copy with that offset.
            resend_within: off != 0,
            heard_losses: MAX_HEARD_LOSSES,
        };
        let request = Request {
            op: Op::Write,
            group: group::IMAGE,
            id: img_cmd::UPLOAD,
            body,
        };
        let rsp = self.request_retrying(
            &request,
            &up.options.chunk_request(),
            &patience,
            &mut up.report.retries,
        )?;
        up.report.chunks += 1;
        up.take_answer(&rsp)
    }
}

fn unexpected(what: &str, body: &Value) -> SmpError {
    SmpError::UnexpectedResponse(format!("{what}: {}", render_value(body)))
}

/// Build the upload request body for the chunk starting at `off`, as large as fits `limit`
/// bytes of header + CBOR. The first chunk (off 0) carries `image`, `len` and `sha`; `data` is
/// last so transcripts stay readable.
fn upload_chunk(
    image: u32,
    data: &[u8],
    sha: &[u8],
    off: usize,
    limit: usize,
) -> Result<Value, SmpError> {
    let first = off == 0;
    let build = |n: usize| {
        let mut e = vec![("off", uint(off as u64))];
        if first {
            e.push(("image", uint(image as u64)));
            e.push(("len", uint(data.len() as u64)));
            e.push(("sha", Value::Bytes(sha.to_vec())));
        }
        e.push(("data", Value::Bytes(data[off..off + n].to_vec())));
        map(e)
    };
    // Everything but the data bytes and their length head (an empty bstr head is 1 byte).
    let fixed = HEADER_LEN + cbor_len(&build(0)) - 1;
    let room = limit.saturating_sub(fixed);
    let mut n = room.saturating_sub(head_len(room as u64));
    while n + 1 + head_len(n as u64 + 1) <= room {
        n += 1;
    }
    let remaining = data.len() - off;
    let n = n.min(remaining);
    let min = if first {
        MIN_FIRST_CHUNK.min(remaining)
    } else {
        1
    };
    if n < min {
        return Err(SmpError::BufferTooSmall {
            max_packet: limit,
            needed: fixed + head_len(min as u64) + min,
        });
    }
    let body = build(n);
    debug_assert!(HEADER_LEN + cbor_len(&body) <= limit);
    Ok(body)
}

/// One packet as a protocol-analyser line (without time or direction):
/// `v2 W grp=IMAGE(1) id=UPLOAD(1) seq=5 len=380 {off: 4096, data: h'…'(354 B)}`.
pub fn format_packet(p: &Packet) -> String {
    let h = &p.header;
    let grp = match group_name(h.group) {
        Some(n) => format!("{n}({})", h.group),
        None => h.group.to_string(),
    };
    let id = match command_name(h.group, h.id) {
        Some(n) => format!("{n}({})", h.id),
        None => h.id.to_string(),
    };
    let body = match &p.body {
        Value::Null => "(empty)".to_string(),
        b => render_value(b),
    };
    format!(
        "v{} {} grp={grp} id={id} seq={} len={} {body}",
        h.version as u8 + 1,
        h.op.short(),
        h.seq,
        h.len
    )
}

/// Protocol-analyser style text for one exchange: the request line (`→`), then the response
/// (`←`) or the failure (`✗`), plus any packets discarded while waiting.
pub fn format_exchange(e: &Exchange) -> String {
    let mut s = format!(
        "+{:.3}s → {}",
        e.at.as_secs_f64(),
        format_packet(&e.request)
    );
    for d in &e.discarded {
        s.push_str(&format!("\n          (discarded {d})"));
    }
    if let Some(r) = &e.response {
        let t = e.response_at.unwrap_or(e.at);
        s.push_str(&format!(
            "\n+{:.3}s ← {}",
            t.as_secs_f64(),
            format_packet(r)
        ));
    }
    if let Some(err) = &e.error {
        let t = e.response_at.unwrap_or(e.at);
        s.push_str(&format!("\n+{:.3}s ✗ {err}", t.as_secs_f64()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::packet_pipe;
    use crate::packet::encode_cbor;

    #[test]
    fn chunk_sizes_are_exact() {
        let data = vec![0x5a; 300_000];
        let sha = Sha256::digest(&data).to_vec();
        for limit in [107usize, 120, 252, 380, 1020, 2044, 8192] {
            for off in [0usize, 1, 23, 24, 255, 256, 65535, 65536, 299_000] {
                let body = upload_chunk(0, &data, &sha, off, limit).unwrap();
                let size = HEADER_LEN + encode_cbor(&body).len();
                assert!(size <= limit, "limit {limit} off {off}: {size}");
                let n = map_bytes(&body, "data").unwrap().len();
                if off + n < data.len() {
                    // One more byte would not fit.
                    let bigger = HEADER_LEN
                        + cbor_len(&body)
                        + 1
                        + (head_len(n as u64 + 1) - head_len(n as u64));
                    assert!(bigger > limit, "limit {limit} off {off}: slack");
                }
            }
        }
        // First chunk overhead 69 + 32 bytes of header data: 101 is the minimum (Zephyr
        // `zephyr_img_mgmt.c`, `img_mgmt_upload_inspect`, wants the whole image header at once).
        let small = vec![0u8; 1000];
        let sha = Sha256::digest(&small).to_vec();
        // 8 + map 1 + off 5 + image 7 + len 7 + sha 38 + data key 5 + head 2 + 32 = 105.
        assert!(upload_chunk(0, &small, &sha, 0, 105).is_ok());
        assert!(matches!(
            upload_chunk(0, &small, &sha, 0, 104),
            Err(SmpError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn parse_state_full_and_frugal() {
        let full = map([
            (
                "images",
                Value::Array(vec![
                    map([
                        ("slot", uint(0)),
                        ("version", Value::Text("1.2.3".into())),
                        ("hash", Value::Bytes(vec![7; 32])),
                        ("bootable", Value::Bool(true)),
                        ("pending", Value::Bool(false)),
                        ("confirmed", Value::Bool(true)),
                        ("active", Value::Bool(true)),
                        ("permanent", Value::Bool(false)),
                        ("future_key", uint(1)),
                    ]),
                    map([
                        ("image", uint(1)),
                        ("slot", uint(1)),
                        ("pending", Value::Bool(true)),
                    ]),
                ]),
            ),
            ("splitStatus", uint(0)),
        ]);
        let s = parse_image_state(&full).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s[0].active && s[0].confirmed && s[0].bootable && !s[0].pending);
        assert_eq!(s[0].version, "1.2.3");
        assert_eq!(s[1].image, 1);
        assert!(s[1].pending && !s[1].bootable);
        assert!(parse_image_state(&map([])).is_err());
    }

    #[test]
    fn format_lines() {
        let req = Packet::request(
            Version::V2,
            Op::Write,
            group::IMAGE,
            img_cmd::UPLOAD,
            5,
            map([("off", uint(4096)), ("data", Value::Bytes(vec![1; 354]))]),
        );
        let mut req2 = req.clone();
        req2.header.len = (req.encode().len() - 8) as u16;
        let line = format_packet(&req2);
        assert_eq!(
            line,
            "v2 W grp=IMAGE(1) id=UPLOAD(1) seq=5 len=370 {off: 4096, data: h'01010101…'(354 B)}"
        );
        let ex = Exchange {
            at: Duration::from_millis(12),
            request: req2,
            response: None,
            error: Some("timeout after 2.500s".into()),
            response_at: None,
            discarded: vec![],
        };
        let t = format_exchange(&ex);
        assert!(t.starts_with("+0.012s → v2 W grp=IMAGE(1)"), "{t}");
        assert!(t.contains("✗ timeout"), "{t}");
    }

    #[test]
    fn a_passed_deadline_stops_requests_and_uploads_without_retries() {
        // A device that never answers: without a deadline the upload would retry each chunk.
        let (a, _dev) = packet_pipe(1024);
        let mut c = Client::new(a);
        c.set_timeout(Duration::from_secs(30));
        c.set_buf_size(Some(512));
        c.set_deadline(Some((
            Instant::now() + Duration::from_millis(50),
            "step timeout 0.05 s".into(),
        )));
        let e = c.upload(0, &[7u8; 4096], &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(e, SmpError::Deadline(ref w) if w == "step timeout 0.05 s"),
            "{e}"
        );
        let e = c.echo("x").unwrap_err();
        assert!(matches!(e, SmpError::Deadline(_)), "{e}");
        assert!(!e.is_retryable());
        c.set_deadline(None);
        assert!(matches!(c.clip(Duration::from_secs(1)), Ok(d) if d == Duration::from_secs(1)));
    }

    #[test]
    fn request_matches_seq_and_reports_device_errors() {
        let (a, mut dev) = packet_pipe(1024);
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let raw = dev.recv(Duration::from_secs(10)).unwrap();
                let req = Packet::decode(&raw).unwrap();
                // A stale answer first, then the real one.
                let mut stale = req.header;
                stale.seq = stale.seq.wrapping_sub(1);
                dev.send(
                    &Packet::response_to(&stale, map([("r", Value::Text("old".into()))]))
                        .encode_zephyr(),
                )
                .unwrap();
                let body = if req.header.id == os_cmd::ECHO {
                    map([("r", map_get_text(&req.body, "d"))])
                } else {
                    map([("rc", uint(8))])
                };
                dev.send(&Packet::response_to(&req.header, body).encode_zephyr())
                    .unwrap();
            }
        });
        let mut c = Client::new(a);
        assert_eq!(c.echo("hi").unwrap(), "hi");
        let e = c.params().unwrap_err();
        assert!(
            matches!(e, SmpError::Device(crate::DeviceError::Mgmt { rc: 8 })),
            "{e}"
        );
        server.join().unwrap();
        assert_eq!(c.transcript().len(), 2);
        assert_eq!(c.transcript()[0].discarded.len(), 1);
        assert_eq!(c.transcript()[1].request.header.seq, 1);
        assert!(c.transcript()[1]
            .error
            .as_deref()
            .unwrap()
            .contains("NOT_SUPPORTED"));
        let text = c.transcript_text();
        assert!(text.contains("id=ECHO(0)"), "{text}");
        assert!(
            text.contains("← v2 WR grp=OS(0) id=ECHO(0) seq=0"),
            "{text}"
        );
    }

    fn map_get_text(v: &Value, k: &str) -> Value {
        Value::Text(map_text(v, k).unwrap_or("").to_string())
    }
}
