//! The simulated board served on a real PTY (`serve`), driven by the harness's own serial
//! transport through the `serialport` crate, exactly as a client would drive native_sim or a
//! board on `/dev/ttyACM0`: echo, image state, upload v2, test, reset → v2 runs. Plus the flash
//! file (kept across runs), pacing and UART log noise through the same path.

mod common;

use common::*;
use dfu_hil_sim::links::serve::{self, ServeConfig, ServeReport};
use dfu_hil_sim::{SimBoard, UartFaults};
use dfu_hil_smp::{open_serial, Client, SerialPortStream, SerialTransport};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// A board served on its own thread; stop it to get the board (and the report) back.
struct Served {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(SimBoard, ServeReport)>,
}

impl Served {
    fn start(mut board: SimBoard, cfg: ServeConfig) -> Served {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let report = serve::serve(&mut board, &cfg, &s, |p| {
                tx.send(p.to_owned()).unwrap();
            })
            .expect("serve");
            (board, report)
        });
        let path = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("serve reports its PTY");
        Served { path, stop, thread }
    }

    fn client(&self) -> Client<SerialTransport<SerialPortStream>> {
        let port = open_serial(self.path.to_str().unwrap(), 115_200).expect("open the PTY");
        let mut c = Client::new(port);
        c.set_timeout(Duration::from_secs(5));
        // The board may have booted a moment ago: its SMP transport drains what arrives
        // before it registers, so wait until it answers (as after any reset).
        c.wait_ready(&dfu_hil_smp::BootWait::default())
            .expect("the served board answers");
        c
    }

    fn stop(self) -> (SimBoard, ServeReport) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("serve thread")
    }
}

fn slot0_version(c: &mut Client<SerialTransport<SerialPortStream>>) -> (String, bool, bool) {
    let s = c.image_state().expect("image state");
    let s0 = s.iter().find(|s| s.slot == 0).expect("slot0 listed");
    (s0.version.clone(), s0.active, s0.confirmed)
}

/// Upload v2, mark it for test and reset, all over the PTY; returns v2's hash.
fn upgrade(c: &mut Client<SerialTransport<SerialPortStream>>, v2: &[u8]) -> Vec<u8> {
    c.upload(0, v2, &mut |_, _| {}).expect("upload v2");
    let hash = tlv_hash(v2);
    let s = c.image_state().expect("state after upload");
    let s1 = s.iter().find(|s| s.slot == 1).expect("slot1 listed");
    assert_eq!(s1.hash, hash);
    assert_eq!(s1.version, "2.0.0");
    c.image_test(&hash).expect("image test");
    c.reset(false).expect("os reset answered before the reboot");
    // The old app answers for CONFIG_MCUMGR_GRP_OS_RESET_MS more: wait for the new boot.
    let w = dfu_hil_smp::BootWait::default();
    let sign = c.await_reboot(&w).expect("reboot seen");
    assert!(matches!(sign, dfu_hil_smp::RebootSign::Banner(_)), "{sign}");
    c.wait_ready(&w).expect("new boot answers");
    hash
}

#[test]
fn upgrade_over_a_real_pty() {
    let lay = layout();
    let v2 = app(&lay, "2.0.0");
    let served = Served::start(factory_board("1.0.0"), ServeConfig::default());
    assert!(served.path.exists(), "{}", served.path.display());

    let mut c = served.client();
    assert_eq!(c.echo("hello over a pty").unwrap(), "hello over a pty");
    assert_eq!(slot0_version(&mut c), ("1.0.0".into(), true, true));
    upgrade(&mut c, &v2);
    // The device rebooted through the MCUboot model: v2 runs from slot0, on test.
    assert_eq!(slot0_version(&mut c), ("2.0.0".into(), true, false));
    let noise = String::from_utf8_lossy(&c.take_noise()).into_owned();
    assert!(
        noise.contains("Swap type: test"),
        "boot log on the UART: {noise}"
    );
    drop(c);

    // A second client on the same PTY (reconnect) confirms.
    let mut c = served.client();
    c.image_confirm(None).expect("confirm");
    assert_eq!(slot0_version(&mut c), ("2.0.0".into(), true, true));
    drop(c);

    let (board, report) = served.stop();
    assert_eq!(running(&board), "2.0.0");
    assert!(report.bytes_in > v2.len() as u64, "{report:?}");
    assert_eq!(report.saves, 0, "no flash file configured");
}

#[test]
fn flash_file_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flash.bin");
    let lay = layout();
    let v2 = app(&lay, "2.0.0");
    let cfg = ServeConfig {
        baud: None,
        flash_file: Some(file.clone()),
    };

    // First run: provisioned board, upgrade to v2 (on test), stop → flash saved.
    let served = Served::start(factory_board("1.0.0"), cfg.clone());
    let mut c = served.client();
    upgrade(&mut c, &v2);
    assert_eq!(slot0_version(&mut c).0, "2.0.0");
    drop(c);
    let (board, report) = served.stop();
    assert!(report.saves >= 1);
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(size, serve::flash_file_size(&board));
    assert_eq!(
        size,
        lay.flash.iter().map(|d| d.size as u64).sum::<u64>(),
        "one file: every device concatenated"
    );

    // Second run from the file: power on → v2 was never confirmed, so MCUboot reverts.
    let mut b = SimBoard::new(layout());
    assert!(serve::load_flash(&mut b, &file).unwrap());
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert!(logged(&b, "Swap type: revert"));
    let served = Served::start(b, cfg.clone());
    let mut c = served.client();
    assert_eq!(slot0_version(&mut c), ("1.0.0".into(), true, true));
    drop(c);
    served.stop();

    // A file that does not fit the layout is refused, not clobbered.
    std::fs::write(&file, b"short").unwrap();
    let mut b = SimBoard::new(layout());
    let e = serve::load_flash(&mut b, &file).unwrap_err().to_string();
    assert!(e.contains("needs"), "{e}");
    assert!(!serve::load_flash(&mut b, &dir.path().join("absent.bin")).unwrap());
}

#[test]
fn paced_uart_still_speaks_smp() {
    let served = Served::start(
        factory_board("1.0.0"),
        ServeConfig {
            baud: Some(115_200),
            flash_file: None,
        },
    );
    let mut c = served.client();
    assert_eq!(c.echo("paced").unwrap(), "paced");
    assert_eq!(slot0_version(&mut c).0, "1.0.0");
    drop(c);
    served.stop();
}

#[test]
fn log_noise_between_frames_is_tolerated() {
    let mut b = factory_board("1.0.0");
    b.set_uart_faults(UartFaults {
        log_noise: 1.0,
        seed: 7,
        ..UartFaults::default()
    });
    let lay = layout();
    let v2 = app(&lay, "2.0.0");
    let served = Served::start(b, ServeConfig::default());
    let mut c = served.client();
    assert_eq!(c.echo("noisy").unwrap(), "noisy");
    upgrade(&mut c, &v2);
    assert_eq!(slot0_version(&mut c).0, "2.0.0");
    let noise = String::from_utf8_lossy(&c.take_noise()).into_owned();
    assert!(
        noise.contains("] <"),
        "Zephyr log lines on the UART: {noise}"
    );
    drop(c);
    served.stop();
}

#[test]
fn log_inside_frames_costs_retries_not_the_upload() {
    let mut b = factory_board("1.0.0");
    b.set_uart_faults(UartFaults {
        log_in_frame: 0.2,
        seed: 3,
        ..UartFaults::default()
    });
    let lay = layout();
    let v2 = app(&lay, "2.0.0");
    let served = Served::start(b, ServeConfig::default());
    let mut c = served.client();
    c.set_timeout(Duration::from_millis(300));
    c.set_first_chunk_timeout(Duration::from_millis(300));
    c.set_upload_tries(20);
    // The sim app's buf_size (params could be lost to the noise too); stop-and-wait.
    c.set_buf_size(Some(384));
    c.set_upload_window(Some(1));
    let report = c.upload(0, &v2, &mut |_, _| {}).expect("upload survives");
    assert!(
        report.retries > 0,
        "some responses were corrupted: {report:?}"
    );
    assert!(
        !c.transport_mut().take_corrupt().is_empty(),
        "the host decoder saw broken frames"
    );
    drop(c);
    let (board, _) = served.stop();
    let mut board = board;
    let s1 = slot(&mut board, 1).expect("slot1");
    assert_eq!(s1.hash, tlv_hash(&v2));
}

/// One upload of v2 through 20 % log-in-frame noise with the default tries (issue #16: about
/// one in ten gave up while the device's offset was still advancing). Progress, not exact
/// answers, now keeps it going, and answers lost while the device talks are not silence.
fn upload_through_noise(seed: u64) {
    let lay = layout();
    let v2 = app(&lay, "2.0.0");
    let mut b = factory_board("1.0.0");
    b.set_uart_faults(UartFaults {
        log_in_frame: 0.2,
        seed,
        ..UartFaults::default()
    });
    let served = Served::start(b, ServeConfig::default());
    let mut c = served.client();
    c.set_timeout(Duration::from_millis(300));
    c.set_buf_size(Some(384));
    let report = c.upload(0, &v2, &mut |_, _| {});
    let transcript = c.transcript_text();
    drop(c);
    let (mut board, _) = served.stop();
    let report = report.unwrap_or_else(|e| panic!("seed {seed}: {e}\n{transcript}"));
    assert_eq!(
        slot(&mut board, 1).expect("slot1").hash,
        tlv_hash(&v2),
        "seed {seed}: {report:?}"
    );
}

#[test]
fn an_upload_through_twenty_percent_log_noise_completes_with_default_tries() {
    upload_through_noise(4);
}

#[test]
#[ignore = "about 200 s: ten uploads through the noisy PTY; run with --ignored"]
fn twenty_percent_log_noise_uploads_complete_ten_of_ten() {
    for seed in 1..=10u64 {
        upload_through_noise(seed);
    }
}
