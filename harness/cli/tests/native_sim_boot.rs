//! `--board native-sim` as real native_sim builds run: MCUboot and the app as two processes on
//! one flash file, with the harness's stand-ins — `dfu-hil sim boot` (the MCUboot model once:
//! exits to hand over, spins deaf to SIGTERM when nothing is bootable) and
//! `dfu-hil sim serve --app-only` (runs what MCUboot left in the primary slot, exits after an
//! accepted `os reset` with a chosen status).

use dfu_hil_board::native_sim::{self, CommandSpec, NativeSimConfig};
use dfu_hil_board::{Board, CoreState, ResetKind};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::UpgradeMode;
use dfu_hil_smp::{BootWait, Client};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dfu_hil_cli::sim_cmd;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_dfu-hil")
}

/// `dfu-hil --root ROOT sim <sub> …` as a native_sim command line (`{flash}`, `{layout}`).
fn stand_in(sub: &[&str]) -> CommandSpec {
    let mut args = vec![
        "--root".to_owned(),
        root().display().to_string(),
        "sim".into(),
    ];
    args.extend(sub.iter().map(|s| s.to_string()));
    CommandSpec {
        program: PathBuf::from(exe()),
        args,
    }
}

/// The same, as one string for `--native-sim-app` / `--native-sim-bootloader`.
fn stand_in_line(sub: &str) -> String {
    format!("{} --root {} sim {sub}", exe(), root().display())
}

fn bootloader() -> CommandSpec {
    stand_in(&["boot", "--layout", "{layout}", "--flash", "{flash}"])
}

fn app(exit_status: &str) -> CommandSpec {
    stand_in(&[
        "serve",
        "--app-only",
        "--reset-exit-status",
        exit_status,
        "--layout",
        "{layout}",
        "--flash",
        "{flash}",
    ])
}

fn layout() -> Layout {
    Layout::load(&root().join("partitions/nrf52840-internal.yaml")).unwrap()
}

fn fixtures(names: &[&str]) -> std::collections::BTreeMap<String, dfu_hil_runner::fixtures::Built> {
    sim_cmd::build_fixtures(&root(), &layout(), UpgradeMode::SwapMove, names).unwrap()
}

fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

fn position(log: &[String], needle: &str) -> usize {
    log.iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in the device log: {log:#?}"))
}

/// Open starts nothing; a flash + reset runs the bootloader, then the app; an `os reset`
/// makes the app exit with status 1, which is the reboot: the bootloader process swaps, the
/// next app runs the new image in its test state (no second boot model reverting it).
#[test]
fn bootloader_then_app_on_one_flash_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = NativeSimConfig::new(layout(), dir.path().join("flash.bin"), app("1"));
    cfg.bootloader = Some(bootloader());
    cfg.ready_timeout = Duration::from_secs(60);
    cfg.bootloader_timeout = Duration::from_secs(60);
    let (board, h) = native_sim::open(cfg, "native-sim").unwrap();
    let Board {
        mut probe, link, ..
    } = board;
    assert_eq!(probe.core_state().unwrap(), CoreState::Off);
    assert_eq!((h.boots(), h.bootloader_runs(), h.pid()), (0, 0, None));
    assert!(!dir.path().join("flash.bin").exists());

    let built = fixtures(&["mcuboot", "app-v1", "app-v2"]);
    probe.flash("mcuboot", &built["mcuboot"].bytes).unwrap();
    probe.flash("slot0", &built["app-v1"].bytes).unwrap();
    assert_eq!(h.bootloader_runs(), 0, "flashing starts nothing");
    probe.reset(ResetKind::Run).unwrap();
    assert_eq!((h.boots(), h.bootloader_runs()), (1, 1));
    assert_eq!(probe.core_state().unwrap(), CoreState::Running);
    let log = probe.take_log();
    let handed = position(&log, "sim boot: handing over to the image in `slot0`");
    let pty = position(&log, "uart connected to pseudotty: ");
    assert!(handed < pty, "bootloader before app: {log:#?}");

    let mut smp = Client::new(link);
    smp.set_timeout(Duration::from_secs(5));
    let boot = BootWait::default();
    smp.wait_ready(&boot).unwrap();
    let slots = smp.image_state().unwrap();
    let s0 = slots.iter().find(|s| s.slot == 0).unwrap();
    assert!(s0.active && s0.confirmed, "{slots:?}");
    assert_eq!(s0.version, "1.0.0");

    smp.upload(0, &built["app-v2"].bytes, &mut |_, _| {})
        .unwrap();
    let v2_hash = built["app-v2"].image_hash.clone().unwrap();
    smp.image_test(&v2_hash).unwrap();
    let app_pid = h.pid().unwrap();
    smp.reset(false).unwrap();
    // The app answered and is still up for its reset delay; the probe waits for the exit
    // (status 1), then boots again: bootloader (swap), app.
    assert_eq!(probe.core_state().unwrap(), CoreState::Running);
    assert_eq!((h.boots(), h.bootloader_runs()), (2, 2));
    assert_ne!(h.pid().unwrap(), app_pid);
    assert!(
        !pid_alive(app_pid) || {
            std::thread::sleep(Duration::from_millis(200));
            !pid_alive(app_pid)
        }
    );
    let log = probe.take_log();
    let exit = position(
        &log,
        "app exited (exit status: 1) after an `os reset` request",
    );
    let swap = position(&log, "I: Starting swap using move algorithm.");
    let pty = position(&log, "uart connected to pseudotty: ");
    assert!(exit < swap && swap < pty, "{log:#?}");

    smp.wait_ready(&boot).unwrap();
    let slots = smp.image_state().unwrap();
    let s0 = slots.iter().find(|s| s.slot == 0).unwrap();
    assert_eq!(s0.hash, v2_hash, "{slots:?}");
    assert!(s0.active && !s0.confirmed, "test state kept: {slots:?}");

    // The next reset reverts (not confirmed).
    smp.reset(false).unwrap();
    assert_eq!(probe.core_state().unwrap(), CoreState::Running);
    assert_eq!((h.boots(), h.bootloader_runs()), (3, 3));
    smp.wait_ready(&boot).unwrap();
    let slots = smp.image_state().unwrap();
    let s0 = slots.iter().find(|s| s.slot == 0).unwrap();
    assert_eq!(s0.version, "1.0.0", "{slots:?}");
    assert!(s0.active && s0.confirmed, "{slots:?}");
    let log = probe.take_log().join("\n");
    assert!(log.contains("Swap type: revert"), "{log}");
}

/// Erased slots: the bootloader stand-in spins as MCUboot does; the backend SIGKILLs it
/// within the timeout, says "bootloader did not hand over", leaves no process behind and
/// starts no app.
#[test]
fn a_bootloader_with_nothing_to_boot_is_killed_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = NativeSimConfig::new(layout(), dir.path().join("flash.bin"), app("0"));
    cfg.bootloader = Some(bootloader());
    cfg.bootloader_timeout = Duration::from_secs(3);
    let (board, h) = native_sim::open(cfg, "native-sim").unwrap();
    let Board { mut probe, .. } = board;
    let built = fixtures(&["mcuboot"]);
    probe.flash("mcuboot", &built["mcuboot"].bytes).unwrap();
    let t0 = Instant::now();
    let e = probe.reset(ResetKind::Run).unwrap_err().to_string();
    let took = t0.elapsed();
    assert!(e.contains("bootloader did not hand over"), "{e}");
    assert!(e.contains(exe()) && e.contains("3s"), "{e}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(6),
        "{took:?}"
    );
    let pid = h.bootloader_pid().unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    while pid_alive(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pid_alive(pid), "bootloader {pid} still running");
    assert_eq!((h.boots(), h.pid()), (0, None));
    assert_eq!(probe.core_state().unwrap(), CoreState::Off);
    let log = probe.take_log().join("\n");
    assert!(log.contains("E: Unable to find bootable image"), "{log}");
    assert!(log.contains("spinning"), "{log}");
}

/// The same through the CLI: the step is an error (not a device failure), with the message.
#[test]
fn the_cli_reports_a_stuck_bootloader_as_a_step_error() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("stuck.yaml");
    std::fs::write(
        &scenario,
        "name: stuck
layout: nrf52840-internal
bootloader: { mode: swap-move }
steps:
  - flash: { mcuboot: mcuboot }
  - expect: { running: app-v1 }
",
    )
    .unwrap();
    let o = run_cli(
        &[
            "scenario",
            scenario.to_str().unwrap(),
            "--native-sim-boot-timeout-s",
            "2",
        ],
        "0",
        tmp.path(),
    );
    let out = text(&o);
    // A board error inside a scenario: the step is an error (JUnit `error`, not `failure`);
    // the run's exit code is the one of a scenario that did not pass.
    assert_eq!(o.status.code(), Some(100), "{out}");
    assert!(
        out.contains("ERROR  probe: bootloader did not hand over"),
        "{out}"
    );
    assert!(out.contains("killed with SIGKILL"), "{out}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<error") && junit.contains("bootloader did not hand over"),
        "{junit}"
    );
}

fn run_cli(args: &[&str], exit_status: &str, tmp: &Path) -> Output {
    Command::new(exe())
        .args(args)
        .args(["--board", "native-sim", "--native-sim-bootloader"])
        .arg(stand_in_line("boot --layout {layout} --flash {flash}"))
        .arg("--native-sim-app")
        .arg(stand_in_line(&format!(
            "serve --app-only --reset-exit-status {exit_status} --layout {{layout}} --flash {{flash}}"
        )))
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

/// The bundled revert scenario, both variants (swap-move, swap-scratch), on native-sim with
/// the stand-ins: the swaps and the revert are done by the bootloader process.
#[test]
fn internal_swap_revert_passes_on_native_sim() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_cli(&["scenario", "internal-swap-revert"], "0", tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    for (variant, algorithm) in [("move", "move"), ("scratch", "scratch")] {
        let log = std::fs::read_to_string(tmp.path().join(format!(
            "evidence/native-sim--internal-swap-revert_{variant}_/device.log"
        )))
        .unwrap();
        // Test swap, then revert, each followed by the bootloader handing over.
        let swap = log
            .find(&format!("Starting swap using {algorithm} algorithm"))
            .unwrap_or_else(|| panic!("{log}"));
        let revert = log
            .find("Swap type: revert")
            .unwrap_or_else(|| panic!("{log}"));
        assert!(swap < revert, "{log}");
        assert!(log[revert..].contains("sim boot: handing over"), "{log}");
        assert!(log.contains("after an `os reset` request"), "{log}");
    }
}

/// A `native-sim:` entry of the inventory is a board id; its layout is enforced.
#[test]
fn an_inventory_native_sim_entry_is_a_board() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("lab.yaml");
    std::fs::write(
        &inv,
        format!(
            "lab: desk
native-sim:
  - id: ns-52840
    app: \"{}\"
    bootloader: \"{}\"
    boot-timeout-s: 30
    layout: nrf52840-internal
",
            stand_in_line(
                "serve --app-only --reset-exit-status 1 --layout {layout} --flash {flash}"
            ),
            stand_in_line("boot --layout {layout} --flash {flash}"),
        ),
    )
    .unwrap();
    let o = Command::new(exe())
        .args(["scenario", "internal-swap-confirm", "--board", "ns-52840"])
        .arg("--inventory")
        .arg(&inv)
        .arg("--root")
        .arg(root())
        .arg("--junit")
        .arg(tmp.path().join("junit.xml"))
        .arg("--json")
        .arg(tmp.path().join("results.json"))
        .arg("--evidence")
        .arg(tmp.path().join("evidence"))
        .output()
        .unwrap();
    let out = text(&o);
    // The move variant runs on nrf52840-internal; the scratch variant needs another layout.
    assert!(
        out.contains("PASSED: internal-swap-confirm[move] on ns-52840"),
        "{out}"
    );
    assert!(
        out.contains("board `ns-52840` is built for layout `nrf52840-internal`, the scenario needs `nrf52840-scratch`"),
        "{out}"
    );
    assert_eq!(o.status.code(), Some(98), "{out}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("ns-52840/internal-swap-confirm"), "{junit}");
}

/// `sim boot` directly: exit 0 and the flash saved when it hands over; exit 2 without an
/// MCUboot build; with nothing bootable it keeps running, ignores SIGTERM and sleeps rather
/// than burning a core.
#[test]
fn sim_boot_exits_to_hand_over_and_spins_deaf_to_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let flash = dir.path().join("flash.bin");
    let boot = |flash: &Path| {
        let mut c = Command::new(exe());
        c.args(["--root", root().to_str().unwrap(), "sim", "boot", "--flash"])
            .arg(flash)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    // No file at all: erased flash, no MCUboot build in it.
    let o = boot(&flash).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no MCUboot build"), "{}", text(&o));

    // MCUboot and an app: hands over, exit 0.
    let built = fixtures(&["mcuboot", "app-v1"]);
    let file = native_sim::FlashFile::new(flash.clone(), layout());
    file.program("mcuboot", &built["mcuboot"].bytes).unwrap();
    file.program("slot0", &built["app-v1"].bytes).unwrap();
    let o = boot(&flash).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("I: Jumping to the first image slot"),
        "{}",
        text(&o)
    );
    assert!(
        !text(&o).contains("Booting Zephyr OS"),
        "the app's banner is the app's: {}",
        text(&o)
    );

    // Nothing bootable.
    let size = file.layout.partition("slot0").unwrap().size;
    file.erase("slot0", 0, size).unwrap();
    let mut child = boot(&flash).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !line.contains("spinning") {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            panic!("no `spinning` line from sim boot");
        }
    }
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(1000));
    assert!(child.try_wait().unwrap().is_none(), "SIGTERM ended it");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // utime + stime (fields 14, 15 after the command name), in clock ticks.
    let ticks: u64 = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        ticks < 100,
        "sim boot used {ticks} ticks of CPU while spinning"
    );
}
