//! Real OS links: SMP over a PTY opened with the `serialport` crate, and over loopback UDP.
//! Each test runs a tiny responder thread on the other end (127.0.0.1 only).

use std::fs::File;
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::os::fd::FromRawFd;
use std::time::Duration;

use dfu_hil_smp::serial::{self, DeviceLineDecoder};
use dfu_hil_smp::{
    group, map, map_text, open_serial, os_cmd, uint, Client, Packet, Transport, UdpTransport, Value,
};

/// Answer echo with the text, params with 256/4, everything else with ENOTSUP.
fn answer(req: &Packet) -> Value {
    match (req.header.group, req.header.id) {
        (group::OS, os_cmd::ECHO) => map([(
            "r",
            Value::Text(map_text(&req.body, "d").unwrap_or("").to_string()),
        )]),
        (group::OS, os_cmd::PARAMS) => map([("buf_size", uint(256)), ("buf_count", uint(4))]),
        _ => map([("rc", uint(8))]),
    }
}

/// A PTY pair: (master as a File, slave path, slave fd — close it once the port is open).
fn openpty() -> (File, String, libc::c_int) {
    let mut master = 0;
    let mut slave = 0;
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    let mut name = [0 as libc::c_char; 128];
    let rc = unsafe { libc::ttyname_r(slave, name.as_mut_ptr(), name.len()) };
    assert_eq!(rc, 0);
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let master = unsafe { File::from_raw_fd(master) };
    (master, path, slave)
}

#[test]
fn smp_over_a_pty_through_serialport() {
    let (mut master, path, slave) = openpty();
    let mut port = open_serial(&path, 115_200).expect("open the PTY slave as a serial port");
    unsafe { libc::close(slave) };
    let responder = std::thread::spawn(move || {
        let mut dec = DeviceLineDecoder::new();
        let mut buf = [0u8; 512];
        let mut answered = 0;
        // Hanging up the master would discard the last answer unread, so the responder runs
        // until the client closes its end.
        loop {
            let n = match master.read(&mut buf) {
                // EIO once the client closed the slave: done.
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for raw in dec.push(&buf[..n]) {
                let req = Packet::decode(&raw).unwrap();
                // Log chatter before the answer, as a device console would print.
                master.write_all(b"<inf> smp: request\r\n").unwrap();
                let rsp = Packet::response_to(&req.header, answer(&req)).encode_zephyr();
                master.write_all(&serial::encode_zephyr(&rsp)).unwrap();
                answered += 1;
            }
        }
        answered
    });
    port.stream_mut().clear().ok();
    let mut client = Client::new(port);
    client.set_timeout(Duration::from_secs(5));
    let long = "x".repeat(300); // several console lines each way
    assert_eq!(client.echo("hello").unwrap(), "hello");
    // Zephyr's default 2 receive lines cannot take a 5-line request: refused before sending.
    let e = client.echo(&long).unwrap_err();
    assert!(
        matches!(
            e,
            dfu_hil_smp::SmpError::BufferTooSmall {
                max_packet: 182,
                ..
            }
        ),
        "{e}"
    );
    // This responder has no line-buffer limit: told so, the client sends it.
    client
        .transport_mut()
        .set_line_limits(dfu_hil_smp::LineLimits::new(128, 8).unwrap(), "test");
    assert_eq!(client.echo(&long).unwrap(), long);
    let p = client.params().unwrap();
    assert_eq!((p.buf_size, p.buf_count), (256, 4));
    let noise = client.transport_mut().take_noise();
    assert!(String::from_utf8_lossy(&noise).contains("smp: request"));
    drop(client);
    assert_eq!(responder.join().unwrap(), 3);
}

#[test]
fn opening_a_missing_port_says_so() {
    let err = match open_serial("/dev/serial/by-id/no-such-probe", 115_200) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened a port that does not exist"),
    };
    assert!(err.contains("/dev/serial/by-id/no-such-probe"), "{err}");
}

#[test]
fn smp_over_loopback_udp() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let responder = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let req = Packet::decode(&buf[..n]).unwrap();
            // A stray datagram from someone else's socket must not confuse the client.
            let stray = UdpSocket::bind("127.0.0.1:0").unwrap();
            stray.send_to(b"garbage", from).unwrap();
            let rsp = Packet::response_to(&req.header, answer(&req)).encode_zephyr();
            server.send_to(&rsp, from).unwrap();
        }
    });
    let t = UdpTransport::open(&addr.to_string()).unwrap();
    assert_eq!(t.max_packet(), 1500 - 28);
    let mut client = Client::new(t);
    client.set_timeout(Duration::from_secs(5));
    assert_eq!(client.echo("over udp").unwrap(), "over udp");
    let p = client.params().unwrap();
    assert_eq!(p.buf_count, 4);
    // The UDP limit is buf_size itself (no serial length/CRC in the buffer).
    assert_eq!(client.upload_packet_limit().unwrap(), 256);
    let e = client.image_state().unwrap_err();
    assert!(e.to_string().contains("NOT_SUPPORTED"), "{e}");
    responder.join().unwrap();
}

#[test]
fn udp_without_a_listener_reports_the_link() {
    // Bind then drop to get a port with (very likely) nobody on it.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut t = UdpTransport::open(&format!("127.0.0.1:{port}")).unwrap();
    t.send(&[0x08, 0, 0, 1, 0, 0, 0, 6, 0xa0]).unwrap();
    let e = t.recv(Duration::from_millis(500)).unwrap_err();
    assert!(
        e.to_string().contains("nothing listens") || matches!(e, dfu_hil_smp::SmpError::Timeout),
        "{e}"
    );
}
