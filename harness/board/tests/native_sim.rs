//! The native-sim backend without a real firmware: the flash-file logic on its own, and the
//! process handling with `sh` scripts standing in for native_sim executables (they print the
//! PTY line but serve nothing; SMP over a real PTY is tested in harness/cli/tests/native_sim.rs
//! with `dfu-hil sim serve`).

use dfu_hil_board::native_sim::{self, CommandSpec, FlashFile, NativeSimConfig};
use dfu_hil_board::{BoardError, CoreState, ResetKind};
use dfu_hil_mcuboot::layout::Layout;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn layout(name: &str) -> Layout {
    Layout::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../partitions")
            .join(format!("{name}.yaml")),
    )
    .unwrap()
}

#[test]
fn flash_file_offsets_follow_the_device_order() {
    let dir = tempfile::tempdir().unwrap();
    let f = FlashFile::new(
        dir.path().join("flash.bin"),
        layout("nrf52840-external-qspi"),
    );
    assert_eq!(f.total_size(), 0x100000 + 0x800000);
    assert_eq!(f.range("mcuboot", 0, 4).unwrap().offset, 0);
    assert_eq!(f.range("slot0", 0x10, 4).unwrap().offset, 0xc010);
    // slot1 is at offset 0 of the second device, which starts after the first.
    assert_eq!(
        f.range("slot1", 0xf3ff0, 16).unwrap().offset,
        0x100000 + 0xf3ff0
    );
    assert!(matches!(
        f.range("nope", 0, 1),
        Err(BoardError::NoRegion(_))
    ));
    assert!(matches!(
        f.range("slot1", 0xf4000, 1),
        Err(BoardError::Flash { .. })
    ));

    let e = f.read("slot0", 0, 4).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
    f.ensure().unwrap();
    assert_eq!(std::fs::metadata(&f.path).unwrap().len(), 0x900000);
    assert_eq!(f.read("slot1", 0, 4).unwrap(), vec![0xff; 4]);

    // Program: bytes at the region start; the rest of the covered sector reads erased.
    f.erase("slot0", 0, 0x2000).unwrap();
    let mut raw = std::fs::read(&f.path).unwrap();
    raw[0xc000 + 0x10..0xc000 + 0x20].fill(0x00); // stale data in the sector
    std::fs::write(&f.path, &raw).unwrap();
    f.program("slot0", &[1, 2, 3, 4]).unwrap();
    let got = f.read("slot0", 0, 0x20).unwrap();
    assert_eq!(&got[..4], &[1, 2, 3, 4]);
    assert!(got[4..].iter().all(|&b| b == 0xff), "{got:?}");
    f.program("slot1", &[9; 8]).unwrap();
    assert_eq!(std::fs::read(&f.path).unwrap()[0x100000..0x100008], [9; 8]);

    let e = f.erase("slot0", 0x10, 0x1000).unwrap_err().to_string();
    assert!(e.contains("not aligned"), "{e}");
    f.erase("slot1", 0, 0x1000).unwrap();
    assert_eq!(f.read("slot1", 0, 8).unwrap(), vec![0xff; 8]);

    // A file of the wrong size (another layout's) is refused, not silently misread.
    let small = FlashFile::new(f.path.clone(), layout("nrf52840-internal"));
    let e = small.read("slot0", 0, 4).unwrap_err().to_string();
    assert!(e.contains("wrong layout"), "{e}");
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
        layout("nrf52840-internal"),
        dir.join("flash.bin"),
        CommandSpec::native_sim(app),
    );
    c.ready_timeout = Duration::from_secs(10);
    c.stop_timeout = Duration::from_secs(2);
    c.settle = Duration::from_millis(10);
    c
}

/// An "app" that prints its flash argument and the PTY line, then idles.
const APP: &str = r#"echo "app args: $*"
echo "uart connected to pseudotty: /dev/pts/fake"
exec sleep 60"#;

/// Something non-erased in the boot partition, so a reset starts the processes.
const BOOT_CODE: &[u8] = &[0x00, 0x04, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00];

#[test]
fn processes_start_stop_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = script(dir.path(), "app.exe", APP);
    let boot = script(
        dir.path(),
        "mcuboot.exe",
        r#"echo "*** Booting MCUboot ($1)"; exit 0"#,
    );
    let mut cfg = config(dir.path(), app);
    cfg.bootloader = Some(CommandSpec::native_sim(boot));
    let flash = cfg.flash_file.clone();
    let (mut board, h) = native_sim::open(cfg, "ns").unwrap();
    assert_eq!(board.kind, dfu_hil_board::BoardKind::NativeSim);
    // Nothing runs before the first reset.
    assert_eq!(h.boots(), 0);
    assert_eq!(h.pid(), None);
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Off);

    board.probe.flash("mcuboot", BOOT_CODE).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();
    assert_eq!(h.pty(), Some(PathBuf::from("/dev/pts/fake")));
    assert_eq!(h.boots(), 1);
    assert_eq!(h.bootloader_runs(), 1);
    let pid1 = h.pid().unwrap();
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Running);
    std::thread::sleep(Duration::from_millis(100));
    let log = board.probe.take_log();
    let want_flash = format!("--flash={}", flash.display());
    assert!(
        log.iter()
            .any(|l| l.contains("Booting MCUboot") && l.contains(&want_flash)),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l == &format!("app args: {want_flash}")),
        "{log:?}"
    );

    // Flashing stops the processes and leaves the board down until a reset.
    board
        .probe
        .flash("slot1", &[0x3d, 0xb8, 0xf3, 0x96])
        .unwrap();
    assert_eq!(h.pid(), None);
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Off);
    assert_eq!(
        board.probe.read("slot1", 0, 4).unwrap(),
        [0x3d, 0xb8, 0xf3, 0x96]
    );
    assert_eq!(board.probe.region_size("slot1").unwrap(), 0x7a000);

    board.probe.reset(ResetKind::Run).unwrap();
    assert_eq!(h.boots(), 2);
    assert_eq!(h.bootloader_runs(), 2);
    assert_ne!(h.pid().unwrap(), pid1);
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Running);

    board.probe.reset(ResetKind::Halt).unwrap();
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Halted);
    board.probe.reset(ResetKind::Run).unwrap();
    board
        .probe
        .power_control()
        .unwrap()
        .cut_power_now()
        .unwrap();
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Off);
    assert!(
        board.probe.flash_op_cuts().is_none(),
        "native-sim cannot cut at a flash operation"
    );

    // Snapshot / restore of the flash file.
    let snap = board.probe.snapshots().unwrap().snapshot().unwrap();
    board.probe.erase("slot1", 0, 0x1000).unwrap();
    assert_eq!(board.probe.read("slot1", 0, 4).unwrap(), [0xff; 4]);
    board.probe.snapshots().unwrap().restore(&snap).unwrap();
    assert_eq!(
        board.probe.read("slot1", 0, 4).unwrap(),
        [0x3d, 0xb8, 0xf3, 0x96]
    );
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Running);
}

#[test]
fn a_clean_exit_is_a_reboot_and_the_board_boots_again() {
    let dir = tempfile::tempdir().unwrap();
    // Exits by itself shortly after announcing: what native_sim does on sys_reboot(). The
    // second run stays up (a marker file tells them apart).
    let marker = dir.path().join("ran-once");
    let app = script(
        dir.path(),
        "app.exe",
        &format!(
            r#"echo "uart connected to pseudotty: /dev/pts/fake"
if [ -e '{m}' ]; then exec sleep 60; fi
touch '{m}'; sleep 0.2; exit 0"#,
            m = marker.display()
        ),
    );
    let (mut board, h) = native_sim::open(config(dir.path(), app), "ns").unwrap();
    board.probe.flash("mcuboot", BOOT_CODE).unwrap();
    board.probe.reset(ResetKind::Run).unwrap();
    assert_eq!(h.boots(), 1);
    std::thread::sleep(Duration::from_millis(600));
    // Exited cleanly: a reboot, so the board comes back by itself.
    assert_eq!(board.probe.core_state().unwrap(), CoreState::Running);
    assert_eq!(h.boots(), 2);
    use dfu_hil_smp::Transport;
    // The link reopens (and fails to open the fake PTY, which is fine here).
    let _ = board.link.send(&[0; 8]);
    assert_eq!(h.boots(), 2);
    assert!(board
        .probe
        .take_log()
        .iter()
        .any(|l| l.contains("app exited (exit status: 0) with status 0: a reboot")));
}

#[test]
fn start_failures_say_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let reset_err = |cfg: NativeSimConfig| {
        let (mut board, _h) = native_sim::open(cfg, "ns").unwrap();
        board.probe.flash("mcuboot", BOOT_CODE).unwrap();
        board.probe.reset(ResetKind::Run).unwrap_err().to_string()
    };
    let quiet = script(dir.path(), "quiet.exe", "echo hello; exit 3");
    let e = reset_err(config(dir.path(), quiet));
    assert!(
        e.contains("exited") && e.contains("uart connected to pseudotty"),
        "{e}"
    );

    let silent = script(dir.path(), "silent.exe", "exec sleep 60");
    let mut cfg = config(dir.path(), silent);
    cfg.ready_timeout = Duration::from_millis(300);
    let e = reset_err(cfg);
    assert!(e.contains("printed no"), "{e}");

    let app = script(dir.path(), "app.exe", APP);
    let bad_boot = script(
        dir.path(),
        "boot.exe",
        "echo 'E: Image in the primary slot is not valid!'; exit 1",
    );
    let mut cfg = config(dir.path(), app);
    cfg.bootloader = Some(CommandSpec::native_sim(bad_boot));
    let e = reset_err(cfg);
    assert!(e.contains("bootloader") && e.contains("exit"), "{e}");

    let missing = dir.path().join("no-such.exe");
    let e = reset_err(config(dir.path(), missing));
    assert!(e.contains("no-such.exe"), "{e}");
}
