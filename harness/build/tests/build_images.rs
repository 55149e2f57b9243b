//! Build directories laid out as NCS writes them, holding images signed by the real imgtool
//! (`.bin`, `.hex`, `dfu_application.zip`, `merged.hex`): `Build::open` lists them with their
//! roles and image numbers, `Build::image_bytes` and `read_image_file` give back the exact
//! signed image from every container, and the signing key resolves.
//!
//! imgtool is found via `$IMGTOOL`, then `imgtool` on PATH, then `<workspace>/.venv/bin/imgtool`.
//! Set `DFU_HIL_SKIP_IMGTOOL=1` to skip where Python is not available.

use dfu_hil_build::build::{Build, BuildKind, ImageRole};
use dfu_hil_build::images::read_image_file;
use dfu_hil_mcuboot::image::Image;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/imgtool");
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
    panic!(
        "imgtool not found (looked at $IMGTOOL, PATH and <workspace>/.venv/bin/imgtool); \
         install it with `.venv/bin/pip install imgtool` or set DFU_HIL_SKIP_IMGTOOL=1"
    );
}

fn run(tool: &Path, args: &[&str]) {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "imgtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(root: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A Zephyr-like binary: a vector table (SP in RAM, Thumb reset vector) and some code.
fn app_bin() -> Vec<u8> {
    let mut bin = Vec::new();
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&0x0000_c301u32.to_le_bytes());
    bin.extend((0..3000u32).map(|i| (i * 7 + 3) as u8));
    bin
}

/// Sign `bin` with imgtool into `out` (`.bin` or `.hex` by its extension).
fn sign(tool: &Path, key: &Path, bin: &Path, out: &Path, version: &str) {
    run(
        tool,
        &[
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--header-size",
            "0x200",
            "--pad-header",
            "--align",
            "4",
            "--slot-size",
            "0x10000",
            "--version",
            version,
            "--hex-addr",
            "0xc000",
            bin.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
}

fn zip_with(path: &Path, entries: &[(&str, &[u8])]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// One Intel HEX data record.
fn record(offset: u16, data: &[u8]) -> String {
    let mut b = vec![data.len() as u8, (offset >> 8) as u8, offset as u8, 0];
    b.extend_from_slice(data);
    let sum = b.iter().fold(0u8, |a, x| a.wrapping_add(*x)).wrapping_neg();
    b.push(sum);
    format!(
        ":{}\n",
        b.iter().map(|x| format!("{x:02X}")).collect::<String>()
    )
}

#[test]
fn sysbuild_images_from_every_container_are_the_signed_image() {
    let Some(tool) = imgtool() else { return };
    let t = tempfile::tempdir().unwrap();
    let project = t.path().join("myproj");
    let build = project.join("build");
    let key = project.join("keys/app-ed25519.pem");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    run(
        &tool,
        &["keygen", "-k", key.to_str().unwrap(), "-t", "ed25519"],
    );

    write(
        &build,
        "zephyr/.config",
        b"SB_CONFIG_PARTITION_MANAGER=y\nSB_CONFIG_MCUBOOT_APPLICATION_IMAGE_NUMBER=0\n\
          SB_CONFIG_MCUBOOT_NETWORK_CORE_IMAGE_NUMBER=-1\nSB_CONFIG_MCUBOOT_MCUBOOT_IMAGE_NUMBER=-1\n",
    );
    write(
        &build,
        "domains.yaml",
        b"default: myapp\nbuild_dir: /x/build\n",
    );
    write(
        &build,
        "mcuboot/zephyr/.config",
        b"CONFIG_BOOT_SIGNATURE_TYPE_ED25519=y\nCONFIG_BOOT_SIGNATURE_KEY_FILE=\"keys/app-ed25519.pem\"\n",
    );
    write(
        &build,
        "myapp/zephyr/.config",
        b"CONFIG_BOOTLOADER_MCUBOOT=y\n",
    );
    write(&build, "myapp/zephyr/zephyr.elf", b"\x7fELF");
    write(&build, "mcuboot/zephyr/zephyr.elf", b"\x7fELF");
    let bin = write(t.path(), "zephyr.bin", &app_bin());
    let signed_bin = build.join("myapp/zephyr/zephyr.signed.bin");
    let signed_hex = build.join("myapp/zephyr/zephyr.signed.hex");
    sign(&tool, &key, &bin, &signed_bin, "1.2.3+4");
    sign(&tool, &key, &bin, &signed_hex, "1.2.3+4");
    let signed = std::fs::read(&signed_bin).unwrap();
    let parsed = Image::parse(&signed).unwrap();
    assert_eq!(parsed.header.version.to_string(), "1.2.3+4");

    // merged.hex: MCUboot's own code at 0 (no image header), a decoy MCUboot image at 0x1000
    // (below the slot, as an image inside MCUboot's partition would be), the app at 0xc000.
    let decoy_hex = t.path().join("decoy.hex");
    run(
        &tool,
        &[
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--header-size",
            "0x200",
            "--pad-header",
            "--align",
            "4",
            "--slot-size",
            "0x8000",
            "--version",
            "9.9.9",
            "--hex-addr",
            "0x1000",
            bin.to_str().unwrap(),
            decoy_hex.to_str().unwrap(),
        ],
    );
    let mut merged = String::from(":020000040000FA\n");
    merged += &record(0x0000, &[0x00, 0x80, 0x00, 0x20, 0x01, 0x03, 0x00, 0x00]);
    merged += &record(0x0008, &[0x55; 16]);
    for part in [&decoy_hex, &signed_hex] {
        let text = std::fs::read_to_string(part).unwrap();
        merged += &text.replace(":00000001FF\n", "");
    }
    merged += ":00000001FF\n";
    write(&build, "merged.hex", merged.as_bytes());
    // Partition Manager's map for it (the slot at 0xc000 behind a 0x200 pad).
    write(
        &build,
        "partitions.yml",
        b"app:\n  address: 0xc200\n  end_address: 0x1c000\n  region: flash_primary\n  size: 0xfe00\n\
          mcuboot:\n  address: 0x0\n  end_address: 0xc000\n  region: flash_primary\n  size: 0xc000\n\
          mcuboot_pad:\n  address: 0xc000\n  end_address: 0xc200\n  region: flash_primary\n  size: 0x200\n\
          mcuboot_primary:\n  address: 0xc000\n  end_address: 0x1c000\n  orig_span: &id001\n  - app\n\
          \x20 - mcuboot_pad\n  region: flash_primary\n  size: 0x10000\n  span: *id001\n\
          mcuboot_primary_app:\n  address: 0xc200\n  end_address: 0x1c000\n  orig_span: &id002\n\
          \x20 - app\n  region: flash_primary\n  size: 0xfe00\n  span: *id002\n\
          mcuboot_secondary:\n  address: 0x1c000\n  end_address: 0x2c000\n  region: flash_primary\n\
          \x20 size: 0x10000\n",
    );

    let manifest =
        br#"{"format-version": 1, "files": [{"type": "application", "board": "nrf52840dk",
        "soc": "nrf52840", "load_address": 49664, "image_index": "0", "slot_index_primary": "1",
        "slot_index_secondary": "2", "version_MCUBOOT": "1.2.3+4", "size": 4000,
        "file": "myapp.signed.bin"}], "name": "myapp"}"#;
    zip_with(
        &build.join("dfu_application.zip"),
        &[("myapp.signed.bin", &signed), ("manifest.json", manifest)],
    );
    write(&build, "dfu_application.zip_manifest.json", manifest);

    let b = Build::open(&project).unwrap();
    assert_eq!(b.kind, BuildKind::Sysbuild);
    assert_eq!(b.app_name.as_deref(), Some("myapp"));
    assert_eq!(b.signing_key(), Some(key.clone()));
    assert!(b.elfs.contains_key("app") && b.elfs.contains_key("mcuboot"));
    let roles: Vec<(ImageRole, Option<&str>, Option<u32>)> = b
        .images
        .iter()
        .map(|i| (i.role.clone(), i.entry.as_deref(), i.image_index))
        .collect();
    assert_eq!(
        roles,
        vec![
            (ImageRole::App, None, Some(0)),
            (ImageRole::App, None, Some(0)),
            (ImageRole::Merged, None, None),
            (ImageRole::App, Some("myapp.signed.bin"), Some(0)),
        ]
    );
    // With the layout (Partition Manager's map read by `pm::import_build`) the merged hex is
    // cut at the primary slot; without it, at the lowest image, which is the decoy.
    let layout_read = b.layout().is_ok();
    println!(
        "layout read: {layout_read} ({:?})",
        b.layout().err().map(|e| e.to_string())
    );
    let merged_image = b.image(&ImageRole::Merged).unwrap();
    let from_merged = b.image_bytes(merged_image).unwrap();
    assert_eq!(
        Image::parse(&from_merged)
            .unwrap()
            .header
            .version
            .to_string(),
        if layout_read { "1.2.3+4" } else { "9.9.9" }
    );
    // Ed25519 signatures are deterministic, so the .bin and the .hex imgtool wrote hold the
    // same bytes.
    for image in b.images.iter().filter(|i| i.role != ImageRole::Merged) {
        let got = b.image_bytes(image).unwrap();
        assert!(
            got == signed,
            "{} {:?}: {} bytes, want {}",
            image.path.display(),
            image.entry,
            got.len(),
            signed.len()
        );
    }

    // The CLI's reader: every container gives the same image.
    for file in [
        signed_bin.clone(),
        signed_hex.clone(),
        build.join("dfu_application.zip"),
        build.join("dfu_application.zip_manifest.json"),
    ] {
        let got = read_image_file(&file).unwrap();
        assert_eq!(got.len(), 1, "{}", file.display());
        assert!(got[0].1 == signed, "{}", file.display());
    }
    // merged.hex: every image in it, lowest address first.
    let all = read_image_file(&build.join("merged.hex")).unwrap();
    let labels: Vec<&str> = all.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["merged.hex@0x00001000", "merged.hex@0x0000c000"]);
    assert!(all[1].1 == signed);

    // The unsigned hex says what it is instead of "bad magic".
    let unsigned = record(0, &app_bin()[..16]) + ":00000001FF\n";
    let plain = write(t.path(), "zephyr.hex", unsigned.as_bytes());
    let e = read_image_file(&plain).unwrap_err().to_string();
    assert!(e.contains("zephyr.signed.hex"), "{e}");
}

#[test]
fn parent_child_update_files_and_netcore_numbering() {
    let t = tempfile::tempdir().unwrap();
    let build = t.path().join("build");
    write(
        &build,
        "zephyr/.config",
        b"CONFIG_BOARD=\"nrf5340dk_nrf5340_cpuapp\"\n",
    );
    write(&build, "partitions.yml", b"");
    write(
        &build,
        "hci_rpmsg/zephyr/.config",
        b"CONFIG_SOC_NRF5340_CPUNET_QKAA=y\n",
    );
    write(&build, "hci_rpmsg/zephyr/zephyr.elf", b"\x7fELF");
    write(
        &build,
        "mcuboot/zephyr/.config",
        b"CONFIG_BOOT_SIGNATURE_KEY_FILE=\"C:/ncs/v2.5.0/bootloader/mcuboot/root-rsa-2048.pem\"\n",
    );
    for f in [
        "app_update.bin",
        "zephyr.signed.bin",
        "net_core_app_update.bin",
        "signed_by_mcuboot_and_b0_s0_image_update.bin",
        "signed_by_mcuboot_and_b0_s1_image_update.bin",
        "merged_domains.hex",
    ] {
        write(&build, &format!("zephyr/{f}"), b"x");
    }
    let manifest = br#"{"format-version": 0, "files": [
        {"size": 1, "file": "app_update.bin", "load_address": 65536, "version_MCUBOOT": "2.5.0+0",
         "type": "application", "board": "nrf5340dk_nrf5340_cpuapp", "soc": "nRF5340_CPUAPP_QKAA"},
        {"size": 1, "file": "net_core_app_update.bin", "type": "application",
         "board": "nrf5340dk_nrf5340_cpunet", "version": "1"}]}"#;
    zip_with(
        &build.join("zephyr/dfu_application.zip"),
        &[
            ("app_update.bin", b"a"),
            ("net_core_app_update.bin", b"n"),
            ("manifest.json", manifest),
        ],
    );
    let b = Build::open(&build).unwrap();
    assert_eq!(b.kind, BuildKind::ParentChild);
    assert_eq!(b.app_name, None);
    // The key is absolute on the author's Windows machine: not here, not guessed.
    assert_eq!(b.signing_key(), None);
    assert!(b.elfs.contains_key("netcore"));
    let roles: Vec<(ImageRole, Option<u32>, bool)> = b
        .images
        .iter()
        .map(|i| (i.role.clone(), i.image_index, i.entry.is_some()))
        .collect();
    assert_eq!(
        roles,
        vec![
            (ImageRole::App, Some(0), false),
            (ImageRole::AppUpdate, Some(0), false),
            (ImageRole::NetCore, Some(1), false),
            (ImageRole::McubootUpdate { nsib_slot: 0 }, None, false),
            (ImageRole::McubootUpdate { nsib_slot: 1 }, None, false),
            (ImageRole::Merged, None, false),
            (ImageRole::AppUpdate, Some(0), true),
            (ImageRole::NetCore, Some(1), true),
        ]
    );
    let net = b
        .images
        .iter()
        .rfind(|i| i.role == ImageRole::NetCore)
        .unwrap();
    assert_eq!(b.image_bytes(net).unwrap(), b"n");
}

#[test]
fn broken_inputs_are_errors_that_name_the_file() {
    let t = tempfile::tempdir().unwrap();
    let zip = t.path().join("dfu_application.zip");
    std::fs::write(&zip, b"PK\x03\x04 not really").unwrap();
    let e = read_image_file(&zip).unwrap_err().to_string();
    assert!(e.contains("dfu_application.zip"), "{e}");
    zip_with(&zip, &[("app.bin", b"a")]);
    let e = read_image_file(&zip).unwrap_err().to_string();
    assert!(e.contains("no manifest.json"), "{e}");
    let m = t.path().join("manifest.json");
    std::fs::write(&m, b"{\"files\": [{\"file\": \"gone.bin\"}]}").unwrap();
    let e = read_image_file(&m).unwrap_err().to_string();
    assert!(e.contains("gone.bin"), "{e}");
    let build = t.path().join("b");
    write(
        &build,
        "zephyr/.config",
        b"CONFIG_A=y\nthis is not kconfig\n",
    );
    let e = Build::open(&build).unwrap_err().to_string();
    assert!(e.contains(".config:2:"), "{e}");
}
