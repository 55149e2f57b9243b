//! Round trips with the real `imgtool` (PyPI): images we sign must pass `imgtool verify` and
//! `imgtool dumpinfo`, must equal imgtool's own output for the same options except for the
//! randomised ECDSA signature, and images imgtool signs with our keys must verify here.
//!
//! imgtool is found via `$IMGTOOL`, then `imgtool` on PATH, then `<workspace>/.venv/bin/imgtool`.
//! Set `DFU_HIL_SKIP_IMGTOOL=1` to skip these tests where Python is not available.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use dfu_hil_mcuboot::image::{tlv, Dependency, HashAlg, HashCheck, Image, SigCheck, Version};
use dfu_hil_mcuboot::inspect::{inspect, InspectOptions, Severity};
use dfu_hil_mcuboot::keys::{PublicKey, SigningKey};
use dfu_hil_mcuboot::sign::{boot_magic, sign, PublicKeyFormat, SignOptions};
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
    if opts.public_key_format == PublicKeyFormat::Full {
        a.extend(["--public-key-format".into(), "full".into()]);
    }
    if let Some(t) = &opts.boot_record {
        a.extend(["--boot-record".into(), t.clone()]);
    }
    if let Some(h) = opts.sha {
        a.extend(["--sha".into(), h.name()[3..].to_string()]);
    }
    if opts.pure {
        a.push("--pure".into());
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

/// Directory for this process's imgtool-generated keys (under the target dir). Key directories
/// of test processes that are gone are removed first.
fn key_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(entries) = std::fs::read_dir(base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("imgtool-keys-") {
                    if Path::new("/proc/self").exists() && !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let d = base.join(format!("imgtool-keys-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// A private key made by `imgtool keygen -t KIND`, generated once per test binary (RSA keygen
/// takes a while) and shared by every test that asks for it.
fn imgtool_key(tool: &Path, kind: &str) -> PathBuf {
    static KEYS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = keys.get(kind) {
        return p.clone();
    }
    let p = key_dir().join(format!("{kind}.pem"));
    let o = run(tool, &["keygen", "-k", p.to_str().unwrap(), "-t", kind]);
    assert!(
        o.status.success(),
        "imgtool keygen -t {kind}:\n{}",
        text(&o)
    );
    keys.insert(kind.to_string(), p.clone());
    p
}

/// The public half as `imgtool getpub --encoding pem` writes it.
fn imgtool_pub(tool: &Path, key: &Path) -> PublicKey {
    let o = run(
        tool,
        &["getpub", "-k", key.to_str().unwrap(), "--encoding", "pem"],
    );
    assert!(o.status.success(), "{}", text(&o));
    PublicKey::from_pem(&String::from_utf8(o.stdout).unwrap()).unwrap()
}

fn imgtool_sign(tool: &Path, key: &Path, opts: &SignOptions, input: &Path, output: &Path) {
    let mut args = vec![
        "sign".to_string(),
        "-k".into(),
        key.to_str().unwrap().into(),
    ];
    args.extend(imgtool_args(opts));
    args.extend([
        input.to_str().unwrap().into(),
        output.to_str().unwrap().into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(tool, &args);
    assert!(
        o.status.success(),
        "imgtool sign {args:?} failed:\n{}",
        text(&o)
    );
}

const KEY_TYPES: [&str; 5] = [
    "ecdsa-p256",
    "ecdsa-p384",
    "ed25519",
    "rsa-2048",
    "rsa-3072",
];

/// The hash imgtool picks for a key type, and the signature TLV it writes.
fn expected_for(kind: &str) -> (HashAlg, u16) {
    match kind {
        "ecdsa-p256" => (HashAlg::Sha256, tlv::ECDSA_SIG),
        "ecdsa-p384" => (HashAlg::Sha384, tlv::ECDSA_SIG),
        "ed25519" => (HashAlg::Sha256, tlv::ED25519),
        "rsa-2048" => (HashAlg::Sha256, tlv::RSA2048_PSS),
        "rsa-3072" => (HashAlg::Sha256, tlv::RSA3072_PSS),
        _ => unreachable!(),
    }
}

/// Options exercising the protected TLVs and the trailer along with the key.
fn matrix_opts(format: PublicKeyFormat) -> SignOptions {
    SignOptions {
        security_counter: Some(Version::new(1, 2, 3, 4).auto_security_counter()),
        dependencies: vec![Dependency {
            image_id: 1,
            min_version: Version::new(1, 1, 0, 0),
        }],
        boot_record: Some("CoFM".into()),
        public_key_format: format,
        confirm: true,
        ..base()
    }
}

fn format_of(f: &str) -> PublicKeyFormat {
    if f == "full" {
        PublicKeyFormat::Full
    } else {
        PublicKeyFormat::Hash
    }
}

/// We sign with an imgtool-generated key of every type: `imgtool verify` accepts the image and
/// prints our digest, `dumpinfo` reads it, and imgtool's own image for the same options has the
/// same header, payload, protected TLVs and unprotected TLVs except the signature (and for
/// Ed25519, which is deterministic, the very same bytes).
#[rstest]
fn matrix_we_sign_imgtool_verifies(
    #[values("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072")] kind: &str,
    #[values("hash", "full")] format: &str,
) {
    let Some(tool) = imgtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key_pem = imgtool_key(&tool, kind);
    let key = SigningKey::load(&key_pem).unwrap();
    let public = imgtool_pub(&tool, &key_pem);
    assert_eq!(public, key.public());
    let (alg, sig_tlv) = expected_for(kind);
    let opts = matrix_opts(format_of(format));
    let input = payload(0x200, 6000);
    let raw = dir.path().join("app.bin");
    std::fs::write(&raw, &input).unwrap();

    let ours = sign(&input, Some(&key), &opts).unwrap();
    let ours_path = dir.path().join("ours.bin");
    std::fs::write(&ours_path, &ours).unwrap();
    let img = Image::parse(&ours).unwrap();
    assert_eq!(img.hash_alg(), alg);
    assert!(img.tlvs_of(sig_tlv).next().is_some());
    let v = img.verify(&ours, Some(&public));
    assert_eq!((v.hash, v.signature), (HashCheck::Match, SigCheck::Valid));
    let digest = hex::encode(img.computed_hash(&ours));
    assert_eq!(digest.len(), alg.digest_len() * 2);

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
    for want in [
        format!("type: {} ", alg.name()),
        "type: BOOT_RECORD".to_string(),
        "type: SEC_CNT".to_string(),
        "type: DEPENDENCY".to_string(),
        format!(
            "type: {} ",
            if format == "full" {
                "PUBKEY"
            } else {
                "KEYHASH"
            }
        ),
        "image_ok:    SET (0x1)".to_string(),
    ] {
        assert!(dump.contains(&want), "dumpinfo lacks {want:?}:\n{dump}");
    }

    let theirs_path = dir.path().join("theirs.bin");
    imgtool_sign(&tool, &key_pem, &opts, &raw, &theirs_path);
    let theirs = std::fs::read(&theirs_path).unwrap();
    let timg = Image::parse(&theirs).unwrap();
    assert_eq!(img.header, timg.header);
    assert_eq!(&ours[..img.tlv_off], &theirs[..timg.tlv_off]);
    let without_sig = |i: &Image| {
        i.tlvs
            .iter()
            .filter(|t| t.kind != sig_tlv)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(without_sig(&img), without_sig(&timg));
    assert_eq!(ours.len(), theirs.len());
    if kind == "ed25519" {
        assert_eq!(ours, theirs, "Ed25519 is deterministic: identical files");
    }
}

/// imgtool signs with a key it generated; we verify with the public key `getpub` gives, find
/// imgtool's hash algorithm, key hash, protected TLVs and boot record; another key (same type
/// and a different type) is a key mismatch, and a damaged signature is invalid.
#[rstest]
fn matrix_imgtool_signs_we_verify(
    #[values("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072")] kind: &str,
    #[values("hash", "full")] format: &str,
) {
    let Some(tool) = imgtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key_pem = imgtool_key(&tool, kind);
    let public = imgtool_pub(&tool, &key_pem);
    let (alg, sig_tlv) = expected_for(kind);
    let opts = matrix_opts(format_of(format));
    let raw = dir.path().join("app.bin");
    std::fs::write(&raw, payload(0x200, 7000)).unwrap();
    let signed = dir.path().join("signed.bin");
    imgtool_sign(&tool, &key_pem, &opts, &raw, &signed);
    let bytes = std::fs::read(&signed).unwrap();
    let img = Image::parse(&bytes).unwrap();
    let v = img.verify(&bytes, Some(&public));
    assert_eq!((v.hash, v.signature), (HashCheck::Match, SigCheck::Valid));
    assert_eq!(img.hash_alg(), alg);
    assert_eq!(img.hash_tlv().unwrap().len(), alg.digest_len());
    assert_eq!(img.security_counter(), Some(0x0102_0003));
    assert_eq!(img.dependencies(), opts.dependencies);
    if format == "full" {
        assert_eq!(
            img.tlvs_of(tlv::PUBKEY).next().unwrap().data,
            public.key_bytes()
        );
        assert!(img.tlvs_of(tlv::KEYHASH).next().is_none());
    } else {
        let kh = &img.tlvs_of(tlv::KEYHASH).next().unwrap().data;
        assert_eq!(kh.len(), alg.digest_len(), "KEYHASH uses the image hash");
        assert_eq!(kh, &public.key_hash());
    }
    let rec = img.boot_record().expect("boot record");
    assert_eq!(rec.sw_type, "CoFM");
    assert_eq!(rec.version, "1.2.3");
    assert_eq!(rec.measurement_type, alg.name());
    assert_eq!(rec.measurement, vec![0; alg.digest_len()]);
    assert_eq!(rec.signer_id, public.key_hash_with(alg));

    // Inspect shows it all without complaint.
    let r = inspect(
        &bytes,
        &InspectOptions {
            key: Some(public.clone()),
            ..Default::default()
        },
    );
    assert!(!r.has_errors(), "{r}");
    assert_eq!(r.signature, Some("valid"));
    assert!(r.to_string().contains("sw_type \"CoFM\""), "{r}");

    // Wrong keys: same type (the other key of a pair) and another type.
    let other_same = match kind {
        "ecdsa-p256" => SigningKey::generate_p256_from_seed(b"other").public(),
        "ecdsa-p384" => SigningKey::generate_p384_from_seed(b"other").public(),
        "ed25519" => SigningKey::generate_ed25519_from_seed(b"other").public(),
        "rsa-2048" => imgtool_pub(&tool, &imgtool_key(&tool, "rsa-3072")),
        _ => imgtool_pub(&tool, &imgtool_key(&tool, "rsa-2048")),
    };
    assert_eq!(
        img.verify(&bytes, Some(&other_same)).signature,
        SigCheck::KeyMismatch
    );
    let other_type = if kind == "ed25519" {
        SigningKey::generate_p256_from_seed(b"x").public()
    } else {
        SigningKey::generate_ed25519_from_seed(b"x").public()
    };
    assert_eq!(
        img.verify(&bytes, Some(&other_type)).signature,
        SigCheck::KeyMismatch
    );
    let r = inspect(
        &bytes,
        &InspectOptions {
            key: Some(other_same),
            ..Default::default()
        },
    );
    assert!(r.has("key-mismatch"), "{r}");

    // A damaged signature with the right key: invalid.
    let sig = img.tlvs_of(sig_tlv).next().unwrap();
    let mut bad = bytes.clone();
    bad[sig.offset + 4 + sig.data.len() - 2] ^= 0x01;
    assert_eq!(
        Image::parse(&bad)
            .unwrap()
            .verify(&bad, Some(&public))
            .signature,
        SigCheck::Invalid
    );
}

/// Ed25519 with `--sha 512` (digest signed, 64-byte hash and key hash) and `--pure` (SIG_PURE:
/// signature over the image), both directions.
#[rstest]
#[case::sha512(SignOptions { sha: Some(HashAlg::Sha512), ..base() })]
#[case::pure(SignOptions { pure: true, pad: true, ..base() })]
fn ed25519_sha512_and_pure(#[case] opts: SignOptions) {
    let Some(tool) = imgtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key_pem = imgtool_key(&tool, "ed25519");
    let key = SigningKey::load(&key_pem).unwrap();
    let input = payload(0x200, 3000);
    let raw = dir.path().join("app.bin");
    std::fs::write(&raw, &input).unwrap();
    let ours = sign(&input, Some(&key), &opts).unwrap();
    let ours_path = dir.path().join("ours.bin");
    std::fs::write(&ours_path, &ours).unwrap();
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

    let theirs_path = dir.path().join("theirs.bin");
    imgtool_sign(&tool, &key_pem, &opts, &raw, &theirs_path);
    let theirs = std::fs::read(&theirs_path).unwrap();
    assert_eq!(ours, theirs, "Ed25519 is deterministic: identical files");
    let img = Image::parse(&theirs).unwrap();
    assert_eq!(img.hash_alg(), HashAlg::Sha512);
    assert_eq!(img.is_pure(), opts.pure);
    let v = img.verify(&theirs, Some(&key.public()));
    assert_eq!((v.hash, v.signature), (HashCheck::Match, SigCheck::Valid));
    let mut bad = theirs.clone();
    bad[0x300] ^= 1;
    let v = Image::parse(&bad)
        .unwrap()
        .verify(&bad, Some(&key.public()));
    assert_eq!(v.signature, SigCheck::Invalid);
}

/// The hash restrictions imgtool applies per key type are ours too.
#[test]
fn imgtool_and_we_refuse_the_same_hashes() {
    let Some(tool) = imgtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("app.bin");
    let input = payload(0x200, 100);
    std::fs::write(&raw, &input).unwrap();
    for (kind, sha) in [
        ("ecdsa-p384", HashAlg::Sha256),
        ("ecdsa-p256", HashAlg::Sha384),
        ("rsa-2048", HashAlg::Sha512),
    ] {
        let key_pem = imgtool_key(&tool, kind);
        let opts = SignOptions {
            sha: Some(sha),
            ..base()
        };
        let key = SigningKey::load(&key_pem).unwrap();
        let e = sign(&input, Some(&key), &opts).unwrap_err();
        assert!(e.to_string().contains(sha.name()), "{e}");
        let mut args = vec![
            "sign".to_string(),
            "-k".into(),
            key_pem.to_str().unwrap().into(),
        ];
        args.extend(imgtool_args(&opts));
        args.extend([
            raw.to_str().unwrap().into(),
            dir.path().join("o.bin").to_str().unwrap().into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(!run(&tool, &args).status.success(), "{kind} {sha}");
    }
}

/// Custom (vendor-range) protected TLVs from `imgtool --custom-tlv` and an unknown type we add
/// to the unprotected block by hand: parsed, listed, never fatal; imgtool still verifies.
#[test]
fn custom_and_unknown_tlvs_are_listed() {
    let Some(tool) = imgtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key_pem = imgtool_key(&tool, "ecdsa-p256");
    let public = imgtool_pub(&tool, &key_pem);
    let raw = dir.path().join("app.bin");
    std::fs::write(&raw, payload(0x200, 2000)).unwrap();
    let signed = dir.path().join("signed.bin");
    let mut args = vec![
        "sign".to_string(),
        "-k".into(),
        key_pem.to_str().unwrap().into(),
    ];
    args.extend(imgtool_args(&base()));
    args.extend(["--custom-tlv".into(), "0xa5".into(), "0x01020304".into()]);
    args.extend([
        raw.to_str().unwrap().into(),
        signed.to_str().unwrap().into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&tool, &args);
    assert!(o.status.success(), "{}", text(&o));
    let mut bytes = std::fs::read(&signed).unwrap();
    let img = Image::parse(&bytes).unwrap();
    let custom = img.tlvs_of(0xa5).next().expect("custom TLV");
    assert!(custom.protected);
    // imgtool writes an 0x-integer custom value big-endian, in as many bytes as it needs.
    assert_eq!(custom.data, [1, 2, 3, 4]);
    assert_eq!(img.verify(&bytes, Some(&public)).signature, SigCheck::Valid);
    let r = inspect(&bytes, &InspectOptions::default());
    assert!(!r.has_errors(), "{r}");
    assert!(r.has("unknown-tlv"), "{r}");
    assert!(r.to_string().contains("VENDOR"), "{r}");

    // Append an unknown TLV (type 0x99) to the unprotected block; fix the block length.
    let unprot = img.tlv_off + usize::from(img.header.protect_tlv_size);
    let len = u16::from_le_bytes([bytes[unprot + 2], bytes[unprot + 3]]);
    bytes[unprot + 2..unprot + 4].copy_from_slice(&(len + 7).to_le_bytes());
    let end = unprot + usize::from(len);
    bytes.splice(end..end, [0x99, 0x00, 3, 0, 0xde, 0xad, 0xbf]);
    std::fs::write(&signed, &bytes).unwrap();
    let img = Image::parse(&bytes).unwrap();
    let t = img.tlvs_of(0x99).next().expect("unknown TLV parsed");
    assert!(!t.protected);
    assert_eq!(img.unknown_tlvs().count(), 2);
    let v = img.verify(&bytes, Some(&public));
    assert_eq!((v.hash, v.signature), (HashCheck::Match, SigCheck::Valid));
    let r = inspect(
        &bytes,
        &InspectOptions {
            key: Some(public),
            ..Default::default()
        },
    );
    let d = r
        .diagnoses
        .iter()
        .find(|d| d.code == "unknown-tlv-unprotected")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(d.severity, Severity::Warning);
    assert!(d.message.contains("0x0099"), "{}", d.message);
    assert!(!r.has_errors(), "{r}");
    assert!(r.to_string().contains("UNKNOWN"), "{r}");
    let o = run(
        &tool,
        &[
            "verify",
            "-k",
            key_pem.to_str().unwrap(),
            signed.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
}

/// Keys made by `imgtool keygen` load here (PKCS#8) and match `getpub`; our PEMs load in
/// imgtool, which signs with them, and we verify the result.
#[rstest]
#[case::our_p256_key("p256")]
#[case::our_p384_key("p384")]
#[case::our_ed25519_key("ed25519")]
fn imgtool_signs_with_our_keys(#[case] kind: &str) {
    let Some(tool) = imgtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = match kind {
        "p256" => key(),
        "p384" => SigningKey::generate_p384_from_seed(b"dfu-hil imgtool interop"),
        _ => SigningKey::generate_ed25519_from_seed(b"dfu-hil imgtool interop"),
    };
    let key_pem = dir.path().join("key.pem");
    std::fs::write(&key_pem, key.to_pem()).unwrap();
    assert_eq!(imgtool_pub(&tool, &key_pem), key.public());
    let raw = dir.path().join("app.bin");
    std::fs::write(&raw, payload(0x200, 7000)).unwrap();
    let signed = dir.path().join("signed.bin");
    let opts = SignOptions {
        version: Version::new(3, 4, 5, 6),
        security_counter: Some(9),
        confirm: true,
        ..base()
    };
    imgtool_sign(&tool, &key_pem, &opts, &raw, &signed);
    let bytes = std::fs::read(&signed).unwrap();
    let img = Image::parse(&bytes).unwrap();
    let v = img.verify(&bytes, Some(&key.public()));
    assert_eq!(v.hash, HashCheck::Match);
    assert_eq!(v.signature, SigCheck::Valid);
    assert_eq!(img.header.version, Version::new(3, 4, 5, 6));
    assert_eq!(img.security_counter(), Some(9));
    assert_eq!(
        img.tlvs_of(tlv::KEYHASH).next().unwrap().data,
        key.public().key_hash()
    );
}

#[test]
fn key_types_cover_imgtool_keygen() {
    // Every signing key type `imgtool keygen` offers is in the matrix above.
    let Some(tool) = imgtool() else { return };
    let o = run(&tool, &["keygen", "--help"]);
    let help = text(&o);
    for kind in KEY_TYPES {
        assert!(help.contains(kind), "{kind} not in keygen --help:\n{help}");
    }
}
