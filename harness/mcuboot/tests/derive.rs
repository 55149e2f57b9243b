//! Derived bad images: each one is reproducible and `inspect` names what is wrong with it.

use std::collections::BTreeMap;

use dfu_hil_mcuboot::derive::{apply, apply_all, Derivation, DeriveContext};
use dfu_hil_mcuboot::image::{flags, HashCheck, Image, SigCheck, Version};
use dfu_hil_mcuboot::inspect::{inspect, InspectOptions};
use dfu_hil_mcuboot::keys::SigningKey;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use dfu_hil_mcuboot::trailer::UpgradeMode;

const SLOT: u32 = 0x20000;

fn keys() -> (SigningKey, SigningKey) {
    (
        SigningKey::generate_p256_from_seed(b"derive default"),
        SigningKey::generate_p256_from_seed(b"derive other"),
    )
}

fn ctx() -> DeriveContext {
    let (d, o) = keys();
    DeriveContext {
        keys: BTreeMap::from([("default".into(), d), ("other".into(), o)]),
        slot_size: SLOT,
        ..DeriveContext::default()
    }
}

/// Good image: Zephyr-like binary (0x200 zeros, vector table), signed with the default key.
fn good() -> Vec<u8> {
    let mut bin = vec![0u8; 0x200];
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&0x0000_c401u32.to_le_bytes());
    bin.extend((0..0x4000).map(|i| (i * 5 + 9) as u8));
    let opts = SignOptions {
        version: Version::new(1, 0, 0, 0),
        security_counter: Some(1),
        ..SignOptions::default()
    };
    sign(&bin, Some(&keys().0), &opts).unwrap()
}

fn opts() -> InspectOptions {
    InspectOptions {
        key: Some(keys().0.public()),
        slot_size: Some(SLOT),
        mode: Some(UpgradeMode::SwapMove),
        ..InspectOptions::default()
    }
}

fn d(yaml: &str) -> Derivation {
    Derivation::parse(yaml, "test").unwrap()
}

#[test]
fn yaml_forms_parse() {
    assert_eq!(
        d("{ corrupt-payload: { offset: 0x300 } }"),
        Derivation::CorruptPayload(dfu_hil_mcuboot::derive::CorruptPayload {
            offset: Some(0x300)
        })
    );
    assert!(
        matches!(d("{ resign: { version: 2.0.0, key: other } }"), Derivation::Resign(r) if r.version.as_deref() == Some("2.0.0") && r.key.as_deref() == Some("other"))
    );
    assert!(
        matches!(d("{ resign: { version: 2.0 } }"), Derivation::Resign(r) if r.version.as_deref() == Some("2.0"))
    );
    assert_eq!(d("{ header-size: 32 }"), Derivation::HeaderSize(32));
    assert_eq!(d("{ non-bootable: {} }"), Derivation::NonBootable {});
    assert_eq!(d("{ pad-to: 0x80000 }"), Derivation::PadTo(0x80000));
    assert!(matches!(d("truncate: { len: 1000 }"), Derivation::Truncate(t) if t.len == 1000));
    let e = Derivation::parse("{ corrupt-payload: { ofset: 1 } }", "fixtures.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("fixtures.yaml") && e.contains("ofset"), "{e}");
}

#[test]
fn the_good_image_is_clean() {
    let r = inspect(&good(), &opts());
    assert!(r.diagnoses.is_empty(), "{r}");
}

#[test]
fn resign_other_version_and_key() {
    let g = good();
    let c = ctx();
    let v2 = apply(&g, &d("{ resign: { version: 2.0.0 } }"), &c).unwrap();
    let img = Image::parse(&v2).unwrap();
    assert_eq!(img.header.version, Version::new(2, 0, 0, 0));
    // Protected TLVs survive re-signing.
    assert_eq!(img.security_counter(), Some(1));
    assert!(img.verify(&v2, Some(&keys().0.public())).is_valid());
    // Same payload bytes.
    assert_eq!(&v2[0x200..img.tlv_off], &g[0x200..img.tlv_off]);
    // Reproducible.
    assert_eq!(
        v2,
        apply(&g, &d("{ resign: { version: 2.0.0 } }"), &c).unwrap()
    );
    // Re-signing with nothing changed gives back the input exactly.
    assert_eq!(apply(&g, &d("{ resign: {} }"), &c).unwrap(), g);

    let other = apply(&g, &d("{ resign: { key: other } }"), &c).unwrap();
    let v = Image::parse(&other)
        .unwrap()
        .verify(&other, Some(&keys().0.public()));
    assert_eq!(v.signature, SigCheck::KeyMismatch);
    assert!(inspect(&other, &opts()).has("key-mismatch"));
    let e = apply(&g, &d("{ resign: { key: nope } }"), &c)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope") && e.contains("default, other"), "{e}");
}

#[test]
fn corruptions_are_detected() {
    let g = good();
    let c = ctx();
    let p = apply(&g, &d("{ corrupt-payload: { offset: 0x300 } }"), &c).unwrap();
    assert_eq!(p[0x300], g[0x300] ^ 0xff);
    assert!(inspect(&p, &opts()).has("hash-mismatch"));
    // Default offset lies inside the payload too.
    let p = apply(&g, &d("{ corrupt-payload: {} }"), &c).unwrap();
    assert!(matches!(
        Image::parse(&p).unwrap().verify(&p, None).hash,
        HashCheck::Mismatch { .. }
    ));
    let e = apply(&g, &d("{ corrupt-payload: { offset: 0x10 } }"), &c).unwrap_err();
    assert!(e.to_string().contains("0x10"), "{e}");

    let h = apply(&g, &d("{ corrupt-hash: {} }"), &c).unwrap();
    let r = inspect(&h, &opts());
    assert!(r.has("hash-mismatch"), "{r}");

    let s = apply(&g, &d("{ corrupt-signature: {} }"), &c).unwrap();
    let r = inspect(&s, &opts());
    assert!(r.has("bad-signature") && !r.has("hash-mismatch"), "{r}");
}

#[test]
fn header_size_32_is_the_classic_bug() {
    let g = good();
    let b = apply(&g, &Derivation::HeaderSize(32), &ctx()).unwrap();
    let img = Image::parse(&b).unwrap();
    assert_eq!(img.header.hdr_size, 32);
    // Hash and signature are fine: only the vector check can see it.
    assert!(img.verify(&b, Some(&keys().0.public())).is_valid());
    let r = inspect(&b, &opts());
    assert!(r.has("vector-table-zero"), "{r}");
    assert!(r.to_string().contains("--header-size 0x200"), "{r}");
    // A larger header than the zero fill is refused, as imgtool does.
    assert!(apply(&g, &Derivation::HeaderSize(0x400), &ctx()).is_err());
}

#[test]
fn too_large_truncated_non_bootable_padded() {
    let g = good();
    let c = ctx();
    let big = apply(&g, &d("{ too-large: {} }"), &c).unwrap();
    let r = inspect(&big, &opts());
    assert!(r.has("does-not-fit"), "{r}");
    assert!(!r.has("hash-mismatch"), "{r}");

    let t = apply(&g, &d("{ truncate: { len: 1000 } }"), &c).unwrap();
    assert_eq!(t.len(), 1000);
    assert!(inspect(&t, &opts()).has("parse-error"));

    let n = apply(&g, &d("{ non-bootable: {} }"), &c).unwrap();
    let img = Image::parse(&n).unwrap();
    assert_ne!(img.header.flags & flags::NON_BOOTABLE, 0);
    assert!(inspect(&n, &opts()).has("non-bootable"));

    let p = apply(&g, &d("{ pad-to: 0x8000 }"), &c).unwrap();
    assert_eq!(p.len(), 0x8000);
    assert!(p[g.len()..].iter().all(|&b| b == 0xff));
    assert!(Image::parse(&p).unwrap().verify(&p, None).is_valid());

    // Chained: re-sign as v2, then corrupt.
    let chain = apply_all(
        &g,
        &[
            d("{ resign: { version: 2.0.0 } }"),
            d("{ corrupt-hash: {} }"),
        ],
        &c,
    )
    .unwrap();
    assert_eq!(
        Image::parse(&chain).unwrap().header.version,
        Version::new(2, 0, 0, 0)
    );
}

#[test]
fn padded_input_keeps_its_trailer() {
    let mut bin = vec![0u8; 0x200];
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&0x0000_c401u32.to_le_bytes());
    bin.extend((0..0x400).map(|i| i as u8));
    let padded = sign(
        &bin,
        Some(&keys().0),
        &SignOptions {
            slot_size: SLOT,
            confirm: true,
            ..SignOptions::default()
        },
    )
    .unwrap();
    let v2 = apply(&padded, &d("{ resign: { version: 2.0.0 } }"), &ctx()).unwrap();
    assert_eq!(v2.len(), padded.len());
    assert_eq!(&v2[v2.len() - 0x40..], &padded[padded.len() - 0x40..]);
    let r = inspect(&v2, &opts());
    assert!(!r.has_errors(), "{r}");
    assert!(r.trailer.is_some());
}
