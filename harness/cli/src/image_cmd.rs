//! `dfu-hil image inspect|derive|sign` and `dfu-hil trailer inspect`: the MCUboot format tools,
//! usable on their own before anything is flashed (MCUboot `boot/bootutil/include/bootutil/image.h`
//! and the trailer helpers in `boot/bootutil/src/bootutil_misc.h`; docs/protocol-facts.md, "Header
//! size smaller than the link offset").
//!
//! Exit codes (`dfu_hil_runner::exit::Exit`): 0 ok; 100 an error-severity finding (inspect
//! diagnosis, failed verification, BAD trailer magic); 96 invalid input (unreadable file, a file
//! that is not an MCUboot image at all, bad key, bad option) — printed to stderr naming the file
//! and, where it applies, the byte offset.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use dfu_hil_runner::exit::Exit;

use crate::error::{CliError, CliResult};
use crate::file_kind::FileKind;
use clap::{Args, Subcommand, ValueEnum};
use dfu_hil_mcuboot::derive::{self, Derivation, DeriveContext};
use dfu_hil_mcuboot::image::{Dependency, HashAlg, Image, Version, IMAGE_MAGIC};
use dfu_hil_mcuboot::inspect::{self, ElfInfo, InspectOptions};
use dfu_hil_mcuboot::keys::{PublicKey, SigningKey};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{self, PublicKeyFormat, SignOptions};
use dfu_hil_mcuboot::trailer::{MagicState, TrailerLayout, UpgradeMode};

/// Numbers as imgtool takes them: decimal or 0x-hex.
fn num(s: &str) -> Result<u32, String> {
    let t = s.trim().replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => t.parse(),
    };
    r.map_err(|e| format!("{s:?} is not a number (decimal or 0x-hex): {e}"))
}

fn num16(s: &str) -> Result<u16, String> {
    let v = num(s)?;
    u16::try_from(v).map_err(|_| format!("{s:?} does not fit 16 bits"))
}

fn byte(s: &str) -> Result<u8, String> {
    let v = num(s)?;
    u8::try_from(v).map_err(|_| format!("{s:?} is not a byte value"))
}

/// Bootloader mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    SwapMove,
    SwapScratch,
    SwapOffset,
    OverwriteOnly,
    DirectXip,
}

impl From<ModeArg> for UpgradeMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::SwapMove => UpgradeMode::SwapMove,
            ModeArg::SwapScratch => UpgradeMode::SwapScratch,
            ModeArg::SwapOffset => UpgradeMode::SwapOffset,
            ModeArg::OverwriteOnly => UpgradeMode::OverwriteOnly,
            ModeArg::DirectXip => UpgradeMode::DirectXip,
        }
    }
}

/// `--public-key-format` as imgtool spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyFormatArg {
    /// KEYHASH TLV (hash of the public key).
    Hash,
    /// PUBKEY TLV (the whole public key).
    Full,
}

impl From<KeyFormatArg> for PublicKeyFormat {
    fn from(f: KeyFormatArg) -> Self {
        match f {
            KeyFormatArg::Hash => PublicKeyFormat::Hash,
            KeyFormatArg::Full => PublicKeyFormat::Full,
        }
    }
}

/// `--sha` as imgtool spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShaArg {
    Auto,
    #[value(name = "256")]
    Sha256,
    #[value(name = "384")]
    Sha384,
    #[value(name = "512")]
    Sha512,
}

impl ShaArg {
    fn alg(self) -> Option<HashAlg> {
        match self {
            ShaArg::Auto => None,
            ShaArg::Sha256 => Some(HashAlg::Sha256),
            ShaArg::Sha384 => Some(HashAlg::Sha384),
            ShaArg::Sha512 => Some(HashAlg::Sha512),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// Header, TLVs, hash/signature verdict, trailer, and a diagnosis (hdr_size vs vector
    /// table, fit in the slot with its trailer, key mismatch). With `--build DIR`: the build's
    /// images against its layout and MCUboot configuration.
    #[command(visible_alias = "check")]
    Inspect(InspectArgs),
    /// Make a bad image from a good one, reproducibly (re-sign, corrupt, truncate, …).
    Derive(DeriveArgs),
    /// Sign a binary like `imgtool sign`.
    Sign(SignArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Signed image or slot dump: a `.bin`, an Intel HEX (`zephyr.signed.hex`, every MCUboot
    /// image in it) or `dfu_application.zip` (every image its manifest lists). With --build it
    /// may be left out: every signed image of the build is inspected.
    #[arg(required_unless_present = "build")]
    pub file: Option<PathBuf>,
    /// An NCS / Zephyr build directory: slot size and address from its layout, mode,
    /// max-align, max-sectors and key from MCUboot's `.config`, the header size checked
    /// against the app's `CONFIG_ROM_START_OFFSET`. Options given here win.
    #[arg(long, value_name = "DIR")]
    pub build: Option<PathBuf>,
    /// The application's ELF: compare its vector table address with hdr_size.
    #[arg(long)]
    pub elf: Option<PathBuf>,
    /// Public (or private) key PEM the bootloader verifies with.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Slot size for the fit check (and the trailer of a padded image).
    #[arg(long, value_parser = num)]
    pub slot_size: Option<u32>,
    /// Absolute address of the primary slot (reset vector must point into it).
    #[arg(long, value_parser = num)]
    pub slot_base: Option<u32>,
    /// Bootloader mode (default: check the fit for every mode).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// BOOT_MAX_ALIGN (default: from the trailer magic, else 8).
    #[arg(long, value_parser = num)]
    pub max_align: Option<u32>,
    /// Flash write size (default 4).
    #[arg(long, value_parser = num)]
    pub write_size: Option<u32>,
    /// BOOT_MAX_IMG_SECTORS (default 128).
    #[arg(long, value_parser = num)]
    pub max_sectors: Option<u32>,
    /// Erased value 0xff or 0x00 (default: guessed from the padding).
    #[arg(long, value_parser = byte)]
    pub erased: Option<u8>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeriveArgs {
    /// The good signed image.
    pub input: PathBuf,
    /// Where to write the derived image.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Derivation in YAML, e.g. `{ corrupt-payload: { offset: 0x300 } }`,
    /// `{ resign: { version: 2.0.0, key: other } }`, `{ header-size: 32 }`; repeat to chain.
    #[arg(long = "spec", required = true)]
    pub specs: Vec<String>,
    /// Signing key `NAME=PEM` (a bare `PEM` is `default`); repeatable.
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// Slot size for `too-large`.
    #[arg(long, value_parser = num, default_value = "0")]
    pub slot_size: u32,
    #[arg(long, value_parser = num, default_value = "8")]
    pub max_align: u32,
    /// Flash write size (imgtool --align) used when re-signing.
    #[arg(long, value_parser = num, default_value = "4")]
    pub write_size: u32,
    #[arg(long, value_parser = byte, default_value = "0xff")]
    pub erased: u8,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Private key PEM; without it the image gets a hash TLV only.
    #[arg(short = 'k', long)]
    pub key: Option<PathBuf>,
    /// Where the payload starts (Zephyr ROM_START_OFFSET, usually 0x200).
    #[arg(short = 'H', long, value_parser = num16)]
    pub header_size: u16,
    /// Prepend header_size erased bytes instead of requiring them to be zero.
    #[arg(long)]
    pub pad_header: bool,
    /// Flash write alignment: 1, 2, 4, 8, 16 or 32.
    #[arg(long, value_parser = num, default_value = "1")]
    pub align: u32,
    /// BOOT_MAX_ALIGN: 8, 16 or 32 (default max(8, align)).
    #[arg(long, value_parser = num)]
    pub max_align: Option<u32>,
    /// `major.minor.revision[+build]`. Long form only: imgtool's `-v` is dfu-hil's global
    /// `-v` (`--verbose`), so `imgtool sign -v 1.2.3` is `image sign --version 1.2.3` here.
    #[arg(long, default_value = "0.0.0")]
    pub version: Version,
    /// Slot size (the secondary's when slots differ).
    #[arg(short = 'S', long, value_parser = num)]
    pub slot_size: u32,
    /// BOOT_MAX_IMG_SECTORS for the fit check.
    #[arg(short = 'M', long, value_parser = num, default_value = "128")]
    pub max_sectors: u32,
    /// Pad to the slot size and write the trailer magic (pending test in the secondary).
    #[arg(long)]
    pub pad: bool,
    /// Like --pad, and set image_ok (pending permanent / confirmed).
    #[arg(long)]
    pub confirm: bool,
    /// Security counter: a number or `auto` (from the version).
    #[arg(short = 's', long)]
    pub security_counter: Option<String>,
    /// `(image_id,version),...`, e.g. `(1,1.2.3+0)`.
    #[arg(short = 'd', long)]
    pub dependencies: Option<String>,
    /// Trailer sized for overwrite-only (no swap status).
    #[arg(long)]
    pub overwrite_only: bool,
    /// Erased value 0xff or 0 (`-R`).
    #[arg(short = 'R', long, value_parser = byte, default_value = "0xff")]
    pub erased_val: u8,
    /// Set IMAGE_F_NON_BOOTABLE.
    #[arg(long)]
    pub non_bootable: bool,
    /// RAM load address (sets IMAGE_F_RAM_LOAD when non-zero).
    #[arg(short = 'L', long, value_parser = num, conflicts_with = "rom_fixed")]
    pub load_addr: Option<u32>,
    /// Flash address the image is built for (sets IMAGE_F_ROM_FIXED).
    #[arg(short = 'F', long, value_parser = num)]
    pub rom_fixed: Option<u32>,
    /// Name the key by its hash (KEYHASH) or embed it whole (PUBKEY).
    #[arg(long, value_enum, default_value = "hash")]
    pub public_key_format: KeyFormatArg,
    /// Add a CBOR BOOT_RECORD TLV with this sw_type (max. 12 characters).
    #[arg(long, value_name = "SW_TYPE")]
    pub boot_record: Option<String>,
    /// Image hash; auto = the key's (SHA-384 for ECDSA P-384, else SHA-256).
    #[arg(long, value_enum, default_value = "auto")]
    pub sha: ShaArg,
    /// Ed25519 only: sign the image itself, not its digest (SIG_PURE).
    #[arg(long)]
    pub pure: bool,
    pub input: PathBuf,
    pub output: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum TrailerCmd {
    /// Decode the trailer of a slot dump, or of a raw flash image at a partition offset.
    Inspect(TrailerArgs),
}

#[derive(Debug, Args)]
pub struct TrailerArgs {
    /// Slot dump (or its last bytes), or a whole-device image with --offset / --layout.
    pub file: PathBuf,
    /// Slot size (or from --layout/--partition).
    #[arg(long, value_parser = num)]
    pub slot_size: Option<u32>,
    /// Offset of the slot in FILE (default 0; from the layout for a device image).
    #[arg(long, value_parser = num)]
    pub offset: Option<u32>,
    #[arg(long, value_enum, default_value = "swap-move")]
    pub mode: ModeArg,
    #[arg(long, value_parser = num, default_value = "8")]
    pub max_align: u32,
    /// Flash write size (default 4, or the layout device's).
    #[arg(long, value_parser = num)]
    pub write_size: Option<u32>,
    /// Erased value (default 0xff, or the layout device's).
    #[arg(long, value_parser = byte)]
    pub erased: Option<u8>,
    #[arg(long, value_parser = num, default_value = "128")]
    pub max_sectors: u32,
    /// Layout file (partitions/*.yaml) to take the slot geometry from.
    #[arg(long, requires = "partition")]
    pub layout: Option<PathBuf>,
    /// Partition of --layout, e.g. slot1.
    #[arg(long, requires = "layout")]
    pub partition: Option<String>,
    #[arg(long)]
    pub json: bool,
}

fn invalid(msg: impl std::fmt::Display) -> CliError {
    CliError::invalid(msg)
}

fn read(path: &Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| invalid(format!("{}: cannot read: {e}", path.display())))
}

/// `dfu-hil image …`; prints to stdout.
pub fn run_image(cmd: ImageCmd) -> CliResult {
    run_image_to(cmd, &mut std::io::stdout())
}

/// `dfu-hil trailer …`; prints to stdout.
pub fn run_trailer(cmd: TrailerCmd) -> CliResult {
    run_trailer_to(cmd, &mut std::io::stdout())
}

/// [`run_image`] with the output stream given (for tests and embedding); errors are returned,
/// for [`crate::error::finish`] to print.
pub fn run_image_to(cmd: ImageCmd, out: &mut dyn Write) -> CliResult {
    match cmd {
        ImageCmd::Inspect(a) => cmd_inspect(a, out),
        ImageCmd::Derive(a) => cmd_derive(a, out),
        ImageCmd::Sign(a) => cmd_sign(a, out),
    }
}

/// [`run_trailer`] with the output stream given.
pub fn run_trailer_to(cmd: TrailerCmd, out: &mut dyn Write) -> CliResult {
    match cmd {
        TrailerCmd::Inspect(a) => cmd_trailer(a, out),
    }
}

/// A file that does not start with MCUboot's image magic is not an image with problems but the
/// wrong file (a zip, a hex, an ELF): invalid input, named. An erased start (0xff or 0x00
/// bytes) is a slot dump with nothing in it, which inspection reports as a finding.
fn check_is_image(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let Some(head) = bytes.first_chunk::<4>() else {
        return Ok(());
    };
    let magic = u32::from_le_bytes(*head);
    if magic == IMAGE_MAGIC || magic == 0xffff_ffff || magic == 0 {
        return Ok(());
    }
    Err(match FileKind::sniff(bytes) {
        Some(kind) => invalid(format!(
            "{}: not an MCUboot image: it looks like {}",
            path.display(),
            kind.describe()
        )),
        None => invalid(format!(
            "{}: not an MCUboot image: found {magic:#010x} at offset 0x0 where the image magic \
             {IMAGE_MAGIC:#010x} belongs (sign it first with `dfu-hil image sign`)",
            path.display()
        )),
    })
}

/// One image to inspect: where it came from, its bytes, and its MCUboot image number.
struct Item {
    label: String,
    bytes: Vec<u8>,
    image_index: u32,
}

/// The images in `path`: a `.bin` as is (checked to be an image); Intel HEX and the zip
/// through the build crate's reader (`dfu_hil_build::images::read_image_file`).
fn read_items(path: &Path) -> CliResult<Vec<Item>> {
    let bytes = read(path)?;
    match FileKind::sniff(&bytes) {
        Some(kind @ (FileKind::Zip | FileKind::IntelHex)) => {
            let items = dfu_hil_build::images::read_image_file(path).map_err(|e| {
                let what = match kind {
                    FileKind::Zip => "a zip archive, but not a readable dfu_application.zip",
                    _ => "an Intel HEX file, but it holds no signed MCUboot image",
                };
                invalid(format!(
                    "{}: not an MCUboot image: it looks like {what} ({e})",
                    path.display()
                ))
            })?;
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, (label, bytes))| Item {
                    label: format!("{} [{label}]", path.display()),
                    bytes,
                    image_index: i as u32,
                })
                .collect())
        }
        _ => {
            check_is_image(path, &bytes)?;
            Ok(vec![Item {
                label: path.display().to_string(),
                bytes,
                image_index: 0,
            }])
        }
    }
}

fn cmd_inspect(a: InspectArgs, out: &mut dyn Write) -> CliResult {
    let build = match &a.build {
        Some(dir) => Some(crate::build_facts::BuildFacts::open(dir).map_err(invalid)?),
        None => None,
    };
    if let Some(b) = &build {
        for n in &b.notes {
            eprintln!("note: {n}");
        }
    }
    let items = match (&a.file, &build) {
        (Some(f), _) => read_items(f)?,
        (None, Some(b)) => b
            .images()
            .map_err(invalid)?
            .into_iter()
            .map(|(label, bytes, image_index)| Item {
                label,
                bytes,
                image_index,
            })
            .collect(),
        (None, None) => return Err(invalid("give an image FILE or --build DIR")),
    };
    if items.is_empty() {
        return Err(invalid("the build has no signed images to inspect"));
    }
    let key = match &a.key {
        Some(p) => Some(PublicKey::load(p).map_err(|e| invalid(e.to_string()))?),
        None => build.as_ref().and_then(|b| b.key.clone()),
    };
    let elf = match &a.elf {
        Some(p) => {
            let data = read(p)?;
            Some(
                ElfInfo::parse(&data, &p.display().to_string())
                    .map_err(|e| invalid(e.to_string()))?,
            )
        }
        None => None,
    };
    if let Some(m) = a.max_align.filter(|m| ![8, 16, 32].contains(m)) {
        return Err(invalid(format!("--max-align {m}: must be 8, 16 or 32")));
    }
    let mut reports = Vec::new();
    let mut errors = false;
    for item in &items {
        let slot = build.as_ref().and_then(|b| b.slot(item.image_index));
        let opts = InspectOptions {
            key: key.clone(),
            elf: elf.clone(),
            slot_size: a.slot_size.or(slot.map(|s| s.size)),
            slot_base: a.slot_base.or(slot.map(|s| s.base)),
            mode: a
                .mode
                .map(Into::into)
                .or(build.as_ref().and_then(|b| b.mode)),
            max_align: a.max_align.or(build.as_ref().map(|b| b.max_align)),
            write_size: a.write_size.or(slot.map(|s| s.write_size)),
            max_sectors: a.max_sectors.or(build.as_ref().map(|b| b.max_sectors)),
            erased: a.erased.or(slot.map(|s| s.erased)),
            sector_size: None,
        };
        let mut report = inspect::inspect(&item.bytes, &opts);
        if let Some(b) = &build {
            b.check_header_room(&mut report, item.image_index);
        } else if elf.is_none() && report.header.is_some() {
            // Nothing says where the app was linked: the header size cannot be checked
            // against it (case 1 of issue #15: a --pad-header image with a plausible vector
            // table looks fine on its own).
            report.diagnoses.push(inspect::Diagnosis {
                severity: inspect::Severity::Warning,
                code: "header-check-not-possible",
                message: "header check not possible: neither --build (the app's .config, Partition Manager's mcuboot_pad) nor --elf says where the app was linked, so hdr_size cannot be compared with the header room the app expects".into(),
            });
        }
        errors |= report.has_errors();
        reports.push((item.label.clone(), report));
    }
    if a.json {
        if reports.len() == 1 && build.is_none() {
            writeln!(out, "{}", serde_json::to_string_pretty(&reports[0].1)?)?;
        } else {
            let list: Vec<serde_json::Value> = reports
                .iter()
                .map(|(label, r)| serde_json::json!({ "file": label, "report": r }))
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        }
    } else {
        for (label, report) in &reports {
            writeln!(out, "{label}:")?;
            write!(out, "{report}")?;
        }
    }
    Ok(if errors {
        Exit::ScenarioFailed
    } else {
        Exit::Pass
    })
}

fn load_signing_key(p: &Path) -> CliResult<SigningKey> {
    SigningKey::load(p).map_err(|e| invalid(e.to_string()))
}

fn cmd_derive(a: DeriveArgs, out: &mut dyn Write) -> CliResult {
    let bytes = read(&a.input)?;
    let mut keys = BTreeMap::new();
    for k in &a.keys {
        let (name, path) = k.split_once('=').unwrap_or(("default", k.as_str()));
        keys.insert(name.to_string(), load_signing_key(Path::new(path))?);
    }
    let ds = a
        .specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Derivation::parse(s, &format!("--spec #{}", i + 1)).map_err(|e| invalid(e.to_string()))
        })
        .collect::<CliResult<Vec<_>>>()?;
    let ctx = DeriveContext {
        keys,
        slot_size: a.slot_size,
        max_align: a.max_align,
        write_size: a.write_size,
        erased: a.erased,
    };
    let derived = derive::apply_all(&bytes, &ds, &ctx)
        .map_err(|e| invalid(format!("{}: {e}", a.input.display())))?;
    std::fs::write(&a.output, &derived)
        .with_context(|| format!("writing {}", a.output.display()))?;
    writeln!(
        out,
        "{} -> {} ({:#x} bytes)",
        a.input.display(),
        a.output.display(),
        derived.len()
    )?;
    Ok(Exit::Pass)
}

/// `(1,1.2.3+0),(2,0.1)` → dependencies.
fn parse_dependencies(s: &str) -> Result<Vec<Dependency>, String> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let mut v = Vec::new();
    let mut rest = t.as_str();
    while !rest.is_empty() {
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.split_once(')'))
            .ok_or_else(|| format!("dependencies {s:?}: expected (image_id,version),..."))?;
        let (id, ver) = inner
            .0
            .split_once(',')
            .ok_or_else(|| format!("dependency ({}): expected (image_id,version)", inner.0))?;
        let image_id = id
            .parse::<u8>()
            .map_err(|e| format!("dependency image id {id:?}: {e}"))?;
        let min_version = ver
            .parse::<Version>()
            .map_err(|e| format!("dependency version {ver:?}: {e}"))?;
        v.push(Dependency {
            image_id,
            min_version,
        });
        rest = inner.1.strip_prefix(',').unwrap_or(inner.1);
    }
    Ok(v)
}

fn cmd_sign(a: SignArgs, out: &mut dyn Write) -> CliResult {
    let payload = read(&a.input)?;
    let key = a.key.as_deref().map(load_signing_key).transpose()?;
    let security_counter = match a.security_counter.as_deref() {
        None => None,
        Some("auto") => Some(a.version.auto_security_counter()),
        Some(s) => Some(num(s).map_err(|e| invalid(format!("--security-counter: {e}")))?),
    };
    let dependencies = match &a.dependencies {
        Some(d) => parse_dependencies(d).map_err(invalid)?,
        None => Vec::new(),
    };
    let opts = SignOptions {
        header_size: a.header_size,
        pad_header: a.pad_header,
        version: a.version,
        slot_size: a.slot_size,
        align: a.align,
        max_align: a.max_align.unwrap_or(a.align.max(8)),
        max_sectors: a.max_sectors,
        pad: a.pad,
        confirm: a.confirm,
        overwrite_only: a.overwrite_only,
        erased_val: a.erased_val,
        security_counter,
        dependencies,
        non_bootable: a.non_bootable,
        load_addr: a.load_addr,
        rom_fixed: a.rom_fixed,
        sha: a.sha.alg(),
        public_key_format: a.public_key_format.into(),
        boot_record: a.boot_record,
        pure: a.pure,
    };
    let signed = sign::sign(&payload, key.as_ref(), &opts)
        .map_err(|e| invalid(format!("{}: {e}", a.input.display())))?;
    std::fs::write(&a.output, &signed)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let img = Image::parse(&signed).map_err(|e| invalid(format!("{}: {e}", a.output.display())))?;
    writeln!(
        out,
        "{}: version {} image {:#x} bytes, file {:#x} bytes, hash {}",
        a.output.display(),
        img.header.version,
        img.total_size,
        signed.len(),
        img.hash_tlv().map(hex_str).unwrap_or_default()
    )?;
    Ok(Exit::Pass)
}

fn hex_str(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn cmd_trailer(a: TrailerArgs, out: &mut dyn Write) -> CliResult {
    let bytes = read(&a.file)?;
    let (mut slot_size, mut offset, mut write_size, mut erased) =
        (a.slot_size, a.offset, a.write_size, a.erased);
    if let (Some(lp), Some(pname)) = (&a.layout, &a.partition) {
        let layout = Layout::load(lp).map_err(|e| invalid(e.to_string()))?;
        let p = layout.partition(pname).ok_or_else(|| {
            invalid(format!(
                "{}: no partition `{pname}` (has: {})",
                lp.display(),
                layout.partition_names().join(", ")
            ))
        })?;
        let dev = layout.device_of(p);
        slot_size = slot_size.or(Some(p.size));
        // A file exactly the partition's size is a slot dump; otherwise a device image.
        offset = offset.or(Some(if bytes.len() == p.size as usize {
            0
        } else {
            p.offset
        }));
        write_size = write_size.or(Some(dev.write_size));
        erased = erased.or(Some(dev.erased));
    }
    let slot_size = slot_size
        .ok_or_else(|| invalid("--slot-size (or --layout with --partition) is required"))?;
    if ![8, 16, 32].contains(&a.max_align) {
        return Err(invalid(format!(
            "--max-align {}: must be 8, 16 or 32",
            a.max_align
        )));
    }
    let layout = TrailerLayout {
        slot_size,
        max_align: a.max_align,
        write_size: write_size.unwrap_or(4).max(1),
        erased: erased.unwrap_or(0xff),
        max_sectors: a.max_sectors,
        mode: a.mode.into(),
    };
    layout.check().map_err(|e| invalid(e.to_string()))?;
    if layout.trailer_size() > slot_size {
        return Err(invalid(format!(
            "slot size {slot_size:#x} is smaller than the {:#x}-byte trailer",
            layout.trailer_size()
        )));
    }
    let off = offset.unwrap_or(0) as usize;
    // The slot's bytes: the whole slot at `off`, or (a short file at offset 0) the slot's tail.
    let slot: &[u8] = if bytes.len() >= off + slot_size as usize {
        &bytes[off..off + slot_size as usize]
    } else if off == 0 && bytes.len() >= layout.info_size() as usize {
        &bytes[..]
    } else {
        return Err(invalid(format!(
            "{}: {:#x} bytes, too short for a {slot_size:#x}-byte slot at offset {off:#x}",
            a.file.display(),
            bytes.len()
        )));
    };
    let t = layout
        .decode(slot)
        .map_err(|e| invalid(format!("{}: {e}", a.file.display())))?;
    let other_variant = (t.magic == MagicState::Bad)
        .then(|| {
            [8u32, 16, 32]
                .into_iter()
                .find(|&m| dfu_hil_mcuboot::trailer::magic_for(m) == t.magic_raw)
        })
        .flatten();
    if a.json {
        let v = serde_json::json!({
            "file": a.file.display().to_string(),
            "offset": off,
            "layout": layout,
            "fields": {
                "magic": off + layout.magic_off() as usize,
                "image_ok": off + layout.image_ok_off() as usize,
                "copy_done": off + layout.copy_done_off() as usize,
                "swap_info": off + layout.swap_info_off() as usize,
                "swap_size": off + layout.swap_size_off() as usize,
                "status": off + layout.status_off() as usize,
            },
            "trailer": t,
            "swap_type": t.swap_type(),
            "image": t.image_num(),
            "status_written": t.status_written(),
            "magic_variant": other_variant,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(
            out,
            "{} at {off:#x}: slot {slot_size:#x}, {} max-align {} write-size {} erased {:#04x} max-sectors {}",
            a.file.display(),
            layout.mode,
            layout.max_align,
            layout.write_size,
            layout.erased,
            layout.max_sectors
        )?;
        for (name, o) in [
            ("magic", layout.magic_off()),
            ("image_ok", layout.image_ok_off()),
            ("copy_done", layout.copy_done_off()),
            ("swap_info", layout.swap_info_off()),
            ("swap_size", layout.swap_size_off()),
            ("status", layout.status_off()),
        ] {
            writeln!(
                out,
                "  {name:<10} at {:#x} (slot end -{:#x})",
                off + o as usize,
                slot_size - o
            )?;
        }
        writeln!(out, "{t}")?;
        writeln!(
            out,
            "swap_info: type {}, image {}; status records written: {}",
            t.swap_type(),
            t.image_num().map_or("-".into(), |n| n.to_string()),
            t.status_written()
        )?;
        if let Some(m) = other_variant {
            writeln!(
                out,
                "error: magic is the max-align {m} variant; a bootloader with BOOT_MAX_ALIGN={} reads it as BAD",
                layout.max_align
            )?;
        } else if t.magic == MagicState::Bad {
            writeln!(
                out,
                "error: magic at {:#x} is neither erased nor an MCUboot magic",
                off + layout.magic_off() as usize
            )?;
        }
    }
    Ok(if t.magic == MagicState::Bad {
        Exit::ScenarioFailed
    } else {
        Exit::Pass
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_list_parses() {
        let d = parse_dependencies("(1,1.2.3+0), (2,0.1)").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].image_id, 2);
        assert_eq!(d[1].min_version, Version::new(0, 1, 0, 0));
        assert!(parse_dependencies("(1;2)").is_err());
    }
}
