//! The signed images against MCUboot's signature configuration.
//!
//! MCUboot is built for one signature algorithm (`CONFIG_BOOT_SIGNATURE_TYPE_*`,
//! `boot/zephyr/Kconfig`) and looks only for the TLV of that algorithm
//! (`boot/bootutil/src/image_validate.c`, `bootutil_img_validate`: `EXPECTED_SIG_TLV`), and for a
//! KEYHASH (or PUBKEY) TLV naming a key compiled into it (`bootutil_find_key`). An image signed
//! with another algorithm or another key is "valid" to imgtool and refused by MCUboot: the
//! upload works, `image list` shows the image, and after the reset the old one still runs.

use super::text::{kconfig_evidence, source_evidence};
use super::{image_label, Evidence, Finding, LoadedImage, Severity};
use crate::build::{Build, ImageRole};
use crate::facts::SignatureType;
use dfu_hil_mcuboot::image::{tlv, Image, SigCheck};
use dfu_hil_mcuboot::keys::PublicKey;
use std::path::Path;

pub const TYPE: &str = "signature-type-mismatch";
pub const KEY: &str = "signature-key-mismatch";

/// The signature TLV kinds MCUboot accepts for its configured type.
fn expected_tlvs(t: SignatureType) -> &'static [u16] {
    match t {
        SignatureType::None => &[],
        SignatureType::Rsa2048 => &[tlv::RSA2048_PSS],
        SignatureType::Rsa3072 => &[tlv::RSA3072_PSS],
        SignatureType::EcdsaP256 | SignatureType::EcdsaP384 => &[tlv::ECDSA_SIG],
        SignatureType::Ed25519 => &[tlv::ED25519],
    }
}

fn type_symbol(t: SignatureType) -> &'static str {
    match t {
        SignatureType::None => "CONFIG_BOOT_SIGNATURE_TYPE_NONE",
        SignatureType::Rsa2048 | SignatureType::Rsa3072 => "CONFIG_BOOT_SIGNATURE_TYPE_RSA",
        SignatureType::EcdsaP256 => "CONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P256",
        SignatureType::EcdsaP384 => "CONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P384",
        SignatureType::Ed25519 => "CONFIG_BOOT_SIGNATURE_TYPE_ED25519",
    }
}

fn type_name(t: SignatureType) -> &'static str {
    match t {
        SignatureType::None => "none (hash only)",
        SignatureType::Rsa2048 => "RSA-2048",
        SignatureType::Rsa3072 => "RSA-3072",
        SignatureType::EcdsaP256 => "ECDSA P-256",
        SignatureType::EcdsaP384 => "ECDSA P-384",
        SignatureType::Ed25519 => "Ed25519",
    }
}

/// Every image MCUboot validates (application, network core, MCUboot updates) against the
/// signature type and, when the key file is on this machine, the key.
pub fn check_images(build: &Build, images: &[LoadedImage], out: &mut Vec<Finding>) {
    let key = build
        .signing_key()
        .and_then(|p| PublicKey::load(&p).ok().map(|k| (p, k)));
    check_images_with_key(
        build,
        images,
        key.as_ref().map(|(p, k)| (p.as_path(), k)),
        out,
    );
}

/// [`check_images`] with MCUboot's public key (and its file) given.
pub fn check_images_with_key(
    build: &Build,
    images: &[LoadedImage],
    key: Option<(&Path, &PublicKey)>,
    out: &mut Vec<Finding>,
) {
    let Some(m) = &build.mcuboot else { return };
    let want = m.signature.value;
    for li in images {
        if li.image.role == ImageRole::Merged {
            continue;
        }
        let Ok(img) = Image::parse(&li.bytes) else {
            continue;
        };
        let sigs: Vec<u16> = img
            .tlvs
            .iter()
            .filter(|t| !t.protected && tlv::is_signature(t.kind))
            .map(|t| t.kind)
            .collect();
        let expected = expected_tlvs(want);
        let type_ev = source_evidence(
            m.signature.source.as_ref(),
            "y",
            &m.config,
            type_symbol(want),
        );
        let image_ev = |text: String| Evidence::new(&li.image.path, None, text);
        if !expected.is_empty() && !sigs.iter().any(|k| expected.contains(k)) {
            let found = if sigs.is_empty() {
                "no signature TLV".to_owned()
            } else {
                sigs.iter()
                    .map(|k| tlv::name(*k).to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(Finding {
                id: TYPE,
                severity: Severity::Error,
                title: format!(
                    "{} carries {found}; MCUboot expects a {} signature",
                    image_label(&li.image),
                    type_name(want)
                ),
                cause: "MCUboot only looks for the signature TLV of the algorithm it was built \
                        with: the image uploads fine and is refused at the next boot, so the old \
                        image keeps running"
                    .into(),
                evidence: vec![type_ev, image_ev(format!("TLVs: {found}"))],
                fix: "sign with a key of MCUboot's type (imgtool sign -k KEY matching \
                      CONFIG_BOOT_SIGNATURE_KEY_FILE), or rebuild MCUboot with the matching \
                      CONFIG_BOOT_SIGNATURE_TYPE_*"
                    .into(),
            });
            continue;
        }
        let Some((key_path, public)) = key else {
            continue;
        };
        if expected.is_empty() {
            continue;
        }
        let v = img.verify(&li.bytes, Some(public));
        let why = match v.signature {
            SigCheck::Valid | SigCheck::NotChecked => continue,
            SigCheck::KeyMismatch => {
                "names another key (its KEYHASH/PUBKEY TLV is not MCUboot's key)"
            }
            SigCheck::Invalid => "names MCUboot's key but its signature does not verify with it",
            SigCheck::Missing => "carries no signature made by MCUboot's key",
        };
        let mut evidence = vec![image_ev(format!("signature check: {why}"))];
        if let Some(f) = &m.key_file {
            evidence.push(kconfig_evidence(
                f,
                &m.config,
                "CONFIG_BOOT_SIGNATURE_KEY_FILE",
            ));
        }
        evidence.push(Evidence::new(
            key_path,
            None,
            "the key MCUboot was built with",
        ));
        out.push(Finding {
            id: KEY,
            severity: Severity::Error,
            title: format!("{} {why}", image_label(&li.image)),
            cause: "MCUboot finds no key to check the image with (bootutil_find_key) or the \
                    signature fails: the update is uploaded and then refused at boot"
                .into(),
            evidence,
            fix: "sign with the private key of CONFIG_BOOT_SIGNATURE_KEY_FILE (sysbuild: \
                  SB_CONFIG_BOOT_SIGNATURE_KEY_FILE), or flash an MCUboot built with the key the \
                  image was signed with"
                .into(),
        });
    }
}
