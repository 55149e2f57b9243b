//! Round trips with the real `imgtool` (PyPI): images we sign must pass `imgtool verify` and
//! `imgtool dumpinfo`, must equal imgtool's own output for the same options except for the
//! randomised ECDSA signature, and images imgtool signs with our keys must verify here.
//!
//! imgtool is found via `$IMGTOOL`, then `imgtool` on PATH, then `<workspace>/.venv/bin/imgtool`.
//! Set `DFU_HIL_SKIP_IMGTOOL=1` to skip these tests where Python is not available.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dfu_hil_mcuboot::image::{tlv, Dependency, HashCheck, Image, SigCheck, Version};
use dfu_hil_mcuboot::keys::{PublicKey, SigningKey};
use dfu_hil_mcuboot::sign::{boot_magic, sign, SignOptions};
use rstest::rstest;

const SLOT: u32 = 0x20000;

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

/// The imgtool to use, or `None` when the user asked to skip. Panics with install instructions
/// otherwise, so a missing tool never turns into a silently green run.
fn imgtool() -> Option<PathBuf> {
    if let Some(p) = find_imgtool() {
        return Some(p);
    }
    if std::env::var("DFU_HIL_SKIP_IMGTOOL").as_deref() == Ok("1") {
        eprintln!("note: imgtool not found, skipping (DFU_HIL_SKIP_IMGTOOL=1)");
        return None;
    }
    panic!(
        "imgtool not found (looked at $IMGTOOL, PATH and <workspace>/.venv/bin/imgtool). Install it with \
         `python3 -m venv .venv && .venv/bin/pip install imgtool` in the workspace root, \
         or set DFU_HIL_SKIP_IMGTOOL=1 to skip these tests"
    );
}

fn run(tool: &Path, args: &[&str]) -> Output {
    Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", tool.display()))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A Zephyr-like binary: `ROM_START_OFFSET` zeros, then the "vector table" and code.
fn payload(header: usize, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; header];
    v.extend((0..len).map(|i| (i * 13 + 5) as u8));
    v
}

fn key() -> SigningKey {
    SigningKey::generate_p256_from_seed(b"dfu-hil imgtool interop")
}

/// imgtool arguments equivalent to `opts`.
fn imgtool_args(opts: &SignOptions) -> Vec<String> {
    let mut a = vec![
        "--header-size".to_string(),
        format!("{:#x}", opts.header_size),
        "--align".into(),
        opts.align.to_string(),
        "--max-align".into(),
        opts.max_align.to_string(),
        "--max-sectors".into(),
        opts.max_sectors.to_string(),
        "--version".into(),
        format!(
            "{}.{}.{}+{}",
            opts.version.major, opts.version.minor, opts.version.revision, opts.version.build
        ),
        "--slot-size".into(),
        format!("{:#x}", opts.slot_size),
        "--erased-val".into(),
        // imgtool only takes these two spellings.
        if opts.erased_val == 0 {
            "0".into()
        } else {
            "0xff".into()
        },
    ];
    let mut flag = |on: bool, f: &str| {
        if on {
            a.push(f.to_string())
        }
    };
    flag(opts.pad_header, "--pad-header");
    flag(opts.pad, "--pad");
    flag(opts.confirm, "--confirm");
    flag(opts.overwrite_only, "--overwrite-only");
    flag(opts.non_bootable, "--non-bootable");
    if let Some(c) = opts.security_counter {
        a.extend(["--security-counter".into(), c.to_string()]);
    }
    if !opts.dependencies.is_empty() {
        let deps: Vec<String> = opts
            .dependencies
            .iter()
            .map(|d| {
                let v = d.min_version;
                format!(
                    "({}, {}.{}.{}+{})",
                    d.image_id, v.major, v.minor, v.revision, v.build
                )
            })
            .collect();
        a.extend(["--dependencies".into(), deps.join(",")]);
    }
    if let Some(l) = opts.load_addr {
        a.extend(["--load-addr".into(), format!("{l:#x}")]);
    }
    if let Some(r) = opts.rom_fixed {
        a.extend(["--rom-fixed".into(), format!("{r:#x}")]);
    }
    a
}

fn base() -> SignOptions {
    SignOptions {
        version: Version::new(1, 2, 3, 4),
        slot_size: SLOT,
        ..Default::default()
    }
}

#[rstest]
#[case::zero_prefix_0x200(base())]
#[case::pad_header(SignOptions { pad_header: true, header_size: 0x400, ..base() })]
#[case::pad(SignOptions { pad: true, ..base() })]
#[case::confirm(SignOptions { confirm: true, ..base() })]
#[case::security_counter_and_deps(SignOptions {
    security_counter: Some(Version::new(1, 2, 3, 4).auto_security_counter()),
    dependencies: vec![
        Dependency { image_id: 1, min_version: Version::new(1, 1, 0, 0) },
        Dependency { image_id: 2, min_version: Version::new(0, 9, 300, 7) },
    ],
    confirm: true,
    ..base()
})]
#[case::max_align_16(SignOptions { align: 16, max_align: 16, confirm: true, ..base() })]
#[case::max_align_32(SignOptions { align: 32, max_align: 32, confirm: true, max_sectors: 64, ..base() })]
#[case::max_align_32_align_4(SignOptions { align: 4, max_align: 32, pad: true, ..base() })]
#[case::align_above_max_align(SignOptions { align: 16, max_align: 8, confirm: true, ..base() })]
#[case::overwrite_only_confirm(SignOptions { overwrite_only: true, align: 1, confirm: true, ..base() })]
#[case::erased_zero(SignOptions { erased_val: 0, pad_header: true, confirm: true, ..base() })]
#[case::non_bootable_rom_fixed(SignOptions { non_bootable: true, rom_fixed: Some(0x0001_0000), ..base() })]
#[case::ram_load(SignOptions { load_addr: Some(0x2000_0000), pad: true, ..base() })]
fn imgtool_accepts_our_images(#[case] opts: SignOptions) {
    let Some(tool) = imgtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = key();
    let key_pem = dir.path().join("key.pem");
    std::fs::write(&key_pem, key.to_pem()).unwrap();
    let input = if opts.pad_header {
        payload(0, 5000)
    } else {
        payload(usize::from(opts.header_size), 5000)
    };
    let raw = dir.path().join("app.bin");
    std::fs::write(&raw, &input).unwrap();

    let ours = sign(&input, Some(&key), &opts).unwrap();
    let ours_path = dir.path().join("ours.bin");
    std::fs::write(&ours_path, &ours).unwrap();
    let img = Image::parse(&ours).unwrap();
    let digest = hex::encode(img.computed_hash(&ours));

    let o = run(
        &tool,
        &[
            "verify",
            "-k",
            key_pem.to_str().unwrap(),
            ours_path.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "imgtool verify failed:\n{}", text(&o));
    assert!(
        text(&o).contains(&format!("Image digest: {digest}")),
        "{}",
        text(&o)
    );

    let o = run(&tool, &["dumpinfo", ours_path.to_str().unwrap()]);
    assert!(o.status.success(), "imgtool dumpinfo failed:\n{}", text(&o));
    let dump = text(&o);
    if opts.pad || opts.confirm {
        let magic = boot_magic(opts.max_align);
        let first = format!("boot magic:  0x{:02x} 0x{:02x}", magic[0], magic[1]);
        assert!(
            dump.contains(&first),
            "dumpinfo shows another magic:\n{dump}"
        );
        if opts.confirm && !opts.overwrite_only {
            assert!(dump.contains("image_ok:    SET (0x1)"), "{dump}");
        }
    }

    // imgtool's own output for the same options must agree on everything but the signature.
    let theirs_path = dir.path().join("theirs.bin");
    let mut args = vec![
        "sign".to_string(),
        "-k".into(),
        key_pem.to_str().unwrap().into(),
    ];
    args.extend(imgtool_args(&opts));
    args.extend([
        raw.to_str().unwrap().into(),
        theirs_path.to_str().unwrap().into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&tool, &args);
    assert!(
        o.status.success(),
        "imgtool sign {args:?} failed:\n{}",
        text(&o)
    );
    let theirs = std::fs::read(&theirs_path).unwrap();
    let timg = Image::parse(&theirs).unwrap();
    assert_eq!(img.header, timg.header);
    assert_eq!(
        &ours[..img.tlv_off],
        &theirs[..timg.tlv_off],
        "header, payload"
    );
    let without_sig = |i: &Image| {
        i.tlvs
            .iter()
            .filter(|t| t.kind != tlv::ECDSA_SIG)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_sig(&img),
        without_sig(&timg),
        "TLVs other than the signature"
    );
    assert_eq!(
        timg.verify(&theirs, Some(&key.public())).signature,
        SigCheck::Valid
    );
    let sig_len = |i: &Image| i.tlvs_of(tlv::ECDSA_SIG).next().unwrap().data.len();
    if opts.pad || opts.confirm {
        assert_eq!(ours.len(), theirs.len());
        let end = img.total_size.max(timg.total_size);
        assert_eq!(&ours[end..], &theirs[end..], "padding and trailer");
    } else {
        assert_eq!(ours.len() - sig_len(&img), theirs.len() - sig_len(&timg));
    }
}

#[test]
fn imgtool_refuses_what_we_refuse() {
    let Some(tool) = imgtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key_pem = dir.path().join("key.pem");
    std::fs::write(&key_pem, key().to_pem()).unwrap();
    let mut input = payload(0x200, 100);
    input[0x1f0] = 1;
    let raw = dir.path().join("app.bin");
    std::fs::write(&raw, &input).unwrap();
    let out = dir.path().join("out.bin");
    let opts = base();
    assert!(sign(&input, None, &opts).is_err());
    let mut args = vec![
        "sign".to_string(),
        "-k".into(),
        key_pem.to_str().unwrap().into(),
    ];
    args.extend(imgtool_args(&opts));
    args.extend([raw.to_str().unwrap().into(), out.to_str().unwrap().into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&tool, &args);
    assert!(
        !o.status.success(),
        "imgtool signed an image without a zero header area"
    );

    // Too big for the slot.
    let big = payload(0x200, 0x20000);
    std::fs::write(&raw, &big).unwrap();
    assert!(sign(&big, None, &opts).is_err());
    let o = run(&tool, &args);
    assert!(!o.status.success());
    assert!(text(&o).contains("exceeds requested size"), "{}", text(&o));
}

/// imgtool signs with our key; we verify. Also keys made by `imgtool keygen` load here.
#[rstest]
#[case::our_p256_key("")]
#[case::imgtool_p256_key("ecdsa-p256")]
#[case::imgtool_ed25519_key("ed25519")]
#[case::imgtool_rsa2048_key("rsa-2048")]
fn we_verify_imgtool_images(#[case] keygen_type: &str) {
    let Some(tool) = imgtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key_pem = dir.path().join("key.pem");
    if keygen_type.is_empty() {
        std::fs::write(&key_pem, key().to_pem()).unwrap();
    } else {
        let o = run(
            &tool,
            &["keygen", "-k", key_pem.to_str().unwrap(), "-t", keygen_type],
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    let key = SigningKey::load(&key_pem).unwrap();
    let pub_pem = dir.path().join("key.pub.pem");
    let o = run(
        &tool,
        &[
            "getpub",
            "-k",
            key_pem.to_str().unwrap(),
            "--encoding",
            "pem",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&pub_pem, &o.stdout).unwrap();
    let public = PublicKey::load(&pub_pem).unwrap();
    assert_eq!(public, key.public());

    let raw = dir.path().join("app.bin");
    std::fs::write(&raw, payload(0x200, 7000)).unwrap();
    let signed = dir.path().join("signed.bin");
    let o = run(
        &tool,
        &[
            "sign",
            "-k",
            key_pem.to_str().unwrap(),
            "--header-size",
            "0x200",
            "--align",
            "4",
            "--version",
            "3.4.5+6",
            "--slot-size",
            "0x20000",
            "--security-counter",
            "9",
            "--confirm",
            raw.to_str().unwrap(),
            signed.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let bytes = std::fs::read(&signed).unwrap();
    let img = Image::parse(&bytes).unwrap();
    let v = img.verify(&bytes, Some(&public));
    assert_eq!(v.hash, HashCheck::Match);
    assert_eq!(v.signature, SigCheck::Valid);
    assert_eq!(img.header.version, Version::new(3, 4, 5, 6));
    assert_eq!(img.security_counter(), Some(9));
    assert_eq!(
        img.tlvs_of(tlv::KEYHASH).next().unwrap().data,
        public.key_hash()
    );
    let other = SigningKey::generate_p256_from_seed(b"someone else").public();
    assert_eq!(
        img.verify(&bytes, Some(&other)).signature,
        SigCheck::KeyMismatch
    );
}
