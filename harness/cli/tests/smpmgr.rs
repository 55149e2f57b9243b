//! Interop: the real `smpmgr` (PyPI, pinned in scripts/requirements-test.txt) drives the
//! simulated board served on a PTY by `dfu-hil sim serve` — state-read, echo, upload, test,
//! reset, confirm, `upgrade` — and the harness's own serial transport checks the result through the
//! same PTY. smpmgr is found via `$SMPMGR`, `PATH`, or `.venv/bin/smpmgr`; when it is missing
//! the test fails with an install hint unless `DFU_HIL_SKIP_SMPMGR=1`.

use dfu_hil_cli::sim_cmd;

use dfu_hil_mcuboot::trailer::UpgradeMode;
use dfu_hil_sim::links::serve;
use dfu_hil_smp::{open_serial, Client, SlotState};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn find_smpmgr() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SMPMGR") {
        return Some(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("smpmgr");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let venv = root().join(".venv/bin/smpmgr");
    venv.is_file().then_some(venv)
}

/// Run smpmgr against `port` with a generous per-request timeout and a hard wall-clock bound;
/// returns its stdout + stderr. Panics (with the output) when it fails.
fn smpmgr(exe: &Path, port: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(exe);
    // Default line length (128) and line buffers (2): what a stock Zephyr device has
    // (never a serial --mtu above 127: docs/protocol-facts.md, "smpmgr's `--mtu` on serial").
    cmd.arg("--port")
        .arg(port)
        .args(["--timeout", "10"])
        .args(args)
        .env("COLUMNS", "200")
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("start smpmgr ({}): {e}", exe.display()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait smpmgr") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("smpmgr output");
            panic!(
                "smpmgr {args:?} did not finish in 120 s:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("smpmgr output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "$ smpmgr {}   # {:.1} s\n{text}",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "smpmgr {args:?} failed ({status}):\n{text}"
    );
    text
}

/// Slot states as the harness's own client sees them through the same PTY.
fn own_view(port: &Path) -> Vec<SlotState> {
    let link = open_serial(port.to_str().expect("utf-8 path"), 115_200).expect("open PTY");
    let mut c = Client::new(link);
    c.set_timeout(Duration::from_secs(5));
    c.image_state().expect("image state over our own transport")
}

fn slot(states: &[SlotState], n: u32) -> &SlotState {
    states
        .iter()
        .find(|s| s.slot == n)
        .unwrap_or_else(|| panic!("slot {n} not listed: {states:?}"))
}

#[test]
fn smpmgr_upgrades_the_served_sim_board() {
    let Some(exe) = find_smpmgr() else {
        if std::env::var("DFU_HIL_SKIP_SMPMGR").as_deref() == Ok("1") {
            eprintln!("smpmgr not found; skipped (DFU_HIL_SKIP_SMPMGR=1)");
            return;
        }
        panic!(
            "smpmgr not found (set SMPMGR, put it on PATH, or install it: \
             `python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-test.txt`); \
             DFU_HIL_SKIP_SMPMGR=1 skips this test"
        );
    };
    let root = root();
    let dir = tempfile::tempdir().unwrap();
    let flash = dir.path().join("flash.bin");

    let layout = sim_cmd::resolve_layout(&root, "nrf52840-internal").unwrap();
    let fixtures =
        sim_cmd::build_fixtures(&root, &layout, UpgradeMode::SwapMove, &["app-v2", "app-v3"])
            .unwrap();
    let v2 = dir.path().join("app-v2.signed.bin");
    let v3 = dir.path().join("app-v3.signed.bin");
    std::fs::write(&v2, &fixtures["app-v2"].bytes).unwrap();
    std::fs::write(&v3, &fixtures["app-v3"].bytes).unwrap();
    let v2_hash: String = fixtures["app-v2"]
        .image_hash
        .as_ref()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    // `dfu-hil sim serve --layout nrf52840-internal --flash FILE` on a thread of this process.
    let mut args = sim_cmd::ServeArgs::new("nrf52840-internal");
    args.flash = Some(flash.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let server = {
        let (args, root, stop) = (args.clone(), root.clone(), stop.clone());
        std::thread::spawn(move || {
            sim_cmd::serve_with(&args, &root, &stop, |p| tx.send(p.to_owned()).unwrap())
        })
    };
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("sim serve reports its PTY");

    let out = smpmgr(&exe, &port, &["image", "state-read"]);
    assert!(out.contains("1.0.0"), "factory image listed: {out}");

    smpmgr(&exe, &port, &["os", "echo", "hello-from-smpmgr"]);

    smpmgr(&exe, &port, &["image", "upload", v2.to_str().unwrap()]);
    let s = own_view(&port);
    assert_eq!(slot(&s, 1).version, "2.0.0");
    assert!(!slot(&s, 1).pending);

    smpmgr(&exe, &port, &["image", "state-write", &v2_hash]);
    assert!(slot(&own_view(&port), 1).pending, "marked for test");

    smpmgr(&exe, &port, &["os", "reset"]);
    // The reset answers first, then the board reboots through the MCUboot model.
    std::thread::sleep(Duration::from_millis(200));
    let out = smpmgr(&exe, &port, &["image", "state-read"]);
    assert!(out.contains("2.0.0"), "{out}");
    let s = own_view(&port);
    let s0 = slot(&s, 0);
    assert_eq!(s0.version, "2.0.0", "{s:?}");
    assert!(s0.active && !s0.confirmed, "v2 runs on test: {s:?}");

    // Confirm the running image (no hash: the running one).
    smpmgr(&exe, &port, &["image", "state-write", "--confirm"]);
    assert!(slot(&own_view(&port), 0).confirmed);

    // smpmgr 0.19.1 `upgrade` to slot 0 without --confirm uploads and resets but never marks
    // the image (its code sends image state-write only for `--slot != 0` or `--confirm`), so
    // MCUboot has nothing to do: the board keeps running v2, exactly as a real device would.
    smpmgr(&exe, &port, &["upgrade", v3.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(200));
    let s = own_view(&port);
    assert_eq!(slot(&s, 0).version, "2.0.0", "{s:?}");
    assert_eq!(slot(&s, 1).version, "3.0.0", "{s:?}");
    assert!(!slot(&s, 1).pending, "{s:?}");

    // `upgrade --confirm`: upload, mark permanent, reset → v3 runs, confirmed.
    smpmgr(&exe, &port, &["upgrade", "--confirm", v3.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(200));
    let s = own_view(&port);
    let s0 = slot(&s, 0);
    assert_eq!(s0.version, "3.0.0", "{s:?}");
    assert!(s0.active && s0.confirmed, "{s:?}");

    // Stop (what SIGINT does): the flash file keeps v3; a fresh load + power-on boots it.
    stop.store(true, Ordering::Relaxed);
    let board = server.join().unwrap().expect("serve ran");
    assert_eq!(
        std::fs::metadata(&flash).unwrap().len(),
        serve::flash_file_size(&board)
    );
    let mut again = sim_cmd::prepare_board(&args, &root).unwrap();
    match again.core_state() {
        dfu_hil_sim::CoreState::Running { app, .. } => assert_eq!(app.version, "3.0.0"),
        other => panic!("after restart: {other:?}"),
    }
    assert!(again.log().iter().any(|l| l.contains("Swap type: none")));
    again.power_off();
}

#[test]
fn sim_serve_command_line() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        sim: sim_cmd::SimCmd,
    }
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied())).map(|c| c.sim)
    };
    let sim_cmd::SimCmd::Serve(a) = parse(&["serve"]).unwrap();
    assert_eq!(a.layout, "nrf52840-internal");
    assert_eq!(a.mode, UpgradeMode::SwapMove);
    assert_eq!(
        (a.baud, a.flash.clone(), a.app.as_str()),
        (None, None, "app-v1")
    );
    assert!(a.uart_faults().is_none());

    let sim_cmd::SimCmd::Serve(a) = parse(&[
        "serve",
        "--layout",
        "nrf52840-scratch",
        "--flash",
        "f.bin",
        "--baud",
        "115200",
        "--mode",
        "swap-scratch",
        "--log-noise",
        "--rx-line-max",
        "64",
        "--provision",
        "app-v2",
    ])
    .unwrap();
    assert_eq!(a.mode, UpgradeMode::SwapScratch);
    assert_eq!(a.baud, Some(115_200));
    assert_eq!(a.app, "app-v2");
    let f = a.uart_faults();
    assert_eq!(
        (f.log_noise, f.log_in_frame, f.rx_line_max),
        (0.25, 0.0, Some(64))
    );
    let sim_cmd::SimCmd::Serve(a) =
        parse(&["serve", "--log-noise", "0.5", "--log-in-frame", "0.1"]).unwrap();
    assert_eq!(
        (a.uart_faults().log_noise, a.uart_faults().log_in_frame),
        (0.5, 0.1)
    );

    assert!(parse(&["serve", "--mode", "swap-sideways"]).is_err());
    assert!(parse(&["serve", "--blank", "--app", "app-v2"]).is_err());
    let sim_cmd::SimCmd::Serve(a) = parse(&["serve", "--blank"]).unwrap();
    let b = sim_cmd::prepare_board(&a, &root()).unwrap();
    assert_eq!(
        b.core_state(),
        &dfu_hil_sim::CoreState::LockedUp,
        "erased flash"
    );
    assert!(sim_cmd::resolve_layout(&root(), "no-such-layout").is_err());
}
