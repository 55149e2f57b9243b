//! The client's assumptions about a device's SMP link, end to end through the binary against
//! the simulated board, which behaves like unmodified Zephyr (two 128-byte receive lines, an
//! `os reset` answered 250 ms before the reboot, a transport that registers after the boot).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dfu_hil(args: &[&str], tmp: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(args)
        .arg("--root")
        .arg(root())
        .arg("--junit")
        .arg(tmp.join("junit.xml"))
        .arg("--json")
        .arg(tmp.join("results.json"))
        .arg("--evidence")
        .arg(tmp.join("evidence"))
        .output()
        .expect("run dfu-hil")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `link.txt` of the one evidence folder of a run.
fn link_txt(tmp: &Path) -> String {
    let dir = std::fs::read_dir(tmp.join("evidence"))
        .unwrap()
        .next()
        .expect("an evidence folder")
        .unwrap()
        .path();
    std::fs::read_to_string(dir.join("link.txt")).unwrap()
}

#[test]
fn default_requests_fit_two_lines_and_resets_wait_for_the_new_boot() {
    let tmp = tempfile::tempdir().unwrap();
    let o = dfu_hil(&["scenario", "internal-swap-confirm"], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    // Each reset over SMP waits for a sign of the new boot, then for an answered probe.
    assert!(out.contains("reboot seen: boot banner"), "{out}");
    assert!(out.contains("SMP ready after"), "{out}");
    let link = link_txt(tmp.path());
    assert!(link.contains("2 lines × 128 B"), "{link}");
    assert!(link.contains("requests ≤ 182 B"), "{link}");
}

#[test]
fn believing_in_more_lines_than_the_device_has_gets_no_answer() {
    // The old client's belief (requests sized from buf_size, 5 lines): a stock device drops
    // every such request silently, so the upload ends without a single answer.
    let tmp = tempfile::tempdir().unwrap();
    let o = dfu_hil(
        &[
            "scenario",
            "internal-swap-confirm",
            "--serial-lines",
            "8x128",
            "--request-timeout-ms",
            "150",
            "--step-timeout-s",
            "2",
        ],
        tmp.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(100), "{out}");
    // The step says why in terms the user can act on.
    assert!(out.contains("no upload request was answered"), "{out}");
    assert!(out.contains("= 5 serial lines"), "{out}");
    assert!(out.contains("--serial-lines 2x128 or auto"), "{out}");
    let link = link_txt(tmp.path());
    assert!(
        link.contains("8 lines × 128 B (--serial-lines 8x128)"),
        "{link}"
    );
}

#[test]
fn auto_finds_the_stock_two_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let o = dfu_hil(
        &[
            "scenario",
            "internal-swap-revert",
            "--serial-lines",
            "auto",
            "--request-timeout-ms",
            "400",
        ],
        tmp.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let link = link_txt(tmp.path());
    assert!(
        link.contains("discovered: echo answered with 2 line(s), silent with 3"),
        "{link}"
    );
}

#[test]
fn a_scenario_can_say_its_app_has_more_lines() {
    // An app built with CONFIG_UART_MCUMGR_RX_BUF_COUNT=4: the scenario says so for the client,
    // the fixture says so for the simulated device, and requests grow to 4 lines.
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("four-lines.yaml");
    std::fs::write(
        &scenario,
        "name: four-lines\n\
         layout: nrf52840-internal\n\
         device: { serial-lines: 4x128, reset-delay-ms: 100 }\n\
         fixtures:\n  \
           v1: { app: { name: big, version: 1.0.0, uart-rx-buf-count: 4, reset-ms: 100 } }\n  \
           v2: { app: { name: big, version: 2.0.0, uart-rx-buf-count: 4, reset-ms: 100 } }\n\
         steps:\n  \
           - flash: { mcuboot: mcuboot, slot0: v1 }\n  \
           - upload: { image: v2 }\n  \
           - test: v2\n  \
           - reset: {}\n  \
           - expect: { running: v2 }\n",
    )
    .unwrap();
    let o = dfu_hil(&["scenario", scenario.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let link = link_txt(tmp.path());
    assert!(link.contains("4 lines × 128 B (scenario"), "{link}");
    assert!(link.contains("requests ≤ 368 B"), "{link}");
}

#[test]
fn a_bad_serial_lines_setting_is_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("bad.yaml");
    std::fs::write(
        &scenario,
        "name: bad\nlayout: nrf52840-internal\ndevice: { serial-lines: 2xlots }\n\
         steps:\n  - flash: { mcuboot: mcuboot, slot0: app-v1 }\n",
    )
    .unwrap();
    let o = dfu_hil(&["scenario", scenario.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(96), "{out}");
    assert!(out.contains("device.serial-lines"), "{out}");
    assert!(out.contains("`lots`"), "{out}");
    let o = dfu_hil(
        &[
            "scenario",
            "internal-swap-confirm",
            "--serial-lines",
            "0x128",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("out of range"), "{}", text(&o));
}

/// `dfu-hil sim serve` on a PTY, killed on drop.
struct Served {
    child: std::process::Child,
    pty: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Served {
    serve_with(&[])
}

fn serve_with(extra: &[&str]) -> Served {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["sim", "serve", "--root"])
        .arg(root())
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start sim serve");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let pty = loop {
        let line = lines.next().expect("sim serve printed its PTY").unwrap();
        if let Some(p) = line.strip_prefix("uart connected to pseudotty: ") {
            break p.trim().to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, pty }
}

#[test]
fn smp_reset_wait_sees_the_new_boot_on_a_pty() {
    let s = serve();
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["smp", "--port", &s.pty, "os", "reset", "--wait"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("reset requested"), "{out}");
    assert!(out.contains("reboot seen: boot banner"), "{out}");
    assert!(out.contains("SMP ready after"), "{out}");
    // Requests larger than two lines are refused before they reach the device.
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["smp", "--port", &s.pty, "os", "echo", &"x".repeat(300)])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("allows 182"), "{}", text(&o));
}

/// Every bundled scenario through the native-sim backend, with the MCUboot and app stand-ins
/// as two processes on one flash file (as real native_sim builds run): the update flows pass
/// there too — line limits, reboot waits, a power cut during an upload (SIGKILL) — and what a
/// native_sim pair cannot do is skipped with the step that needs it, never failed.
#[test]
fn bundled_scenarios_pass_or_skip_on_a_native_sim_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_dfu-hil");
    let bootloader = format!("{bin} sim boot --layout {{layout}} --flash {{flash}}");
    let app = format!(
        "{bin} sim serve --app-only --reset-exit-status 1 --layout {{layout}} --flash {{flash}}"
    );
    let o = dfu_hil(
        &[
            "run",
            "--board",
            "native-sim",
            "--native-sim-bootloader",
            &bootloader,
            "--native-sim-app",
            &app,
        ],
        tmp.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for name in [
        "internal-swap-revert[move]",
        "internal-swap-revert[scratch]",
        "internal-swap-confirm[move]",
        "bad-signature",
        "wrong-key",
        "too-large",
        "power-cut-during-upload",
    ] {
        assert!(
            out.contains(&format!("PASSED: {name} on native-sim")),
            "{name}: {out}"
        );
    }
    assert!(
        out.contains(
            "SKIPPED: header-size-mismatch on native-sim: board `native-sim` lacks executes-image"
        ),
        "{out}"
    );
}

/// A port that goes away at a reset and comes back under the same name (USB CDC ACM of the app,
/// as on a Thingy:53): the lab board's link reopens it, and the reboot wait sees the link drop.
/// Stood in by a symlink to `sim serve`'s PTY, re-pointed to a second server on the same flash.
#[test]
fn a_port_that_vanishes_at_reset_is_reopened() {
    use dfu_hil_board::transports::serial::ReopeningSerial;
    use dfu_hil_smp::{BootWait, Client, RebootSign, Transport};
    let tmp = tempfile::tempdir().unwrap();
    let flash = tmp.path().join("flash.bin");
    let port = tmp.path().join("usb-Nordic_Thingy_53-if01");
    let first = serve_with(&["--flash", flash.to_str().unwrap()]);
    std::os::unix::fs::symlink(&first.pty, &port).unwrap();
    let link = ReopeningSerial::open(port.to_str().unwrap(), 115_200).unwrap();
    let mut c = Client::new(link);
    c.set_timeout(std::time::Duration::from_secs(2));
    let w = BootWait::default();
    c.wait_ready(&w).unwrap();
    assert_eq!(c.image_state().unwrap()[0].version, "1.0.0");
    assert_eq!(c.transport_mut().link_generation(), Some(1));

    // The device goes away and comes back under the same name.
    drop(first);
    let second = serve_with(&["--flash", flash.to_str().unwrap()]);
    std::fs::remove_file(&port).unwrap();
    std::os::unix::fs::symlink(&second.pty, &port).unwrap();

    let sign = c.await_reboot(&w).unwrap();
    assert_eq!(sign, RebootSign::LinkDropped);
    c.wait_ready(&w).unwrap();
    assert_eq!(c.image_state().unwrap()[0].version, "1.0.0");
    assert_eq!(c.transport_mut().link_generation(), Some(2));
    assert!(
        c.transport_mut().describe().contains("opened 2 time(s)"),
        "{}",
        c.transport_mut().describe()
    );
}
