//! `smp` desk commands against a tiny SMP responder on loopback UDP (127.0.0.1 only).

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use clap::Parser;
use dfu_hil_cli::error::finish;
use dfu_hil_cli::smp_cmd::{run_smp_to, SmpArgs};
use dfu_hil_runner::exit::Exit;
use dfu_hil_smp::{
    group, img_cmd, map, map_bytes, map_text, map_uint, os_cmd, uint, Packet, Value,
};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    smp: SmpArgs,
}

#[derive(Default)]
struct Device {
    image: Vec<u8>,
    len: usize,
    uploads: usize,
}

/// Echo, params (1024 × 4), image state, a minimal upload, reset; state write → NOT_SUPPORTED.
fn spawn_responder() -> (String, Arc<Mutex<Device>>, JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let dev = Arc::new(Mutex::new(Device::default()));
    let d = dev.clone();
    let h = std::thread::spawn(move || {
        sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let req = Packet::decode(&buf[..n]).unwrap();
            if req.header.group == 0xffff {
                break; // test is done
            }
            let mut d = d.lock().unwrap();
            let body = match (req.header.group, req.header.id, req.header.op as u8) {
                (group::OS, os_cmd::ECHO, _) => map([(
                    "r",
                    Value::Text(map_text(&req.body, "d").unwrap_or("").into()),
                )]),
                (group::OS, os_cmd::PARAMS, _) => {
                    map([("buf_size", uint(1024)), ("buf_count", uint(4))])
                }
                (group::OS, os_cmd::RESET, _) => map([]),
                (group::OS, os_cmd::INFO, _) => map([("output", Value::Text("Zephyr".into()))]),
                (group::IMAGE, img_cmd::STATE, 0) => map([(
                    "images",
                    Value::Array(vec![map([
                        ("slot", uint(0)),
                        ("version", Value::Text("1.0.0".into())),
                        ("hash", Value::Bytes(vec![0xab; 32])),
                        ("bootable", Value::Bool(true)),
                        ("confirmed", Value::Bool(true)),
                        ("active", Value::Bool(true)),
                    ])]),
                )]),
                (group::IMAGE, img_cmd::UPLOAD, _) => {
                    d.uploads += 1;
                    let off = map_uint(&req.body, "off").unwrap() as usize;
                    if off == 0 {
                        d.len = map_uint(&req.body, "len").unwrap() as usize;
                        d.image.clear();
                    }
                    if off == d.image.len() {
                        let data = map_bytes(&req.body, "data").unwrap().to_vec();
                        d.image.extend_from_slice(&data);
                    }
                    map([("off", uint(d.image.len() as u64))])
                }
                _ => map([("rc", uint(8))]),
            };
            let rsp = Packet::response_to(&req.header, body).encode_zephyr();
            sock.send_to(&rsp, from).unwrap();
        }
    });
    (addr, dev, h)
}

fn stop(addr: &str, h: JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&[0x08, 0, 0, 0, 0xff, 0xff, 0, 0], addr).unwrap();
    h.join().unwrap();
}

fn run(args: &[&str]) -> (Exit, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("smp").chain(args.iter().copied())).unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let r = run_smp_to(cli.smp, &mut out, &mut err, false);
    let code = Exit::from_code(finish(r, &mut err).into()).expect("a code of the table");
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn desk_commands_over_udp() {
    let (addr, dev, h) = spawn_responder();
    let a = addr.as_str();

    let (code, out, _) = run(&["--udp", a, "os", "echo", "hello board"]);
    assert_eq!((code, out.as_str()), (Exit::Pass, "hello board\n"));

    let (code, out, _) = run(&["--udp", a, "os", "params"]);
    assert_eq!(code, Exit::Pass);
    assert_eq!(out, "buf_size 1024  buf_count 4\n");

    let (code, out, _) = run(&["--udp", a, "os", "info", "--format", "s"]);
    assert_eq!((code, out.trim()), (Exit::Pass, "Zephyr"));

    let (code, out, _) = run(&["--udp", a, "image", "list"]);
    assert_eq!(code, Exit::Pass);
    assert!(out.contains("slot 0  version 1.0.0"), "{out}");
    assert!(out.contains(&"ab".repeat(32)), "{out}");
    assert!(out.contains("[active confirmed bootable]"), "{out}");

    let (code, out, _) = run(&["--udp", a, "os", "reset", "--force"]);
    assert_eq!((code, out.trim()), (Exit::Pass, "reset requested"));

    // Upload a fake signed image (MCUboot magic first): windowed, with plain progress lines.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.signed.bin");
    let mut img: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    img[..4].copy_from_slice(&[0x3d, 0xb8, 0xf3, 0x96]);
    std::fs::write(&file, &img).unwrap();
    let (code, out, err) = run(&["--udp", a, "image", "upload", file.to_str().unwrap()]);
    assert_eq!(code, Exit::Pass, "{err}");
    assert!(out.starts_with("uploaded 20000 B"), "{out}");
    assert!(out.contains("window 3"), "{out}");
    assert!(err.contains("upload 100% 20000/20000 B"), "{err}");
    assert_eq!(dev.lock().unwrap().image, img);

    // The device answers state write with NOT_SUPPORTED: exit 100 with the name.
    let hash = "ab".repeat(32);
    let (code, _, err) = run(&["--udp", a, "image", "test", &hash]);
    assert_eq!(code, Exit::ScenarioFailed);
    assert!(err.contains("NOT_SUPPORTED"), "{err}");

    // Bad input never reaches the device.
    let before = dev.lock().unwrap().uploads;
    let (code, _, err) = run(&["--udp", a, "image", "test", "abcd"]);
    assert_eq!(code, Exit::InvalidInput);
    assert!(err.contains("32 bytes"), "{err}");
    let raw = dir.path().join("app.bin");
    std::fs::write(&raw, [0u8; 100]).unwrap();
    let (code, _, err) = run(&["--udp", a, "image", "upload", raw.to_str().unwrap()]);
    assert_eq!(code, Exit::InvalidInput);
    assert!(err.contains("not a signed MCUboot image"), "{err}");
    assert_eq!(dev.lock().unwrap().uploads, before);

    stop(a, h);
}

#[test]
fn unavailable_links() {
    let (code, _, err) = run(&["--port", "/dev/serial/by-id/no-such-board", "os", "params"]);
    assert_eq!(code, Exit::Infrastructure);
    assert!(err.contains("no-such-board"), "{err}");

    // A UDP port nobody answers on: no answer → link unavailable.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = silent.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["--udp", &target, "--timeout", "0.3", "os", "echo", "x"]);
    assert_eq!(code, Exit::Infrastructure);
    assert!(err.contains("no answer within 0.3 s"), "{err}");

    // An upload to a dead link fails within --timeout per request (params, then three tries
    // of the first chunk), not the slot-erase wait of a device known to be there.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.signed.bin");
    let mut img = vec![0u8; 4_000];
    img[..4].copy_from_slice(&[0x3d, 0xb8, 0xf3, 0x96]);
    std::fs::write(&file, &img).unwrap();
    let t0 = std::time::Instant::now();
    let (code, _, err) = run(&[
        "--udp",
        &target,
        "--timeout",
        "0.3",
        "image",
        "upload",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Exit::Infrastructure);
    assert!(err.contains("no answer within 0.3 s"), "{err}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t0.elapsed()
    );

    #[cfg(not(feature = "ble"))]
    {
        let (code, _, err) = run(&["--ble", "my-board", "os", "params"]);
        assert_eq!(code, Exit::Infrastructure);
        assert!(err.contains("no BLE support"), "{err}");
    }
}
