//! A build as the input of a run: a small, realistic build tree in a temp dir (an
//! imgtool-signed application, MCUboot's facts, the layout), a scenario that names it with
//! `build:`, its own image as `app-v1` and a v2 derived from it, run on the simulated board.
//!
//! The build's facts are given as values here (`Build` has public fields), so these tests do
//! not depend on the build-directory reader; the CLI tests open real trees.
//!
//! imgtool is found via `$IMGTOOL`, then PATH, then `<workspace>/.venv/bin/imgtool`; set
//! `DFU_HIL_SKIP_IMGTOOL=1` to skip where Python is not available.

use dfu_hil_build::build::{BuildImage, BuildKind, ImageRole};
use dfu_hil_build::facts::{AppFacts, Fact, McubootFacts, SignatureType, Source};
use dfu_hil_build::Build;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::UpgradeMode;
use dfu_hil_runner::build_input::{self, apply_parts};
use dfu_hil_runner::event::Collector;
use dfu_hil_runner::result::StepStatus;
use dfu_hil_runner::run::{prepare, run_scenario, RunOptions, SetupError};
use dfu_hil_runner::scenario::{self, LoadedScenario};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn find_imgtool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IMGTOOL").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("imgtool");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let venv = root().join(".venv/bin/imgtool");
    venv.is_file().then_some(venv)
}

fn imgtool() -> Option<PathBuf> {
    if let Some(p) = find_imgtool() {
        return Some(p);
    }
    if std::env::var("DFU_HIL_SKIP_IMGTOOL").as_deref() == Ok("1") {
        eprintln!("note: imgtool not found, skipping (DFU_HIL_SKIP_IMGTOOL=1)");
        return None;
    }
    panic!("imgtool not found ($IMGTOOL, PATH, <workspace>/.venv/bin/imgtool); set DFU_HIL_SKIP_IMGTOOL=1 to skip");
}

fn at(file: &Path, line: u32) -> Option<Source> {
    Some(Source {
        file: file.to_owned(),
        line,
    })
}

fn fact<T>(value: T, file: &Path, line: u32) -> Fact<T> {
    Fact {
        value,
        source: at(file, line),
    }
}

/// A Zephyr-like `zephyr.bin` linked for slot0 of `nrf52840-internal` (0xc000) with
/// `CONFIG_ROM_START_OFFSET=0x200`, signed by imgtool as `west build` does
/// (`--header-size 0x200 --pad-header --align 4 --slot-size 0x7a000`).
fn signed_app(tool: &Path, dir: &Path, version: &str) -> PathBuf {
    let input = dir.join("zephyr.bin");
    let output = dir.join("zephyr.signed.bin");
    let mut bin = Vec::new();
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&(0xc000u32 + 0x200 + 0x101).to_le_bytes());
    bin.extend((0..0x3000u32).map(|i| (i * 7 + 3) as u8));
    std::fs::write(&input, &bin).unwrap();
    let key = root().join("firmware-fixtures/keys/ec-p256.pem");
    let out = Command::new(tool)
        .args(["sign", "--key"])
        .arg(&key)
        .args([
            "--header-size",
            "0x200",
            "--pad-header",
            "--align",
            "4",
            "--slot-size",
            "0x7a000",
            "--version",
            version,
        ])
        .arg(&input)
        .arg(&output)
        .output()
        .expect("imgtool runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    output
}

/// The build tree: `build/peripheral_lbs/zephyr/zephyr.signed.bin`, the two `.config` files
/// the facts cite, and the facts themselves.
struct Tree {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    build: Build,
}

fn tree(tool: &Path) -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("build");
    let app_dir = b.join("peripheral_lbs/zephyr");
    let mcuboot_dir = b.join("mcuboot/zephyr");
    std::fs::create_dir_all(&app_dir).unwrap();
    std::fs::create_dir_all(&mcuboot_dir).unwrap();
    let mcuboot_config = mcuboot_dir.join(".config");
    std::fs::write(
        &mcuboot_config,
        "CONFIG_BOOT_SWAP_USING_MOVE=y\nCONFIG_BOOT_MAX_IMG_SECTORS=128\n\
         CONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P256=y\n\
         CONFIG_BOOT_SIGNATURE_KEY_FILE=\"/home/dev/ncs/bootloader/mcuboot/root-ec-p256.pem\"\n\
         CONFIG_BOOT_VALIDATE_SLOT0=y\n",
    )
    .unwrap();
    let app_config = app_dir.join(".config");
    std::fs::write(
        &app_config,
        "CONFIG_BOOTLOADER_MCUBOOT=y\nCONFIG_ROM_START_OFFSET=0x200\n\
         CONFIG_MCUMGR_GRP_IMG=y\nCONFIG_MCUMGR_GRP_OS=y\nCONFIG_MCUMGR_TRANSPORT_UART=y\n\
         CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=384\n",
    )
    .unwrap();
    let image = signed_app(tool, &app_dir, "1.0.0");
    let c = &mcuboot_config;
    let mcuboot = McubootFacts {
        config: c.clone(),
        mode: fact(Some(UpgradeMode::SwapMove), c, 1),
        max_sectors: fact(128, c, 2),
        signature: fact(SignatureType::EcdsaP256, c, 3),
        key_file: Some(fact(
            "/home/dev/ncs/bootloader/mcuboot/root-ec-p256.pem".into(),
            c,
            4,
        )),
        validate_primary: fact(true, c, 5),
        downgrade_prevention: Fact {
            value: false,
            source: None,
        },
        image_number: Fact {
            value: 1,
            source: None,
        },
        external_flash_driver: Fact {
            value: false,
            source: None,
        },
        serial_recovery: Fact {
            value: false,
            source: None,
        },
        single_slot: Fact {
            value: false,
            source: None,
        },
        max_align: None,
    };
    let a = &app_config;
    let app = AppFacts {
        config: a.clone(),
        board: None,
        soc: None,
        bootloader_mcuboot: fact(true, a, 1),
        rom_start_offset: fact(0x200, a, 2),
        sign_version: None,
        extra_imgtool_args: None,
        mcumgr_groups: vec![fact("img".into(), a, 3), fact("os".into(), a, 4)],
        mcumgr_transports: vec![fact("uart".into(), a, 5)],
        netbuf_size: Some(fact(384, a, 6)),
        netbuf_count: None,
        bt_l2cap_tx_mtu: None,
        bt_acl_rx_size: None,
        uart_rx_buf_size: None,
        tfm: Fact {
            value: false,
            source: None,
        },
        nonsecure: Fact {
            value: false,
            source: None,
        },
        secure_boot: Fact {
            value: false,
            source: None,
        },
    };
    let build = Build {
        dir: b.clone(),
        kind: BuildKind::Sysbuild,
        app_name: Some("peripheral_lbs".into()),
        mcuboot: Some(mcuboot),
        app: Some(app),
        netcore: None,
        nsib: None,
        sysbuild: None,
        files: Default::default(),
        images: vec![BuildImage {
            role: ImageRole::App,
            path: image,
            entry: None,
            image_index: Some(0),
        }],
        elfs: Default::default(),
        versions: Default::default(),
    };
    Tree {
        dir: tmp.path().to_owned(),
        _tmp: tmp,
        build,
    }
}

fn layout(name: &str) -> Layout {
    Layout::load(&root().join(format!("partitions/{name}.yaml"))).unwrap()
}

fn key() -> Option<PathBuf> {
    Some(root().join("firmware-fixtures/keys/ec-p256.pem"))
}

fn load(dir: &Path, text: &str) -> LoadedScenario {
    let p = dir.join("scenarios/on-build.yaml");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    scenario::load(&p).unwrap()
}

const UPDATE: &str = "name: update-my-build
build: ../build
fixtures:
  app-v1: { build: app }
  app-v2: { derived: { from: app-v1, derive: [ { resign: { version: 1.1.0 } } ] } }
steps:
  - flash: { mcuboot: mcuboot, slot0: app-v1 }
  - expect: { running: app-v1, slot0: { confirmed: true } }
  - upload: { image: app-v2 }
  - test: app-v2
  - reset: {}
  - expect: { running: app-v2, slot0: { confirmed: false } }
  - confirm: {}
  - reset: {}
  - expect: { running: app-v2, slot0: { confirmed: true } }
";

#[test]
fn the_builds_image_and_a_v2_derived_from_it_update_on_the_sim_board() {
    let Some(tool) = imgtool() else { return };
    let t = tree(&tool);
    let s = load(&t.dir, UPDATE);
    let named = build_input::build_dir(&s, &RunOptions::new(root(), t.dir.join("ev")))
        .unwrap()
        .1;
    assert!(named.starts_with("build: at "), "{named}");
    let s = apply_parts(
        s,
        t.build.clone(),
        layout("nrf52840-internal"),
        key(),
        named,
    )
    .unwrap();
    // The `bootloader:` block is the build's, and its key.
    assert_eq!(s.scenario.bootloader.mode, UpgradeMode::SwapMove);
    assert!(!s.scenario.bootloader.external_flash_driver);
    assert_eq!(s.scenario.bootloader.key, build_input::BUILD_KEY);
    let opts = RunOptions::new(root(), t.dir.join("evidence"));
    let (layout, fixtures) = prepare(&s, &opts).unwrap();
    assert_eq!(fixtures["app-v2"].version.as_deref(), Some("1.1.0"));
    let (board, shared) = dfu_hil_board::sim::open(layout.clone(), "sim");
    let mut c = Collector::default();
    let r = run_scenario(&s, &layout, &fixtures, board, &opts, &mut c);
    let failed: Vec<String> = r
        .steps
        .iter()
        .filter(|st| st.status != StepStatus::Passed)
        .map(|st| format!("{}: {}", st.index, st.message))
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", r.device_log.join("\n"));
    // The simulated board says it ran a model of the real image.
    let log = shared.lock().unwrap().log().join("\n");
    assert!(
        log.contains("peripheral_lbs 1.1.0: the application is modelled from the build's .config"),
        "{log}"
    );
    let ev = r.evidence.expect("evidence written");
    let build_txt = std::fs::read_to_string(ev.join("build.txt")).unwrap();
    assert!(
        build_txt.contains("runs a model of the app's SMP server"),
        "{build_txt}"
    );
}

#[test]
fn a_stated_value_the_build_contradicts_names_both_lines() {
    let Some(tool) = imgtool() else { return };
    let t = tree(&tool);
    let text = UPDATE.replace(
        "build: ../build\n",
        "build: ../build\nbootloader:\n  mode: overwrite-only\n  max-sectors: 128\n  validate-primary: false\n",
    );
    let s = load(&t.dir, &text);
    let e = apply_parts(
        s,
        t.build.clone(),
        layout("nrf52840-internal"),
        key(),
        "--build".into(),
    )
    .unwrap_err();
    let SetupError::BuildDisagrees { list, .. } = &e else {
        panic!("{e}")
    };
    // max-sectors agrees; mode and validate-primary do not.
    let fields: Vec<&str> = list.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["mode", "validate-primary"]);
    let msg = e.to_string();
    assert!(msg.contains("on-build.yaml:4:9: bootloader mode is overwrite-only here, but the build's MCUboot has swap-move"), "{msg}");
    assert!(msg.contains("mcuboot/zephyr/.config:1)"), "{msg}");
    assert!(
        msg.contains("on-build.yaml:6:21: bootloader validate-primary is false here"),
        "{msg}"
    );
    assert!(msg.contains("mcuboot/zephyr/.config:5)"), "{msg}");
    // `override-build: true` keeps the scenario's values and says what differs.
    let s = load(
        &t.dir,
        &text.replace("  max-sectors: 128\n", "  override-build: true\n"),
    );
    let s = apply_parts(
        s,
        t.build.clone(),
        layout("nrf52840-internal"),
        key(),
        "--build".into(),
    )
    .unwrap();
    assert_eq!(s.scenario.bootloader.mode, UpgradeMode::OverwriteOnly);
    let notes = &s.scenario.from_build.as_ref().unwrap().notes;
    assert!(
        notes.iter().any(|n| n.contains("override-build")),
        "{notes:?}"
    );
}

#[test]
fn partitions_the_steps_need_and_the_build_lacks_are_all_named() {
    let Some(tool) = imgtool() else { return };
    let t = tree(&tool);
    // A partial pm_static.yml: only MCUboot and the primary slot pinned.
    let mut partial = layout("nrf52840-internal");
    partial.name = "pm_static".into();
    partial.partitions.retain(|p| p.name != "slot1");
    partial.images.clear();
    let s = load(
        &t.dir,
        "name: needs-more\nsteps:\n  - flash: { mcuboot: mcuboot, slot0: app-v1 }\n  - erase: { region: scratch }\n  - expect-trailer: { slot1: { magic: good } }\n  - upload: { image: app-v1 }\n",
    );
    let s = apply_parts(s, t.build.clone(), partial, key(), "--build".into()).unwrap();
    let e = prepare(&s, &RunOptions::new(root(), t.dir.join("ev"))).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("on-build.yaml:4:5: erase: no partitions `scratch`, `slot1`, `mcuboot_primary` + `mcuboot_secondary` (image 0's slots) in the build's layout `pm_static`"), "{msg}");
}

#[test]
fn re_signing_without_the_builds_key_names_the_kconfig_line() {
    let Some(tool) = imgtool() else { return };
    let t = tree(&tool);
    let s = load(&t.dir, UPDATE);
    let s = apply_parts(
        s,
        t.build.clone(),
        layout("nrf52840-internal"),
        None,
        "--build".into(),
    )
    .unwrap();
    let e = prepare(&s, &RunOptions::new(root(), t.dir.join("ev"))).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("fixture `app-v2`: re-signing `app-v1`"),
        "{msg}"
    );
    assert!(
        msg.contains("CONFIG_BOOT_SIGNATURE_KEY_FILE=\"/home/dev/ncs/bootloader/mcuboot/root-ec-p256.pem\" (")
            && msg.contains("mcuboot/zephyr/.config:4)"),
        "{msg}"
    );
}

#[test]
fn the_command_line_build_wins_over_the_scenarios() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), UPDATE);
    let mut opts = RunOptions::new(root(), tmp.path().join("ev"));
    let (dir, by) = build_input::build_dir(&s, &opts).unwrap();
    assert_eq!(dir, tmp.path().join("scenarios/../build"));
    assert_eq!(by, format!("build: at {}:2:8", s.path.display()));
    opts.build = Some(PathBuf::from("/elsewhere/build"));
    let (dir, by) = build_input::build_dir(&s, &opts).unwrap();
    assert_eq!(
        (dir, by.as_str()),
        (PathBuf::from("/elsewhere/build"), "--build")
    );
}

#[test]
fn no_layout_and_no_build_is_an_error_not_a_default() {
    let tmp = tempfile::tempdir().unwrap();
    let s = load(tmp.path(), "name: x\nsteps:\n  - reset: {}\n");
    let e = prepare(&s, &RunOptions::new(root(), tmp.path().join("ev"))).unwrap_err();
    assert!(e.to_string().contains("no `layout:` and no build"), "{e}");
}

#[test]
fn file_fixtures_read_intel_hex() {
    let Some(tool) = imgtool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("zephyr.bin");
    let mut bin = Vec::new();
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&0x0000_c301u32.to_le_bytes());
    bin.extend((0..0x800u32).map(|i| i as u8));
    std::fs::write(&input, &bin).unwrap();
    let hex = tmp.path().join("zephyr.signed.hex");
    let out = Command::new(&tool)
        .args([
            "sign",
            "--header-size",
            "0x200",
            "--pad-header",
            "--align",
            "4",
        ])
        .args([
            "--slot-size",
            "0x7a000",
            "--version",
            "1.2.3",
            "--hex-addr",
            "0xc000",
        ])
        .arg(&input)
        .arg(&hex)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = dfu_hil_runner::fixtures::read_image_file(&hex).unwrap();
    let img = dfu_hil_mcuboot::image::Image::parse(&bytes).unwrap();
    assert_eq!(img.header.version.to_string(), "1.2.3");
    assert_eq!(img.header.hdr_size, 0x200);
}

/// A real device answers SMP only on the transports its app was built with: an app with only
/// the BLE transport (every SMP-capable build of the corpus) runs over BLE when the scenario
/// states no transport, a stated `serial` is an error naming the scenario's line and the app's
/// `.config`, and an app with no SMP transport cannot be run at all.
#[test]
fn the_link_is_the_one_the_builds_app_has() {
    let Some(tool) = imgtool() else { return };
    let t = tree(&tool);
    let a = t.build.app.as_ref().unwrap().config.clone();
    let with_transports = |names: &[&str]| {
        let mut b = t.build.clone();
        let app = b.app.as_mut().unwrap();
        app.mcumgr_transports = names.iter().map(|n| fact(n.to_string(), &a, 5)).collect();
        b
    };

    // Unstated: taken from the app, with a note saying so.
    let s = load(&t.dir, UPDATE);
    let s = apply_parts(
        s,
        with_transports(&["bt"]),
        layout("nrf52840-internal"),
        key(),
        "build:".into(),
    )
    .unwrap();
    assert_eq!(s.scenario.transport, scenario::TransportKind::Ble);
    let from = s.scenario.from_build.as_ref().unwrap();
    assert!(
        from.notes.iter().any(|n| n.contains("transport `ble`")),
        "{:?}",
        from.notes
    );

    // Stated serial, app has BLE only: both places named.
    let stated = UPDATE.replace("build: ../build\n", "build: ../build\ntransport: serial\n");
    let s = load(&t.dir, &stated);
    let err = apply_parts(
        s,
        with_transports(&["bt"]),
        layout("nrf52840-internal"),
        key(),
        "build:".into(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("on-build.yaml:3:"), "{err}");
    assert!(err.contains("transport `serial`"), "{err}");
    assert!(err.contains(&format!("bt ({}:5)", a.display())), "{err}");

    // No SMP transport at all.
    let s = load(&t.dir, UPDATE);
    let err = apply_parts(
        s,
        with_transports(&[]),
        layout("nrf52840-internal"),
        key(),
        "build:".into(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no SMP transport"), "{err}");
}
