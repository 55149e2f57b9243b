//! The sim backend over each SMP transport (`sim::open_with`): the runner's `Board` — probe for
//! flash and reset, `Link` for SMP — driving a DFU over BLE (MTU 23 and 498) and UDP, with
//! resets, power cuts and a lost BLE notification.

use dfu_hil_board::sim::{open_with, Shared, SimTransport};
use dfu_hil_board::{Board, CoreState, Link, ResetKind};
use dfu_hil_mcuboot::image::Image;
use dfu_hil_mcuboot::keys::SigningKey;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use dfu_hil_sim::firmware::{build_app, build_bootloader, AppDescriptor, BootloaderBuild};
use dfu_hil_smp::{BleTransport, Client, RequestOptions, SmpError, UploadOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// 20 KiB apps: a multi-KB upload (dozens of requests even at NCS's 2475-byte buffer).
const APP_SIZE: u32 = 20 * 1024;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn layout() -> Layout {
    Layout::load(&repo().join("partitions/nrf52840-internal.yaml")).expect("layout")
}

fn key() -> SigningKey {
    SigningKey::load(&repo().join("firmware-fixtures/keys/ec-p256.pem")).expect("key")
}

/// A signed app for slot0 with this net_buf size (header 0x200, like `west build`).
fn app(ver: &str, buf_size: u32) -> Vec<u8> {
    let l = layout();
    let slot0 = l.partition("slot0").unwrap();
    let desc = AppDescriptor {
        buf_size,
        ..AppDescriptor::new("app", ver)
    };
    let bin = build_app(&desc, l.address(slot0), 0x200, APP_SIZE);
    sign(
        &bin,
        Some(&key()),
        &SignOptions {
            header_size: 0x200,
            version: ver.parse().unwrap(),
            slot_size: slot0.size,
            ..Default::default()
        },
    )
    .unwrap()
}

fn tlv_hash(img: &[u8]) -> Vec<u8> {
    Image::parse(img).unwrap().hash_tlv().unwrap().to_vec()
}

/// A sim board over `transport`, programmed through the probe and reset (factory state).
fn factory(transport: SimTransport, buf_size: u32) -> (Board, Shared) {
    let (mut board, shared) = open_with(layout(), "sim", transport);
    let build = BootloaderBuild {
        key_pem: Some(key().public().to_pem()),
        ..BootloaderBuild::default()
    };
    board
        .probe
        .flash("mcuboot", &build_bootloader(&build, 0))
        .unwrap();
    board.probe.flash("slot0", &app("1.0.0", buf_size)).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Running);
    (board, shared)
}

/// Split the board: the probe stays, the link goes into a client.
fn client(board: &mut Board, timeout: Duration) -> Client<Link> {
    let link = std::mem::replace(&mut board.link, Link(Box::new(Dead)));
    Client::with_request_options(link, RequestOptions::timeout(timeout))
}

/// Placeholder link left in the board while a client owns the real one.
struct Dead;
impl dfu_hil_smp::Transport for Dead {
    fn send(&mut self, _: &[u8]) -> Result<(), SmpError> {
        Err(SmpError::Transport("link moved to a client".into()))
    }
    fn recv(&mut self, _: Duration) -> Result<Vec<u8>, SmpError> {
        Err(SmpError::Transport("link moved to a client".into()))
    }
    fn max_packet(&self) -> usize {
        0
    }
}

fn transports() -> Vec<(SimTransport, u32)> {
    vec![
        (SimTransport::Ble { mtu: 23 }, 384),
        (SimTransport::ble(), 2475),
        (SimTransport::udp(), 2048),
        (SimTransport::Udp { mtu: 1024 }, 384),
    ]
}

#[test]
fn dfu_over_each_transport() {
    for (t, buf) in transports() {
        let (mut board, _shared) = factory(t, buf);
        let mut c = client(&mut board, Duration::from_millis(500));
        assert_eq!(c.echo("ping").unwrap(), "ping", "{t:?}");
        let l = c.image_state().unwrap();
        assert_eq!(l.len(), 1, "{t:?}");
        assert!(l[0].active && l[0].confirmed && l[0].version == "1.0.0");
        assert_eq!(l[0].hash, tlv_hash(&app("1.0.0", buf)));

        let v2 = app("2.0.0", buf);
        let report = c.upload(0, &v2, &mut |_, _| {}).unwrap();
        assert_eq!(report.bytes, v2.len());
        assert!(
            report.chunks >= v2.len() / buf as usize,
            "{t:?}: {report:?}"
        );
        // What the probe reads back is what was uploaded.
        let slot1 = board.probe.read("slot1", 0, v2.len() as u32).unwrap();
        assert!(slot1 == v2, "{t:?}: slot1 differs from the image");
        let s1 = c
            .image_state()
            .unwrap()
            .into_iter()
            .find(|s| s.slot == 1)
            .expect("slot1 listed");
        assert_eq!(s1.hash, tlv_hash(&v2), "{t:?}");

        // Test, reset over SMP, and the same link talks to the new app.
        c.image_test(&s1.hash).unwrap();
        c.reset(false).unwrap();
        // The old app answers for CONFIG_MCUMGR_GRP_OS_RESET_MS: wait for the new boot.
        let wait = dfu_hil_smp::BootWait::default();
        c.await_reboot(&wait).unwrap();
        c.wait_ready(&wait).unwrap();
        let l = c.image_state().unwrap();
        let s0 = l.iter().find(|s| s.slot == 0).unwrap();
        assert_eq!(s0.version, "2.0.0", "{t:?}");
        assert!(s0.active && !s0.confirmed);
        c.image_confirm(None).unwrap();
        assert!(c.image_state().unwrap()[0].confirmed, "{t:?}");
    }
}

#[test]
fn power_cut_drops_ble_and_silences_udp_until_the_app_runs() {
    for (t, buf) in transports() {
        let (mut board, _shared) = factory(t, buf);
        let mut c = client(&mut board, Duration::from_millis(200));
        assert_eq!(c.echo("a").unwrap(), "a");
        board
            .probe
            .power_control()
            .unwrap()
            .cut_power_now()
            .unwrap();
        let e = c.echo("b").unwrap_err();
        match t {
            SimTransport::Ble { .. } => {
                let m = e.to_string();
                assert!(m.contains("BLE disconnected"), "{m}");
                assert!(m.contains("powered off"), "{m}");
            }
            _ => assert!(matches!(e, SmpError::Timeout), "{t:?}: {e}"),
        }
        board.probe.reset(ResetKind::Run).unwrap();
        assert_eq!(c.echo("c").unwrap(), "c", "{t:?}");
    }
}

#[test]
fn snapshot_restore_drops_the_ble_connection() {
    let (mut board, shared) = factory(SimTransport::ble(), 384);
    let gatt = dfu_hil_sim::SimGatt::new(shared.clone(), 498);
    let peer = gatt.peer();
    board.link = Link(Box::new(BleTransport::new(gatt)));
    let snap = board.probe.snapshots().unwrap().snapshot().unwrap();
    let mut c = client(&mut board, Duration::from_millis(200));
    assert_eq!(c.echo("1").unwrap(), "1");
    // A sweep restores the board between cut points: the app that held the connection is
    // gone, so the next write makes a new one.
    board.probe.snapshots().unwrap().restore(&snap).unwrap();
    assert_eq!(c.echo("2").unwrap(), "2");
    let s = peer.lock().unwrap().stats();
    assert_eq!((s.connections, s.disconnects), (2, 1));
}

#[test]
fn lost_notification_recovered_with_default_timeouts() {
    // Build the BLE link by hand to reach the peer's fault switch.
    let (mut board, shared) = factory(SimTransport::Ble { mtu: 23 }, 384);
    let gatt = dfu_hil_sim::SimGatt::new(shared.clone(), 23);
    let peer = gatt.peer();
    board.link = Link(Box::new(BleTransport::new(gatt)));
    // Default client timeout (2.5 s) against the default fragment gap (2 s): the request is
    // sent again halfway through its timeout, and the partial answer a lost notification left
    // is dropped then, so the resend's answer is read whole (issue #16: a lost answer no longer
    // fails the command).
    let mut c = client(&mut board, dfu_hil_smp::client::DEFAULT_TIMEOUT);
    let want = c.image_state().unwrap();
    peer.lock().unwrap().drop_notification(2);
    assert_eq!(c.image_state().unwrap(), want);
    assert!(c.transcript_text().contains("sent again as seq"));
    assert_eq!(c.image_state().unwrap(), want);

    // An upload whose third answer is lost: stop-and-wait resends that chunk once.
    c.params().unwrap();
    let options = UploadOptions {
        timeout: Duration::from_millis(300),
        window: Some(1),
        ..UploadOptions::default()
    };
    let v2 = app("2.0.0", 384);
    peer.lock().unwrap().drop_notification(3);
    let report = c.upload_with(0, &v2, &options, &mut |_| {}).unwrap();
    assert_eq!(report.retries, 1);
    assert_eq!(peer.lock().unwrap().stats().dropped_notifications, 2);
    let slot1 = board.probe.read("slot1", 0, v2.len() as u32).unwrap();
    assert!(slot1 == v2, "slot1 differs from the image");
}

#[test]
fn transport_check_and_defaults() {
    assert_eq!(SimTransport::default(), SimTransport::Serial);
    assert_eq!(SimTransport::ble(), SimTransport::Ble { mtu: 498 });
    assert_eq!(SimTransport::udp(), SimTransport::Udp { mtu: 1500 });
    assert!(SimTransport::Ble { mtu: 22 }.check().is_err());
    assert!(SimTransport::Ble { mtu: 518 }.check().is_err());
    assert!(SimTransport::Ble { mtu: 517 }.check().is_ok());
    assert!(SimTransport::Udp { mtu: 4 }.check().is_err());
    // BLE and UDP carry whole packets: the link's own limit is not the serial one.
    let (b, _) = open_with(layout(), "sim", SimTransport::Udp { mtu: 1024 });
    assert_eq!(dfu_hil_smp::Transport::max_packet(&b.link), 1024);
    let (b, _) = open_with(layout(), "sim", SimTransport::Ble { mtu: 23 });
    assert_eq!(dfu_hil_smp::Transport::max_packet(&b.link), 8 + 65535);
}

#[test]
fn serial_is_still_the_default_open() {
    let (mut board, _shared) = dfu_hil_board::sim::open(layout(), "sim");
    let build = BootloaderBuild {
        key_pem: Some(key().public().to_pem()),
        ..BootloaderBuild::default()
    };
    board
        .probe
        .flash("mcuboot", &build_bootloader(&build, 0))
        .unwrap();
    board.probe.flash("slot0", &app("1.0.0", 384)).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();
    let mut c = client(&mut board, Duration::from_millis(500));
    // Right after the boot the UART transport is not registered yet: wait until it answers.
    let ready = c.wait_ready(&dfu_hil_smp::BootWait::default()).unwrap();
    assert_eq!(ready.probes, 1, "the settle time covers the registration");
    assert_eq!(c.echo("serial").unwrap(), "serial");
    // The serial link sizes requests for Zephyr's default receive lines (2 x 128 B).
    assert_eq!(dfu_hil_smp::Transport::max_packet(c.transport_mut()), 182);
}
