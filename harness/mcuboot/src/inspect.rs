//! `image inspect`: everything the harness can tell about one signed image before it goes near a
//! board — header, TLVs, hash and signature verdict, the trailer of a padded image — plus a
//! diagnosis of the mistakes that otherwise only show up as a board that never boots: `hdr_size`
//! not matching where the vector table is linked (docs/protocol-facts.md, "Header size smaller than
//! the link offset"), an image that does not fit its slot together with the trailer (MCUboot
//! `bootutil_misc.c`, `bootutil_max_image_size`), and a key that is not the one the image names
//! (MCUboot `image_validate.c`: the KEYHASH TLV must match a built-in key).
//!
//! [`inspect`] never fails: a file that cannot even be parsed still yields a [`Report`] whose
//! diagnoses say why, so the CLI has one code path for good and bad files.

use std::fmt;

use serde::Serialize;

use crate::image::{
    flags, tlv, BootRecord, Dependency, HashCheck, Image, SigCheck, Tlv, IMAGE_HEADER_SIZE,
};
use crate::keys::PublicKey;
use crate::trailer::{magic_for, Trailer, TrailerLayout, UpgradeMode};

/// Cortex-M architectural SRAM region (0x2000_0000..0x4000_0000): a valid initial stack pointer
/// points here on every nRF/STM32 part the harness targets.
pub const SRAM_REGION: std::ops::Range<u32> = 0x2000_0000..0x4000_0000;

/// What [`inspect`] should check the image against. Everything is optional: without a slot size
/// there is no fit check, without a key no signature check.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    /// Public key the bootloader was built with.
    pub key: Option<PublicKey>,
    /// Vector-table facts from the application's ELF.
    pub elf: Option<ElfInfo>,
    /// Size of the slot the image is meant for (the secondary when slots differ).
    pub slot_size: Option<u32>,
    /// Absolute address of the primary slot (where the image runs); lets the vector check
    /// require the reset vector to point into the slot.
    pub slot_base: Option<u32>,
    /// Bootloader mode; `None` checks the fit for every mode and decodes trailers as swap-move.
    pub mode: Option<UpgradeMode>,
    /// `BOOT_MAX_ALIGN`; `None` = take it from the trailer magic variant, else 8.
    pub max_align: Option<u32>,
    /// Flash write size (`BOOT_WRITE_SZ`); default 4 (nRF NVMC).
    pub write_size: Option<u32>,
    /// `BOOT_MAX_IMG_SECTORS`; default 128.
    pub max_sectors: Option<u32>,
    /// Flash sector (erase unit) of the slots; default 4 KiB (nRF52/nRF53 internal flash).
    /// The swap modes reserve whole sectors for the trailer (and swap-move one more).
    pub sector_size: Option<u32>,
    /// Erased value of the flash; `None` = guess from the padding of a padded image, else 0xff.
    pub erased: Option<u8>,
}

/// How bad a finding is. `Error` means MCUboot would reject the image or the board would not
/// boot it; the CLI exits non-zero on any error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding. `code` is stable (kebab-case) so scripts and tests can match on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
}

/// Why an ELF could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{path}: not an ELF file the harness can read: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: no vector table found (no `_vector_table`/`_vector_start` symbol, no `rom_start` section, no loadable segment)")]
    NoVectorTable { path: String },
    #[error(
        "{path}: vector table at {addr:#010x} has no file data (section or segment is NOBITS)"
    )]
    NoData { path: String, addr: u64 },
}

/// What the ELF says about where the image expects to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    /// Address of the vector table.
    pub vt_addr: u32,
    /// Where `vt_addr` came from (symbol or section name, or `first loadable segment`).
    pub vt_source: String,
    /// Lowest flash address of loadable data: the start of the code partition for a Zephyr
    /// build with `ROM_START_OFFSET` (the zero fill is part of the image).
    pub link_base: u32,
    /// Initial SP and reset vector as linked (the first two vector-table words).
    pub sp: u32,
    pub reset: u32,
    pub entry: u32,
}

impl ElfInfo {
    /// Read the vector table from an ELF: symbol `_vector_table` (Zephyr Cortex-M), then
    /// `_vector_start`, then the `rom_start` section, then the first loadable segment. `path` is
    /// only used in messages.
    pub fn parse(data: &[u8], path: &str) -> Result<ElfInfo, ElfError> {
        use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};
        let file = object::File::parse(data).map_err(|e| ElfError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        // Loadable flash segments: below the SRAM region, with file data.
        let segs: Vec<(u64, &[u8])> = file
            .segments()
            .filter_map(|s| {
                let d = s.data().ok()?;
                (!d.is_empty() && s.address() < u64::from(SRAM_REGION.start))
                    .then_some((s.address(), d))
            })
            .collect();
        let link_base = segs.iter().map(|s| s.0).min();
        let sym = |name: &str| {
            file.symbols()
                .find(|s| s.name() == Ok(name))
                .map(|s| s.address())
        };
        let (vt_addr, vt_source) = if let Some(a) = sym("_vector_table") {
            (a, "symbol _vector_table".to_string())
        } else if let Some(a) = sym("_vector_start") {
            (a, "symbol _vector_start".to_string())
        } else if let Some(s) = file.section_by_name("rom_start") {
            (s.address(), "section rom_start".to_string())
        } else if let Some(b) = link_base {
            (b, "first loadable segment".to_string())
        } else {
            return Err(ElfError::NoVectorTable { path: path.into() });
        };
        // Read the two words from the segment that holds them (sections may be stripped).
        let words = segs.iter().find_map(|(addr, d)| {
            let off = vt_addr.checked_sub(*addr)? as usize;
            let w = d.get(off..off + 8)?;
            Some((
                u32::from_le_bytes(w[0..4].try_into().ok()?),
                u32::from_le_bytes(w[4..8].try_into().ok()?),
            ))
        });
        let Some((sp, reset)) = words else {
            return Err(ElfError::NoData {
                path: path.into(),
                addr: vt_addr,
            });
        };
        Ok(ElfInfo {
            vt_addr: vt_addr as u32,
            vt_source,
            link_base: link_base.unwrap_or(vt_addr) as u32,
            sp,
            reset,
            entry: file.entry() as u32,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderReport {
    pub magic: String,
    pub load_addr: u32,
    pub hdr_size: u16,
    pub protect_tlv_size: u16,
    pub img_size: u32,
    pub flags: u32,
    pub flag_names: Vec<&'static str>,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TlvReport {
    pub kind: u16,
    pub name: &'static str,
    pub offset: usize,
    pub len: usize,
    pub protected: bool,
    /// Hex, shortened to 32 bytes with `…` for long values (signatures, keys).
    pub value: String,
    /// The value in words for the types that have one (SEC_CNT, DEPENDENCY, BOOT_RECORD, …).
    pub decoded: Option<String>,
}

/// The two words at `hdr_size`, where MCUboot's ARM port loads MSP and the reset vector from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct VectorReport {
    pub offset: usize,
    pub sp: u32,
    pub reset: u32,
}

/// Largest image (header + payload + TLVs) a mode accepts in this slot.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub mode: UpgradeMode,
    pub max_image_size: u32,
    pub fits: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrailerReport {
    pub layout: TrailerLayout,
    pub decoded: Trailer,
}

/// Result of [`inspect`]; `Display` renders the human text, `Serialize` the `--json` form.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file_len: usize,
    pub header: Option<HeaderReport>,
    pub tlvs: Vec<TlvReport>,
    /// End of the TLV area: the signed image without padding.
    pub image_size: Option<usize>,
    /// `match`, `mismatch` or `missing`.
    pub hash: Option<&'static str>,
    pub hash_value: Option<String>,
    /// `valid`, `invalid`, `key-mismatch`, `missing` or `not-checked`.
    pub signature: Option<&'static str>,
    /// The BOOT_RECORD TLV, decoded.
    pub boot_record: Option<BootRecord>,
    pub vector_table: Option<VectorReport>,
    pub elf: Option<ElfInfo>,
    pub fit: Vec<FitReport>,
    pub trailer: Option<TrailerReport>,
    pub diagnoses: Vec<Diagnosis>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.diagnoses.iter().any(|d| d.severity == Severity::Error)
    }

    /// Whether a diagnosis with this code was made.
    pub fn has(&self, code: &str) -> bool {
        self.diagnoses.iter().any(|d| d.code == code)
    }

    fn diag(&mut self, severity: Severity, code: &'static str, message: String) {
        self.diagnoses.push(Diagnosis {
            severity,
            code,
            message,
        });
    }
}

fn short_hex(d: &[u8]) -> String {
    if d.len() <= 32 {
        hex::encode(d)
    } else {
        format!("{}… ({} bytes)", hex::encode(&d[..32]), d.len())
    }
}

fn flag_names(f: u32) -> Vec<&'static str> {
    [
        (flags::PIC, "PIC"),
        (flags::ENCRYPTED_AES128, "ENCRYPTED_AES128"),
        (flags::ENCRYPTED_AES256, "ENCRYPTED_AES256"),
        (flags::NON_BOOTABLE, "NON_BOOTABLE"),
        (flags::RAM_LOAD, "RAM_LOAD"),
        (flags::ROM_FIXED, "ROM_FIXED"),
        (flags::COMPRESSED_LZMA1, "COMPRESSED_LZMA1"),
        (flags::COMPRESSED_LZMA2, "COMPRESSED_LZMA2"),
        (flags::COMPRESSED_ARM_THUMB, "COMPRESSED_ARM_THUMB"),
    ]
    .into_iter()
    .filter(|(b, _)| f & b != 0)
    .map(|(_, n)| n)
    .collect()
}

fn word(bytes: &[u8], off: usize) -> Option<u32> {
    bytes
        .get(off..off + 4)
        .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
}

/// A plausible Cortex-M vector table start: SP in SRAM (word aligned) and a Thumb reset vector
/// in the code region.
fn plausible_vt(sp: u32, reset: u32) -> bool {
    SRAM_REGION.contains(&sp) && sp % 4 == 0 && reset & 1 == 1 && reset < SRAM_REGION.start
}

/// Largest image a mode accepts (`bootutil_max_image_size`): up to the status area in swap
/// modes, up to `swap_info` in overwrite-only and direct-xip (MCUboot `bootutil_misc.c`).
pub fn max_image_size(layout: &TrailerLayout) -> u32 {
    match layout.mode {
        UpgradeMode::OverwriteOnly | UpgradeMode::DirectXip => layout.swap_info_off(),
        _ => layout.status_off(),
    }
}

const MODES: [UpgradeMode; 4] = [
    UpgradeMode::SwapMove,
    UpgradeMode::SwapScratch,
    UpgradeMode::SwapOffset,
    UpgradeMode::OverwriteOnly,
];

/// Inspect one image file or slot dump.
pub fn inspect(bytes: &[u8], opts: &InspectOptions) -> Report {
    let mut r = Report {
        file_len: bytes.len(),
        header: None,
        tlvs: Vec::new(),
        image_size: None,
        hash: None,
        hash_value: None,
        signature: None,
        boot_record: None,
        vector_table: None,
        elf: opts.elf.clone(),
        fit: Vec::new(),
        trailer: None,
        diagnoses: Vec::new(),
    };
    let img = match Image::parse(bytes) {
        Ok(i) => i,
        Err(e) => {
            r.diag(Severity::Error, "parse-error", e.to_string());
            return r;
        }
    };
    let h = &img.header;
    r.header = Some(HeaderReport {
        magic: format!("{:#010x}", h.magic),
        load_addr: h.load_addr,
        hdr_size: h.hdr_size,
        protect_tlv_size: h.protect_tlv_size,
        img_size: h.img_size,
        flags: h.flags,
        flag_names: flag_names(h.flags),
        version: h.version.to_string(),
    });
    r.tlvs = img
        .tlvs
        .iter()
        .map(|t| TlvReport {
            kind: t.kind,
            name: tlv::name(t.kind),
            offset: t.offset,
            len: t.data.len(),
            protected: t.protected,
            value: short_hex(&t.data),
            decoded: decode_tlv(t),
        })
        .collect();
    r.image_size = Some(img.total_size);
    r.hash_value = img.hash_tlv().map(hex::encode);
    r.boot_record = img.boot_record();
    check_tlv_types(&mut r, &img);

    check_verification(&mut r, &img, bytes, opts);
    check_vectors(&mut r, &img, bytes, opts);
    check_fit_and_trailer(&mut r, &img, bytes, opts);
    if !img.is_bootable() {
        r.diag(
            Severity::Warning,
            "non-bootable",
            "header flag NON_BOOTABLE (0x10) is set: MCUboot will not boot this image".into(),
        );
    }
    r
}

/// A readable form of the TLV types whose value means something on its own.
fn decode_tlv(t: &Tlv) -> Option<String> {
    match t.kind {
        tlv::SEC_CNT if t.data.len() == 4 => Some(format!(
            "security counter {}",
            u32::from_le_bytes(t.data[..4].try_into().expect("4 bytes"))
        )),
        tlv::DEPENDENCY => Dependency::from_bytes(&t.data)
            .map(|d| format!("image {} >= {}", d.image_id, d.min_version)),
        tlv::BOOT_RECORD => Some(match BootRecord::from_cbor(&t.data) {
            Some(b) => format!(
                "sw_type {:?} version {} signer_id {} measurement {} ({} bytes{})",
                b.sw_type,
                b.version,
                short_hex(&b.signer_id),
                b.measurement_type,
                b.measurement.len(),
                if b.measurement.iter().all(|&x| x == 0) {
                    ", zero: filled in by the bootloader"
                } else {
                    ""
                }
            ),
            None => "not a CBOR boot record".into(),
        }),
        tlv::SIG_PURE => Some("signature is over the image, not its digest".into()),
        t2 if !tlv::is_known(t2) => Some(if tlv::name(t2) == "VENDOR" {
            "vendor/custom TLV (not interpreted)".into()
        } else {
            "unknown TLV type (not interpreted)".into()
        }),
        _ => None,
    }
}

/// Unknown TLVs never stop inspection; they are listed. In the unprotected block MCUboot's TLV
/// allow list (on by default) rejects any type it does not know, so that is a warning.
fn check_tlv_types(r: &mut Report, img: &Image) {
    let prot: Vec<&Tlv> = img.unknown_tlvs().filter(|t| t.protected).collect();
    let list = |v: &[&Tlv]| {
        v.iter()
            .map(|t| {
                format!(
                    "{:#06x} ({} bytes at {:#x})",
                    t.kind,
                    t.data.len(),
                    t.offset
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !prot.is_empty() {
        r.diag(
            Severity::Info,
            "unknown-tlv",
            format!(
                "protected TLVs of unknown type: {}; MCUboot skips them (they are covered by the hash)",
                list(&prot)
            ),
        );
    }
    let rejected: Vec<&Tlv> = img
        .tlvs
        .iter()
        .filter(|t| !t.protected && !tlv::allowed_unprotected(t.kind))
        .collect();
    if !rejected.is_empty() {
        r.diag(
            Severity::Warning,
            "unknown-tlv-unprotected",
            format!(
                "TLVs not allowed in the unprotected block: {}; MCUboot built with the TLV allow list (MCUBOOT_USE_TLV_ALLOW_LIST, default in Zephyr) rejects the image",
                list(&rejected)
            ),
        );
    }
}

fn check_verification(r: &mut Report, img: &Image, bytes: &[u8], opts: &InspectOptions) {
    let v = img.verify(bytes, opts.key.as_ref());
    r.hash = Some(match &v.hash {
        HashCheck::Match => "match",
        HashCheck::Mismatch { expected, actual } => {
            r.diag(
                Severity::Error,
                "hash-mismatch",
                format!(
                    "hash TLV says {} but bytes 0x0..{:#x} hash to {}: payload or protected TLVs changed after signing",
                    hex::encode(expected),
                    img.header.hashed_len(),
                    hex::encode(actual)
                ),
            );
            "mismatch"
        }
        HashCheck::Missing => {
            r.diag(
                Severity::Error,
                "hash-missing",
                format!(
                    "no SHA256/384/512 TLV in the unprotected block at offset {:#x}: MCUboot refuses such images",
                    img.tlv_off + usize::from(img.header.protect_tlv_size)
                ),
            );
            "missing"
        }
    });
    let named: Vec<String> = img
        .tlvs
        .iter()
        .filter(|t| !t.protected && matches!(t.kind, tlv::KEYHASH | tlv::PUBKEY))
        .map(|t| {
            format!(
                "{} {} (TLV at {:#x})",
                tlv::name(t.kind),
                short_hex(&t.data),
                t.offset
            )
        })
        .collect();
    r.signature = Some(match v.signature {
        SigCheck::NotChecked => "not-checked",
        SigCheck::Valid => "valid",
        SigCheck::Invalid => {
            r.diag(
                Severity::Error,
                "bad-signature",
                "the image names the given key but its signature does not verify".into(),
            );
            "invalid"
        }
        SigCheck::KeyMismatch => {
            let kh = opts.key.as_ref().map(|k| {
                format!(
                    "{} ({} key)",
                    hex::encode(k.key_hash_with(img.hash_alg())),
                    k.type_name()
                )
            });
            r.diag(
                Severity::Error,
                "key-mismatch",
                format!(
                    "signed with another key: image names {} but the given key hashes to {}; MCUboot built with this key rejects the image",
                    if named.is_empty() { "none".into() } else { named.join(", ") },
                    kh.unwrap_or_default()
                ),
            );
            "key-mismatch"
        }
        SigCheck::Missing => {
            r.diag(
                Severity::Error,
                "unsigned",
                "no signature made with the given key's algorithm: a bootloader with signature checking rejects the image".into(),
            );
            "missing"
        }
    });
}

fn check_vectors(r: &mut Report, img: &Image, bytes: &[u8], opts: &InspectOptions) {
    let h = &img.header;
    let hs = usize::from(h.hdr_size);
    if !img.is_bootable() || h.flags & (flags::ENCRYPTED_AES128 | flags::ENCRYPTED_AES256) != 0 {
        return; // nothing to jump to, or the payload is ciphertext
    }
    let (Some(sp), Some(reset)) = (word(bytes, hs), word(bytes, hs + 4)) else {
        return;
    };
    r.vector_table = Some(VectorReport {
        offset: hs,
        sp,
        reset,
    });
    // Where a plausible vector table actually is, for the hint.
    let found = (IMAGE_HEADER_SIZE..hs.max(0x1000).min(img.tlv_off))
        .step_by(4)
        .filter(|&o| o != hs)
        .find(|&o| match (word(bytes, o), word(bytes, o + 4)) {
            (Some(a), Some(b)) => match &opts.elf {
                Some(e) => a == e.sp && b == e.reset,
                None => plausible_vt(a, b),
            },
            _ => false,
        });
    let hint = match found {
        Some(o) => {
            format!(" A vector table appears at offset {o:#x}: sign with --header-size {o:#x}.")
        }
        None => String::new(),
    };

    if let Some(elf) = &opts.elf {
        let base = opts
            .slot_base
            .or((elf.link_base < elf.vt_addr).then_some(elf.link_base));
        if let Some(base) = base {
            let expected = i64::from(elf.vt_addr) - i64::from(base);
            if expected != hs as i64 {
                r.diag(
                    Severity::Error,
                    "hdr-size-mismatch",
                    format!(
                        "hdr_size (offset 0x8) is {hs:#x} but the ELF links the vector table ({}) at {:#010x} = slot base {base:#010x} + {expected:#x}: MCUboot jumps to slot + hdr_size and the app never starts.{hint}",
                        elf.vt_source, elf.vt_addr
                    ),
                );
                return;
            }
        }
        if (sp, reset) != (elf.sp, elf.reset) {
            r.diag(
                Severity::Error,
                "vector-table-mismatch",
                format!(
                    "words at hdr_size {hs:#x} are SP {sp:#010x} / reset {reset:#010x}, but the ELF's vector table starts SP {:#010x} / reset {:#010x}: the image is not this ELF or hdr_size is wrong.{hint}",
                    elf.sp, elf.reset
                ),
            );
        }
        return;
    }

    if sp == 0 && reset == 0 {
        r.diag(
            Severity::Error,
            "vector-table-zero",
            format!(
                "initial SP and reset vector at hdr_size {hs:#x} are both 0: MCUboot validates the image and then jumps to address 0 (ends in arch_system_halt / lockup). Typical cause: signed with --header-size {hs:#x} while the app is linked with ROM_START_OFFSET 0x200.{hint}"
            ),
        );
        return;
    }
    let mut problems = Vec::new();
    if !SRAM_REGION.contains(&sp) {
        problems.push(format!(
            "initial SP {sp:#010x} is not in RAM (0x20000000..)"
        ));
    }
    if reset & 1 == 0 {
        problems.push(format!("reset vector {reset:#010x} is even (not Thumb)"));
    }
    if let Some(base) = opts.slot_base {
        let end = u64::from(base) + u64::from(opts.slot_size.unwrap_or(u32::MAX - base));
        let lo = u64::from(base) + hs as u64;
        if !(lo..end).contains(&u64::from(reset & !1)) {
            problems.push(format!(
                "reset vector {reset:#010x} is outside the slot's code {lo:#x}..{end:#x}"
            ));
        }
    }
    if !problems.is_empty() {
        r.diag(
            Severity::Error,
            "vector-table-implausible",
            format!(
                "no Cortex-M vector table at hdr_size {hs:#x}: {}.{hint}",
                problems.join("; ")
            ),
        );
    }
}

fn check_fit_and_trailer(r: &mut Report, img: &Image, bytes: &[u8], opts: &InspectOptions) {
    let padded = bytes.len() > img.total_size;
    let slot_size = opts
        .slot_size
        .or(padded.then_some(bytes.len() as u32))
        .filter(|&s| s as usize >= 64);
    let Some(slot_size) = slot_size else {
        return;
    };
    // Erased value: given, or what fills the padding right after the TLVs.
    let erased = opts
        .erased
        .unwrap_or_else(|| match bytes.get(img.total_size) {
            Some(0x00) if padded => 0x00,
            _ => 0xff,
        });
    // max-align: given, or the variant whose magic the padded image carries.
    let tail_magic: Option<[u8; 16]> = (padded && bytes.len() == slot_size as usize)
        .then(|| bytes[bytes.len() - 16..].try_into().expect("16 bytes"));
    let detected = tail_magic.and_then(|m| [8u32, 16, 32].into_iter().find(|&a| magic_for(a) == m));
    let max_align = opts.max_align.or(detected).unwrap_or(8);
    let layout_for = |mode| TrailerLayout {
        slot_size,
        max_align,
        write_size: opts.write_size.unwrap_or(4),
        erased,
        max_sectors: opts.max_sectors.unwrap_or(128),
        mode,
    };

    let h = &img.header;
    let hdr_total = u64::from(h.hdr_size) + u64::from(h.img_size) + u64::from(h.protect_tlv_size);
    if hdr_total >= u64::from(slot_size) {
        r.diag(
            Severity::Error,
            "too-large-for-slot",
            format!(
                "hdr_size + img_size + protect_tlv_size = {hdr_total:#x} is not below the slot size {slot_size:#x}: MCUboot rejects the header"
            ),
        );
    }
    let modes: Vec<UpgradeMode> = match opts.mode {
        Some(m) => vec![m],
        None => MODES.to_vec(),
    };
    let need = img.total_size as u64;
    let mut out_of_range = None;
    for mode in modes {
        let l = layout_for(mode);
        if let Err(e) = l.check() {
            // One diagnostic for the numbers, not one per mode: the fit verdict is unknown.
            out_of_range.get_or_insert(e);
            continue;
        }
        if l.trailer_size() >= slot_size {
            continue;
        }
        // MCUboot's own arithmetic, as the simulated MCUboot and the build doctor use it.
        let max = crate::fit::max_image_size(
            mode,
            &crate::fit::SlotGeometry {
                primary_size: slot_size,
                primary_sector: opts.sector_size.unwrap_or(0x1000),
                secondary_size: slot_size,
                secondary_sector: opts.sector_size.unwrap_or(0x1000),
                write_size: l.write_size,
                max_align: l.max_align,
                max_sectors: l.max_sectors,
            },
        );
        r.fit.push(FitReport {
            mode,
            max_image_size: max,
            fits: need <= u64::from(max),
        });
    }
    if let Some(e) = out_of_range {
        r.diag(
            Severity::Error,
            "trailer-layout-out-of-range",
            format!("cannot place the trailer: {e}"),
        );
    }
    let fitting: Vec<&FitReport> = r.fit.iter().filter(|f| f.fits).collect();
    if !r.fit.is_empty() && fitting.len() < r.fit.len() {
        let misfits: Vec<String> = r
            .fit
            .iter()
            .filter(|f| !f.fits)
            .map(|f| format!("{} (max {:#x})", f.mode, f.max_image_size))
            .collect();
        let (severity, code) = if opts.mode.is_some() || fitting.is_empty() {
            (Severity::Error, "does-not-fit")
        } else {
            (Severity::Warning, "does-not-fit-some-modes")
        };
        r.diag(
            severity,
            code,
            format!(
                "image with TLVs ends at {:#x}, past the trailer area of a {slot_size:#x}-byte slot for {} (max-align {max_align}, write size {}, {} sectors): MCUboot says \"TLV beyond image size\" / the upload cannot be swapped",
                img.total_size,
                misfits.join(", "),
                opts.write_size.unwrap_or(4),
                opts.max_sectors.unwrap_or(128)
            ),
        );
    }

    // Trailer of a padded image (or of a whole slot dump).
    if padded && bytes.len() == slot_size as usize {
        let layout = layout_for(opts.mode.unwrap_or(UpgradeMode::SwapMove));
        let from = bytes.len().saturating_sub(layout.trailer_size() as usize);
        if let Ok(decoded) = layout.decode(&bytes[from.max(img.total_size)..]) {
            if decoded.magic == crate::trailer::MagicState::Bad {
                let other = tail_magic
                    .and_then(|m| [8u32, 16, 32].into_iter().find(|&a| magic_for(a) == m));
                let message = match other {
                    Some(a) => format!(
                        "trailer magic at {:#x} is the max-align {a} variant, but max-align {max_align} was given: a bootloader built with BOOT_MAX_ALIGN={max_align} reads it as BAD",
                        layout.magic_off()
                    ),
                    None => format!(
                        "trailer magic at {:#x} is neither erased nor a known MCUboot magic",
                        layout.magic_off()
                    ),
                };
                r.diag(Severity::Error, "trailer-magic-bad", message);
            }
            r.trailer = Some(TrailerReport { layout, decoded });
        }
    } else if padded && opts.slot_size.is_some() {
        r.diag(
            Severity::Warning,
            "padded-to-other-size",
            format!(
                "file is {:#x} bytes, longer than the image ({:#x}) but not the slot size {slot_size:#x}: no trailer decoded",
                bytes.len(),
                img.total_size
            ),
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file: {:#x} bytes", self.file_len)?;
        if let Some(h) = &self.header {
            writeln!(
                f,
                "header: magic {} version {} hdr_size {:#x} img_size {:#x} protect_tlv_size {:#x} load_addr {:#x} flags {:#x}{}",
                h.magic,
                h.version,
                h.hdr_size,
                h.img_size,
                h.protect_tlv_size,
                h.load_addr,
                h.flags,
                if h.flag_names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", h.flag_names.join("|"))
                }
            )?;
        }
        if let Some(s) = self.image_size {
            writeln!(f, "image size with TLVs: {s:#x}")?;
        }
        if !self.tlvs.is_empty() {
            writeln!(f, "TLVs:")?;
            for t in &self.tlvs {
                writeln!(
                    f,
                    "  {:#06x} {:<12} {:>4} bytes at {:#x}{} {}",
                    t.kind,
                    t.name,
                    t.len,
                    t.offset,
                    if t.protected { " (protected)" } else { "" },
                    t.value
                )?;
                if let Some(d) = &t.decoded {
                    writeln!(f, "         = {d}")?;
                }
            }
        }
        if let Some(hsh) = self.hash {
            writeln!(f, "hash: {hsh}")?;
        }
        if let Some(s) = self.signature {
            writeln!(f, "signature: {s}")?;
        }
        if let Some(v) = &self.vector_table {
            writeln!(
                f,
                "vector table at {:#x}: SP {:#010x} reset {:#010x}",
                v.offset, v.sp, v.reset
            )?;
        }
        if let Some(e) = &self.elf {
            writeln!(
                f,
                "ELF: vector table {:#010x} ({}), link base {:#010x}, SP {:#010x} reset {:#010x}",
                e.vt_addr, e.vt_source, e.link_base, e.sp, e.reset
            )?;
        }
        for fit in &self.fit {
            writeln!(
                f,
                "fit {:<15} max image {:#x}: {}",
                fit.mode.name(),
                fit.max_image_size,
                if fit.fits { "fits" } else { "DOES NOT FIT" }
            )?;
        }
        if let Some(t) = &self.trailer {
            writeln!(
                f,
                "trailer ({}, max-align {}, erased {:#04x}): {}",
                t.layout.mode, t.layout.max_align, t.layout.erased, t.decoded
            )?;
        }
        if self.diagnoses.is_empty() {
            writeln!(f, "diagnosis: no problems found")?;
        }
        for d in &self.diagnoses {
            writeln!(f, "{}[{}]: {}", d.severity, d.code, d.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use crate::sign::{sign, SignOptions};

    /// A Zephyr-like binary: 0x200 zeros, then SP/reset, then code.
    fn app(vt_off: usize) -> Vec<u8> {
        let mut v = vec![0u8; vt_off];
        v.extend_from_slice(&0x2000_8000u32.to_le_bytes());
        v.extend_from_slice(&(0xc000u32 + vt_off as u32 + 0x101).to_le_bytes());
        v.extend((0..0x1000).map(|i| (i * 7 + 1) as u8));
        v
    }

    fn key() -> SigningKey {
        SigningKey::generate_p256_from_seed(b"inspect")
    }

    #[test]
    fn good_image_has_no_diagnoses() {
        let k = key();
        let img = sign(&app(0x200), Some(&k), &SignOptions::default()).unwrap();
        let r = inspect(
            &img,
            &InspectOptions {
                key: Some(k.public()),
                slot_size: Some(0x20000),
                slot_base: Some(0xc000),
                ..Default::default()
            },
        );
        assert!(r.diagnoses.is_empty(), "{r}");
        assert_eq!(r.hash, Some("match"));
        assert_eq!(r.signature, Some("valid"));
        assert_eq!(r.fit.len(), 4);
        let text = r.to_string();
        assert!(
            text.contains("KEYHASH") && text.contains("no problems"),
            "{text}"
        );
    }

    #[test]
    fn header_size_32_bug_is_named() {
        let opts = SignOptions {
            header_size: 32,
            ..Default::default()
        };
        let img = sign(&app(0x200), None, &opts).unwrap();
        let r = inspect(&img, &InspectOptions::default());
        assert!(r.has("vector-table-zero"), "{r}");
        let d = &r.diagnoses[0];
        assert!(d.message.contains("0x200"), "{}", d.message);
        assert!(r.has_errors());
    }

    #[test]
    fn wrong_key_and_too_large() {
        let img = sign(&app(0x200), Some(&key()), &SignOptions::default()).unwrap();
        let other = SigningKey::generate_p256_from_seed(b"other");
        let r = inspect(
            &img,
            &InspectOptions {
                key: Some(other.public()),
                slot_size: Some(0x1800),
                mode: Some(UpgradeMode::SwapMove),
                ..Default::default()
            },
        );
        assert!(r.has("key-mismatch"), "{r}");
        assert!(r.has("does-not-fit"), "{r}");
    }

    #[test]
    fn padded_trailer_decoded_with_detected_max_align() {
        let opts = SignOptions {
            slot_size: 0x10000,
            max_align: 16,
            confirm: true,
            ..Default::default()
        };
        let img = sign(&app(0x200), None, &opts).unwrap();
        let r = inspect(&img, &InspectOptions::default());
        let t = r.trailer.as_ref().expect("trailer");
        assert_eq!(t.layout.max_align, 16);
        assert_eq!(t.decoded.magic, crate::trailer::MagicState::Good);
        assert_eq!(t.decoded.image_ok, crate::trailer::Flag::Set);
        // Forcing the wrong max-align names the variant.
        let r = inspect(
            &img,
            &InspectOptions {
                max_align: Some(8),
                ..Default::default()
            },
        );
        assert!(r.has("trailer-magic-bad"), "{r}");
    }

    /// Regression (issue #16): `image inspect --max-sectors 0xffffffff` on a padded image
    /// overflowed the status-area size (debug panic; in release a wrong "fits" verdict).
    #[test]
    fn out_of_range_max_sectors_is_a_diagnosis_not_a_verdict() {
        let opts = SignOptions {
            slot_size: 0x10000,
            pad: true,
            ..Default::default()
        };
        let img = sign(&app(0x200), None, &opts).unwrap();
        for slot_size in [None, Some(0x7a000), Some(16)] {
            let r = inspect(
                &img,
                &InspectOptions {
                    max_sectors: Some(u32::MAX),
                    slot_size,
                    ..Default::default()
                },
            );
            if slot_size == Some(16) {
                // Below the 64-byte floor: no slot checks at all.
                continue;
            }
            assert!(r.has("trailer-layout-out-of-range"), "{r}");
            // Only overwrite-only, which has no status area, still gets a verdict.
            assert!(
                r.fit.iter().all(|f| f.mode == UpgradeMode::OverwriteOnly),
                "{r}"
            );
            assert!(r.trailer.is_none(), "{r}");
        }
    }

    /// A minimal ELF32 ARM executable: one PT_LOAD segment at `vaddr` holding `data`.
    fn elf(vaddr: u32, data: &[u8]) -> Vec<u8> {
        let mut e = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let u16s = |e: &mut Vec<u8>, v: u16| e.extend_from_slice(&v.to_le_bytes());
        let u32s = |e: &mut Vec<u8>, v: u32| e.extend_from_slice(&v.to_le_bytes());
        u16s(&mut e, 2); // ET_EXEC
        u16s(&mut e, 0x28); // EM_ARM
        u32s(&mut e, 1);
        u32s(&mut e, vaddr + 0x101); // entry
        u32s(&mut e, 52); // phoff
        u32s(&mut e, 0); // shoff
        u32s(&mut e, 0x0500_0200);
        for v in [52u16, 32, 1, 40, 0, 0] {
            u16s(&mut e, v);
        }
        for v in [
            1,
            84,
            vaddr,
            vaddr,
            data.len() as u32,
            data.len() as u32,
            5,
            4,
        ] {
            u32s(&mut e, v);
        }
        e.extend_from_slice(data);
        e
    }

    #[test]
    fn elf_vector_table_against_hdr_size() {
        // NCS-style link: the app starts with its vector table at slot + 0x200.
        let bin = app(0x200);
        let e = ElfInfo::parse(&elf(0xc200, &bin[0x200..]), "app.elf").unwrap();
        assert_eq!((e.vt_addr, e.sp), (0xc200, 0x2000_8000));
        let good = sign(&bin, None, &SignOptions::default()).unwrap();
        let opts = InspectOptions {
            elf: Some(e.clone()),
            slot_base: Some(0xc000),
            ..Default::default()
        };
        assert!(inspect(&good, &opts).diagnoses.is_empty());
        let bad = sign(
            &bin,
            None,
            &SignOptions {
                header_size: 32,
                ..Default::default()
            },
        )
        .unwrap();
        let r = inspect(&bad, &opts);
        assert!(r.has("hdr-size-mismatch"), "{r}");
        assert!(r.to_string().contains("--header-size 0x200"), "{r}");
        // Without the slot base only the words can be compared.
        let r = inspect(
            &bad,
            &InspectOptions {
                elf: Some(e),
                ..Default::default()
            },
        );
        assert!(r.has("vector-table-mismatch"), "{r}");
        let err = ElfInfo::parse(b"not an elf", "x.elf")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.elf"), "{err}");
    }

    /// An unknown TLV type inserted by hand into the protected block (hash re-computed) and one
    /// into the unprotected block: listed, never fatal.
    #[test]
    fn unknown_tlvs_are_listed_not_fatal() {
        use sha2::Digest as _;
        let k = key();
        let opts = SignOptions {
            security_counter: Some(3),
            ..Default::default()
        };
        let signed = sign(&app(0x200), None, &opts).unwrap();
        let img = Image::parse(&signed).unwrap();
        let prot = img.tlv_off;
        let extra = [0x98u8, 0x00, 2, 0, 0xab, 0xcd];
        // Rebuild: header (protect_tlv_size + 6), payload, protected block + extra, then a
        // fresh hash block, then an unknown unprotected TLV.
        let mut b = signed[..img.header.hashed_len()].to_vec();
        let new_prot = img.header.protect_tlv_size + extra.len() as u16;
        b[10..12].copy_from_slice(&new_prot.to_le_bytes());
        b[prot + 2..prot + 4].copy_from_slice(&new_prot.to_le_bytes());
        b.extend_from_slice(&extra);
        let hash = sha2::Sha256::digest(&b);
        b.extend_from_slice(&[0x07, 0x69, 4 + 36 + 7, 0]);
        b.extend_from_slice(&[0x10, 0, 32, 0]);
        b.extend_from_slice(&hash);
        b.extend_from_slice(&[0x99, 0x00, 3, 0, 1, 2, 3]);
        let parsed = Image::parse(&b).unwrap();
        assert_eq!(parsed.unknown_tlvs().count(), 2);
        assert_eq!(parsed.security_counter(), Some(3));
        let r = inspect(
            &b,
            &InspectOptions {
                key: Some(k.public()),
                ..Default::default()
            },
        );
        assert_eq!(r.hash, Some("match"));
        assert!(
            r.has("unknown-tlv") && r.has("unknown-tlv-unprotected"),
            "{r}"
        );
        assert!(
            r.diagnoses
                .iter()
                .filter(|d| d.code.starts_with("unknown-tlv"))
                .all(|d| d.severity < Severity::Error),
            "{r}"
        );
        let text = r.to_string();
        assert!(
            text.contains("0x0098 UNKNOWN") && text.contains("0x0099 UNKNOWN"),
            "{text}"
        );
        assert!(text.contains("= security counter 3"), "{text}");
        // Without a key: no errors at all, just the listing.
        assert!(!inspect(&b, &InspectOptions::default()).has_errors());
    }

    #[test]
    fn garbage_is_a_parse_error_report() {
        let r = inspect(&[0xff; 64], &InspectOptions::default());
        assert!(r.has("parse-error"));
        assert!(r.to_string().contains("erased"));
    }
}
