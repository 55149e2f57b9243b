//! Check parsing, verification and signing against images made by imgtool 2.5.0
//! (`shared/vectors/imgtool`, see its README for the commands). These pin down the facts the
//! rest of the harness relies on: what is hashed, what the ECDSA/Ed25519/RSA signatures cover,
//! how KEYHASH is computed, and where the trailer bytes of a padded image go.

use std::path::PathBuf;

use dfu_hil_mcuboot::image::{tlv, HashCheck, Image, SigCheck, Version, IMAGE_MAGIC};
use dfu_hil_mcuboot::keys::{PublicKey, SigningKey};
use dfu_hil_mcuboot::sign::{boot_magic, sign, SignOptions};
use rstest::rstest;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/imgtool"
);
const IMAGE_HASH: &str = "f3a1799079ba00a7703e1cf29b1e15a4bd4ffe2ee85d97a44e457374af735b7c";
const KEY_HASH: &str = "22eb7b02a9ced31fa24ed9963d43314b0f156b3452a81534583d197ab6e6ee11";
const SLOT: usize = 0x67000;

fn path(name: &str) -> PathBuf {
    PathBuf::from(VECTORS).join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(path(name))
        .unwrap_or_else(|e| panic!("reading vector {}: {e}", path(name).display()))
}

fn pubkey(name: &str) -> PublicKey {
    PublicKey::load(&path(name)).unwrap()
}

/// The options of the README's `imgtool sign` commands.
fn readme_opts() -> SignOptions {
    SignOptions {
        header_size: 0x200,
        pad_header: true,
        align: 4,
        version: "1.2.3+4".parse().unwrap(),
        slot_size: SLOT as u32,
        ..Default::default()
    }
}

#[rstest]
#[case::ecdsa("signed-nopad.bin", "k.pub.pem", tlv::ECDSA_SIG)]
#[case::ecdsa_confirm("signed-nopad-confirm.bin", "k.pub.pem", tlv::ECDSA_SIG)]
#[case::ecdsa_pad_confirm("signed-pad-confirm.bin", "k.pub.pem", tlv::ECDSA_SIG)]
#[case::ed25519("signed-nopad-ed25519.bin", "k-ed25519.pub.pem", tlv::ED25519)]
#[case::rsa2048("signed-nopad-rsa2048.bin", "k-rsa2048.pub.pem", tlv::RSA2048_PSS)]
fn vector_verifies_with_its_key(#[case] file: &str, #[case] key: &str, #[case] sig_kind: u16) {
    let bytes = read(file);
    let img = Image::parse(&bytes).unwrap();
    let key = pubkey(key);
    assert_eq!(hex::encode(img.hash_tlv().unwrap()), IMAGE_HASH);
    assert_eq!(hex::encode(img.computed_hash(&bytes)), IMAGE_HASH);
    let kinds: Vec<u16> = img.tlvs.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, vec![tlv::SHA256, tlv::KEYHASH, sig_kind]);
    assert_eq!(
        img.tlvs_of(tlv::KEYHASH).next().unwrap().data,
        key.key_hash()
    );
    let v = img.verify(&bytes, Some(&key));
    assert_eq!(v.hash, HashCheck::Match);
    assert_eq!(v.signature, SigCheck::Valid, "{file}");
    assert!(v.is_valid());
    assert!(img.verify(&bytes, None).is_valid());
    assert_eq!(img.header.version, Version::new(1, 2, 3, 4));
    assert!(img.is_bootable());
    assert_eq!(img.security_counter(), None);
    assert!(img.dependencies().is_empty());
}

#[rstest]
#[case::ecdsa_with_ed25519_key("signed-nopad.bin", "k-ed25519.pub.pem")]
#[case::ecdsa_with_other_p256("signed-nopad.bin", "")]
#[case::ed25519_with_ecdsa_key("signed-nopad-ed25519.bin", "k.pub.pem")]
#[case::rsa_with_ecdsa_key("signed-nopad-rsa2048.bin", "k.pub.pem")]
fn wrong_key_is_a_key_mismatch(#[case] file: &str, #[case] key: &str) {
    let bytes = read(file);
    let img = Image::parse(&bytes).unwrap();
    let key = if key.is_empty() {
        SigningKey::generate_p256_from_seed(b"not k.pem").public()
    } else {
        pubkey(key)
    };
    let v = img.verify(&bytes, Some(&key));
    assert_eq!(v.hash, HashCheck::Match);
    assert_eq!(v.signature, SigCheck::KeyMismatch);
    assert!(!v.is_valid());
}

#[test]
fn keyhash_that_matches_but_bad_signature_is_invalid() {
    let mut bytes = read("signed-nopad.bin");
    let img = Image::parse(&bytes).unwrap();
    let sig = img.tlvs_of(tlv::ECDSA_SIG).next().unwrap();
    // Flip a bit inside r (the DER header is 4 bytes: 30 len 02 len).
    bytes[sig.offset + 4 + 10] ^= 0x01;
    let v = Image::parse(&bytes)
        .unwrap()
        .verify(&bytes, Some(&pubkey("k.pub.pem")));
    assert_eq!(v.hash, HashCheck::Match);
    assert_eq!(v.signature, SigCheck::Invalid);
}

#[rstest]
#[case("signed-nopad.bin", "k.pub.pem")]
#[case("signed-pad-confirm.bin", "k.pub.pem")]
#[case("signed-nopad-ed25519.bin", "k-ed25519.pub.pem")]
#[case("signed-nopad-rsa2048.bin", "k-rsa2048.pub.pem")]
fn payload_bit_flip_is_a_hash_mismatch(#[case] file: &str, #[case] key: &str) {
    let mut bytes = read(file);
    bytes[0x1234] ^= 0x10;
    let img = Image::parse(&bytes).unwrap();
    let v = img.verify(&bytes, Some(&pubkey(key)));
    match &v.hash {
        HashCheck::Mismatch { expected, actual } => {
            assert_eq!(hex::encode(expected), IMAGE_HASH);
            assert_ne!(hex::encode(actual), IMAGE_HASH);
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    // The signature covers the digest of what is in flash, so it fails too.
    assert_eq!(v.signature, SigCheck::Invalid);
    assert!(!v.is_valid());
}

#[test]
fn padded_image_parses_despite_trailer() {
    let bytes = read("signed-pad-confirm.bin");
    assert_eq!(bytes.len(), SLOT);
    let img = Image::parse(&bytes).unwrap();
    assert_eq!(img.tlv_off, 0x2a00);
    assert_eq!(img.total_size, 0x2a00 + 0x97);
    assert!(bytes[img.total_size..0x66fe8].iter().all(|&b| b == 0xff));
    assert_eq!(bytes[0x66fe8], 0x01, "image_ok");
    assert_eq!(&bytes[0x66ff0..], &boot_magic(8));
    // "nopad-confirm" is padded too: --confirm implies --pad.
    let nc = read("signed-nopad-confirm.bin");
    assert_eq!(nc.len(), SLOT);
    assert_eq!(&nc[0x66ff0..], &boot_magic(8));
}

/// Pull `name: value` out of a dumpinfo text.
fn dump_field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("dumpinfo has no {name} field"))
}

fn hex_field(text: &str, name: &str) -> u64 {
    let v = dump_field(text, name);
    u64::from_str_radix(v.trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("{name}={v}: {e}"))
}

#[rstest]
#[case("signed-nopad")]
#[case("signed-pad-confirm")]
fn header_fields_equal_dumpinfo(#[case] stem: &str) {
    let text = std::fs::read_to_string(path(&format!("{stem}.dumpinfo.txt"))).unwrap();
    let bytes = read(&format!("{stem}.bin"));
    let img = Image::parse(&bytes).unwrap();
    let h = &img.header;
    assert_eq!(h.magic, IMAGE_MAGIC);
    assert_eq!(hex_field(&text, "magic"), u64::from(h.magic));
    assert_eq!(hex_field(&text, "load_addr"), u64::from(h.load_addr));
    assert_eq!(hex_field(&text, "hdr_size"), u64::from(h.hdr_size));
    assert_eq!(
        hex_field(&text, "protected_tlv_size"),
        u64::from(h.protect_tlv_size)
    );
    assert_eq!(hex_field(&text, "img_size"), u64::from(h.img_size));
    assert_eq!(hex_field(&text, "flags"), u64::from(h.flags));
    assert_eq!(dump_field(&text, "version"), h.version.to_string());
    assert!(text.contains(&format!("TLV area (offset: {:#x})", img.tlv_off)));
    assert_eq!(
        hex_field(&text, "area size") as usize,
        img.total_size - img.tlv_off
    );
    let verify = std::fs::read_to_string(path(&format!("{stem}.verify.txt"))).unwrap();
    assert!(verify.contains(&format!(
        "Image digest: {}",
        hex::encode(img.computed_hash(&bytes))
    )));
    assert!(verify.contains(&format!("Image version: {}", h.version)));
}

#[test]
fn keys_match_the_vectors() {
    let k = SigningKey::load(&path("k.pem")).unwrap();
    assert!(matches!(k, SigningKey::EcdsaP256(_)));
    assert_eq!(k.public(), pubkey("k.pub.pem"));
    assert_eq!(hex::encode(k.public().key_hash()), KEY_HASH);
    // A private-key PEM is accepted where a public key is wanted.
    assert_eq!(
        PublicKey::load(&path("k.pem")).unwrap(),
        pubkey("k.pub.pem")
    );
    // Our PEM output reads back as the same key, and matches imgtool's getpub PEM text.
    assert_eq!(
        SigningKey::from_pem(&k.to_pem()).unwrap().public(),
        k.public()
    );
    let getpub = std::fs::read_to_string(path("k.pub.pem")).unwrap();
    assert_eq!(k.public().to_pem().trim(), getpub.trim());
    for (private, public) in [
        ("k-ed25519.pem", "k-ed25519.pub.pem"),
        ("k-rsa2048.pem", "k-rsa2048.pub.pem"),
    ] {
        assert_eq!(
            SigningKey::load(&path(private)).unwrap().public(),
            pubkey(public),
            "{private}"
        );
    }
}

/// Sign the README payload with the README options and compare with imgtool's output.
/// ECDSA signatures are randomised in imgtool, so everything but the signature must be equal.
#[rstest]
#[case::nopad("signed-nopad.bin", false, false)]
#[case::pad_confirm("signed-pad-confirm.bin", true, true)]
#[case::confirm_implies_pad("signed-nopad-confirm.bin", false, true)]
fn our_signing_matches_imgtool(#[case] file: &str, #[case] pad: bool, #[case] confirm: bool) {
    let payload = read("dummy-10k.bin");
    let key = SigningKey::load(&path("k.pem")).unwrap();
    let opts = SignOptions {
        pad,
        confirm,
        ..readme_opts()
    };
    let ours = sign(&payload, Some(&key), &opts).unwrap();
    let theirs = read(file);
    let (a, b) = (Image::parse(&ours).unwrap(), Image::parse(&theirs).unwrap());
    assert_eq!(a.header, b.header);
    assert_eq!(hex::encode(a.hash_tlv().unwrap()), IMAGE_HASH);
    assert_eq!(
        &ours[..a.tlv_off],
        &theirs[..b.tlv_off],
        "header, header padding and payload"
    );
    let kinds = |i: &Image| i.tlvs.iter().map(|t| t.kind).collect::<Vec<_>>();
    assert_eq!(kinds(&a), kinds(&b));
    for t in [tlv::SHA256, tlv::KEYHASH] {
        assert_eq!(a.tlvs_of(t).next().unwrap(), b.tlvs_of(t).next().unwrap());
    }
    assert!(a.verify(&ours, Some(&key.public())).is_valid());
    let sig_len = |i: &Image| i.tlvs_of(tlv::ECDSA_SIG).next().unwrap().data.len();
    if pad || confirm {
        assert_eq!(ours.len(), theirs.len());
        let end = a.total_size.max(b.total_size);
        assert_eq!(&ours[end..], &theirs[end..], "padding and trailer");
    } else {
        assert_eq!(
            ours.len() as isize - sig_len(&a) as isize,
            theirs.len() as isize - sig_len(&b) as isize
        );
        if sig_len(&a) == sig_len(&b) {
            assert_eq!(ours.len(), theirs.len());
        }
    }
}

#[test]
fn ed25519_signing_matches_imgtool_bit_for_bit() {
    // Ed25519 is deterministic, so here the whole file must be identical.
    let key = SigningKey::load(&path("k-ed25519.pem")).unwrap();
    let ours = sign(&read("dummy-10k.bin"), Some(&key), &readme_opts()).unwrap();
    assert_eq!(ours, read("signed-nopad-ed25519.bin"));
}

#[test]
fn rsa_signing_verifies() {
    // PSS salts are random, so only the structure and validity can be compared.
    let key = SigningKey::load(&path("k-rsa2048.pem")).unwrap();
    let ours = sign(&read("dummy-10k.bin"), Some(&key), &readme_opts()).unwrap();
    let theirs = read("signed-nopad-rsa2048.bin");
    assert_eq!(ours.len(), theirs.len());
    let img = Image::parse(&ours).unwrap();
    assert_eq!(
        img.verify(&ours, Some(&pubkey("k-rsa2048.pub.pem")))
            .signature,
        SigCheck::Valid
    );
    let sig = img.tlvs_of(tlv::RSA2048_PSS).next().unwrap().offset;
    assert_eq!(&ours[..sig], &theirs[..sig]);
}
