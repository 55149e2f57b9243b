//! The simulated board over BLE (the harness's real `BleTransport` against the simulated GATT
//! peripheral) and over UDP-style datagrams, through `dfu_hil_smp::Client`: what lands on the
//! board and what the link does around resets, power cuts and lost notifications.

mod common;

use common::*;
use dfu_hil_firmware::AppDescriptor;
use dfu_hil_sim::links::ble_peer::{BlePeer, BlePeerStats};
use dfu_hil_sim::{SimBoard, SimGatt, SimUdp};
use dfu_hil_smp::ble::BleTransport;
use dfu_hil_smp::{
    group, os_cmd, response_error, Client, DeviceError, GattLink, Op, Packet, SmpError, Transport,
    Value,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Shared = Arc<Mutex<SimBoard>>;

/// NCS's DFU-over-BLE net_buf (`samples/common/mcumgr_bt_ota_dfu/Kconfig`,
/// `MCUMGR_TRANSPORT_NETBUF_SIZE` with reassembly): five 495-byte writes.
const NCS_BUF: u32 = 2475;

fn desc(ver: &str, buf_size: u32) -> AppDescriptor {
    AppDescriptor {
        buf_size,
        ..AppDescriptor::new("app", ver)
    }
}

fn signed(ver: &str, buf_size: u32) -> Vec<u8> {
    app_with(
        &layout(),
        &desc(ver, buf_size),
        APP_SIZE,
        Some(&key()),
        0x200,
    )
}

/// A factory board running v1 with this net_buf size.
fn shared_board(buf_size: u32) -> Shared {
    Arc::new(Mutex::new(board_with(
        layout(),
        &build(),
        &signed("1.0.0", buf_size),
    )))
}

/// Host side GATT wrapper that checks and records every fragment size.
struct Recording {
    inner: SimGatt,
    writes: Vec<usize>,
    notes: Vec<usize>,
}

impl GattLink for Recording {
    fn write_without_response(&mut self, data: &[u8]) -> Result<(), SmpError> {
        assert!(data.len() <= self.inner.mtu() - 3, "write over MTU − 3");
        self.writes.push(data.len());
        self.inner.write_without_response(data)
    }
    fn next_notification(&mut self, t: Duration) -> Result<Option<Vec<u8>>, SmpError> {
        let n = self.inner.next_notification(t)?;
        if let Some(n) = &n {
            assert!(n.len() <= self.inner.mtu() - 3, "notification over MTU − 3");
            self.notes.push(n.len());
        }
        Ok(n)
    }
    fn mtu(&self) -> usize {
        self.inner.mtu()
    }
}

type BleClient = Client<BleTransport<Recording>>;

/// A BLE client with short timeouts (the sim answers at once) and the peer's handle.
fn ble(board: &Shared, mtu: usize) -> (BleClient, Arc<Mutex<BlePeer>>) {
    let gatt = SimGatt::new(board.clone(), mtu);
    let peer = gatt.peer();
    let mut t = BleTransport::new(Recording {
        inner: gatt,
        writes: Vec::new(),
        notes: Vec::new(),
    });
    t.set_fragment_gap(Duration::from_millis(100));
    let mut c = Client::new(t);
    c.set_timeout(Duration::from_millis(300));
    (c, peer)
}

fn stats(peer: &Arc<Mutex<BlePeer>>) -> BlePeerStats {
    peer.lock().unwrap().stats()
}

fn udp(board: &Shared, mtu: usize) -> Client<SimUdp> {
    let mut c = Client::new(SimUdp::new(board.clone(), mtu));
    c.set_timeout(Duration::from_millis(300));
    c
}

/// Image `ver` uploaded, in slot1 byte for byte, listed with its TLV hash.
fn assert_in_slot1<T: Transport>(board: &Shared, c: &mut Client<T>, img: &[u8]) {
    let on_flash = board
        .lock()
        .unwrap()
        .flash
        .read("slot1", 0, img.len() as u32)
        .unwrap();
    assert!(on_flash == img, "slot1 differs from the uploaded image");
    let s1 = c
        .image_state()
        .unwrap()
        .into_iter()
        .find(|s| s.slot == 1)
        .expect("slot1 listed");
    assert_eq!(s1.hash, tlv_hash(img));
    assert_eq!(s1.version, "2.0.0");
}

#[test]
fn ble_echo_and_image_list_respect_the_mtu() {
    for mtu in [23usize, 498] {
        let board = shared_board(384);
        let (mut c, peer) = ble(&board, mtu);
        let text = "x".repeat(300);
        assert_eq!(c.echo(&text).unwrap(), text, "mtu {mtu}");
        let l = c.image_state().unwrap();
        assert_eq!(l.len(), 1);
        assert!(l[0].active && l[0].confirmed && l[0].version == "1.0.0");
        assert_eq!(l[0].hash, tlv_hash(&signed("1.0.0", 384)));

        // Every request went out in MTU − 3 writes, every answer came back in MTU − 3
        // notifications, the last of each possibly shorter.
        let frag = mtu - 3;
        let split = |len: usize| {
            let mut v = vec![frag; len / frag];
            if len % frag > 0 {
                v.push(len % frag);
            }
            v
        };
        let (mut want_w, mut want_n) = (Vec::new(), Vec::new());
        for ex in c.transcript() {
            want_w.extend(split(8 + ex.request.header.len as usize));
            want_n.extend(split(8 + ex.response.as_ref().unwrap().header.len as usize));
        }
        let rec = c.transport_mut().link_mut();
        assert_eq!(rec.writes, want_w, "mtu {mtu}");
        assert_eq!(rec.notes, want_n, "mtu {mtu}");
        if mtu == 23 {
            assert!(rec.writes.len() > 15 && rec.notes.len() > 15);
        } else {
            assert_eq!(rec.notes.len(), 2, "one notification per answer");
        }
        let s = stats(&peer);
        assert_eq!(s.requests, 2);
        assert_eq!(s.writes as usize, rec.writes.len());
        assert_eq!(s.notifications as usize, rec.notes.len());
        assert_eq!((s.connections, s.disconnects, s.rejected_writes), (1, 0, 0));
    }
}

#[test]
fn ble_upload_lands_in_slot1_at_mtu_23_and_498() {
    // (ATT MTU, net_buf): the stock Zephyr 384 over a minimum-MTU link, and NCS's
    // 498 / 2475 where one request spans five writes.
    for (mtu, buf) in [(23usize, 384u32), (498, NCS_BUF)] {
        let board = shared_board(buf);
        let (mut c, peer) = ble(&board, mtu);
        let v2 = signed("2.0.0", buf);
        let report = c.upload(0, &v2, &mut |_, _| {}).unwrap();
        assert_eq!(report.bytes, v2.len());
        // BLE reassembly puts the bare packet in the net_buf: no serial 4-byte overhead.
        assert_eq!(report.packet_limit, buf as usize, "mtu {mtu}");
        assert_ne!(report.matched, Some(false));
        assert_in_slot1(&board, &mut c, &v2);
        let s = stats(&peer);
        assert_eq!(s.rejected_writes, 0);
        if mtu == 498 {
            // Full-size requests: 2475 bytes = 5 writes each.
            let w = &c.transport_mut().link_mut().writes;
            assert!(w.windows(5).any(|f| f == [495, 495, 495, 495, 495]));
        }
    }
}

#[test]
fn ble_full_dfu_reconnects_after_os_reset() {
    let board = shared_board(NCS_BUF);
    let (mut c, peer) = ble(&board, 498);
    let v2 = signed("2.0.0", NCS_BUF);
    c.upload(0, &v2, &mut |_, _| {}).unwrap();
    c.image_test(&tlv_hash(&v2)).unwrap();
    let boots = board.lock().unwrap().last_boot().n;
    // The answer to the reset arrives; Zephyr reboots CONFIG_MCUMGR_GRP_OS_RESET_MS (250 ms)
    // later, and until then the old app still runs.
    c.reset(false).unwrap();
    assert!(board.lock().unwrap().reset_pending());
    assert_eq!(board.lock().unwrap().last_boot().n, boots);
    assert_eq!(running(&board.lock().unwrap()), "1.0.0");
    // Waiting for the reboot sees the link drop.
    let sign = c.await_reboot(&dfu_hil_smp::BootWait::default()).unwrap();
    assert_eq!(sign, dfu_hil_smp::RebootSign::LinkDropped);
    assert_eq!(board.lock().unwrap().last_boot().n, boots + 1);
    assert_eq!(running(&board.lock().unwrap()), "2.0.0");
    assert_eq!(stats(&peer).connections, 1);
    // The next write reaches the new app over a new connection.
    let l = c.image_state().unwrap();
    let s0 = l.iter().find(|s| s.slot == 0).unwrap();
    assert!(s0.active && s0.version == "2.0.0" && !s0.confirmed);
    let s = stats(&peer);
    assert_eq!((s.connections, s.disconnects), (2, 1));
    c.image_confirm(None).unwrap();
    assert!(c.image_state().unwrap()[0].confirmed);
}

#[test]
fn ble_write_fails_while_the_board_is_off_and_reconnects_when_it_runs() {
    let board = shared_board(384);
    let (mut c, peer) = ble(&board, 247);
    assert_eq!(c.echo("up").unwrap(), "up");
    board.lock().unwrap().power_off();
    match c.echo("down") {
        Err(SmpError::Transport(m)) => {
            assert!(m.contains("BLE disconnected"), "{m}");
            assert!(m.contains("powered off"), "{m}");
        }
        other => panic!("expected a BLE disconnect, got {other:?}"),
    }
    assert!(!peer.lock().unwrap().is_connected());
    // A halted core does not advertise either.
    board.lock().unwrap().halt();
    let e = c.echo("halted").unwrap_err().to_string();
    assert!(e.contains("halted by the debugger"), "{e}");
    board.lock().unwrap().reset();
    assert_eq!(c.echo("back").unwrap(), "back");
    let s = stats(&peer);
    assert_eq!((s.connections, s.disconnects), (2, 1));
}

#[test]
fn ble_link_stays_down_when_the_new_image_does_not_boot() {
    // An image linked for the wrong header size faults in MCUboot's handoff.
    let board = shared_board(384);
    let (mut c, _peer) = ble(&board, 498);
    let bad = app_with(&layout(), &desc("2.0.0", 384), APP_SIZE, Some(&key()), 0x20);
    c.upload(0, &bad, &mut |_, _| {}).unwrap();
    c.image_test(&tlv_hash(&bad)).unwrap();
    c.reset(false).unwrap();
    c.await_reboot(&dfu_hil_smp::BootWait::default()).unwrap();
    let e = c.echo("anyone?").unwrap_err().to_string();
    assert!(e.contains("BLE disconnected"), "{e}");
    assert!(e.contains("fault loop"), "{e}");
}

#[test]
fn ble_dropped_middle_notification_recovered_by_a_retry() {
    let board = shared_board(384);
    let (mut c, peer) = ble(&board, 23);
    let want = c.image_state().unwrap();
    let per_list = stats(&peer).notifications;
    assert!(per_list > 3, "image list spans several notifications");
    // Lose the second notification of the next answer: the host holds a partial packet
    // that can never complete, and times out.
    peer.lock().unwrap().drop_notification(2);
    assert!(matches!(c.image_state(), Err(SmpError::Timeout)));
    assert_eq!(stats(&peer).dropped_notifications, 1);
    // The retry comes after the fragment gap: the stale partial is abandoned and the fresh
    // answer reassembles.
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(c.image_state().unwrap(), want);
    assert_eq!(c.transport_mut().stats().stale_partial, 1);
}

#[test]
fn ble_dropped_upload_answer_is_retried() {
    let board = shared_board(384);
    let (mut c, peer) = ble(&board, 23);
    c.params().unwrap();
    c.set_upload_window(Some(1));
    let v2 = signed("2.0.0", 384);
    // Upload answers fit one 20-byte notification: the third one is lost whole.
    peer.lock().unwrap().drop_notification(3);
    let report = c.upload(0, &v2, &mut |_, _| {}).unwrap();
    assert_eq!(report.retries, 1);
    assert_eq!(stats(&peer).dropped_notifications, 1);
    assert_in_slot1(&board, &mut c, &v2);
}

#[test]
fn ble_windowed_upload_survives_a_lost_answer() {
    let board = shared_board(NCS_BUF);
    let (mut c, peer) = ble(&board, 498);
    c.params().unwrap();
    assert_eq!(c.upload_window(), 3);
    let v2 = signed("2.0.0", NCS_BUF);
    peer.lock().unwrap().drop_notification(4);
    c.upload(0, &v2, &mut |_, _| {}).unwrap();
    assert_eq!(stats(&peer).dropped_notifications, 1);
    assert_in_slot1(&board, &mut c, &v2);
}

#[test]
fn ble_request_larger_than_the_netbuf_is_dropped_silently() {
    let board = shared_board(384);
    let gatt = SimGatt::new(board.clone(), 64);
    let peer = gatt.peer();
    let mut t = BleTransport::new(gatt);
    // 400-byte echo: over the 384-byte net_buf. Every fragment of 'x' text announces
    // 0x7878 bytes, so each is refused as a first fragment too.
    let big = Packet::request(
        dfu_hil_smp::Version::V2,
        Op::Write,
        group::OS,
        os_cmd::ECHO,
        1,
        dfu_hil_smp::map([("d", Value::Text("x".repeat(386)))]),
    )
    .encode();
    assert!(big.len() > 384);
    t.send(&big).unwrap();
    assert!(matches!(
        t.recv(Duration::from_millis(50)),
        Err(SmpError::Timeout)
    ));
    let s = stats(&peer);
    assert_eq!(s.requests, 0);
    assert_eq!(s.rejected_writes, s.writes);
    // Nothing was left half-collected: the next request goes through.
    let mut c = Client::new(t);
    assert_eq!(c.echo("fits").unwrap(), "fits");
}

#[test]
fn udp_echo_list_and_upload() {
    // Zephyr's UDP defaults: UDP_MTU 1500 (`Kconfig.udp`) with a 2048-byte net_buf
    // (`subsys/mgmt/mcumgr/transport/Kconfig`, NETBUF_SIZE when UDP is on).
    for (mtu, buf) in [(1500usize, 2048u32), (1024, 384)] {
        let board = shared_board(buf);
        let mut c = udp(&board, mtu);
        assert_eq!(c.echo("hello").unwrap(), "hello");
        let l = c.image_state().unwrap();
        assert!(l[0].active && l[0].version == "1.0.0");
        let v2 = signed("2.0.0", buf);
        let report = c.upload(0, &v2, &mut |_, _| {}).unwrap();
        assert_eq!(report.packet_limit, mtu.min(buf as usize), "mtu {mtu}");
        assert_ne!(report.matched, Some(false));
        assert_in_slot1(&board, &mut c, &v2);
        let s = c.transport_mut().stats();
        assert_eq!((s.lost, s.truncated, s.oversize), (0, 0, 0));
        assert_eq!(s.responses, s.sent);
    }
}

#[test]
fn udp_datagram_over_the_mtu_arrives_truncated() {
    let board = shared_board(2048);
    let mut t = SimUdp::new(board.clone(), 64);
    let req = Packet::request(
        dfu_hil_smp::Version::V2,
        Op::Write,
        group::OS,
        os_cmd::ECHO,
        3,
        dfu_hil_smp::map([("d", Value::Text("y".repeat(100)))]),
    )
    .encode();
    t.send(&req).unwrap();
    let rsp = Packet::decode(&t.recv(Duration::from_millis(50)).unwrap()).unwrap();
    assert_eq!(rsp.header.seq, 3);
    assert_eq!(
        response_error(&rsp.body),
        Some(DeviceError::Mgmt { rc: 9 }),
        "the short packet is ECORRUPT"
    );
    assert_eq!(t.stats().truncated, 1);
}

#[test]
fn udp_across_reset_and_power_cut() {
    let board = shared_board(384);
    let mut c = udp(&board, 1500);
    c.reset(false).unwrap();
    assert_eq!(c.echo("after reset").unwrap(), "after reset");
    board.lock().unwrap().power_off();
    // No connection to lose: the datagram vanishes and the host times out.
    assert!(matches!(c.echo("nobody"), Err(SmpError::Timeout)));
    assert_eq!(c.transport_mut().stats().lost, 1);
    board.lock().unwrap().reset();
    assert_eq!(c.echo("back").unwrap(), "back");
}
