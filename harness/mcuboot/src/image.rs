//! MCUboot image header and TLV area: parsing, hashing and validation.
//!
//! The layout follows MCUboot's `boot/bootutil/include/bootutil/image.h` (TLV blocks as imgtool's
//! `Image.create` writes them, `scripts/imgtool/image.py`). Parsing is strict about the parts
//! MCUboot itself checks (header magic, TLV info magics, the protected block length) because an
//! image that MCUboot would refuse must not look fine to the harness. Everything after the
//! unprotected TLV block (erased padding, the trailer) is ignored, so a whole slot read back from
//! flash parses the same as the signed file.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use ciborium_ll::{Encoder, Header as CborHead};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::keys::PublicKey;

/// `ih_magic` of a current-format image.
pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;
/// Size of the fixed header struct; `hdr_size` may be larger (padding before the payload).
pub const IMAGE_HEADER_SIZE: usize = 32;
/// Magic of the unprotected TLV block's 4-byte info header.
pub const TLV_INFO_MAGIC: u16 = 0x6907;
/// Magic of the protected TLV block's info header (that block is covered by the image hash).
pub const TLV_PROT_INFO_MAGIC: u16 = 0x6908;
/// Size of a TLV info header and of each TLV's own `{type, len}` header.
pub const TLV_HEADER_SIZE: usize = 4;

/// TLV type codes, as in MCUboot's `image.h` and imgtool's `TLV_VALUES`.
pub mod tlv {
    pub const KEYHASH: u16 = 0x01;
    pub const PUBKEY: u16 = 0x02;
    pub const SHA256: u16 = 0x10;
    pub const SHA384: u16 = 0x11;
    pub const SHA512: u16 = 0x12;
    pub const RSA2048_PSS: u16 = 0x20;
    pub const ECDSA224: u16 = 0x21;
    pub const ECDSA_SIG: u16 = 0x22;
    pub const RSA3072_PSS: u16 = 0x23;
    pub const ED25519: u16 = 0x24;
    pub const SIG_PURE: u16 = 0x25;
    pub const ENC_RSA2048: u16 = 0x30;
    pub const ENC_KW: u16 = 0x31;
    pub const ENC_EC256: u16 = 0x32;
    pub const ENC_X25519: u16 = 0x33;
    pub const ENC_X25519_SHA512: u16 = 0x34;
    pub const DEPENDENCY: u16 = 0x40;
    pub const SEC_CNT: u16 = 0x50;
    pub const BOOT_RECORD: u16 = 0x60;
    pub const DECOMP_SIZE: u16 = 0x70;
    pub const DECOMP_SHA: u16 = 0x71;
    pub const DECOMP_SIGNATURE: u16 = 0x72;
    pub const COMP_DEC_SIZE: u16 = 0x73;
    pub const UUID_VID: u16 = 0x74;
    pub const UUID_CID: u16 = 0x75;

    /// Human-readable name (imgtool's spelling where it has one), for reports and logs.
    pub fn name(t: u16) -> &'static str {
        match t {
            KEYHASH => "KEYHASH",
            PUBKEY => "PUBKEY",
            SHA256 => "SHA256",
            SHA384 => "SHA384",
            SHA512 => "SHA512",
            RSA2048_PSS => "RSA2048",
            ECDSA224 => "ECDSA224",
            ECDSA_SIG => "ECDSASIG",
            RSA3072_PSS => "RSA3072",
            ED25519 => "ED25519",
            SIG_PURE => "SIG_PURE",
            ENC_RSA2048 => "ENCRSA2048",
            ENC_KW => "ENCKW",
            ENC_EC256 => "ENCEC256",
            ENC_X25519 => "ENCX25519",
            ENC_X25519_SHA512 => "ENCX25519_SHA512",
            DEPENDENCY => "DEPENDENCY",
            SEC_CNT => "SEC_CNT",
            BOOT_RECORD => "BOOT_RECORD",
            DECOMP_SIZE => "DECOMP_SIZE",
            DECOMP_SHA => "DECOMP_SHA",
            DECOMP_SIGNATURE => "DECOMP_SIGNATURE",
            COMP_DEC_SIZE => "COMP_DEC_SIZE",
            UUID_VID => "UUID_VID",
            UUID_CID => "UUID_CID",
            t if (t & 0xff) >= 0xa0 => "VENDOR",
            _ => "UNKNOWN",
        }
    }

    /// Whether `t` is an image-hash TLV (the hash algorithm is chosen by which one is present).
    pub fn is_hash(t: u16) -> bool {
        matches!(t, SHA256 | SHA384 | SHA512)
    }

    /// Whether MCUboot/imgtool assign a meaning to `t` (vendor-range types excluded).
    pub fn is_known(t: u16) -> bool {
        !matches!(name(t), "UNKNOWN" | "VENDOR")
    }

    /// The types MCUboot's TLV allow list (`allowed_unprot_tlvs`, on by default in Zephyr)
    /// accepts in the unprotected block; anything else there makes it reject the image.
    pub fn allowed_unprotected(t: u16) -> bool {
        matches!(
            t,
            KEYHASH
                | PUBKEY
                | SHA256
                | SHA384
                | SHA512
                | RSA2048_PSS
                | ECDSA224
                | ECDSA_SIG
                | RSA3072_PSS
                | ED25519
                | SIG_PURE
                | ENC_RSA2048
                | ENC_KW
                | ENC_EC256
                | ENC_X25519
                | ENC_X25519_SHA512
        )
    }

    /// Whether `t` carries a signature.
    pub fn is_signature(t: u16) -> bool {
        matches!(
            t,
            RSA2048_PSS | ECDSA224 | ECDSA_SIG | RSA3072_PSS | ED25519
        )
    }
}

/// Image hash algorithm: which hash TLV an image carries. imgtool picks it from the key
/// (SHA-384 for ECDSA P-384, SHA-256 for the others) unless `--sha` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// The hash TLV type.
    pub fn tlv(self) -> u16 {
        match self {
            HashAlg::Sha256 => tlv::SHA256,
            HashAlg::Sha384 => tlv::SHA384,
            HashAlg::Sha512 => tlv::SHA512,
        }
    }

    pub fn from_tlv(kind: u16) -> Option<HashAlg> {
        match kind {
            tlv::SHA256 => Some(HashAlg::Sha256),
            tlv::SHA384 => Some(HashAlg::Sha384),
            tlv::SHA512 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Digest length in bytes (also the KEYHASH length, which uses the same algorithm).
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// imgtool's TLV name ("SHA256", …), also the boot record's measurement description.
    pub fn name(self) -> &'static str {
        tlv::name(self.tlv())
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlg {
    type Err = String;

    /// imgtool's `--sha` spellings "256", "384", "512"; "sha256" etc. are accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.strip_prefix("sha").unwrap_or(&t).trim_start_matches('-') {
            "256" => Ok(HashAlg::Sha256),
            "384" => Ok(HashAlg::Sha384),
            "512" => Ok(HashAlg::Sha512),
            _ => Err(format!("unknown hash {s:?} (expected 256, 384 or 512)")),
        }
    }
}

/// The BOOT_RECORD TLV (`imgtool sign --boot-record SW_TYPE`): a CBOR map of PSA
/// attestation software-component claims. imgtool writes the measurement as zeros; the
/// bootloader fills in the real hash when it hands the record to the runtime.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootRecord {
    /// Claim 1, `--boot-record` (at most 12 characters).
    pub sw_type: String,
    /// Claim 4: "major.minor.revision" (no build number).
    pub version: String,
    /// Claim 5: the KEYHASH of the signing key (zeros for an unsigned image).
    pub signer_id: Vec<u8>,
    /// Claim 6: hash algorithm name, e.g. "SHA256".
    pub measurement_type: String,
    /// Claim 2: image hash placeholder (zeros in the file).
    pub measurement: Vec<u8>,
}

/// CBOR property keys (PSA attestation software component).
mod claim {
    pub const TYPE: u64 = 1;
    pub const MEASUREMENT_VALUE: u64 = 2;
    pub const VERSION: u64 = 4;
    pub const SIGNER_ID: u64 = 5;
    pub const MEASUREMENT_DESCRIPTION: u64 = 6;
}

/// Longest `sw_type` imgtool accepts.
pub const BOOT_RECORD_MAX_SW_TYPE: usize = 12;

/// One decoded CBOR item of the kinds a boot record uses.
enum CborItem<'a> {
    Uint(u64),
    Bytes(&'a [u8]),
    Text(&'a str),
    Map(u64),
}

/// Read one CBOR head (+ string body) at `*p`; `None` for anything malformed or unsupported.
fn cbor_item<'a>(b: &'a [u8], p: &mut usize) -> Option<CborItem<'a>> {
    let first = *b.get(*p)?;
    *p += 1;
    let (major, info) = (first >> 5, first & 0x1f);
    let n = match info {
        0..=23 => u64::from(info),
        24..=27 => {
            let w = 1usize << (info - 24);
            let bytes = b.get(*p..*p + w)?;
            *p += w;
            bytes.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
        }
        _ => return None,
    };
    match major {
        0 => Some(CborItem::Uint(n)),
        2 | 3 => {
            let len = usize::try_from(n).ok()?;
            let body = b.get(*p..p.checked_add(len)?)?;
            *p += len;
            if major == 2 {
                Some(CborItem::Bytes(body))
            } else {
                std::str::from_utf8(body).ok().map(CborItem::Text)
            }
        }
        5 => Some(CborItem::Map(n)),
        _ => None,
    }
}

impl BootRecord {
    /// The record imgtool writes for an image with this version, hash algorithm and key hash.
    pub fn new(sw_type: &str, version: &Version, hash: HashAlg, signer_id: Vec<u8>) -> Self {
        BootRecord {
            sw_type: sw_type.to_string(),
            version: format!("{}.{}.{}", version.major, version.minor, version.revision),
            signer_id,
            measurement_type: hash.name().to_string(),
            measurement: vec![0; hash.digest_len()],
        }
    }

    /// CBOR encoding in imgtool's key order (type, version, signer id, description, and the
    /// measurement last, because the bootloader patches it in place).
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.write_cbor(&mut Encoder::from(&mut out));
        out
    }

    /// The heads are ciborium-ll's shortest-form encoding, the same one the SMP codec uses.
    fn write_cbor<W: ciborium_io::Write>(&self, enc: &mut Encoder<W>) -> Result<(), W::Error> {
        enc.push(CborHead::Map(Some(5)))?;
        enc.push(CborHead::Positive(claim::TYPE))?;
        enc.text(&self.sw_type, None)?;
        enc.push(CborHead::Positive(claim::VERSION))?;
        enc.text(&self.version, None)?;
        enc.push(CborHead::Positive(claim::SIGNER_ID))?;
        enc.bytes(&self.signer_id, None)?;
        enc.push(CborHead::Positive(claim::MEASUREMENT_DESCRIPTION))?;
        enc.text(&self.measurement_type, None)?;
        enc.push(CborHead::Positive(claim::MEASUREMENT_VALUE))?;
        enc.bytes(&self.measurement, None)
    }

    /// Decode a BOOT_RECORD TLV; `None` if it is not a CBOR map with all five claims.
    pub fn from_cbor(b: &[u8]) -> Option<BootRecord> {
        let mut p = 0;
        let CborItem::Map(n) = cbor_item(b, &mut p)? else {
            return None;
        };
        let (mut sw_type, mut version, mut signer_id, mut mtype, mut mval) =
            (None, None, None, None, None);
        for _ in 0..n {
            let CborItem::Uint(k) = cbor_item(b, &mut p)? else {
                return None;
            };
            match (k, cbor_item(b, &mut p)?) {
                (claim::TYPE, CborItem::Text(t)) => sw_type = Some(t.to_string()),
                (claim::VERSION, CborItem::Text(t)) => version = Some(t.to_string()),
                (claim::SIGNER_ID, CborItem::Bytes(v)) => signer_id = Some(v.to_vec()),
                (claim::MEASUREMENT_DESCRIPTION, CborItem::Text(t)) => mtype = Some(t.to_string()),
                (claim::MEASUREMENT_VALUE, CborItem::Bytes(v)) => mval = Some(v.to_vec()),
                (_, CborItem::Map(_)) => return None,
                _ => {}
            }
        }
        (p == b.len()).then_some(())?;
        Some(BootRecord {
            sw_type: sw_type?,
            version: version?,
            signer_id: signer_id?,
            measurement_type: mtype?,
            measurement: mval?,
        })
    }
}

/// `ih_flags` bits that the harness acts on.
pub mod flags {
    pub const PIC: u32 = 0x01;
    pub const ENCRYPTED_AES128: u32 = 0x04;
    pub const ENCRYPTED_AES256: u32 = 0x08;
    pub const NON_BOOTABLE: u32 = 0x10;
    pub const RAM_LOAD: u32 = 0x20;
    pub const ROM_FIXED: u32 = 0x100;
    pub const COMPRESSED_LZMA1: u32 = 0x200;
    pub const COMPRESSED_LZMA2: u32 = 0x400;
    pub const COMPRESSED_ARM_THUMB: u32 = 0x800;
}

/// MCUboot `image_version`: 8 bytes on flash (u8, u8, LE u16, LE u32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
    pub build: u32,
}

impl Version {
    /// Size of the on-flash encoding.
    pub const SIZE: usize = 8;

    pub const fn new(major: u8, minor: u8, revision: u16, build: u32) -> Self {
        Version {
            major,
            minor,
            revision,
            build,
        }
    }

    /// Compare like MCUboot does by default: the build number does not take part
    /// (`MCUBOOT_VERSION_CMP_USE_BUILD_NUMBER` is off), so 1.2.3+4 and 1.2.3+9 are "equal".
    pub fn cmp_without_build(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.revision).cmp(&(other.major, other.minor, other.revision))
    }

    /// The form Zephyr's img_mgmt reports over SMP: "M.m.r", plus ".build" only when non-zero.
    pub fn smp_string(&self) -> String {
        if self.build == 0 {
            format!("{}.{}.{}", self.major, self.minor, self.revision)
        } else {
            format!(
                "{}.{}.{}.{}",
                self.major, self.minor, self.revision, self.build
            )
        }
    }

    /// imgtool's `--security-counter auto` value: `major<<24 | minor<<16 | revision`.
    pub fn auto_security_counter(&self) -> u32 {
        (u32::from(self.major) << 24) | (u32::from(self.minor) << 16) | u32::from(self.revision)
    }

    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.major;
        b[1] = self.minor;
        b[2..4].copy_from_slice(&self.revision.to_le_bytes());
        b[4..8].copy_from_slice(&self.build.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; 8]) -> Self {
        Version {
            major: b[0],
            minor: b[1],
            revision: u16::from_le_bytes([b[2], b[3]]),
            build: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.revision)?;
        if self.build != 0 {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {input:?}: {reason} (expected M[.m[.r]][+build])")]
pub struct ParseVersionError {
    pub input: String,
    pub reason: String,
}

impl FromStr for Version {
    type Err = ParseVersionError;

    /// Accepts the forms imgtool's `--version` accepts: "1", "1.2", "1.2.3", "1.2.3+4".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseVersionError {
            input: s.to_string(),
            reason,
        };
        let t = s.trim();
        let (dotted, build) = match t.split_once('+') {
            Some((d, b)) => (d, Some(b)),
            None => (t, None),
        };
        let parts: Vec<&str> = dotted.split('.').collect();
        if parts.len() > 3 {
            return Err(err(format!(
                "{} dot-separated fields, at most 3 allowed",
                parts.len()
            )));
        }
        fn num<T: FromStr>(p: &str, what: &str, max: u64) -> Result<T, String> {
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(format!("{what} {p:?} is not a decimal number"));
            }
            p.parse::<T>()
                .map_err(|_| format!("{what} {p} exceeds {max}"))
        }
        let major = num::<u8>(parts[0], "major", u8::MAX.into()).map_err(err)?;
        let minor = match parts.get(1) {
            Some(p) => num::<u8>(p, "minor", u8::MAX.into()).map_err(err)?,
            None => 0,
        };
        let revision = match parts.get(2) {
            Some(p) => num::<u16>(p, "revision", u16::MAX.into()).map_err(err)?,
            None => 0,
        };
        let build = match build {
            Some(b) => num::<u32>(b, "build", u32::MAX.into()).map_err(err)?,
            None => 0,
        };
        Ok(Version {
            major,
            minor,
            revision,
            build,
        })
    }
}

/// A DEPENDENCY TLV: image `image_id` must be at least `min_version` (12 bytes on flash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dependency {
    pub image_id: u8,
    pub min_version: Version,
}

impl Dependency {
    pub const SIZE: usize = 12;

    pub fn to_bytes(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0] = self.image_id;
        b[4..].copy_from_slice(&self.min_version.to_bytes());
        b
    }

    /// `None` unless exactly 12 bytes, because MCUboot refuses other lengths too.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != Self::SIZE {
            return None;
        }
        let v: [u8; 8] = b[4..12].try_into().ok()?;
        Some(Dependency {
            image_id: b[0],
            min_version: Version::from_bytes(&v),
        })
    }
}

/// Problems that stop an image from being parsed. Every variant names the byte offset (from
/// the start of the image/slot) where the problem was seen, so a report can point at flash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("bad image magic at offset 0x0: found {found:#010x}, expected {IMAGE_MAGIC:#010x}{}",
        if *found == 0xffff_ffff { " (slot looks erased)" } else { "" })]
    BadMagic { found: u32 },
    #[error("image truncated: {needed} bytes needed at offset {offset:#x}")]
    Truncated { offset: usize, needed: usize },
    #[error("header at offset 0x8: hdr_size {hdr_size:#x} is smaller than the {IMAGE_HEADER_SIZE}-byte header")]
    HeaderSizeTooSmall { hdr_size: u16 },
    #[error(
        "bad TLV info magic at offset {offset:#x}: found {found:#06x}, expected {expected:#06x}"
    )]
    BadTlvMagic {
        offset: usize,
        found: u16,
        expected: u16,
    },
    #[error("protected TLV block at offset {offset:#x} is {info_len:#x} bytes long but the header's protect_tlv_size says {header_len:#x}")]
    ProtectedSizeMismatch {
        offset: usize,
        header_len: u16,
        info_len: u16,
    },
    #[error("TLV info header at offset {offset:#x} gives total length {len:#x}, less than its own 4 bytes")]
    TlvAreaTooSmall { offset: usize, len: u16 },
    #[error("TLV {} ({kind:#x}) at offset {offset:#x} with length {len:#x} runs past the end of its block at offset {block_end:#x}", tlv::name(*kind))]
    TlvOverrun {
        offset: usize,
        kind: u16,
        len: u16,
        block_end: usize,
    },
}

/// The 32-byte MCUboot image header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHeader {
    pub magic: u32,
    pub load_addr: u32,
    pub hdr_size: u16,
    pub protect_tlv_size: u16,
    pub img_size: u32,
    pub flags: u32,
    pub version: Version,
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn need(bytes: &[u8], offset: usize, needed: usize) -> Result<(), ImageError> {
    match offset.checked_add(needed) {
        Some(end) if end <= bytes.len() => Ok(()),
        _ => Err(ImageError::Truncated { offset, needed }),
    }
}

impl ImageHeader {
    /// Parse the header at the start of `bytes`. Only the magic is checked here; field
    /// consistency is [`Image::parse`]'s job because it needs the rest of the image.
    pub fn parse(bytes: &[u8]) -> Result<ImageHeader, ImageError> {
        need(bytes, 0, IMAGE_HEADER_SIZE)?;
        let magic = le32(bytes, 0);
        if magic != IMAGE_MAGIC {
            return Err(ImageError::BadMagic { found: magic });
        }
        let v: [u8; 8] = bytes[20..28].try_into().expect("8-byte slice");
        Ok(ImageHeader {
            magic,
            load_addr: le32(bytes, 4),
            hdr_size: le16(bytes, 8),
            protect_tlv_size: le16(bytes, 10),
            img_size: le32(bytes, 12),
            flags: le32(bytes, 16),
            version: Version::from_bytes(&v),
        })
    }

    /// Encode; the trailing `_pad1` word is always zero, as imgtool writes it.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..4].copy_from_slice(&self.magic.to_le_bytes());
        b[4..8].copy_from_slice(&self.load_addr.to_le_bytes());
        b[8..10].copy_from_slice(&self.hdr_size.to_le_bytes());
        b[10..12].copy_from_slice(&self.protect_tlv_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.img_size.to_le_bytes());
        b[16..20].copy_from_slice(&self.flags.to_le_bytes());
        b[20..28].copy_from_slice(&self.version.to_bytes());
        b
    }

    /// Offset of the first TLV info header (`BOOT_TLV_OFF`).
    pub fn tlv_off(&self) -> usize {
        usize::from(self.hdr_size) + self.img_size as usize
    }

    /// End of the hashed region: header, payload and protected TLVs.
    pub fn hashed_len(&self) -> usize {
        self.tlv_off() + usize::from(self.protect_tlv_size)
    }
}

/// One TLV entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub kind: u16,
    /// Offset of the TLV's own 4-byte header, from the image start.
    pub offset: usize,
    /// Whether it sits in the protected (hashed) block.
    pub protected: bool,
    pub data: Vec<u8>,
}

/// Result of comparing the hash TLV with the hash of the image bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashCheck {
    Match,
    Mismatch { expected: Vec<u8>, actual: Vec<u8> },
    Missing,
}

/// Result of the signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigCheck {
    /// No key was given.
    NotChecked,
    Valid,
    /// The key is the one the image names, but the signature does not verify.
    Invalid,
    /// The image was signed, but no KEYHASH/PUBKEY TLV names the given key — MCUboot would
    /// not find a key to check the signature with.
    KeyMismatch,
    /// The image names the key but carries no signature of that key's type (or is unsigned).
    Missing,
}

/// Outcome of [`Image::verify`]; both parts are always filled so a report can show all issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub hash: HashCheck,
    pub signature: SigCheck,
}

impl Verification {
    /// What MCUboot would accept: hash matches and, when a key was given, the signature verifies.
    pub fn is_valid(&self) -> bool {
        self.hash == HashCheck::Match
            && matches!(self.signature, SigCheck::Valid | SigCheck::NotChecked)
    }
}

/// A parsed image: header plus both TLV blocks.
#[derive(Debug, Clone)]
pub struct Image {
    pub header: ImageHeader,
    /// Protected TLVs first, then unprotected, in file order.
    pub tlvs: Vec<Tlv>,
    /// `hdr_size + img_size`: where the TLV area starts.
    pub tlv_off: usize,
    /// End of the unprotected TLV block = the size of the signed image without padding/trailer.
    pub total_size: usize,
}

/// Parse the TLVs of one block whose info header is at `off`; returns the block's end.
fn parse_block(
    bytes: &[u8],
    off: usize,
    magic: u16,
    protected: bool,
    out: &mut Vec<Tlv>,
) -> Result<usize, ImageError> {
    need(bytes, off, TLV_HEADER_SIZE)?;
    let found = le16(bytes, off);
    if found != magic {
        return Err(ImageError::BadTlvMagic {
            offset: off,
            found,
            expected: magic,
        });
    }
    let len = le16(bytes, off + 2);
    if usize::from(len) < TLV_HEADER_SIZE {
        return Err(ImageError::TlvAreaTooSmall { offset: off, len });
    }
    let end = off + usize::from(len);
    need(bytes, off, usize::from(len))?;
    let mut p = off + TLV_HEADER_SIZE;
    while p < end {
        if p + TLV_HEADER_SIZE > end {
            // A partial TLV header at the end of the block: MCUboot's iterator would read past
            // the block, so call it an overrun of a zero-length TLV.
            return Err(ImageError::TlvOverrun {
                offset: p,
                kind: 0,
                len: 0,
                block_end: end,
            });
        }
        let kind = le16(bytes, p);
        let tlen = le16(bytes, p + 2);
        let data_end = p + TLV_HEADER_SIZE + usize::from(tlen);
        if data_end > end {
            return Err(ImageError::TlvOverrun {
                offset: p,
                kind,
                len: tlen,
                block_end: end,
            });
        }
        out.push(Tlv {
            kind,
            offset: p,
            protected,
            data: bytes[p + TLV_HEADER_SIZE..data_end].to_vec(),
        });
        p = data_end;
    }
    Ok(end)
}

impl Image {
    /// Parse from a file or a whole slot read back from flash (trailing padding/trailer ignored).
    /// Errors name the byte offset.
    pub fn parse(bytes: &[u8]) -> Result<Image, ImageError> {
        let header = ImageHeader::parse(bytes)?;
        if usize::from(header.hdr_size) < IMAGE_HEADER_SIZE {
            return Err(ImageError::HeaderSizeTooSmall {
                hdr_size: header.hdr_size,
            });
        }
        let tlv_off = header.tlv_off();
        let mut tlvs = Vec::new();
        let mut unprot_off = tlv_off;
        if header.protect_tlv_size != 0 {
            need(bytes, tlv_off, TLV_HEADER_SIZE)?;
            let found = le16(bytes, tlv_off);
            if found != TLV_PROT_INFO_MAGIC {
                return Err(ImageError::BadTlvMagic {
                    offset: tlv_off,
                    found,
                    expected: TLV_PROT_INFO_MAGIC,
                });
            }
            let info_len = le16(bytes, tlv_off + 2);
            if info_len != header.protect_tlv_size {
                return Err(ImageError::ProtectedSizeMismatch {
                    offset: tlv_off,
                    header_len: header.protect_tlv_size,
                    info_len,
                });
            }
            unprot_off = parse_block(bytes, tlv_off, TLV_PROT_INFO_MAGIC, true, &mut tlvs)?;
        }
        let total_size = parse_block(bytes, unprot_off, TLV_INFO_MAGIC, false, &mut tlvs)?;
        Ok(Image {
            header,
            tlvs,
            tlv_off,
            total_size,
        })
    }

    /// Iterate over the TLVs of one type.
    pub fn tlvs_of(&self, kind: u16) -> impl Iterator<Item = &Tlv> + '_ {
        self.tlvs.iter().filter(move |t| t.kind == kind)
    }

    /// The first unprotected hash TLV (MCUboot only looks for it in the unprotected block).
    fn hash_tlv_entry(&self) -> Option<&Tlv> {
        self.tlvs
            .iter()
            .find(|t| !t.protected && tlv::is_hash(t.kind))
    }

    /// The SHA256 (or SHA384/512) TLV value: what mcumgr reports as the image hash.
    pub fn hash_tlv(&self) -> Option<&[u8]> {
        self.hash_tlv_entry().map(|t| t.data.as_slice())
    }

    /// Digest over `[0, hdr_size + img_size + protect_tlv_size)` with the algorithm the hash TLV
    /// names (SHA-256 when there is none). A `bytes` shorter than that region is hashed as far as
    /// it goes, so the result simply mismatches instead of panicking.
    pub fn computed_hash(&self, bytes: &[u8]) -> Vec<u8> {
        let end = self.header.hashed_len().min(bytes.len());
        self.hash_alg().digest(&bytes[..end])
    }

    /// The algorithm the hash TLV names; SHA-256 when there is none.
    pub fn hash_alg(&self) -> HashAlg {
        self.hash_tlv_entry()
            .and_then(|t| HashAlg::from_tlv(t.kind))
            .unwrap_or(HashAlg::Sha256)
    }

    /// Whether a SIG_PURE TLV says the signature covers the image itself, not its digest.
    pub fn is_pure(&self) -> bool {
        self.tlvs
            .iter()
            .any(|t| !t.protected && t.kind == tlv::SIG_PURE)
    }

    /// The decoded BOOT_RECORD (protected block only), if present and well-formed.
    pub fn boot_record(&self) -> Option<BootRecord> {
        self.tlvs
            .iter()
            .find(|t| t.protected && t.kind == tlv::BOOT_RECORD)
            .and_then(|t| BootRecord::from_cbor(&t.data))
    }

    /// TLVs whose type neither MCUboot nor imgtool defines (vendor-range types included).
    /// They never stop parsing; [`crate::inspect`] reports them.
    pub fn unknown_tlvs(&self) -> impl Iterator<Item = &Tlv> + '_ {
        self.tlvs.iter().filter(|t| !tlv::is_known(t.kind))
    }

    pub fn is_bootable(&self) -> bool {
        self.header.flags & flags::NON_BOOTABLE == 0
    }

    /// SEC_CNT value. Only the protected block counts: MCUboot ignores an unprotected SEC_CNT
    /// because anyone could change it without breaking the signature.
    pub fn security_counter(&self) -> Option<u32> {
        self.tlvs
            .iter()
            .find(|t| t.protected && t.kind == tlv::SEC_CNT && t.data.len() == 4)
            .map(|t| le32(&t.data, 0))
    }

    /// DEPENDENCY TLVs from the protected block (same reason as [`Image::security_counter`]).
    pub fn dependencies(&self) -> Vec<Dependency> {
        self.tlvs
            .iter()
            .filter(|t| t.protected && t.kind == tlv::DEPENDENCY)
            .filter_map(|t| Dependency::from_bytes(&t.data))
            .collect()
    }

    /// Full MCUboot-style validation: hash TLV present and matching; if `key` is given a
    /// signature TLV made by that key must verify (KEYHASH must match the key, or PUBKEY equal).
    /// Returns a report instead of bailing at the first issue.
    pub fn verify(&self, bytes: &[u8], key: Option<&PublicKey>) -> Verification {
        let actual = self.computed_hash(bytes);
        let hash = match self.hash_tlv() {
            None => HashCheck::Missing,
            Some(expected) if expected == actual.as_slice() => HashCheck::Match,
            Some(expected) => HashCheck::Mismatch {
                expected: expected.to_vec(),
                actual: actual.clone(),
            },
        };
        let signature = match key {
            None => SigCheck::NotChecked,
            Some(key) => {
                // SIG_PURE (Ed25519 only): the signature is over the hashed region itself.
                let end = self.header.hashed_len().min(bytes.len());
                let message = if self.is_pure() {
                    &bytes[..end]
                } else {
                    actual.as_slice()
                };
                self.check_signature(message, key)
            }
        };
        Verification { hash, signature }
    }

    /// Signature part of [`Image::verify`]. The signature is checked against the digest we
    /// computed (like MCUboot), not the one stored in the TLV, so a tampered payload fails here
    /// as well. KEYHASH uses the image's hash algorithm (SHA-384 for a P-384 image).
    fn check_signature(&self, digest: &[u8], key: &PublicKey) -> SigCheck {
        let unprot = || self.tlvs.iter().filter(|t| !t.protected);
        let signed = unprot().any(|t| tlv::is_signature(t.kind));
        let key_bytes = key.key_bytes();
        let key_hash = key.key_hash_with(self.hash_alg());
        let named = unprot().any(|t| {
            (t.kind == tlv::KEYHASH && t.data.as_slice() == key_hash.as_slice())
                || (t.kind == tlv::PUBKEY && t.data == key_bytes)
        });
        if !named {
            return if signed {
                SigCheck::KeyMismatch
            } else {
                SigCheck::Missing
            };
        }
        let mut sigs = unprot()
            .filter(|t| key.signature_tlv_kinds().contains(&t.kind))
            .peekable();
        if sigs.peek().is_none() {
            return SigCheck::Missing;
        }
        if sigs.any(|t| key.verify_digest(digest, &t.data)) {
            SigCheck::Valid
        } else {
            SigCheck::Invalid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ImageHeader {
        ImageHeader {
            magic: IMAGE_MAGIC,
            load_addr: 0x2000_0000,
            hdr_size: 0x200,
            protect_tlv_size: 0x10,
            img_size: 0x2800,
            flags: flags::RAM_LOAD,
            version: Version::new(1, 2, 3, 4),
        }
    }

    #[test]
    fn header_round_trip() {
        let h = header();
        let b = h.to_bytes();
        assert_eq!(&b[0..4], &[0x3d, 0xb8, 0xf3, 0x96]);
        assert_eq!(&b[20..28], &[1, 2, 3, 0, 4, 0, 0, 0]);
        assert_eq!(&b[28..32], &[0; 4]);
        assert_eq!(ImageHeader::parse(&b).unwrap(), h);
    }

    #[test]
    fn header_errors() {
        let mut b = header().to_bytes();
        assert_eq!(
            ImageHeader::parse(&b[..31]),
            Err(ImageError::Truncated {
                offset: 0,
                needed: 32
            })
        );
        b[0] = 0;
        assert!(matches!(
            ImageHeader::parse(&b),
            Err(ImageError::BadMagic { found: 0x96f3_b800 })
        ));
        let erased = [0xffu8; 32];
        let e = ImageHeader::parse(&erased).unwrap_err();
        assert!(e.to_string().contains("erased"), "{e}");
    }

    #[test]
    fn version_parse_and_format() {
        assert_eq!("1".parse::<Version>().unwrap(), Version::new(1, 0, 0, 0));
        assert_eq!("1.2".parse::<Version>().unwrap(), Version::new(1, 2, 0, 0));
        assert_eq!(
            "1.2.3".parse::<Version>().unwrap(),
            Version::new(1, 2, 3, 0)
        );
        assert_eq!(
            "1.2.3+4".parse::<Version>().unwrap(),
            Version::new(1, 2, 3, 4)
        );
        assert_eq!(
            "255.255.65535+4294967295".parse::<Version>().unwrap(),
            Version::new(255, 255, 65535, u32::MAX)
        );
        for bad in [
            "",
            "1.2.3.4",
            "256",
            "1.x",
            "1.2.3+",
            "+4",
            "1..2",
            "-1",
            "1.2.65536",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Version::new(1, 2, 3, 0).to_string(), "1.2.3");
        assert_eq!(Version::new(1, 2, 3, 4).to_string(), "1.2.3+4");
        assert_eq!(Version::new(1, 2, 3, 0).smp_string(), "1.2.3");
        assert_eq!(Version::new(1, 2, 3, 4).smp_string(), "1.2.3.4");
        let v = Version::new(1, 2, 3, 4);
        assert_eq!(Version::from_bytes(&v.to_bytes()), v);
        assert_eq!(v.auto_security_counter(), 0x0102_0003);
    }

    #[test]
    fn version_compare() {
        let a = Version::new(1, 2, 3, 4);
        let b = Version::new(1, 2, 3, 9);
        assert_eq!(a.cmp_without_build(&b), Ordering::Equal);
        assert_eq!(
            a.cmp_without_build(&Version::new(1, 3, 0, 0)),
            Ordering::Less
        );
        assert_eq!(
            Version::new(2, 0, 0, 0).cmp_without_build(&Version::new(1, 255, 65535, 0)),
            Ordering::Greater
        );
        assert_eq!(
            Version::new(1, 2, 4, 0).cmp_without_build(&a),
            Ordering::Greater
        );
    }

    /// A minimal image with a protected block (SEC_CNT + DEPENDENCY) and a SHA-256 TLV.
    fn build() -> Vec<u8> {
        let mut h = header();
        h.img_size = 8;
        h.hdr_size = 0x20;
        h.protect_tlv_size = 4 + 8 + 16;
        let mut b = h.to_bytes().to_vec();
        b.extend_from_slice(&[0xaa; 8]);
        b.extend_from_slice(&TLV_PROT_INFO_MAGIC.to_le_bytes());
        b.extend_from_slice(&h.protect_tlv_size.to_le_bytes());
        b.extend_from_slice(&[tlv::SEC_CNT as u8, 0, 4, 0, 7, 0, 0, 0]);
        b.extend_from_slice(&[tlv::DEPENDENCY as u8, 0, 12, 0]);
        b.extend_from_slice(
            &Dependency {
                image_id: 1,
                min_version: Version::new(1, 0, 0, 0),
            }
            .to_bytes(),
        );
        let hash = Sha256::digest(&b);
        b.extend_from_slice(&TLV_INFO_MAGIC.to_le_bytes());
        b.extend_from_slice(&(4u16 + 36).to_le_bytes());
        b.extend_from_slice(&[tlv::SHA256 as u8, 0, 32, 0]);
        b.extend_from_slice(&hash);
        b
    }

    #[test]
    fn parse_protected_block() {
        let mut b = build();
        let len = b.len();
        b.extend_from_slice(&[0xff; 100]);
        let img = Image::parse(&b).unwrap();
        assert_eq!(img.tlv_off, 0x28);
        assert_eq!(img.total_size, len);
        assert_eq!(img.security_counter(), Some(7));
        assert_eq!(
            img.dependencies(),
            vec![Dependency {
                image_id: 1,
                min_version: Version::new(1, 0, 0, 0)
            }]
        );
        assert_eq!(img.tlvs[0].offset, 0x2c);
        assert!(img.tlvs[0].protected && !img.tlvs[2].protected);
        assert!(img.verify(&b, None).is_valid());
        assert!(img.is_bootable());
    }

    #[test]
    fn truncation_errors_name_offsets() {
        let b = build();
        // Cut inside the protected info header.
        assert_eq!(
            Image::parse(&b[..0x29]).unwrap_err(),
            ImageError::Truncated {
                offset: 0x28,
                needed: 4
            }
        );
        // Cut inside the protected block.
        assert_eq!(
            Image::parse(&b[..0x30]).unwrap_err(),
            ImageError::Truncated {
                offset: 0x28,
                needed: 28
            }
        );
        // Cut inside the unprotected block.
        let e = Image::parse(&b[..b.len() - 1]).unwrap_err();
        assert_eq!(
            e,
            ImageError::Truncated {
                offset: 0x44,
                needed: 40
            }
        );
        assert!(e.to_string().contains("0x44"), "{e}");
    }

    #[test]
    fn structural_errors() {
        let mut b = build();
        b[0x28] = 0x07; // protected magic -> 0x6907
        assert_eq!(
            Image::parse(&b).unwrap_err(),
            ImageError::BadTlvMagic {
                offset: 0x28,
                found: 0x6907,
                expected: TLV_PROT_INFO_MAGIC
            }
        );
        let mut b = build();
        b[0x2a] += 1;
        assert!(matches!(
            Image::parse(&b).unwrap_err(),
            ImageError::ProtectedSizeMismatch { offset: 0x28, .. }
        ));
        let mut b = build();
        b[0x2c + 2] = 0x40; // SEC_CNT length runs past the protected block
        assert_eq!(
            Image::parse(&b).unwrap_err(),
            ImageError::TlvOverrun {
                offset: 0x2c,
                kind: tlv::SEC_CNT,
                len: 0x40,
                block_end: 0x44
            }
        );
        let mut b = build();
        b[8] = 0x10;
        assert_eq!(
            Image::parse(&b).unwrap_err(),
            ImageError::HeaderSizeTooSmall { hdr_size: 0x10 }
        );
    }

    #[test]
    fn hash_alg_names_and_parsing() {
        for (a, t, n) in [
            (HashAlg::Sha256, tlv::SHA256, 32),
            (HashAlg::Sha384, tlv::SHA384, 48),
            (HashAlg::Sha512, tlv::SHA512, 64),
        ] {
            assert_eq!(HashAlg::from_tlv(t), Some(a));
            assert_eq!(a.digest(b"x").len(), n);
            assert_eq!(a.name()[3..].parse::<HashAlg>().unwrap(), a);
        }
        assert_eq!("sha384".parse::<HashAlg>().unwrap(), HashAlg::Sha384);
        assert!("sha1".parse::<HashAlg>().is_err());
        assert!(!tlv::is_known(0x99) && !tlv::is_known(0xa5) && tlv::is_known(tlv::BOOT_RECORD));
    }

    /// The BOOT_RECORD imgtool 2.5.0 wrote for `--boot-record CoFM -v 1.2.3+4` with a P-384 key
    /// (signer id = that key's SHA-384 KEYHASH).
    #[test]
    fn boot_record_matches_imgtool_bytes() {
        let signer =
            hex::decode("b90222a5737de3e31f027ece0226352307c3e7db08aa57edb420e710f41a3e8e31db87e43999cc660094ccb12aae9fed")
                .unwrap();
        let mut want = hex::decode("a50164436f464d0465312e322e33055830").unwrap();
        want.extend_from_slice(&signer);
        want.extend_from_slice(&hex::decode("0666534841333834025830").unwrap());
        want.extend_from_slice(&[0; 48]);
        assert_eq!(want.len(), 0x7c);
        let rec = BootRecord::new("CoFM", &Version::new(1, 2, 3, 4), HashAlg::Sha384, signer);
        assert_eq!(rec.to_cbor(), want);
        assert_eq!(BootRecord::from_cbor(&want), Some(rec));
        assert_eq!(BootRecord::from_cbor(&want[..want.len() - 1]), None);
        assert_eq!(BootRecord::from_cbor(&[0xa0, 0x00]), None, "trailing bytes");
        assert_eq!(BootRecord::from_cbor(b"garbage"), None);
    }

    /// The string heads at each width boundary (RFC 8949 §3), checked on the encoded record:
    /// the measurement is last, so its head sits right before its bytes at the end.
    #[test]
    fn boot_record_heads_at_the_length_boundaries() {
        for (n, head) in [
            (23usize, "57"),
            (24, "5818"),
            (255, "58ff"),
            (256, "590100"),
            (65535, "59ffff"),
            (65536, "5a00010000"),
        ] {
            let mut rec = BootRecord::new("x", &Version::new(1, 0, 0, 0), HashAlg::Sha256, vec![]);
            rec.measurement = vec![0xa5; n];
            let cbor = rec.to_cbor();
            let head = hex::decode(head).unwrap();
            let at = cbor.len() - n - head.len();
            assert_eq!(&cbor[at..cbor.len() - n], &head[..], "length {n}");
            // Key 2 (measurement value) just before it.
            assert_eq!(cbor[at - 1], 0x02, "length {n}");
            assert_eq!(BootRecord::from_cbor(&cbor), Some(rec), "length {n}");
        }
    }

    #[test]
    fn hash_mismatch_reported() {
        let mut b = build();
        b[0x21] ^= 1;
        let img = Image::parse(&b).unwrap();
        let v = img.verify(&b, None);
        assert!(matches!(v.hash, HashCheck::Mismatch { .. }));
        assert!(!v.is_valid());
    }
}
