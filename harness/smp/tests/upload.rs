//! Client upload against a tiny fake device over an in-memory serial link.
//!
//! The fake speaks the device side of the framing (`serial::encode_zephyr`,
//! `DeviceLineDecoder` with a NETBUF limit) and a minimal img_mgmt upload state machine, and it
//! checks every request it receives. Misbehaviours are switched on per test.

use std::thread::JoinHandle;
use std::time::Duration;

use dfu_hil_smp::mem::{pipe, PipeEnd};
use dfu_hil_smp::serial::{self, DeviceLineDecoder};
use dfu_hil_smp::transport::{ByteStream, Transport};
use dfu_hil_smp::{
    group, img_cmd, map, map_bytes, map_uint, os_cmd, uint, Client, DeviceError, Packet,
    SerialTransport, SmpError, Value,
};
use sha2::{Digest, Sha256};

#[derive(Clone, Default)]
struct Faults {
    /// `None`: the params command is not supported (rc 8).
    buf_size: Option<u32>,
    /// Forget the upload session after handling this upload request (1-based).
    lose_session_after: Option<usize>,
    /// Ignore this upload request entirely (as a silently dropped frame).
    drop_request: Option<usize>,
    /// Process this upload request but send no answer (answer lost).
    swallow_response: Option<usize>,
    /// Send a stale duplicate of the previous response before each answer.
    stale_duplicates: bool,
    /// Answer the first upload request with this image-group error.
    first_error: Option<u32>,
    /// Log text written between responses.
    chatter: bool,
    /// Model the UART's line buffers (`CONFIG_UART_MCUMGR_RX_BUF_COUNT`): lines beyond this
    /// many in one burst of received bytes are dropped. `None`: unlimited.
    line_count: Option<usize>,
}

#[derive(Debug, Default)]
struct Seen {
    image: Vec<u8>,
    complete: bool,
    upload_requests: usize,
    first_chunks: usize,
    largest_request: usize,
    limit_violations: usize,
    dropped_frames: u64,
    /// Lines dropped for want of a free line buffer.
    no_buffer: u64,
    /// Image bytes received in upload requests, resends included.
    data_bytes: usize,
    /// Image list requests answered.
    image_lists: usize,
}

struct Session {
    sha: Vec<u8>,
    len: usize,
    buf: Vec<u8>,
}

fn spawn_device(mut end: PipeEnd, f: Faults) -> JoinHandle<Seen> {
    std::thread::spawn(move || {
        let netbuf = f.buf_size.unwrap_or(384) as usize;
        let mut dec = DeviceLineDecoder::new();
        dec.set_netbuf_size(Some(netbuf));
        dec.set_line_count(f.line_count);
        let mut seen = Seen::default();
        let mut session: Option<Session> = None;
        let mut last_rsp: Option<Vec<u8>> = None;
        let mut buf = [0u8; 512];
        // Ends when the client hangs up.
        while let Ok(n) = end.read(&mut buf, Duration::from_millis(50)) {
            for raw in dec.push(&buf[..n]) {
                seen.largest_request = seen.largest_request.max(raw.len());
                if raw.len() > netbuf - 4 {
                    seen.limit_violations += 1;
                }
                let req = Packet::decode(&raw).expect("device got an undecodable request");
                let body = match (req.header.group, req.header.id) {
                    (group::OS, os_cmd::PARAMS) => match f.buf_size {
                        Some(b) => map([("buf_size", uint(b as u64)), ("buf_count", uint(4))]),
                        None => map([("rc", uint(8))]),
                    },
                    (group::IMAGE, img_cmd::UPLOAD) => {
                        seen.upload_requests += 1;
                        let k = seen.upload_requests;
                        if f.drop_request == Some(k) {
                            continue;
                        }
                        let rsp = upload(&req.body, &mut session, &mut seen, &f);
                        if f.lose_session_after == Some(k) {
                            session = None;
                        }
                        if f.swallow_response == Some(k) {
                            continue;
                        }
                        rsp
                    }
                    (group::IMAGE, img_cmd::STATE) => {
                        seen.image_lists += 1;
                        image_list(&seen)
                    }
                    _ => map([("rc", uint(8))]),
                };
                if f.stale_duplicates {
                    if let Some(old) = &last_rsp {
                        end.write_all(old).unwrap();
                    }
                }
                if f.chatter {
                    end.write_all(b"[00:00:01.000] <inf> img: chunk\r\n")
                        .unwrap();
                }
                let wire =
                    serial::encode_zephyr(&Packet::response_to(&req.header, body).encode_zephyr());
                if end.write_all(&wire).is_err() {
                    break;
                }
                last_rsp = Some(wire);
            }
        }
        seen.dropped_frames = dec.stats().total();
        seen.no_buffer = dec.stats().no_buffer;
        seen
    })
}

/// Minimal img_mgmt upload semantics (Zephyr `img_mgmt.c` `img_mgmt_upload`, `zephyr_img_mgmt.c`
/// `img_mgmt_upload_inspect`).
fn upload(body: &Value, session: &mut Option<Session>, seen: &mut Seen, f: &Faults) -> Value {
    let Some(off) = map_uint(body, "off") else {
        return group_err(20);
    };
    let off = off as usize;
    let data = map_bytes(body, "data").unwrap_or(&[]).to_vec();
    seen.data_bytes += data.len();
    if off == 0 {
        seen.first_chunks += 1;
        if let Some(rc) = f.first_error {
            if seen.first_chunks == 1 {
                return group_err(rc);
            }
        }
        if data.len() < 32 {
            return group_err(22);
        }
        let Some(len) = map_uint(body, "len") else {
            return group_err(21);
        };
        let sha = map_bytes(body, "sha").unwrap_or(&[]).to_vec();
        assert_eq!(sha.len(), 32, "client must send the full 32-byte sha");
        if let Some(s) = session {
            if s.sha == sha {
                // Resume: nothing erased, tell the client where we are.
                return map([("off", uint(s.buf.len() as u64))]);
            }
        }
        *session = Some(Session {
            sha,
            len: len as usize,
            buf: Vec::new(),
        });
    }
    let Some(s) = session else {
        return map([("off", uint(0))]);
    };
    if off != s.buf.len() {
        return map([("off", uint(s.buf.len() as u64))]);
    }
    if off + data.len() > s.len {
        return group_err(31);
    }
    s.buf.extend_from_slice(&data);
    let mut rsp = vec![("off", uint(s.buf.len() as u64))];
    if s.buf.len() == s.len {
        let matched = Sha256::digest(&s.buf).to_vec() == s.sha;
        rsp.push(("match", Value::Bool(matched)));
        seen.image = std::mem::take(&mut s.buf);
        seen.complete = true;
        *session = None;
    }
    map(rsp)
}

/// The secondary slot once an upload completed, with the image's hash TLV as Zephyr's
/// `img_mgmt_state_read` reports it (no slot when the image is not an MCUboot image).
fn image_list(seen: &Seen) -> Value {
    let mut slots = Vec::new();
    if seen.complete {
        if let Some(h) = dfu_hil_mcuboot::image::Image::parse(&seen.image)
            .ok()
            .and_then(|i| i.hash_tlv().map(<[u8]>::to_vec))
        {
            slots.push(map([
                ("image", uint(0)),
                ("slot", uint(1)),
                ("hash", Value::Bytes(h)),
                ("pending", Value::Bool(false)),
            ]));
        }
    }
    map([("images", Value::Array(slots))])
}

fn group_err(rc: u32) -> Value {
    map([("err", map([("group", uint(1)), ("rc", uint(rc as u64))]))])
}

fn image(n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect();
    v[..4].copy_from_slice(&[0x3d, 0xb8, 0xf3, 0x96]);
    v
}

/// A minimal MCUboot image of `n` bytes in all: 32-byte header, body, and a TLV area with
/// only the SHA-256 TLV — enough for the device's image list to report its hash.
fn mcuboot_image(n: usize) -> Vec<u8> {
    let body_len = n - 32 - 40;
    let mut v = Vec::with_capacity(n);
    v.extend_from_slice(&0x96f3_b83du32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes()); // load address
    v.extend_from_slice(&32u16.to_le_bytes()); // hdr_size
    v.extend_from_slice(&0u16.to_le_bytes()); // protected TLV size
    v.extend_from_slice(&(body_len as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes()); // flags
    v.extend_from_slice(&[1, 2, 3, 0, 0, 0, 0, 0]); // version 1.2.3
    v.extend_from_slice(&[0; 4]);
    v.extend((0..body_len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1]));
    let hash = Sha256::digest(&v).to_vec();
    v.extend_from_slice(&0x6907u16.to_le_bytes());
    v.extend_from_slice(&40u16.to_le_bytes());
    v.extend_from_slice(&0x10u16.to_le_bytes());
    v.extend_from_slice(&32u16.to_le_bytes());
    v.extend_from_slice(&hash);
    assert_eq!(v.len(), n);
    v
}

type Report = Result<dfu_hil_smp::UploadReport, SmpError>;

/// Upload `data` to a fake device with faults `f`; returns the result, what the device saw
/// and the progress calls. The client is dropped (hanging up the pipe) before joining.
fn run(
    f: Faults,
    data: &[u8],
    tweak: impl FnOnce(&mut Client<SerialTransport<PipeEnd>>),
) -> (Report, Seen, Vec<(usize, usize)>) {
    let (host, dev) = pipe();
    let limited = f.line_count.is_some();
    let device = spawn_device(dev, f);
    let mut client = Client::new(SerialTransport::new(host));
    if !limited {
        unlimited_lines(&mut client);
    }
    tweak(&mut client);
    let mut progress = Vec::new();
    let res = client.upload(0, data, &mut |a, b| progress.push((a, b)));
    drop(client);
    let seen = device.join().unwrap();
    (res, seen, progress)
}

/// Tell the client that the fake device (without `line_count`) takes requests of any number of
/// lines, so a test looks at buf_size and window rules alone.
fn unlimited_lines(c: &mut Client<SerialTransport<PipeEnd>>) {
    c.transport_mut().set_line_limits(
        dfu_hil_smp::LineLimits::new(128, 64).unwrap(),
        "fake device without line limits",
    );
}

#[test]
fn upload_fits_buf_size_and_reassembles() {
    let data = image(10_000);
    let (host, dev) = pipe();
    let device = spawn_device(
        dev,
        Faults {
            buf_size: Some(256),
            chatter: true,
            ..Faults::default()
        },
    );
    let mut client = Client::new(SerialTransport::new(host));
    unlimited_lines(&mut client);
    let mut progress = Vec::new();
    let report = client
        .upload(0, &data, &mut |a, b| progress.push((a, b)))
        .unwrap();
    let noise = client.transport_mut().take_noise();
    let transcript = client.transcript_text();
    drop(client);
    let seen = device.join().unwrap();

    assert!(seen.complete);
    assert_eq!(seen.image, data);
    assert_eq!(seen.limit_violations, 0);
    assert_eq!(seen.dropped_frames, 0);
    assert_eq!(
        seen.largest_request, 252,
        "chunks should fill buf_size - 4 exactly"
    );
    assert_eq!(report.packet_limit, 252);
    assert_eq!(report.bytes, data.len());
    assert_eq!(report.retries, 0);
    assert_eq!(report.matched, Some(true));
    assert_eq!(report.chunks, progress.len());
    assert_eq!(progress.last(), Some(&(data.len(), data.len())));
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(String::from_utf8_lossy(&noise).contains("<inf> img: chunk"));
    assert!(
        transcript.contains("grp=OS(0) id=PARAMS(6)"),
        "{transcript}"
    );
    assert!(transcript.contains("id=UPLOAD(1)"));
}

#[test]
fn no_params_defaults_to_384() {
    let data = image(3_000);
    let (res, seen, _) = run(Faults::default(), &data, |_| {});
    let report = res.unwrap();
    assert_eq!(report.packet_limit, 380);
    assert_eq!(seen.image, data);
    assert_eq!(seen.largest_request, 380);
    assert_eq!(seen.limit_violations, 0);
}

#[test]
fn session_lost_midway_restarts_with_first_chunk_fields() {
    let data = image(6_000);
    let f = Faults {
        buf_size: Some(512),
        lose_session_after: Some(4),
        ..Faults::default()
    };
    let (res, seen, progress) = run(f, &data, |_| {});
    let report = res.unwrap();
    assert_eq!(seen.image, data);
    assert_eq!(
        seen.first_chunks, 2,
        "first-chunk fields must be resent after off 0"
    );
    assert_eq!(report.restarts, 1);
    assert!(
        progress.iter().any(|&(off, _)| off == 0),
        "progress reports the restart"
    );
    assert_eq!(seen.limit_violations, 0);
}

#[test]
fn dropped_request_is_retried() {
    let data = image(4_000);
    let f = Faults {
        buf_size: Some(384),
        drop_request: Some(3),
        ..Faults::default()
    };
    let (res, seen, _) = run(f, &data, |c| {
        c.set_timeout(Duration::from_millis(300));
        c.set_first_chunk_timeout(Duration::from_millis(300));
    });
    let report = res.unwrap();
    assert_eq!(report.retries, 1);
    assert_eq!(seen.image, data);
}

#[test]
fn lost_first_answer_resumes_without_new_session() {
    let data = image(4_000);
    let f = Faults {
        buf_size: Some(384),
        swallow_response: Some(1),
        stale_duplicates: true,
        ..Faults::default()
    };
    let (res, seen, _) = run(f, &data, |c| {
        c.set_timeout(Duration::from_millis(300));
        c.set_first_chunk_timeout(Duration::from_millis(300));
    });
    let report = res.unwrap();
    assert_eq!(report.retries, 1);
    // The resent first chunk matched the session's sha: the fake resumed it.
    assert_eq!(seen.first_chunks, 2);
    assert_eq!(seen.image, data);
}

#[test]
fn three_timeouts_give_up() {
    let data = image(2_000);
    let (host, dev) = pipe();
    // A "device" that never answers.
    let sink = std::thread::spawn(move || {
        let mut dev = dev;
        let mut buf = [0u8; 256];
        while dev.read(&mut buf, Duration::from_millis(50)).is_ok() {}
    });
    let mut client = Client::new(SerialTransport::new(host));
    client.set_buf_size(Some(384));
    client.set_timeout(Duration::from_millis(100));
    client.set_first_chunk_timeout(Duration::from_millis(100));
    let err = client.upload(0, &data, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, SmpError::Timeout), "{err}");
    assert_eq!(client.transcript().len(), 3);
    assert!(client.transcript().iter().all(|e| e.error.is_some()));
    drop(client);
    sink.join().unwrap();
}

#[test]
fn device_error_is_reported_with_name() {
    let data = image(2_000);
    let f = Faults {
        buf_size: Some(384),
        first_error: Some(9),
        ..Faults::default()
    };
    let (res, _, _) = run(f, &data, |_| {});
    match res {
        Err(SmpError::Device(DeviceError::Group { group: 1, rc: 9 })) => {}
        other => panic!("expected NO_FREE_SLOT, got {other:?}"),
    }
}

// --- Windowed (pipelined) upload -------------------------------------------------------------
// The fake answers params with buf_count 4, so the automatic window is 3 (buf_count − 1).

fn fast<T: Transport>(c: &mut Client<T>) {
    c.set_timeout(Duration::from_millis(300));
    c.set_first_chunk_timeout(Duration::from_millis(300));
}

#[test]
fn windowed_upload_uses_buf_count_minus_one() {
    let data = image(20_000);
    let f = Faults {
        buf_size: Some(384),
        ..Faults::default()
    };
    let (res, seen, progress) = run(f, &data, |c| {
        // params has not been asked yet: the window is unknown until the upload asks it.
        assert_eq!(c.upload_window(), 1);
    });
    let report = res.unwrap();
    assert_eq!(report.window, 3);
    assert_eq!(report.retries, 0);
    assert_eq!(report.restarts, 0);
    assert_eq!(report.matched, Some(true));
    assert_eq!(seen.image, data);
    assert_eq!(seen.limit_violations, 0);
    assert_eq!(seen.largest_request, 380);
    assert_eq!(seen.dropped_frames, 0);
    assert_eq!(report.chunks, progress.len());
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn window_is_settable_and_one_means_stop_and_wait() {
    let data = image(6_000);
    let f = Faults {
        buf_size: Some(384),
        drop_request: Some(4),
        ..Faults::default()
    };
    let (res, seen, _) = run(f, &data, |c| {
        fast(c);
        c.set_upload_window(Some(1));
    });
    let report = res.unwrap();
    assert_eq!(report.window, 1);
    assert_eq!(report.retries, 1);
    assert_eq!(seen.image, data);

    let f = Faults {
        buf_size: Some(384),
        ..Faults::default()
    };
    let (res, seen, _) = run(f, &data, |c| c.set_upload_window(Some(2)));
    assert_eq!(res.unwrap().window, 2);
    assert_eq!(seen.image, data);
}

#[test]
fn windowed_drop_mid_window_realigns_from_device_off() {
    // Request 3 (the second pipelined one) vanishes; request 4 reaches a device that still
    // expects request 3's offset, which it says; the client drains and resumes from there.
    let data = image(12_000);
    let f = Faults {
        buf_size: Some(384),
        drop_request: Some(3),
        ..Faults::default()
    };
    let (res, seen, _) = run(f, &data, fast);
    let report = res.unwrap();
    assert_eq!(seen.image, data);
    assert_eq!(report.retries, 1, "exactly the dropped request is counted");
    assert_eq!(report.restarts, 0);
    assert_eq!(seen.first_chunks, 1);
    assert_eq!(seen.limit_violations, 0);
}

#[test]
fn windowed_drop_of_last_request_times_out_and_realigns() {
    // The last request in flight vanishes: no later answer reveals it, only the timeout.
    let data = image(3_000);
    let f = Faults {
        buf_size: Some(384),
        ..Faults::default()
    };
    // 3000 bytes: first chunk 311 data bytes, then 354-byte chunks → 9 requests in all.
    let (res, _, _) = run(f.clone(), &data, |_| {});
    let n = res.unwrap().chunks;
    let f = Faults {
        drop_request: Some(n),
        ..f
    };
    let (host, dev) = pipe();
    let device = spawn_device(dev, f);
    let mut client = Client::new(SerialTransport::new(host));
    fast(&mut client);
    let report = client.upload(0, &data, &mut |_, _| {}).unwrap();
    let transcript = client.transcript_text();
    drop(client);
    let seen = device.join().unwrap();
    assert_eq!(seen.image, data);
    assert_eq!(report.retries, 1);
    assert!(transcript.contains("timeout after"), "{transcript}");
}

#[test]
fn windowed_session_lost_answers_off_zero_and_restarts() {
    let data = image(12_000);
    let f = Faults {
        buf_size: Some(384),
        lose_session_after: Some(5),
        ..Faults::default()
    };
    let (res, seen, progress) = run(f, &data, fast);
    let report = res.unwrap();
    assert_eq!(seen.image, data);
    assert_eq!(report.restarts, 1);
    assert_eq!(seen.first_chunks, 2, "len and sha resent after off 0");
    assert!(progress.iter().any(|&(off, _)| off == 0));
}

#[test]
fn windowed_lost_answer_is_covered_by_the_next() {
    // The device takes request 4 but its answer is lost; the answer to request 5 shows the
    // device is where the pipeline expected, so nothing is resent.
    let data = image(12_000);
    let f = Faults {
        buf_size: Some(384),
        swallow_response: Some(4),
        ..Faults::default()
    };
    let (res, seen, _) = run(f, &data, fast);
    let report = res.unwrap();
    assert_eq!(seen.image, data);
    assert_eq!(report.retries, 0);
}

#[test]
fn progress_carries_elapsed_for_rate_and_eta() {
    let data = image(8_000);
    let (host, dev) = pipe();
    let device = spawn_device(
        dev,
        Faults {
            buf_size: Some(512),
            ..Faults::default()
        },
    );
    let mut client = Client::new(SerialTransport::new(host));
    let mut seen = Vec::new();
    client
        .upload_with_progress(0, &data, &mut |p| seen.push(*p))
        .unwrap();
    drop(client);
    device.join().unwrap();
    let last = seen.last().unwrap();
    assert_eq!((last.sent, last.total), (data.len(), data.len()));
    assert!(seen.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
    assert_eq!(last.eta(), Some(Duration::ZERO));
}

#[test]
fn default_lines_fit_a_stock_zephyr_uart() {
    // Zephyr's defaults: 2 line buffers of 128 B, net_buf 384, 4 net_bufs. Requests sized from
    // buf_size (380 B = 5 lines) or pipelined by buf_count would never be answered.
    let data = image(6_000);
    let f = Faults {
        buf_size: Some(384),
        line_count: Some(2),
        ..Faults::default()
    };
    let (res, seen, _) = run(f, &data, fast);
    let report = res.unwrap();
    assert_eq!(seen.image, data);
    assert_eq!(report.packet_limit, 182);
    assert!(seen.largest_request <= 182, "{}", seen.largest_request);
    assert_eq!(
        report.window, 1,
        "two 2-line requests do not fit 2 line buffers"
    );
    assert_eq!(report.retries, 0);
    assert_eq!(seen.dropped_frames, 0);
}

#[test]
fn requests_beyond_the_device_lines_are_never_answered() {
    // The old belief: size requests from buf_size. A stock device drops them without a word.
    let data = image(6_000);
    let f = Faults {
        buf_size: Some(384),
        line_count: Some(2),
        ..Faults::default()
    };
    let (res, seen, _) = run(f, &data, |c| {
        fast(c);
        c.transport_mut()
            .set_line_limits(dfu_hil_smp::LineLimits::new(128, 8).unwrap(), "wrong");
    });
    assert!(matches!(res, Err(SmpError::Timeout)), "{res:?}");
    assert_eq!(seen.upload_requests, 0, "no request was ever complete");
    assert!(seen.no_buffer > 0);
}

#[test]
fn line_count_is_discovered_when_asked() {
    let data = image(6_000);
    let f = Faults {
        buf_size: Some(384),
        line_count: Some(3),
        ..Faults::default()
    };
    let (host, dev) = pipe();
    let device = spawn_device(dev, f);
    let mut client = Client::new(SerialTransport::new(host));
    fast(&mut client);
    client.set_discover_lines(true);
    let report = client.upload(0, &data, &mut |_, _| {}).unwrap();
    let limits = client.transport_mut().line_limits().unwrap();
    let describe = client.transport_mut().describe();
    drop(client);
    let seen = device.join().unwrap();
    assert_eq!(limits.line_count, 3, "{describe}");
    assert!(describe.contains("silent with 4"), "{describe}");
    assert_eq!(report.packet_limit, limits.max_packet());
    assert_eq!(seen.image, data);
}

// --- Link recovery (issue #16): a link that loses, corrupts and truncates --------------------

use dfu_hil_smp::faulty::{FaultStats, FaultyStream, LinkFaults};
use dfu_hil_smp::UploadOptions;
use std::time::Instant;

type FaultyClient = Client<SerialTransport<FaultyStream<PipeEnd>>>;

/// A client on the fake device `f` through a link broken as `faults` says.
fn faulty(
    f: Faults,
    faults: LinkFaults,
) -> (
    FaultyClient,
    JoinHandle<Seen>,
    std::sync::Arc<std::sync::Mutex<FaultStats>>,
) {
    let (host, dev) = pipe();
    let device = spawn_device(dev, f);
    let stream = FaultyStream::new(host, faults);
    let stats = stream.stats();
    let mut client = Client::new(SerialTransport::new(stream));
    client.transport_mut().set_line_limits(
        dfu_hil_smp::LineLimits::new(128, 64).unwrap(),
        "fake device without line limits",
    );
    (client, device, stats)
}

#[test]
fn a_dead_link_fails_within_the_timeout_not_the_erase_time() {
    // The first chunk may wait for a slot erase (40 s by default) only when the device is known
    // to be there; a link that never answered fails within timeout × (params + 3 tries).
    let data = mcuboot_image(4_000);
    let (mut c, device, _) = faulty(
        Faults {
            buf_size: Some(384),
            ..Faults::default()
        },
        LinkFaults {
            dead_after: Some(0),
            ..LinkFaults::default()
        },
    );
    c.set_timeout(Duration::from_millis(200));
    let t0 = Instant::now();
    let err = c.upload(0, &data, &mut |_, _| {}).unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(err, SmpError::Timeout), "{err}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(!c.has_answered());
    drop(c);
    device.join().unwrap();
}

#[test]
fn a_live_device_still_gets_the_erase_wait_for_the_first_chunk() {
    // The device answered params, so the first chunk's silence may be an erase: it waits the
    // first-chunk timeout once, then, the device having gone quiet, the plain timeout.
    let data = mcuboot_image(4_000);
    let (mut c, device, _) = faulty(
        Faults {
            buf_size: Some(384),
            ..Faults::default()
        },
        LinkFaults {
            dead_after: Some(1),
            ..LinkFaults::default()
        },
    );
    let options = UploadOptions {
        timeout: Duration::from_millis(100),
        first_chunk_timeout: Duration::from_millis(700),
        ..UploadOptions::default()
    };
    let t0 = Instant::now();
    let err = c.upload_with(0, &data, &options, &mut |_| {}).unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(err, SmpError::Timeout), "{err}");
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(1500),
        "took {took:?}"
    );
    assert!(c.has_answered());
    drop(c);
    device.join().unwrap();
}

#[test]
fn a_lone_erase_on_a_dead_link_fails_within_the_timeout() {
    // A slot erase may take the long erase wait only once the device is known to be there;
    // before this, `image erase` on a dead link waited 40 s per try.
    let (mut c, device, _) = faulty(
        Faults::default(),
        LinkFaults {
            dead_after: Some(0),
            ..LinkFaults::default()
        },
    );
    c.set_timeout(Duration::from_millis(200));
    let t0 = Instant::now();
    let err = c.image_erase(Some(1)).unwrap_err();
    assert!(matches!(err, SmpError::Timeout), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
    assert!(!c.has_answered());
    drop(c);
    device.join().unwrap();
}

#[test]
fn a_lone_erase_on_a_live_device_is_sent_after_the_device_answered() {
    // The fake device has no erase handler: its NOT_SUPPORTED proves the erase went out after
    // the liveness read was answered.
    let (mut c, device, _) = faulty(Faults::default(), LinkFaults::default());
    c.set_timeout(Duration::from_millis(500));
    let err = c.image_erase(Some(1)).unwrap_err();
    assert!(matches!(err, SmpError::Device(_)), "{err}");
    drop(c);
    let seen = device.join().unwrap();
    assert_eq!(seen.image_lists, 1);
}

#[test]
fn uploads_through_20_percent_log_noise_complete_10_of_10() {
    for seed in 1..=10u64 {
        let data = mcuboot_image(12_000);
        let (mut c, device, stats) = faulty(
            Faults {
                buf_size: Some(384),
                ..Faults::default()
            },
            LinkFaults {
                seed,
                noise_in_frame: 0.2,
                ..LinkFaults::default()
            },
        );
        fast(&mut c);
        let report = c.upload(0, &data, &mut |_, _| {});
        let transcript = c.transcript_text();
        drop(c);
        let seen = device.join().unwrap();
        let st = *stats.lock().unwrap();
        let report = report.unwrap_or_else(|e| panic!("seed {seed}: {e}\n{st:?}\n{transcript}"));
        assert_eq!(seen.image, data, "seed {seed}");
        assert!(
            report.window > 1,
            "seed {seed}: the windowed upload is the subject"
        );
        assert!(st.answers_noised > 0, "seed {seed}: {st:?}");
    }
}

#[test]
fn stop_and_wait_through_20_percent_noise_completes() {
    for seed in 1..=5u64 {
        let data = mcuboot_image(6_000);
        let (mut c, device, stats) = faulty(
            Faults {
                buf_size: Some(384),
                ..Faults::default()
            },
            LinkFaults {
                seed,
                noise_in_frame: 0.2,
                ..LinkFaults::default()
            },
        );
        fast(&mut c);
        c.set_upload_window(Some(1));
        let report = c.upload(0, &data, &mut |_, _| {});
        let transcript = c.transcript_text();
        drop(c);
        let seen = device.join().unwrap();
        let st = *stats.lock().unwrap();
        report.unwrap_or_else(|e| panic!("seed {seed}: {e}\n{st:?} {seen:?}\n{transcript}"));
        assert_eq!(seen.image, data, "seed {seed}");
    }
}

/// The number of upload requests a clean upload of `data` takes with `window`.
fn clean_requests(data: &[u8], window: usize) -> usize {
    let f = Faults {
        buf_size: Some(384),
        ..Faults::default()
    };
    let (res, seen, _) = run(f, data, |c| c.set_upload_window(Some(window)));
    res.unwrap();
    seen.upload_requests
}

#[test]
fn a_lost_answer_to_the_last_chunk_does_not_resend_the_image() {
    for window in [1usize, 3] {
        let data = mcuboot_image(6_000);
        let last = clean_requests(&data, window);
        let f = Faults {
            buf_size: Some(384),
            swallow_response: Some(last),
            ..Faults::default()
        };
        let (res, seen, _) = run(f, &data, |c| {
            fast(c);
            c.set_upload_window(Some(window));
        });
        let report = res.unwrap_or_else(|e| panic!("window {window}: {e}"));
        assert_eq!(seen.image, data);
        assert_eq!(
            seen.first_chunks, 1,
            "window {window}: the image was sent again"
        );
        assert_eq!(report.restarts, 0, "window {window}");
        // The whole image once, plus at most the resent last chunk.
        assert!(
            seen.data_bytes <= data.len() + 380,
            "window {window}: {} bytes sent for a {}-byte image",
            seen.data_bytes,
            data.len()
        );
        assert_eq!(
            seen.image_lists, 1,
            "window {window}: asked the device once"
        );
    }
}

#[test]
fn a_failed_upload_says_how_far_it_got() {
    // The link dies after 6 answers: params, the first chunk and four more.
    let data = mcuboot_image(6_000);
    let (mut c, device, _) = faulty(
        Faults {
            buf_size: Some(384),
            ..Faults::default()
        },
        LinkFaults {
            dead_after: Some(6),
            ..LinkFaults::default()
        },
    );
    fast(&mut c);
    c.set_upload_window(Some(1));
    let err = c.upload(0, &data, &mut |_, _| {}).unwrap_err();
    drop(c);
    device.join().unwrap();
    let SmpError::UploadStopped {
        acked,
        total,
        last_off,
        answers,
        ref cause,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(total, 6_000);
    assert!(acked > 0 && acked < total && last_off == acked, "{err}");
    assert_eq!(answers, 5, "{err}");
    assert!(matches!(**cause, SmpError::Timeout), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("{acked} of 6000 bytes")), "{text}");
    assert!(matches!(err.cause(), SmpError::Timeout));
}

#[test]
fn a_lost_answer_to_image_list_is_sent_again_within_the_timeout() {
    let (mut c, device, stats) = faulty(
        Faults::default(),
        LinkFaults {
            drop_answers: vec![1],
            // The next answer is cut before its newline: junk is left in front of the third.
            truncate_answers: vec![3],
            ..LinkFaults::default()
        },
    );
    c.set_timeout(Duration::from_millis(800));
    let t0 = Instant::now();
    assert!(c.image_state().unwrap().is_empty());
    assert!(t0.elapsed() < Duration::from_millis(800));
    // The third answer is truncated; its resend is answered, and junk does not break the
    // fourth command.
    assert!(c.image_state().unwrap().is_empty());
    assert!(c.image_state().unwrap().is_empty());
    let text = c.transcript_text();
    assert_eq!(c.transcript().len(), 3, "{text}");
    assert!(text.contains("sent again as seq"), "{text}");
    drop(c);
    let seen = device.join().unwrap();
    assert_eq!(seen.image_lists, 5);
    let st = *stats.lock().unwrap();
    assert_eq!((st.answers_dropped, st.answers_truncated), (1, 1));
}

#[test]
fn a_stale_answer_does_not_fail_the_next_command() {
    // Every answer comes with a copy of the previous one first (a late answer to an earlier
    // request): matched by sequence number, it is discarded.
    let (mut c, device, _) = faulty(
        Faults {
            stale_duplicates: true,
            ..Faults::default()
        },
        LinkFaults::default(),
    );
    for _ in 0..3 {
        assert!(c.image_state().unwrap().is_empty());
    }
    assert!(c
        .transcript()
        .iter()
        .skip(1)
        .all(|e| e.discarded.len() == 1));
    drop(c);
    device.join().unwrap();
}
