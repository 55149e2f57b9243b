//! `image inspect|derive|sign` and `trailer inspect` through the whole command line, as
//! `dfu-hil` parses it (so an option that clashes with a global one fails here too).

use clap::Parser;
use dfu_hil_cli::error::finish;
use dfu_hil_cli::image_cmd::{run_image_to, run_trailer_to};
use dfu_hil_cli::{Cli, Command};
use dfu_hil_mcuboot::keys::SigningKey;
use std::path::{Path, PathBuf};

/// Run like `dfu-hil ARGS…`; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("dfu-hil").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let r = match cli.command {
        Command::Image(c) => run_image_to(c, &mut o),
        Command::Trailer(c) => run_trailer_to(c, &mut o),
        _ => panic!("not an image or trailer command: {args:?}"),
    };
    let code = finish(r, &mut e);
    (
        i32::from(code),
        String::from_utf8(o).unwrap(),
        String::from_utf8(e).unwrap(),
    )
}

fn key_file(dir: &Path) -> PathBuf {
    let p = dir.join("key.pem");
    std::fs::write(&p, SigningKey::generate_p256_from_seed(b"cli").to_pem()).unwrap();
    p
}

fn app_bin(dir: &Path) -> PathBuf {
    let mut bin = vec![0u8; 0x200];
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&0x0000_c301u32.to_le_bytes());
    bin.extend((0..0x2000).map(|i| (i * 3 + 1) as u8));
    let p = dir.join("app.bin");
    std::fs::write(&p, bin).unwrap();
    p
}

#[test]
fn sign_inspect_derive_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = key_file(d);
    let bin = app_bin(d);
    let signed = d.join("app.signed.bin");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (code, out, err) = run(&[
        "image",
        "sign",
        "-k",
        &s(&key),
        "-H",
        "0x200",
        "--align",
        "4",
        "--version",
        "1.2.3",
        "-S",
        "0x20000",
        "-s",
        "auto",
        "-d",
        "(1,1.0.0)",
        &s(&bin),
        &s(&signed),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&[
        "image",
        "inspect",
        &s(&signed),
        "--key",
        &s(&key),
        "--slot-size",
        "0x20000",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("version 1.2.3") && out.contains("signature: valid"),
        "{out}"
    );
    assert!(
        out.contains("DEPENDENCY") && out.contains("SEC_CNT"),
        "{out}"
    );

    // Corrupt the payload: inspect reports a hash mismatch and exits 100.
    let bad = d.join("bad.bin");
    let (code, ..) = run(&[
        "image",
        "derive",
        &s(&signed),
        "-o",
        &s(&bad),
        "--key",
        &s(&key),
        "--spec",
        "{ corrupt-payload: { offset: 0x300 } }",
    ]);
    assert_eq!(code, 0);
    let (code, out, _) = run(&["image", "inspect", &s(&bad), "--key", &s(&key)]);
    assert_eq!(code, 100, "{out}");
    assert!(out.contains("hash-mismatch"), "{out}");

    // --header-size 32 re-sign: hash fine, vector table zero.
    let h32 = d.join("h32.bin");
    let (code, ..) = run(&[
        "image",
        "derive",
        &s(&signed),
        "-o",
        &s(&h32),
        "--key",
        &s(&key),
        "--spec",
        "{ header-size: 32 }",
    ]);
    assert_eq!(code, 0);
    let (code, out, _) = run(&["image", "inspect", &s(&h32), "--json"]);
    assert_eq!(code, 100);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["hash"], "match");
    assert_eq!(v["diagnoses"][0]["code"], "vector-table-zero");
}

#[test]
fn trailer_inspect_slot_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let bin = app_bin(d);
    let padded = d.join("confirmed.bin");
    let (code, ..) = run(&[
        "image",
        "sign",
        "-H",
        "0x200",
        "--align",
        "4",
        "-S",
        "0x7a000",
        "--confirm",
        &s(&bin),
        &s(&padded),
    ]);
    assert_eq!(code, 0);
    let (code, out, _) = run(&["trailer", "inspect", &s(&padded), "--slot-size", "0x7a000"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("magic=good") && out.contains("image_ok=set"),
        "{out}"
    );

    // The same slot placed in a whole-device image at slot1 of the internal layout.
    let mut dev = vec![0xffu8; 0x100000];
    let slot = std::fs::read(&padded).unwrap();
    dev[0x86000..0x86000 + slot.len()].copy_from_slice(&slot);
    let devf = d.join("flash.bin");
    std::fs::write(&devf, &dev).unwrap();
    let layout =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../partitions/nrf52840-internal.yaml");
    let (code, out, _) = run(&[
        "trailer",
        "inspect",
        &s(&devf),
        "--layout",
        &s(&layout),
        "--partition",
        "slot1",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["fields"]["magic"], 0xffff0);
    assert_eq!(v["trailer"]["image_ok"], "set");

    // Wrong max-align: BAD magic, variant named, exit 100.
    let (code, out, _) = run(&[
        "trailer",
        "inspect",
        &s(&padded),
        "--slot-size",
        "0x7a000",
        "--max-align",
        "16",
    ]);
    assert_eq!(code, 100);
    assert!(out.contains("max-align 8 variant"), "{out}");
}

#[test]
fn invalid_input_exits_96_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.bin");
    let (code, _, err) = run(&["image", "inspect", missing.to_str().unwrap()]);
    assert_eq!(code, 96);
    assert!(err.contains("nope.bin"), "{err}");
    // A bad image is not invalid input but an error finding naming the offset.
    let f = dir.path().join("erased.bin");
    std::fs::write(&f, [0xffu8; 64]).unwrap();
    let (code, out, _) = run(&["image", "inspect", f.to_str().unwrap()]);
    assert_eq!(code, 100);
    assert!(out.contains("offset 0x0"), "{out}");
    let (code, _, err) = run(&[
        "trailer",
        "inspect",
        f.to_str().unwrap(),
        "--slot-size",
        "0x10000",
        "--offset",
        "0x100",
    ]);
    assert_eq!(code, 96);
    assert!(err.contains("erased.bin") && err.contains("0x100"), "{err}");
    let bin = app_bin(dir.path());
    let (code, _, err) = run(&[
        "image",
        "sign",
        "-H",
        "0x200",
        "-S",
        "0x1000",
        bin.to_str().unwrap(),
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(code, 96);
    assert!(err.contains("app.bin") && err.contains("exceeds"), "{err}");
}

#[test]
fn sign_with_imgtool_extras() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let key = d.join("p384.pem");
    std::fs::write(
        &key,
        SigningKey::generate_p384_from_seed(b"cli384").to_pem(),
    )
    .unwrap();
    let bin = app_bin(d);
    let signed = d.join("p384.signed.bin");
    let (code, out, err) = run(&[
        "image",
        "sign",
        "-k",
        &s(&key),
        "-H",
        "0x200",
        "--version",
        "2.1.0+3",
        "-S",
        "0x20000",
        "--rom-fixed",
        "0xc000",
        "--public-key-format",
        "full",
        "--boot-record",
        "CoFM",
        "-s",
        "auto",
        &s(&bin),
        &s(&signed),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&["image", "inspect", &s(&signed), "--key", &s(&key)]);
    assert_eq!(code, 0, "{out}");
    for want in [
        "ROM_FIXED",
        "load_addr 0xc000",
        "SHA384",
        "PUBKEY",
        "BOOT_RECORD",
        "sw_type \"CoFM\" version 2.1.0",
        "signature: valid",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    let (code, out, _) = run(&["image", "inspect", &s(&signed), "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["boot_record"]["sw_type"], "CoFM");
    assert_eq!(v["boot_record"]["measurement_type"], "SHA384");

    // RAM load address, and a hash the key does not allow is invalid input.
    let (code, out, err) = run(&[
        "image",
        "sign",
        "-k",
        &s(&key),
        "-H",
        "0x200",
        "-S",
        "0x20000",
        "-L",
        "0x20000000",
        &s(&bin),
        &s(&signed),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = run(&["image", "inspect", &s(&signed)]);
    assert!(out.contains("RAM_LOAD"), "{out}");
    let (code, _, err) = run(&[
        "image",
        "sign",
        "-k",
        &s(&key),
        "-H",
        "0x200",
        "-S",
        "0x20000",
        "--sha",
        "256",
        &s(&bin),
        &s(&signed),
    ]);
    assert_eq!(code, 96);
    assert!(err.contains("P-384") && err.contains("SHA384"), "{err}");
}

/// A file that is not an MCUboot image at all (a zip, an Intel HEX, an ELF, anything without
/// the image magic) is the wrong input (96), named with what it looks like; 100 stays for
/// images with problems, and an erased slot dump is such a finding.
#[test]
fn inspect_of_a_non_image_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, bytes, looks) in [
        (
            "dfu_application.zip",
            &b"PK\x03\x04\x14\x00\x00\x00manifest.json"[..],
            "zip",
        ),
        (
            "zephyr.hex",
            &b":020000040000FA\n:10000000008000200D0C0000\n"[..],
            "Intel HEX",
        ),
        (
            "zephyr.elf",
            &b"\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00"[..],
            "ELF",
        ),
        (
            "random.bin",
            &b"\x12\x34\x56\x78 not an image"[..],
            "0x78563412",
        ),
    ] {
        let f = d.join(name);
        std::fs::write(&f, bytes).unwrap();
        let (code, out, err) = run(&["image", "inspect", f.to_str().unwrap()]);
        assert_eq!(code, 96, "{name}: {out}{err}");
        assert!(
            err.contains(name) && err.contains("not an MCUboot image") && err.contains(looks),
            "{name}: {err}"
        );
    }
}
