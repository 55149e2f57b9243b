//! Bad images from one good image, reproducibly: scenarios that test how a device reacts to a
//! wrong version, a foreign key, a corrupted payload or hash, a wrong `hdr_size`, an image too
//! large for its slot, a truncated upload or a non-bootable image need no extra firmware build.
//!
//! Re-signing recovers the unsigned binary from the signed image (`hdr_size` zero bytes, then
//! `bytes[hdr_size .. hdr_size + img_size]`, i.e. what Zephyr's build hands to imgtool) and signs
//! it again with [`crate::sign::sign`]. ECDSA P-256 signatures are RFC 6979 deterministic, so the
//! same inputs always give the same bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::image::{flags, tlv, Image, ImageError, Version};
use crate::keys::{PublicKey, SigningKey};
use crate::sign::{choose_hash, sign, PublicKeyFormat, SignError, SignOptions};
use crate::trailer::{TrailerLayout, UpgradeMode};

/// One transformation. YAML/JSON form is externally tagged, kebab-case:
/// `{ corrupt-payload: { offset: 0x300 } }`, `{ resign: { version: 2.0.0, key: other } }`,
/// `{ truncate: { len: 1000 } }`, `{ header-size: 32 }`, `{ non-bootable: {} }`,
/// `{ pad-to: 0x80000 }`, `{ too-large: { slot-size: 0x7a000 } }`, `{ corrupt-hash: {} }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Derivation {
    /// Re-sign the same payload, optionally with another version and/or key (by name in the
    /// context's key set; `none` = hash only).
    Resign(Resign),
    /// Flip all bits of one payload byte; the hash TLV no longer matches.
    CorruptPayload(CorruptPayload),
    /// Flip the first byte of the hash TLV value; payload intact, hash (and signature) wrong.
    CorruptHash {},
    /// Flip the last byte of the signature TLV; hash still matches, signature does not verify.
    CorruptSignature {},
    /// Re-sign with this `--header-size` (the `--header-size 32` vs 0x200 bug: valid hash and
    /// signature, vector table not at `hdr_size`).
    HeaderSize(u16),
    /// Re-sign with the payload grown so the image ends past the slot's trailer area.
    TooLarge(TooLarge),
    /// Keep the first `len` bytes (an interrupted upload).
    Truncate(Truncate),
    /// Re-sign with `IMAGE_F_NON_BOOTABLE`.
    NonBootable {},
    /// Pad with the erased value to this length (no trailer magic).
    PadTo(u32),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Resign {
    /// `major.minor.revision[+build]`.
    #[serde(default, deserialize_with = "version_opt")]
    pub version: Option<String>,
    pub key: Option<String>,
    pub security_counter: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CorruptPayload {
    /// Offset from the image start; must be inside the payload. Default: middle of the payload.
    pub offset: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TooLarge {
    /// Slot size to exceed; default the context's.
    pub slot_size: Option<u32>,
    /// How far past the largest swap-move image the new image ends (default 0x1000).
    pub excess: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Truncate {
    pub len: u32,
}

/// YAML may hand `version: 2.0` over as a number; accept any scalar and keep its text.
fn version_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        Str(String),
        U(u64),
        F(f64),
    }
    Ok(Option::<S>::deserialize(d)?.map(|s| match s {
        S::Str(s) => s,
        S::U(u) => u.to_string(),
        S::F(f) => format!("{f:?}"),
    }))
}

impl Derivation {
    /// Parse one derivation from YAML (flow or block style); `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Derivation, DeriveError> {
        serde_saphyr::from_str(text).map_err(|e| DeriveError::Spec {
            origin: origin.into(),
            message: e.to_string(),
        })
    }
}

/// What [`apply`] needs beyond the image: keys by name and the slot geometry.
#[derive(Debug, Clone)]
pub struct DeriveContext {
    /// Key name → key; `default` re-signs when neither the derivation nor the image names one.
    pub keys: BTreeMap<String, SigningKey>,
    /// Slot size for `too-large` (and fit-checked re-signing: 0 = none).
    pub slot_size: u32,
    /// Trailer geometry used for `too-large` and padding (max-align, write size, erased value).
    pub max_align: u32,
    pub write_size: u32,
    pub erased: u8,
}

impl Default for DeriveContext {
    fn default() -> Self {
        DeriveContext {
            keys: BTreeMap::new(),
            slot_size: 0,
            max_align: 8,
            write_size: 4,
            erased: 0xff,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    #[error("{origin}: invalid derivation: {message}")]
    Spec { origin: String, message: String },
    #[error("input image: {0}")]
    Image(#[from] ImageError),
    #[error("re-signing: {0}")]
    Sign(#[from] SignError),
    #[error("unknown key `{name}` (known: {known})")]
    UnknownKey { name: String, known: String },
    #[error("the image is signed (KEYHASH TLV at offset {offset:#x}) but none of the given keys ({known}) made it; name one with `key:`")]
    NoKeyForImage { offset: usize, known: String },
    #[error("invalid version {0:?}: expected major.minor.revision[+build]")]
    Version(String),
    #[error("offset {offset:#x} is outside the payload {start:#x}..{end:#x}")]
    OffsetOutsidePayload { offset: u32, start: u32, end: u32 },
    #[error("image has no {what} TLV to corrupt")]
    NoTlv { what: &'static str },
    #[error("truncate to {len:#x} bytes: the image is only {size:#x} bytes")]
    TruncateTooLong { len: u32, size: usize },
    #[error("pad to {len:#x} bytes: the image is already {size:#x} bytes")]
    PadTooShort { len: u32, size: usize },
    #[error("too-large needs a slot size (in the derivation or the context)")]
    NoSlotSize,
}

/// The unsigned binary a build would hand to imgtool: `hdr_size` zeros, then the payload.
pub fn unsigned_binary(bytes: &[u8], img: &Image) -> Vec<u8> {
    let hs = usize::from(img.header.hdr_size);
    let mut v = vec![0u8; hs];
    v.extend_from_slice(&bytes[hs..img.tlv_off]);
    v
}

/// Sign options that reproduce `img`'s header and protected TLVs.
fn options_of(img: &Image, ctx: &DeriveContext) -> SignOptions {
    let h = &img.header;
    SignOptions {
        header_size: h.hdr_size,
        version: h.version,
        max_align: ctx.max_align,
        align: ctx.write_size,
        erased_val: ctx.erased,
        security_counter: img.security_counter(),
        dependencies: img.dependencies(),
        non_bootable: h.flags & flags::NON_BOOTABLE != 0,
        load_addr: (h.flags & flags::RAM_LOAD != 0).then_some(h.load_addr),
        rom_fixed: (h.flags & flags::ROM_FIXED != 0).then_some(h.load_addr),
        sha: Some(img.hash_alg()),
        public_key_format: if img.tlvs_of(tlv::PUBKEY).next().is_some() {
            PublicKeyFormat::Full
        } else {
            PublicKeyFormat::Hash
        },
        boot_record: img.boot_record().map(|r| r.sw_type),
        pure: img.is_pure(),
        ..SignOptions::default()
    }
}

/// Sign with `opts`, but let the key pick the hash (and drop SIG_PURE) when the image's
/// original choice does not suit it, e.g. a SHA-256 image re-signed with a P-384 key.
fn sign_adapted(
    unsigned: &[u8],
    key: Option<&SigningKey>,
    opts: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    let mut opts = opts.clone();
    let public = key.map(SigningKey::public);
    if opts.pure && !matches!(public, Some(PublicKey::Ed25519(_))) {
        opts.pure = false;
    }
    if choose_hash(public.as_ref(), &opts).is_err() {
        opts.sha = None;
    }
    sign(unsigned, key, &opts)
}

fn known(ctx: &DeriveContext) -> String {
    let v: Vec<&str> = ctx.keys.keys().map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The key to re-sign with: the named one, else the one whose hash the image carries, else
/// `default`; `None` = hash only (an unsigned input, or `key: none`).
fn pick_key<'a>(
    img: &Image,
    name: Option<&str>,
    ctx: &'a DeriveContext,
) -> Result<Option<&'a SigningKey>, DeriveError> {
    match name {
        Some("none") => return Ok(None),
        Some(n) => {
            return ctx
                .keys
                .get(n)
                .map(Some)
                .ok_or_else(|| DeriveError::UnknownKey {
                    name: n.into(),
                    known: known(ctx),
                })
        }
        None => {}
    }
    let Some(kh) = img
        .tlvs
        .iter()
        .find(|t| !t.protected && matches!(t.kind, tlv::KEYHASH | tlv::PUBKEY))
    else {
        return Ok(None);
    };
    let alg = img.hash_alg();
    if let Some(k) = ctx.keys.values().find(|k| {
        let p = k.public();
        kh.data == p.key_hash_with(alg) || kh.data == p.key_bytes()
    }) {
        return Ok(Some(k));
    }
    ctx.keys
        .get("default")
        .map(Some)
        .ok_or(DeriveError::NoKeyForImage {
            offset: kh.offset,
            known: known(ctx),
        })
}

/// Keep whatever followed the signed image (padding and trailer) at the same file offsets.
fn keep_tail(mut out: Vec<u8>, orig: &[u8], img: &Image, erased: u8) -> Vec<u8> {
    if orig.len() > img.total_size && orig.len() > out.len() {
        let from = img.total_size.max(out.len());
        out.resize(orig.len(), erased);
        out[from..].copy_from_slice(&orig[from..]);
    }
    out
}

fn resign_with(
    bytes: &[u8],
    img: &Image,
    unsigned: &[u8],
    opts: &SignOptions,
    key: Option<&SigningKey>,
    ctx: &DeriveContext,
) -> Result<Vec<u8>, DeriveError> {
    let out = sign_adapted(unsigned, key, opts)?;
    Ok(keep_tail(out, bytes, img, ctx.erased))
}

/// Apply one derivation to a signed image.
pub fn apply(bytes: &[u8], d: &Derivation, ctx: &DeriveContext) -> Result<Vec<u8>, DeriveError> {
    let img = Image::parse(bytes)?;
    let unsigned = unsigned_binary(bytes, &img);
    let hs = u32::from(img.header.hdr_size);
    let payload_end = hs + img.header.img_size;
    match d {
        Derivation::Resign(r) => {
            let mut opts = options_of(&img, ctx);
            if let Some(v) = &r.version {
                opts.version = v
                    .parse::<Version>()
                    .map_err(|_| DeriveError::Version(v.clone()))?;
            }
            if r.security_counter.is_some() {
                opts.security_counter = r.security_counter;
            }
            let key = pick_key(&img, r.key.as_deref(), ctx)?;
            resign_with(bytes, &img, &unsigned, &opts, key, ctx)
        }
        Derivation::HeaderSize(n) => {
            let opts = SignOptions {
                header_size: *n,
                ..options_of(&img, ctx)
            };
            let key = pick_key(&img, None, ctx)?;
            resign_with(bytes, &img, &unsigned, &opts, key, ctx)
        }
        Derivation::NonBootable {} => {
            let opts = SignOptions {
                non_bootable: true,
                ..options_of(&img, ctx)
            };
            let key = pick_key(&img, None, ctx)?;
            resign_with(bytes, &img, &unsigned, &opts, key, ctx)
        }
        Derivation::TooLarge(t) => {
            let slot = t
                .slot_size
                .or((ctx.slot_size > 0).then_some(ctx.slot_size))
                .ok_or(DeriveError::NoSlotSize)?;
            let layout = TrailerLayout {
                slot_size: slot,
                max_align: ctx.max_align,
                write_size: ctx.write_size,
                erased: ctx.erased,
                max_sectors: 128,
                mode: UpgradeMode::SwapMove,
            };
            let target = u64::from(layout.status_off()) + u64::from(t.excess.unwrap_or(0x1000));
            let tlv_len = (img.total_size - img.tlv_off) as u64 + 8; // + DER length slack
            let new_len = target.saturating_sub(tlv_len).max(unsigned.len() as u64) as usize;
            let mut grown = unsigned.clone();
            let start = grown.len();
            grown.extend((start..new_len).map(|i| (i.wrapping_mul(31) + 7) as u8));
            let opts = options_of(&img, ctx);
            let key = pick_key(&img, None, ctx)?;
            Ok(sign_adapted(&grown, key, &opts)?)
        }
        Derivation::CorruptPayload(c) => {
            let off = c.offset.unwrap_or(hs + img.header.img_size / 2);
            if off < hs || off >= payload_end {
                return Err(DeriveError::OffsetOutsidePayload {
                    offset: off,
                    start: hs,
                    end: payload_end,
                });
            }
            let mut out = bytes.to_vec();
            out[off as usize] ^= 0xff;
            Ok(out)
        }
        Derivation::CorruptHash {} => {
            let t = img
                .tlvs
                .iter()
                .find(|t| !t.protected && tlv::is_hash(t.kind))
                .ok_or(DeriveError::NoTlv { what: "hash" })?;
            let mut out = bytes.to_vec();
            out[t.offset + 4] ^= 0xff;
            Ok(out)
        }
        Derivation::CorruptSignature {} => {
            let t = img
                .tlvs
                .iter()
                .find(|t| !t.protected && tlv::is_signature(t.kind) && !t.data.is_empty())
                .ok_or(DeriveError::NoTlv { what: "signature" })?;
            let mut out = bytes.to_vec();
            out[t.offset + 4 + t.data.len() - 1] ^= 0xff;
            Ok(out)
        }
        Derivation::Truncate(t) => {
            if t.len as usize >= bytes.len() {
                return Err(DeriveError::TruncateTooLong {
                    len: t.len,
                    size: bytes.len(),
                });
            }
            Ok(bytes[..t.len as usize].to_vec())
        }
        Derivation::PadTo(n) => {
            if (*n as usize) < bytes.len() {
                return Err(DeriveError::PadTooShort {
                    len: *n,
                    size: bytes.len(),
                });
            }
            let mut out = bytes.to_vec();
            out.resize(*n as usize, ctx.erased);
            Ok(out)
        }
    }
}

/// Apply derivations in order.
pub fn apply_all(
    bytes: &[u8],
    ds: &[Derivation],
    ctx: &DeriveContext,
) -> Result<Vec<u8>, DeriveError> {
    let mut cur = bytes.to_vec();
    for d in ds {
        cur = apply(&cur, d, ctx)?;
    }
    Ok(cur)
}
