//! Per-call options: what one call is given does not outlive it.
//!
//! The regression behind issue #14: options were client state changed around a call (a
//! power-cut upload's short timeout and single try) and restored by hand, so a missed restore
//! silently changed every later request. Here each call carries its own options, and the calls
//! after it run with theirs.

use std::time::Duration;

use dfu_hil_smp::client::{RequestOptions, UploadOptions};
use dfu_hil_smp::mem::{packet_pipe, PacketEnd};
use dfu_hil_smp::transport::Transport;
use dfu_hil_smp::{group, img_cmd, map, map_bytes, map_text, map_uint, os_cmd, uint};
use dfu_hil_smp::{Client, Packet, SmpError, Value};

/// What the fake device does, by the order of the requests of each kind (1-based).
#[derive(Clone, Default)]
struct Script {
    /// Upload requests that get no answer (a dropped frame).
    drop_uploads: Vec<usize>,
    /// Echo requests answered only after this long.
    slow_echo: Duration,
}

/// A device with one upload buffer (window 1) and a 512-byte SMP buffer; it hangs up when the
/// client does. Returns the kinds of request it saw, in order.
fn spawn_device(mut dev: PacketEnd, script: Script) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let (mut uploads, mut off) = (0usize, 0usize);
        while let Ok(raw) = dev.recv(Duration::from_secs(30)) {
            let Ok(req) = Packet::decode(&raw) else {
                continue;
            };
            let body = match (req.header.group, req.header.id) {
                (group::OS, os_cmd::PARAMS) => {
                    seen.push("params".to_string());
                    map([("buf_size", uint(512)), ("buf_count", uint(1))])
                }
                (group::OS, os_cmd::ECHO) => {
                    seen.push("echo".to_string());
                    std::thread::sleep(script.slow_echo);
                    let d = map_text(&req.body, "d").unwrap_or("").to_string();
                    map([("r", Value::Text(d))])
                }
                (group::IMAGE, img_cmd::UPLOAD) => {
                    uploads += 1;
                    seen.push(format!("upload {uploads}"));
                    if script.drop_uploads.contains(&uploads) {
                        continue;
                    }
                    let at = map_uint(&req.body, "off").unwrap_or(0) as usize;
                    if at == 0 || at == off {
                        off = at + map_bytes(&req.body, "data").map_or(0, <[u8]>::len);
                    }
                    map([("rc", uint(0)), ("off", uint(off as u64))])
                }
                _ => map([("rc", uint(8))]),
            };
            if dev
                .send(&Packet::response_to(&req.header, body).encode_zephyr())
                .is_err()
            {
                break;
            }
        }
        seen
    })
}

/// A power-cut style upload: nothing is expected to answer late, so wait little, try once.
fn impatient() -> UploadOptions {
    UploadOptions {
        timeout: Duration::from_millis(150),
        first_chunk_timeout: Duration::from_millis(150),
        tries: 1,
        window: Some(1),
        buf_size: Some(512),
        ..UploadOptions::default()
    }
}

#[test]
fn an_uploads_options_do_not_outlive_it() {
    let (host, dev) = packet_pipe(1024);
    let device = spawn_device(
        dev,
        Script {
            // The second upload's second request (the 4th upload request in all) is lost.
            drop_uploads: vec![4],
            slow_echo: Duration::from_millis(400),
        },
    );
    let image = vec![0x5a_u8; 1200];
    let mut c = Client::with_request_options(host, RequestOptions::timeout(Duration::from_secs(2)));

    // Upload A: 150 ms, one try, a buffer size given instead of asking params.
    let a = c.upload_with(0, &image, &impatient(), &mut |_| {}).unwrap();
    assert_eq!(a.retries, 0);

    // A plain request afterwards waits the client's 2 s, not A's 150 ms.
    assert_eq!(c.echo("still patient").unwrap(), "still patient");

    // Upload B: its own 300 ms and three tries survive the lost request that A's single try
    // would not, and without A's buffer size it asks the device.
    let b_opts = UploadOptions {
        timeout: Duration::from_millis(300),
        first_chunk_timeout: Duration::from_millis(300),
        window: Some(1),
        ..UploadOptions::default()
    };
    let b = c.upload_with(0, &image, &b_opts, &mut |_| {}).unwrap();
    assert_eq!(b.retries, 1, "{}", c.transcript_text());
    let text = c.transcript_text();
    assert!(text.contains("timeout after 0.300s"), "{text}");
    assert!(!text.contains("timeout after 0.150s"), "{text}");

    drop(c);
    let seen = device.join().unwrap();
    let params: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == "params").collect();
    let echo = seen.iter().position(|s| s == "echo").unwrap();
    assert_eq!(params.len(), 1, "{seen:?}");
    assert!(params[0] > echo, "params asked only for upload B: {seen:?}");
}

#[test]
fn request_options_retry_only_what_they_are_given() {
    let (host, dev) = packet_pipe(1024);
    let device = spawn_device(
        dev,
        Script {
            slow_echo: Duration::from_millis(300),
            ..Script::default()
        },
    );
    let mut c = Client::new(host);
    let quick = RequestOptions {
        timeout: Duration::from_millis(100),
        tries: 2,
    };
    let body = map([("d", Value::Text("x".into()))]);
    let e = c
        .request_with(
            &quick,
            dfu_hil_smp::Op::Write,
            group::OS,
            os_cmd::ECHO,
            body,
        )
        .unwrap_err();
    assert!(matches!(e, SmpError::Timeout), "{e}");
    assert_eq!(c.transcript().len(), 2, "two attempts");
    // The client's own options are untouched: the next echo waits the default 2.5 s.
    assert_eq!(c.request_options(), RequestOptions::default());
    assert_eq!(c.echo("y").unwrap(), "y");
    drop(c);
    device.join().unwrap();
}
