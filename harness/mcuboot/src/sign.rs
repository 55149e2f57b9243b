//! Build signed MCUboot images the way `imgtool sign` does, so fixtures can be made in-process (no
//! Python in the test loop) and still be byte-compatible with what imgtool produces and accepts.
//! Behaviour follows imgtool 2.5.0 (MCUboot `scripts/imgtool/main.py`, `sign`;
//! `scripts/imgtool/image.py`, `Image.create`).

use crate::image::{
    flags, tlv, BootRecord, Dependency, HashAlg, ImageHeader, Version, BOOT_RECORD_MAX_SW_TYPE,
    IMAGE_HEADER_SIZE, IMAGE_MAGIC, TLV_HEADER_SIZE, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC,
};
use crate::keys::{PublicKey, SigningKey};

/// imgtool's `--public-key-format`: how the signing key is named in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublicKeyFormat {
    /// KEYHASH TLV: hash of the public key (default).
    #[default]
    Hash,
    /// PUBKEY TLV: the whole public key (for `MCUBOOT_HW_KEY` bootloaders).
    Full,
}

/// Options of `imgtool sign` that the harness needs.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// `--header-size`: where the payload starts; must match the firmware's link offset.
    pub header_size: u16,
    /// `--pad-header`: prepend `header_size` erased bytes instead of requiring zeros.
    pub pad_header: bool,
    pub version: Version,
    /// `--slot-size`; 0 = no fit check and no padding possible.
    pub slot_size: u32,
    /// `--align` (flash write size) 1, 2, 4, 8, 16 or 32: sizes the swap status area.
    pub align: u32,
    /// `--max-align` 8, 16 or 32 (the bootloader's `BOOT_MAX_ALIGN`): trailer field spacing and
    /// the magic variant.
    pub max_align: u32,
    /// `--max-sectors` (bootloader's `BOOT_MAX_IMG_SECTORS`).
    pub max_sectors: u32,
    pub pad: bool,
    /// Implies `pad`, like imgtool.
    pub confirm: bool,
    pub overwrite_only: bool,
    pub erased_val: u8,
    pub security_counter: Option<u32>,
    pub dependencies: Vec<Dependency>,
    pub non_bootable: bool,
    pub load_addr: Option<u32>,
    pub rom_fixed: Option<u32>,
    /// `--sha`: `None` = auto (the key's default: SHA-384 for P-384, else SHA-256; SHA-256
    /// without a key). A hash the key does not allow is refused, as imgtool does.
    pub sha: Option<HashAlg>,
    /// `--public-key-format`.
    pub public_key_format: PublicKeyFormat,
    /// `--boot-record SW_TYPE`: add a BOOT_RECORD TLV (at most 12 characters).
    pub boot_record: Option<String>,
    /// `--pure` (Ed25519 only): SIG_PURE marker, SHA-512 hash, signature over the image.
    pub pure: bool,
}

impl Default for SignOptions {
    /// Zephyr's usual invocation: 0x200 header of zeros already in the binary, align 4, max-align 8.
    fn default() -> Self {
        SignOptions {
            header_size: 0x200,
            pad_header: false,
            version: Version::default(),
            slot_size: 0,
            align: 4,
            max_align: 8,
            max_sectors: 128,
            pad: false,
            confirm: false,
            overwrite_only: false,
            erased_val: 0xff,
            security_counter: None,
            dependencies: Vec::new(),
            non_bootable: false,
            load_addr: None,
            rom_fixed: None,
            sha: None,
            public_key_format: PublicKeyFormat::Hash,
            boot_record: None,
            pure: false,
        }
    }
}

impl SignOptions {
    /// Bytes imgtool reserves at the slot end for the trailer in its fit check and when padding
    /// (`_trailer_size` without encryption): status area for 3 states per sector plus four
    /// flag fields and the magic, or just two flags and the magic for overwrite-only.
    pub fn trailer_size(&self) -> u32 {
        let magic = align_up(16, self.max_align);
        // Saturating: a size past u32 can only mean "does not fit", which the fit check reports.
        if self.overwrite_only {
            self.max_align.saturating_mul(2).saturating_add(magic)
        } else {
            self.max_sectors
                .saturating_mul(3)
                .saturating_mul(self.align)
                .saturating_add(self.max_align.saturating_mul(4))
                .saturating_add(magic)
        }
    }
}

/// Why an image was not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error(
        "header size {header_size:#x} is smaller than the {IMAGE_HEADER_SIZE}-byte image header"
    )]
    HeaderSizeTooSmall { header_size: u16 },
    #[error("payload is {len:#x} bytes, shorter than the {header_size:#x}-byte header it must start with (use pad_header)")]
    PayloadShorterThanHeader { len: usize, header_size: u16 },
    #[error("header padding was not requested and the image does not start with zeros: byte at offset {offset:#x} is {value:#04x} (header size {header_size:#x}; use pad_header or a binary linked with that offset)")]
    HeaderNotZero {
        offset: usize,
        value: u8,
        header_size: u16,
    },
    #[error("invalid align {0} (allowed: 1, 2, 4, 8, 16, 32)")]
    InvalidAlign(u32),
    #[error("invalid max_align {0} (allowed: 8, 16, 32)")]
    InvalidMaxAlign(u32),
    #[error("invalid erased value {0:#04x} (flash erases to 0xff or 0x00)")]
    InvalidErasedVal(u8),
    #[error("padding or confirming needs a slot size")]
    PadWithoutSlotSize,
    #[error("load_addr and rom_fixed cannot both be set")]
    LoadAddrAndRomFixed,
    #[error("image size ({image_size:#x}) + trailer ({trailer_size:#x}) exceeds slot size {slot_size:#x}")]
    DoesNotFit {
        image_size: usize,
        trailer_size: u32,
        slot_size: u32,
    },
    #[error("payload of {0:#x} bytes does not fit the header's 32-bit img_size")]
    PayloadTooLarge(usize),
    #[error("{what} TLV block would be {len:#x} bytes, more than its 16-bit length field allows")]
    TlvBlockTooLarge { what: &'static str, len: usize },
    #[error("a {key} key cannot be used with {sha}; allowed: {allowed}")]
    HashNotAllowed {
        key: String,
        sha: HashAlg,
        allowed: String,
    },
    #[error("boot record sw_type {0:?} is longer than {BOOT_RECORD_MAX_SW_TYPE} characters")]
    BootRecordTooLong(String),
    #[error("pure signatures (SIG_PURE) need an Ed25519 key")]
    PureNeedsEd25519,
}

/// The image hash to use: imgtool's `key_and_user_sha_to_alg_and_tlv` rules.
pub fn choose_hash(key: Option<&PublicKey>, opts: &SignOptions) -> Result<HashAlg, SignError> {
    let Some(k) = key else {
        if opts.pure {
            return Err(SignError::PureNeedsEd25519);
        }
        return Ok(opts.sha.unwrap_or(HashAlg::Sha256));
    };
    if opts.pure {
        // imgtool ignores --sha for pure images and uses SHA-512.
        return match k {
            PublicKey::Ed25519(_) => Ok(HashAlg::Sha512),
            _ => Err(SignError::PureNeedsEd25519),
        };
    }
    match opts.sha {
        None => Ok(k.default_hash()),
        Some(sha) if k.allowed_hashes().contains(&sha) => Ok(sha),
        Some(sha) => Err(SignError::HashNotAllowed {
            key: k.type_name(),
            sha,
            allowed: k
                .allowed_hashes()
                .iter()
                .map(|h| h.name())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn align_up(v: u32, a: u32) -> u32 {
    let a = a.max(1);
    v.div_ceil(a).saturating_mul(a)
}

/// The trailer magic bytes for a max-align (imgtool `image.py`, `Image.__init__`; MCUboot
/// `bootutil_public.c`, `boot_img_magic`): the classic pattern for 8, otherwise `max_align` as LE
/// u16 followed by a fixed 14-byte pattern.
pub fn boot_magic(max_align: u32) -> [u8; 16] {
    if max_align == 8 {
        return [
            0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6,
            0x79, 0x80,
        ];
    }
    let mut m = [
        0, 0, 0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a,
    ];
    m[..2].copy_from_slice(&(max_align as u16).to_le_bytes());
    m
}

/// Serialise one TLV block (info header + entries).
fn tlv_block(
    magic: u16,
    entries: &[(u16, Vec<u8>)],
    what: &'static str,
) -> Result<Vec<u8>, SignError> {
    let len = TLV_HEADER_SIZE
        + entries
            .iter()
            .map(|(_, d)| TLV_HEADER_SIZE + d.len())
            .sum::<usize>();
    let len16 = u16::try_from(len).map_err(|_| SignError::TlvBlockTooLarge { what, len })?;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&magic.to_le_bytes());
    b.extend_from_slice(&len16.to_le_bytes());
    for (kind, data) in entries {
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&(data.len() as u16).to_le_bytes());
        b.extend_from_slice(data);
    }
    Ok(b)
}

/// Like `imgtool sign`: same checks (no pad_header → first header_size bytes must be 0x00 else
/// error naming the first non-zero offset; image + trailer must fit slot_size → error with both
/// sizes), same TLV layout (protected block, in imgtool's order: SEC_CNT, BOOT_RECORD,
/// DEPENDENCY…; unprotected: hash, [SIG_PURE], KEYHASH or PUBKEY, signature), --pad/--confirm
/// trailer bytes (magic at slot_end-16 per max_align variant, image_ok=0x01 at
/// slot_end - (align_up(16,max_align) + max_align) for confirm). The hash algorithm follows the
/// key (SHA-384 for P-384) unless `sha` says otherwise; KEYHASH uses the same algorithm.
/// Signatures are deterministic (RFC 6979 ECDSA, Ed25519, seeded PSS salt): same inputs, same
/// bytes. Without a key: hash TLV only (imgtool does that too).
pub fn sign(
    payload: &[u8],
    key: Option<&SigningKey>,
    opts: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    let hs = usize::from(opts.header_size);
    if hs < IMAGE_HEADER_SIZE {
        return Err(SignError::HeaderSizeTooSmall {
            header_size: opts.header_size,
        });
    }
    if ![1, 2, 4, 8, 16, 32].contains(&opts.align) {
        return Err(SignError::InvalidAlign(opts.align));
    }
    if ![8, 16, 32].contains(&opts.max_align) {
        return Err(SignError::InvalidMaxAlign(opts.max_align));
    }
    // align > max_align is accepted, as imgtool does: a misconfigured pair is something the
    // harness wants to be able to build and then watch the bootloader reject.
    if opts.erased_val != 0xff && opts.erased_val != 0 {
        return Err(SignError::InvalidErasedVal(opts.erased_val));
    }
    let pad = opts.pad || opts.confirm;
    if pad && opts.slot_size == 0 {
        return Err(SignError::PadWithoutSlotSize);
    }
    if opts.load_addr.is_some() && opts.rom_fixed.is_some() {
        return Err(SignError::LoadAddrAndRomFixed);
    }
    if let Some(t) = opts
        .boot_record
        .as_ref()
        .filter(|t| t.len() > BOOT_RECORD_MAX_SW_TYPE)
    {
        return Err(SignError::BootRecordTooLong(t.clone()));
    }
    let public = key.map(SigningKey::public);
    let alg = choose_hash(public.as_ref(), opts)?;
    // imgtool's signer id: the key hash, or 32 zero bytes for an unsigned image.
    let key_hash = match &public {
        Some(p) => p.key_hash_with(alg),
        None => vec![0; 32],
    };

    // Header region + payload, as it will sit in the slot.
    let mut out = if opts.pad_header {
        let mut v = vec![opts.erased_val; hs];
        v.extend_from_slice(payload);
        v
    } else {
        if payload.len() < hs {
            return Err(SignError::PayloadShorterThanHeader {
                len: payload.len(),
                header_size: opts.header_size,
            });
        }
        if let Some(offset) = payload[..hs].iter().position(|&b| b != 0) {
            return Err(SignError::HeaderNotZero {
                offset,
                value: payload[offset],
                header_size: opts.header_size,
            });
        }
        payload.to_vec()
    };
    let img_size =
        u32::try_from(out.len() - hs).map_err(|_| SignError::PayloadTooLarge(out.len() - hs))?;

    let mut prot = Vec::new();
    if let Some(c) = opts.security_counter {
        prot.push((tlv::SEC_CNT, c.to_le_bytes().to_vec()));
    }
    if let Some(t) = &opts.boot_record {
        let rec = BootRecord::new(t, &opts.version, alg, key_hash.clone());
        prot.push((tlv::BOOT_RECORD, rec.to_cbor()));
    }
    for d in &opts.dependencies {
        prot.push((tlv::DEPENDENCY, d.to_bytes().to_vec()));
    }
    let prot_block = if prot.is_empty() {
        Vec::new()
    } else {
        tlv_block(TLV_PROT_INFO_MAGIC, &prot, "protected")?
    };

    let mut hflags = 0;
    let mut load_addr = 0;
    if opts.non_bootable {
        hflags |= flags::NON_BOOTABLE;
    }
    // imgtool only sets RAM_LOAD for a non-zero load address.
    if let Some(a) = opts.load_addr.filter(|&a| a != 0) {
        hflags |= flags::RAM_LOAD;
        load_addr = a;
    }
    if let Some(a) = opts.rom_fixed {
        hflags |= flags::ROM_FIXED;
        load_addr = a;
    }
    let header = ImageHeader {
        magic: IMAGE_MAGIC,
        load_addr,
        hdr_size: opts.header_size,
        protect_tlv_size: prot_block.len() as u16,
        img_size,
        flags: hflags,
        version: opts.version,
    };
    out[..IMAGE_HEADER_SIZE].copy_from_slice(&header.to_bytes());
    out.extend_from_slice(&prot_block);

    let digest = alg.digest(&out);
    let mut unprot = vec![(alg.tlv(), digest.clone())];
    if opts.pure {
        unprot.push((tlv::SIG_PURE, vec![1]));
    }
    if let (Some(k), Some(p)) = (key, &public) {
        match opts.public_key_format {
            PublicKeyFormat::Hash => unprot.push((tlv::KEYHASH, key_hash)),
            PublicKeyFormat::Full => unprot.push((tlv::PUBKEY, p.key_bytes())),
        }
        let message = if opts.pure { &out[..] } else { &digest[..] };
        unprot.push((k.signature_tlv(), k.sign_digest(message)));
    }
    out.extend_from_slice(&tlv_block(TLV_INFO_MAGIC, &unprot, "unprotected")?);

    if opts.slot_size > 0 {
        let trailer = opts.trailer_size();
        if out.len() + trailer as usize > opts.slot_size as usize {
            return Err(SignError::DoesNotFit {
                image_size: out.len(),
                trailer_size: trailer,
                slot_size: opts.slot_size,
            });
        }
    }
    if pad {
        let slot = opts.slot_size as usize;
        out.resize(slot, opts.erased_val);
        out[slot - 16..].copy_from_slice(&boot_magic(opts.max_align));
        // imgtool leaves image_ok alone for overwrite-only images (that mode never reverts).
        if opts.confirm && !opts.overwrite_only {
            out[slot - (align_up(16, opts.max_align) + opts.max_align) as usize] = 0x01;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{HashCheck, Image, SigCheck};
    use crate::keys::SigningKey;

    fn zero_prefixed(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; 0x200];
        v.extend((0..len).map(|i| (i * 7 + 3) as u8));
        v
    }

    #[test]
    fn refuses_non_zero_header_area() {
        let mut p = zero_prefixed(100);
        p[0x1f3] = 0x42;
        let e = sign(&p, None, &SignOptions::default()).unwrap_err();
        assert_eq!(
            e,
            SignError::HeaderNotZero {
                offset: 0x1f3,
                value: 0x42,
                header_size: 0x200
            }
        );
        assert!(e.to_string().contains("0x1f3"), "{e}");
        let e = sign(&[0u8; 0x100], None, &SignOptions::default()).unwrap_err();
        assert!(matches!(
            e,
            SignError::PayloadShorterThanHeader { len: 0x100, .. }
        ));
    }

    #[test]
    fn refuses_bad_options() {
        let p = zero_prefixed(16);
        let o = |f: fn(&mut SignOptions)| {
            let mut o = SignOptions::default();
            f(&mut o);
            sign(&p, None, &o).unwrap_err()
        };
        assert_eq!(
            o(|o| o.header_size = 16),
            SignError::HeaderSizeTooSmall { header_size: 16 }
        );
        assert_eq!(o(|o| o.align = 3), SignError::InvalidAlign(3));
        assert_eq!(o(|o| o.max_align = 4), SignError::InvalidMaxAlign(4));
        assert_eq!(o(|o| o.confirm = true), SignError::PadWithoutSlotSize);
        assert_eq!(
            o(|o| o.erased_val = 0x55),
            SignError::InvalidErasedVal(0x55)
        );
        assert_eq!(
            o(|o| {
                o.load_addr = Some(1);
                o.rom_fixed = Some(2)
            }),
            SignError::LoadAddrAndRomFixed
        );
    }

    #[test]
    fn refuses_image_that_does_not_fit() {
        let p = zero_prefixed(0x1000);
        let opts = SignOptions {
            slot_size: 0x1800,
            ..Default::default()
        };
        // 0x1200 image + 0x28 TLVs + (128*3*4 + 32 + 16 = 0x630) trailer > 0x1800
        let e = sign(&p, None, &opts).unwrap_err();
        assert_eq!(
            e,
            SignError::DoesNotFit {
                image_size: 0x1228,
                trailer_size: 0x630,
                slot_size: 0x1800
            }
        );
        assert!(
            e.to_string().contains("0x1228") && e.to_string().contains("0x1800"),
            "{e}"
        );
        let opts = SignOptions {
            slot_size: 0x1228 + 0x630,
            ..Default::default()
        };
        assert!(sign(&p, None, &opts).is_ok(), "exact fit is allowed");
    }

    #[test]
    fn trailer_sizes_match_reference_table() {
        let o = SignOptions::default();
        assert_eq!(o.trailer_size(), 0x630);
        let o = SignOptions {
            align: 32,
            max_align: 32,
            ..Default::default()
        };
        assert_eq!(o.trailer_size(), 0x3000 + 0x80 + 0x20);
        let o = SignOptions {
            overwrite_only: true,
            ..Default::default()
        };
        assert_eq!(o.trailer_size(), 32);
    }

    #[test]
    fn magic_variants() {
        assert_eq!(boot_magic(8)[0], 0x77);
        assert_eq!(&boot_magic(16)[..4], &[0x10, 0x00, 0x2d, 0xe1]);
        assert_eq!(&boot_magic(32)[..4], &[0x20, 0x00, 0x2d, 0xe1]);
        assert_eq!(boot_magic(16)[2..], boot_magic(32)[2..]);
    }

    #[test]
    fn signed_image_parses_and_verifies() {
        let key = SigningKey::generate_p256_from_seed(b"unit");
        let opts = SignOptions {
            version: "2.0.1+7".parse().unwrap(),
            security_counter: Some(5),
            dependencies: vec![Dependency {
                image_id: 1,
                min_version: Version::new(1, 1, 0, 0),
            }],
            slot_size: 0x4000,
            max_align: 16,
            confirm: true,
            ..Default::default()
        };
        let out = sign(&zero_prefixed(1000), Some(&key), &opts).unwrap();
        assert_eq!(out.len(), 0x4000);
        assert_eq!(&out[0x4000 - 16..], &boot_magic(16));
        assert_eq!(out[0x4000 - 32], 0x01);
        let img = Image::parse(&out).unwrap();
        assert_eq!(img.header.version, Version::new(2, 0, 1, 7));
        assert_eq!(img.header.protect_tlv_size, 4 + 8 + 16);
        assert_eq!(img.security_counter(), Some(5));
        assert_eq!(img.dependencies(), opts.dependencies);
        let v = img.verify(&out, Some(&key.public()));
        assert_eq!(v.hash, HashCheck::Match);
        assert_eq!(v.signature, SigCheck::Valid);
        let other = SigningKey::generate_p256_from_seed(b"other").public();
        assert_eq!(
            img.verify(&out, Some(&other)).signature,
            SigCheck::KeyMismatch
        );
        // Deterministic: same inputs, same bytes.
        assert_eq!(out, sign(&zero_prefixed(1000), Some(&key), &opts).unwrap());
    }

    #[test]
    fn p384_uses_sha384_and_extras() {
        let key = SigningKey::generate_p384_from_seed(b"unit");
        let opts = SignOptions {
            version: Version::new(1, 2, 3, 0),
            boot_record: Some("SPE".into()),
            security_counter: Some(1),
            public_key_format: PublicKeyFormat::Full,
            ..Default::default()
        };
        let out = sign(&zero_prefixed(500), Some(&key), &opts).unwrap();
        let img = Image::parse(&out).unwrap();
        assert_eq!(img.hash_alg(), HashAlg::Sha384);
        assert_eq!(img.hash_tlv().unwrap().len(), 48);
        let kinds: Vec<u16> = img.tlvs.iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [
                tlv::SEC_CNT,
                tlv::BOOT_RECORD,
                tlv::SHA384,
                tlv::PUBKEY,
                tlv::ECDSA_SIG
            ]
        );
        let rec = img.boot_record().unwrap();
        assert_eq!(
            (rec.sw_type.as_str(), rec.version.as_str()),
            ("SPE", "1.2.3")
        );
        assert_eq!(rec.signer_id, key.public().key_hash());
        let v = img.verify(&out, Some(&key.public()));
        assert_eq!((v.hash, v.signature), (HashCheck::Match, SigCheck::Valid));

        let e = sign(
            &zero_prefixed(5),
            Some(&key),
            &SignOptions {
                sha: Some(HashAlg::Sha256),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, SignError::HashNotAllowed { .. }), "{e}");
        assert!(e.to_string().contains("P-384"), "{e}");
        let e = sign(
            &zero_prefixed(5),
            Some(&key),
            &SignOptions {
                pure: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e, SignError::PureNeedsEd25519);
        let e = sign(
            &zero_prefixed(5),
            None,
            &SignOptions {
                boot_record: Some("thirteen-char".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, SignError::BootRecordTooLong(_)));
        // Unsigned: any hash, zero signer id in the boot record.
        let out = sign(
            &zero_prefixed(5),
            None,
            &SignOptions {
                sha: Some(HashAlg::Sha512),
                boot_record: Some("x".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let img = Image::parse(&out).unwrap();
        assert_eq!(img.hash_alg(), HashAlg::Sha512);
        assert_eq!(img.boot_record().unwrap().signer_id, vec![0; 32]);
        assert!(img.verify(&out, None).is_valid());
    }

    #[test]
    fn flags_and_unsigned() {
        let opts = SignOptions {
            non_bootable: true,
            rom_fixed: Some(0x1000_0000),
            pad_header: true,
            ..Default::default()
        };
        let out = sign(&[1, 2, 3], None, &opts).unwrap();
        let img = Image::parse(&out).unwrap();
        assert!(!img.is_bootable());
        assert_eq!(img.header.flags, flags::NON_BOOTABLE | flags::ROM_FIXED);
        assert_eq!(img.header.load_addr, 0x1000_0000);
        assert_eq!(out[0x20], 0xff, "pad_header fills with the erased value");
        assert_eq!(img.tlvs.len(), 1);
        let key = SigningKey::generate_p256_from_seed(b"k").public();
        assert_eq!(img.verify(&out, Some(&key)).signature, SigCheck::Missing);
        let opts = SignOptions {
            load_addr: Some(0),
            pad_header: true,
            ..Default::default()
        };
        assert_eq!(
            Image::parse(&sign(&[1], None, &opts).unwrap())
                .unwrap()
                .header
                .flags,
            0
        );
    }
}
