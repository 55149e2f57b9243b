//! `--build DIR` through the binary, on a small NCS-like sysbuild tree written here: Partition
//! Manager output for an nRF52840, MCUboot's and the app's `.config`, and an app signed by the
//! real imgtool with a key that sits in the project (as `CONFIG_BOOT_SIGNATURE_KEY_FILE` names
//! it). The bundled `scenarios/build/update-my-build.yaml` passes on it; a scenario that states a
//! value the build contradicts is refused by `lint` with both lines; `image inspect --build`
//! checks the build's images against its layout and `CONFIG_ROM_START_OFFSET`.
//!
//! imgtool is found via `$IMGTOOL`, then PATH, then `<workspace>/.venv/bin/imgtool`; set
//! `DFU_HIL_SKIP_IMGTOOL=1` to skip where Python is not available.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn imgtool() -> Option<PathBuf> {
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
    if venv.is_file() {
        return Some(venv);
    }
    if std::env::var("DFU_HIL_SKIP_IMGTOOL").as_deref() == Ok("1") {
        eprintln!("note: imgtool not found, skipping (DFU_HIL_SKIP_IMGTOOL=1)");
        return None;
    }
    panic!("imgtool not found ($IMGTOOL, PATH, <workspace>/.venv/bin/imgtool); set DFU_HIL_SKIP_IMGTOOL=1 to skip");
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

/// Partition Manager's output for MCUboot + the app on an nRF52840 (1 MiB, 4 KiB pages):
/// MCUboot 48 KiB, two 488 KiB slots, the primary a span of `mcuboot_pad` and `app`.
const PARTITIONS: &str = "app:
  address: 0xc200
  end_address: 0x86000
  region: flash_primary
  size: 0x79e00
mcuboot:
  address: 0x0
  end_address: 0xc000
  placement:
    before:
    - mcuboot_primary
  region: flash_primary
  size: 0xc000
mcuboot_pad:
  address: 0xc000
  end_address: 0xc200
  placement:
    align:
      start: 0x1000
    before:
    - mcuboot_primary_app
  region: flash_primary
  size: 0x200
mcuboot_primary:
  address: 0xc000
  end_address: 0x86000
  orig_span: &id001
  - mcuboot_pad
  - app
  region: flash_primary
  size: 0x7a000
  span: *id001
mcuboot_primary_app:
  address: 0xc200
  end_address: 0x86000
  orig_span: &id002
  - app
  region: flash_primary
  size: 0x79e00
  span: *id002
mcuboot_secondary:
  address: 0x86000
  end_address: 0x100000
  placement:
    after:
    - mcuboot_primary
    align:
      start: 0x1000
  region: flash_primary
  share_size:
  - mcuboot_primary
  size: 0x7a000
";

/// `project/build/…` as sysbuild writes it; returns the project directory.
fn project(tool: &Path, dir: &Path, rom_start_offset: &str) -> PathBuf {
    let project = dir.join("myproj");
    let b = project.join("build");
    let key = project.join("keys/app-p256.pem");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::copy(root().join("firmware-fixtures/keys/ec-p256.pem"), &key).unwrap();
    write(
        &b,
        "zephyr/.config",
        "SB_CONFIG_PARTITION_MANAGER=y\nSB_CONFIG_MCUBOOT_APPLICATION_IMAGE_NUMBER=0\n\
         SB_CONFIG_MCUBOOT_NETWORK_CORE_IMAGE_NUMBER=-1\nSB_CONFIG_MCUBOOT_MCUBOOT_IMAGE_NUMBER=-1\n",
    );
    write(&b, "domains.yaml", "default: myapp\nbuild_dir: /x/build\n");
    write(&b, "partitions.yml", PARTITIONS);
    write(
        &b,
        "mcuboot/zephyr/.config",
        "CONFIG_SOC=\"nrf52840\"\nCONFIG_BOOT_SWAP_USING_MOVE=y\nCONFIG_BOOT_MAX_IMG_SECTORS=128\n\
         CONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P256=y\nCONFIG_BOOT_SIGNATURE_KEY_FILE=\"keys/app-p256.pem\"\n\
         CONFIG_BOOT_VALIDATE_SLOT0=y\n",
    );
    write(
        &b,
        "myapp/zephyr/.config",
        &format!(
            "CONFIG_SOC=\"nrf52840\"\nCONFIG_BOOTLOADER_MCUBOOT=y\nCONFIG_ROM_START_OFFSET={rom_start_offset}\n\
             CONFIG_MCUMGR=y\nCONFIG_MCUMGR_GRP_IMG=y\nCONFIG_MCUMGR_GRP_OS=y\n\
             CONFIG_MCUMGR_TRANSPORT_UART=y\nCONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=384\n"
        ),
    );
    // zephyr.bin linked for the primary slot at 0xc000 with ROM_START_OFFSET 0x200.
    let mut bin = Vec::new();
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&(0xc000u32 + 0x200 + 0x101).to_le_bytes());
    bin.extend((0..0x3000u32).map(|i| (i * 7 + 3) as u8));
    let unsigned = b.join("myapp/zephyr/zephyr.bin");
    std::fs::write(&unsigned, &bin).unwrap();
    for out in ["zephyr.signed.bin", "zephyr.signed.hex"] {
        let o = Command::new(tool)
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
                "1.0.0",
                "--hex-addr",
                "0xc000",
            ])
            .arg(&unsigned)
            .arg(b.join("myapp/zephyr").join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    project
}

fn dfu_hil(args: &[&str], tmp: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(args)
        .arg("--root")
        .arg(root())
        .current_dir(tmp)
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

#[test]
fn the_bundled_build_scenario_passes_on_a_real_build_tree() {
    let Some(tool) = imgtool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = project(&tool, tmp.path(), "0x200");
    let scenario = root().join("scenarios/build/update-my-build.yaml");
    let o = dfu_hil(
        &[
            "scenario",
            scenario.to_str().unwrap(),
            "--build",
            p.to_str().unwrap(),
            "--evidence",
            tmp.path().join("ev").to_str().unwrap(),
            "--junit",
            tmp.path().join("j.xml").to_str().unwrap(),
            "--json",
            tmp.path().join("r.json").to_str().unwrap(),
        ],
        tmp.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("runs a model of the app's SMP server"),
        "{out}"
    );
    // The bundled bad-image scenarios run on the build: their synthetic fixtures (the
    // manifest's app-v1/app-v2, signed with `default`) boot under the build's MCUboot, since on
    // a build `default` is the build's key, and `other` stays foreign.
    let o = dfu_hil(
        &[
            "run",
            "wrong-key",
            "bad-signature",
            "corrupted-payload",
            "too-large",
            "--build",
            p.to_str().unwrap(),
            "--evidence",
            tmp.path().join("ev").to_str().unwrap(),
            "--junit",
            tmp.path().join("j.xml").to_str().unwrap(),
            "--json",
            tmp.path().join("r.json").to_str().unwrap(),
        ],
        tmp.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("layout `nrf52840-internal` is replaced by the build's layout"),
        "{out}"
    );
    assert!(out.contains("4 passed, 0 failed"), "{out}");
    // lint agrees.
    let o = dfu_hil(
        &[
            "lint",
            scenario.to_str().unwrap(),
            "--build",
            p.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn lint_names_both_lines_of_a_disagreement_and_the_build_in_the_scenario() {
    let Some(tool) = imgtool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    project(&tool, tmp.path(), "0x200");
    let s = write(
        tmp.path(),
        "myproj/tests/x.yaml",
        "name: x\nbuild: ../build\nbootloader:\n  max-sectors: 256\nsteps:\n  - flash: { mcuboot: mcuboot }\n",
    );
    let o = dfu_hil(&["lint", s.to_str().unwrap()], tmp.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(96), "{out}");
    assert!(
        out.contains(
            "x.yaml:4:16: bootloader max-sectors is 256 here, but the build's MCUboot has 128"
        ) && out.contains("mcuboot/zephyr/.config:3)"),
        "{out}"
    );
}

#[test]
fn image_inspect_checks_the_builds_images_and_reads_hex() {
    let Some(tool) = imgtool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = project(&tool, tmp.path(), "0x200");
    let o = dfu_hil(
        &["image", "check", "--build", p.to_str().unwrap()],
        tmp.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("zephyr.signed.bin (App)"), "{out}");
    assert!(out.contains("zephyr.signed.hex (App)"), "{out}");
    // An Intel HEX given directly is read, not refused as "bad image magic".
    let hex = p.join("build/myapp/zephyr/zephyr.signed.hex");
    let o = dfu_hil(&["image", "inspect", hex.to_str().unwrap()], tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Without --build or --elf nothing says where the app was linked: said, not "no problems".
    assert!(
        text(&o).contains("header check not possible"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("no problems found"), "{}", text(&o));
    // An app linked for another ROM_START_OFFSET than the header: an error finding.
    let tmp2 = tempfile::tempdir().unwrap();
    let p = project(&tool, tmp2.path(), "0x800");
    let o = dfu_hil(
        &["image", "inspect", "--build", p.to_str().unwrap()],
        tmp2.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(100), "{out}");
    assert!(
        out.contains("header-size-vs-rom-start-offset")
            && out.contains("CONFIG_ROM_START_OFFSET=0x800")
            && out.contains("myapp/zephyr/.config:3"),
        "{out}"
    );
}

#[test]
fn sim_serve_with_a_build_boots_its_app_under_its_mcuboot() {
    use dfu_hil_cli::sim_cmd::{prepare_board, ServeArgs};
    let Some(tool) = imgtool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = project(&tool, tmp.path(), "0x200");
    let mut args = ServeArgs::new("nrf52840-internal");
    args.build = Some(p.clone());
    let board = prepare_board(&args, &root()).unwrap();
    match board.core_state() {
        dfu_hil_sim::CoreState::Running { app, partition } => {
            assert_eq!(
                (app.name.as_str(), app.version.as_str(), partition.as_str()),
                ("myapp", "1.0.0", "slot0")
            );
            assert_eq!(app.buf_size, 384);
        }
        other => panic!("{other:?}\n{}", board.log().join("\n")),
    }
    assert_eq!(board.flash.layout.partition("slot1").unwrap().size, 0x7a000);
    // The model only starts after MCUboot accepted the image: a header edited after signing
    // (hdr_size 0x100) fails validation and nothing runs.
    let tmp2 = tempfile::tempdir().unwrap();
    let p = project(&tool, tmp2.path(), "0x200");
    let img = p.join("build/myapp/zephyr/zephyr.signed.bin");
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[8..10].copy_from_slice(&0x100u16.to_le_bytes());
    std::fs::write(&img, &bytes).unwrap();
    args.build = Some(p);
    let board = prepare_board(&args, &root()).unwrap();
    assert!(
        !matches!(board.core_state(), dfu_hil_sim::CoreState::Running { .. }),
        "{:?}",
        board.core_state()
    );
}
