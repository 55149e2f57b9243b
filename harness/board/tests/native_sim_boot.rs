//! The native-sim backend's boot rules, with `sh` scripts standing in for the executables
//! (the real stand-ins, `dfu-hil sim boot` and `sim serve --app-only`, are driven in
//! harness/cli/tests/native_sim_boot.rs):
//! * nothing runs before the first reset, nor on a flash file with nothing in its boot region;
//! * a bootloader that never exits (MCUboot's panic loop ignores SIGTERM) is SIGKILLed after
//!   the timeout, with its whole process group, and the reset fails saying so;
//! * an exit right after an `os reset` request is a reboot whatever its status; an exit with a
//!   non-zero status and no such request is a crash.

use dfu_hil_board::native_sim::{self, CommandSpec, NativeSimConfig};
use dfu_hil_board::{CoreState, ResetKind};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_sim::links::serve::Pty;
use dfu_hil_smp::{group, map, os_cmd, Op, Packet, Transport, Version};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn layout() -> Layout {
    Layout::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../partitions/nrf52840-internal.yaml"),
    )
    .unwrap()
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn config(dir: &Path, app: PathBuf) -> NativeSimConfig {
    let mut c = NativeSimConfig::new(
        layout(),
        dir.join("flash.bin"),
        CommandSpec::native_sim(app),
    );
    c.ready_timeout = Duration::from_secs(10);
    c.stop_timeout = Duration::from_secs(2);
    c.settle = Duration::from_millis(10);
    c
}

/// Something non-erased at the start of the boot partition.
const BOOT_CODE: &[u8] = &[0x00, 0x04, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00];

/// Does any process of group `pgid` still exist after `within` (killed children of a killed
/// shell are reaped by init, not at once)?
fn group_alive(pgid: u32, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(-(pgid as i32), 0) == 0 };
        if !alive || Instant::now() >= until {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn request(id: u8) -> Vec<u8> {
    Packet::request(Version::V2, Op::Write, group::OS, id, 0, map([])).encode()
}

#[test]
fn nothing_runs_before_the_first_reset_nor_on_erased_flash() {
    let dir = tempfile::tempdir().unwrap();
    let boot_ran = dir.path().join("boot-ran");
    let app_ran = dir.path().join("app-ran");
    let boot = script(
        dir.path(),
        "mcuboot.exe",
        &format!("touch '{}'; exit 0", boot_ran.display()),
    );
    let app = script(
        dir.path(),
        "app.exe",
        &format!(
            "touch '{}'; echo 'uart connected to pseudotty: /dev/pts/fake'; exec sleep 60",
            app_ran.display()
        ),
    );
    let mut cfg = config(dir.path(), app);
    cfg.bootloader = Some(CommandSpec::native_sim(boot));
    let (mut board, h) = native_sim::open(cfg, "ns").unwrap();

    assert_eq!(board.probe.core_state().unwrap(), CoreState::Off);
    let e = board
        .link
        .send(&request(os_cmd::ECHO))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not started"), "{e}");

    // No flash file at all: nothing to boot, like a CPU whose vector table is erased.
    board.probe.reset(ResetKind::Run).unwrap();
    assert_eq!(board.probe.core_state().unwrap(), CoreState::LockedUp);
    let log = board.probe.take_log().join("\n");
    assert!(
        log.contains("does not exist") && log.contains("nothing is started"),
        "{log}"
    );
    let e = board
        .link
        .send(&request(os_cmd::ECHO))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");

    // Erased boot partition (other regions programmed): still nothing.
    board.probe.flash("slot0", &[1, 2, 3, 4]).unwrap();
    board.probe.flash("mcuboot", &[0xff; 64]).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();
    assert_eq!(board.probe.core_state().unwrap(), CoreState::LockedUp);
    let log = board.probe.take_log().join("\n");
    assert!(
        log.contains("boot region `mcuboot`") && log.contains("is erased"),
        "{log}"
    );
    assert!(!boot_ran.exists() && !app_ran.exists());
    assert_eq!((h.boots(), h.bootloader_runs()), (0, 0));

    // Something in the boot partition: bootloader, then app.
    board.probe.flash("mcuboot", BOOT_CODE).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();
    assert!(boot_ran.exists() && app_ran.exists());
    assert_eq!((h.boots(), h.bootloader_runs()), (1, 1));
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Running);
}

#[test]
fn a_bootloader_that_does_not_hand_over_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let app_ran = dir.path().join("app-ran");
    let app = script(
        dir.path(),
        "app.exe",
        &format!(
            "touch '{}'; echo 'uart connected to pseudotty: /dev/pts/fake'; exec sleep 60",
            app_ran.display()
        ),
    );
    // Like MCUboot with nothing to boot: writes to flash, then spins, deaf to SIGTERM (and a
    // child in its process group, which must go too).
    let stuck = script(
        dir.path(),
        "mcuboot.exe",
        r#"f="${1#--flash=}"
printf 'X' | dd of="$f" bs=1 seek=16 conv=notrunc 2>/dev/null
trap '' TERM
echo 'E: Unable to find bootable image'
sleep 60 &
while :; do sleep 0.1; done"#,
    );
    let mut cfg = config(dir.path(), app);
    cfg.bootloader = Some(CommandSpec::native_sim(stuck.clone()));
    cfg.bootloader_timeout = Duration::from_secs(1);
    let (mut board, h) = native_sim::open(cfg, "ns").unwrap();
    board.probe.flash("mcuboot", BOOT_CODE).unwrap();

    let t0 = Instant::now();
    let e = board.probe.reset(ResetKind::Run).unwrap_err().to_string();
    let took = t0.elapsed();
    assert!(e.contains("bootloader did not hand over"), "{e}");
    assert!(
        e.contains(&stuck.display().to_string()) && e.contains("1s"),
        "{e}"
    );
    assert!(e.contains("SIGKILL"), "{e}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let pid = h.bootloader_pid().unwrap();
    assert!(
        !group_alive(pid, Duration::from_secs(2)),
        "bootloader group {pid} still has processes"
    );
    assert!(!app_ran.exists());
    assert_eq!(h.boots(), 0);

    // The flash file is left as the bootloader left it.
    assert_eq!(board.probe.read("mcuboot", 16, 1).unwrap(), b"X");
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Off);
    let log = board.probe.take_log().join("\n");
    assert!(log.contains("Unable to find bootable image"), "{log}");
    let e = board
        .link
        .send(&request(os_cmd::ECHO))
        .unwrap_err()
        .to_string();
    assert!(e.contains("did not hand over"), "{e}");
}

#[test]
fn an_exit_without_a_reset_request_is_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let app = script(
        dir.path(),
        "app.exe",
        "echo 'uart connected to pseudotty: /dev/pts/fake'; sleep 0.2; exit 1",
    );
    let (mut board, h) = native_sim::open(config(dir.path(), app), "ns").unwrap();
    board.probe.flash("mcuboot", BOOT_CODE).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Off);
    assert_eq!(h.boots(), 1, "a crashed app is not restarted");
    let log = board.probe.take_log().join("\n");
    assert!(
        log.contains("app exited (exit status: 1) with no `os reset` request before it: a crash"),
        "{log}"
    );
    let e = board
        .link
        .send(&request(os_cmd::ECHO))
        .unwrap_err()
        .to_string();
    assert!(e.contains("crashed"), "{e}");
}

/// An app on a real PTY (the test holds the master) that exits with status 1 once `trigger`
/// exists, a quarter second later (Zephyr's reset delay); the second run stays up.
fn exiting_app(dir: &Path, pty: &Path, trigger: &Path) -> PathBuf {
    let marker = dir.join("ran-once");
    script(
        dir,
        "app.exe",
        &format!(
            r#"echo 'uart connected to pseudotty: {pty}'
if [ -e '{m}' ]; then exec sleep 60; fi
touch '{m}'
while [ ! -e '{t}' ]; do sleep 0.02; done
sleep 0.25
exit 1"#,
            pty = pty.display(),
            m = marker.display(),
            t = trigger.display()
        ),
    )
}

#[test]
fn an_exit_right_after_os_reset_is_a_reboot_whatever_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let pty = Pty::open().unwrap();
    let trigger = dir.path().join("go");
    let app = exiting_app(dir.path(), pty.path(), &trigger);
    let (mut board, h) = native_sim::open(config(dir.path(), app), "ns").unwrap();
    board.probe.flash("mcuboot", BOOT_CODE).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();
    let gen0 = board.link.link_generation();

    board.link.send(&request(os_cmd::RESET)).unwrap();
    std::fs::write(&trigger, b"").unwrap();
    // The app still runs (its reset delay): the probe waits for it to go down, then boots.
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Running);
    assert_eq!(h.boots(), 2);
    assert_ne!(board.link.link_generation(), gen0);
    let log = board.probe.take_log().join("\n");
    assert!(
        log.contains("app exited (exit status: 1) after an `os reset` request"),
        "{log}"
    );
}

#[test]
fn an_exit_after_another_request_is_still_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let pty = Pty::open().unwrap();
    let trigger = dir.path().join("go");
    let app = exiting_app(dir.path(), pty.path(), &trigger);
    let (mut board, h) = native_sim::open(config(dir.path(), app), "ns").unwrap();
    board.probe.flash("mcuboot", BOOT_CODE).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();

    board.link.send(&request(os_cmd::ECHO)).unwrap();
    std::fs::write(&trigger, b"").unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Off);
    assert_eq!(h.boots(), 1);
    let log = board.probe.take_log().join("\n");
    assert!(log.contains("a crash"), "{log}");
}

#[test]
fn a_reset_request_the_app_ignores_does_not_hang_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let pty = Pty::open().unwrap();
    let app = script(
        dir.path(),
        "app.exe",
        &format!(
            "echo 'uart connected to pseudotty: {}'; exec sleep 60",
            pty.path().display()
        ),
    );
    let mut cfg = config(dir.path(), app);
    cfg.reboot_window = Duration::from_millis(500);
    let (mut board, h) = native_sim::open(cfg, "ns").unwrap();
    board.probe.flash("mcuboot", BOOT_CODE).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();
    board.link.send(&request(os_cmd::RESET)).unwrap();
    let t0 = Instant::now();
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Running);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(h.boots(), 1);
    let log = board.probe.take_log().join("\n");
    assert!(log.contains("it did not reboot"), "{log}");
}

#[test]
fn inventory_native_sim_entries() {
    use dfu_hil_board::hw::Inventory;
    let path = Path::new("lab.yaml");
    let inv = Inventory::parse(
        r#"
lab: desk
native-sim:
  - id: ns-1
    app: "build/app/zephyr/zephyr.exe --flash={flash}"
    bootloader: "build/mcuboot/zephyr/zephyr.exe"
    boot-timeout-s: 20
    layout: nrf52840-internal
    tags: [nightly]
  - id: ns-2
    app: "zephyr.exe"
"#,
        path,
    )
    .unwrap();
    assert!(inv.boards.is_empty());
    let e = inv.native_sim("ns-1").unwrap();
    assert_eq!(
        e.bootloader.as_deref(),
        Some("build/mcuboot/zephyr/zephyr.exe")
    );
    assert_eq!(e.boot_timeout_s, Some(20));
    assert_eq!(e.layout.as_deref(), Some("nrf52840-internal"));
    assert_eq!(inv.native_sim("ns-2").unwrap().bootloader, None);
    assert!(inv.native_sim("nope").is_none());

    let bad = |text: &str| Inventory::parse(text, path).unwrap_err().to_string();
    let e = bad("native-sim:\n  - { id: a, app: x }\n  - { id: a, app: y }\n");
    assert!(e.contains("board `a`") && e.contains("listed twice"), "{e}");
    let e = bad("native-sim:\n  - { id: a, app: \"  \" }\n");
    assert!(e.contains("empty `app`"), "{e}");
    let e = bad("native-sim:\n  - { id: a, app: x, bootloader: \"\" }\n");
    assert!(e.contains("empty `bootloader`"), "{e}");
    let e = bad("native-sim:\n  - { id: a, app: x, boot-timeout-s: 0 }\n");
    assert!(e.contains("boot-timeout-s"), "{e}");
    let e = bad("native-sim:\n  - { id: a, app: x, bootlaoder: y }\n");
    assert!(e.contains("bootlaoder"), "{e}");
    // An id is unique across lab boards and native_sim entries.
    let e = bad(
        "boards:\n  - { id: a, profile: nrf52840dk, probe: \"1366:1015:1\" }\nnative-sim:\n  - { id: a, app: x }\n",
    );
    assert!(e.contains("listed twice"), "{e}");
}
