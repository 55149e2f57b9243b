//! The room for the MCUboot image header: the application's `CONFIG_ROM_START_OFFSET`,
//! Partition Manager's `mcuboot_pad`, imgtool's `--header-size` / `--pad-header`, and the
//! `hdr_size` of the signed images.
//!
//! MCUboot jumps to the vector table at `slot + hdr_size` (`boot/zephyr/main.c`, `do_boot`:
//! `vt = flash_base + rsp->br_image_off + rsp->br_hdr->ih_hdr_size`), so the header room the
//! image was signed with must be where the application was linked to start:
//!
//! - NCS with Partition Manager links the application at the `app` partition, after
//!   `mcuboot_pad`, with `CONFIG_ROM_START_OFFSET=0`, and signs with `--pad-header`: imgtool
//!   *inserts* the header room in front of the binary. The header size is
//!   `PM_MCUBOOT_PAD_SIZE` in parent/child builds (sdk-nrf `cmake/mcuboot.cmake`, `sign_cmd`) and
//!   `SB_CONFIG_PM_MCUBOOT_PAD` in sysbuild (`cmake/sysbuild/image_signing.cmake`, `header_size`);
//!   sysbuild's `cmake/sysbuild/partition_manager.cmake` only *warns* when the two differ
//!   ("MCUboot padding partition size is … but signing uses …").
//! - Zephyr without Partition Manager links the application at `slot0 + CONFIG_ROM_START_OFFSET`
//!   and signs with `--header-size ${CONFIG_ROM_START_OFFSET}` and no `--pad-header` (Zephyr
//!   `cmake/mcuboot.cmake`): the binary already starts with that many zero bytes, which imgtool
//!   overwrites with the header (`imgtool/image.py`, `Image.check_header`: without `pad_header`
//!   the first `header_size` bytes must be zero, "Header padding was not requested and image does
//!   not start with zeros").
//!
//! `--pad-header` on a binary that already has the room puts the vector table at twice the
//! offset: MCUboot validates the image and jumps into zeros.

use super::text::{kconfig_evidence, kconfig_line, parse_int, pm_field, split_args};
use super::{image_label, partitions_yml, Evidence, Finding, LoadedImage, Severity};
use crate::build::{Build, BuildKind, ImageRole};
use crate::facts::AppFacts;
use dfu_hil_mcuboot::image::ImageHeader;

pub const ROM_OFFSET_WITH_PAD: &str = "header-rom-offset-with-pad";
pub const NO_ROOM: &str = "header-no-room";
pub const PAD_TWICE: &str = "header-pad-twice";
pub const ARG_MISMATCH: &str = "header-size-arg-mismatch";
pub const IMAGE_HDR: &str = "image-header-size";
pub const SB_PAD_MISMATCH: &str = "header-sysbuild-pad-mismatch";

/// Where the header room comes from in this build.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Room {
    /// Partition Manager's `mcuboot_pad` (size, and its line in `partitions.yml`).
    Pad { size: u32, evidence: Evidence },
    /// The application's `CONFIG_ROM_START_OFFSET`.
    RomOffset { size: u32, evidence: Evidence },
}

impl Room {
    fn size(&self) -> u32 {
        match self {
            Room::Pad { size, .. } | Room::RomOffset { size, .. } => *size,
        }
    }
    fn evidence(&self) -> &Evidence {
        match self {
            Room::Pad { evidence, .. } | Room::RomOffset { evidence, .. } => evidence,
        }
    }
    fn name(&self) -> &'static str {
        match self {
            Room::Pad { .. } => "mcuboot_pad",
            Room::RomOffset { .. } => "CONFIG_ROM_START_OFFSET",
        }
    }
}

fn room(build: &Build, app: &AppFacts) -> Room {
    if build.kind != BuildKind::PlainZephyr {
        if let Some(pm) = partitions_yml(build) {
            if let Some((line, v)) = pm_field(pm, "mcuboot_pad", "size") {
                if let Some(size) = parse_int(&v) {
                    return Room::Pad {
                        size: size as u32,
                        evidence: Evidence::new(pm, Some(line), format!("mcuboot_pad: size {v}")),
                    };
                }
            }
        }
    }
    Room::RomOffset {
        size: app.rom_start_offset.value,
        evidence: kconfig_evidence(
            &app.rom_start_offset,
            &app.config,
            "CONFIG_ROM_START_OFFSET",
        ),
    }
}

/// The header room the build's application was linked for: its size (the app's vector table
/// is at `slot + size` when `CONFIG_ROM_START_OFFSET` is 0 in a Partition Manager build), the
/// setting that gives it (`mcuboot_pad=…` or `CONFIG_ROM_START_OFFSET=…`) and where that is
/// written. `None` without the app's `.config`.
pub fn linked_header_room(build: &Build) -> Option<(u32, String, String)> {
    let app = build.app.as_ref()?;
    let r = room(build, app);
    Some((
        r.size(),
        format!("{}={:#x}", r.name(), r.size()),
        r.evidence().at(),
    ))
}

fn extra_args(app: &AppFacts) -> (Vec<String>, Evidence) {
    let ev = match &app.extra_imgtool_args {
        Some(f) => kconfig_evidence(f, &app.config, "CONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS"),
        None => match kconfig_line(&app.config, "CONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS") {
            Some((l, t)) => Evidence::new(&app.config, Some(l), t),
            None => Evidence::new(
                &app.config,
                None,
                "CONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS not set",
            ),
        },
    };
    let args = app
        .extra_imgtool_args
        .as_ref()
        .map(|f| split_args(&f.value))
        .unwrap_or_default();
    (args, ev)
}

/// The application's Kconfig against the header room of the build.
pub fn check_config(build: &Build, out: &mut Vec<Finding>) {
    let Some(app) = &build.app else { return };
    if !app.bootloader_mcuboot.value {
        return;
    }
    let room = room(build, app);
    let rom = app.rom_start_offset.value;
    let rom_ev = || {
        kconfig_evidence(
            &app.rom_start_offset,
            &app.config,
            "CONFIG_ROM_START_OFFSET",
        )
    };
    match &room {
        Room::Pad { size, evidence } if rom != 0 => out.push(Finding {
            id: ROM_OFFSET_WITH_PAD,
            severity: Severity::Error,
            title: format!(
                "CONFIG_ROM_START_OFFSET={rom:#x} in a Partition Manager build (mcuboot_pad \
                 {size:#x} already holds the header)"
            ),
            cause: format!(
                "NCS signs with --pad-header --header-size {size:#x}, so the header goes into \
                 mcuboot_pad and MCUboot jumps to the vector table at slot + {size:#x}; the \
                 application leaves another {rom:#x} bytes of zeros first, so MCUboot jumps into \
                 them and the board hard-faults right after \"Jumping to the first image slot\""
            ),
            evidence: vec![rom_ev(), evidence.clone()],
            fix: "remove CONFIG_ROM_START_OFFSET from the application's configuration (NCS \
                  builds with Partition Manager need 0; the header room is mcuboot_pad, sized by \
                  SB_CONFIG_PM_MCUBOOT_PAD / CONFIG_PM_PARTITION_SIZE_MCUBOOT_PAD)"
                .into(),
        }),
        // Only when the build wrote the 0: an absent symbol is the reader's assumption.
        Room::RomOffset { .. } if rom == 0 && app.rom_start_offset.source.is_some() => out.push(Finding {
            id: NO_ROOM,
            severity: Severity::Error,
            title: "the application leaves no room for the MCUboot header (CONFIG_ROM_START_OFFSET=0, no mcuboot_pad)".into(),
            cause: "Zephyr signs with --header-size ${CONFIG_ROM_START_OFFSET}: with 0 imgtool \
                    cannot place the 32-byte header, or with --pad-header the vector table moves \
                    away from where the application was linked"
                .into(),
            evidence: vec![rom_ev()],
            fix: "leave CONFIG_ROM_START_OFFSET at its default with CONFIG_BOOTLOADER_MCUBOOT=y \
                  (0x200; 0x800 on nRF54L)"
                .into(),
        }),
        _ => {}
    }
    if let Room::Pad { size, evidence } = &room {
        sysbuild_pad(build, *size, evidence, out);
    }
    let (args, args_ev) = extra_args(app);
    if args.iter().any(|a| a == "--pad-header") {
        if let Room::RomOffset { size, .. } = &room {
            if *size != 0 {
                out.push(Finding {
                    id: PAD_TWICE,
                    severity: Severity::Error,
                    title: format!(
                        "--pad-header on a binary that already starts with {size:#x} bytes of room"
                    ),
                    cause: format!(
                        "the application is linked at slot + {size:#x} and its binary starts \
                         with that room; --pad-header inserts another {size:#x} bytes, so the \
                         vector table lands at slot + {:#x} while MCUboot jumps to slot + \
                         {size:#x}: the image validates and the board faults at boot",
                        u64::from(*size) * 2
                    ),
                    evidence: vec![args_ev.clone(), room.evidence().clone()],
                    fix: "remove --pad-header from CONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS (it is \
                          for binaries linked without the room, as NCS does with mcuboot_pad)"
                        .into(),
                });
            }
        }
    }
    if let Some(v) = header_size_arg(&args) {
        if v != u64::from(room.size()) {
            out.push(Finding {
                id: ARG_MISMATCH,
                severity: Severity::Error,
                title: format!(
                    "--header-size {v:#x} in CONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS; the room is {} = {:#x}",
                    room.name(),
                    room.size()
                ),
                cause: "imgtool takes the last --header-size given, so the image header claims a \
                        size the application was not linked for; MCUboot jumps to slot + \
                        hdr_size and misses the vector table"
                    .into(),
                evidence: vec![args_ev, room.evidence().clone()],
                fix: format!(
                    "drop --header-size from CONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS (the build \
                     passes {} already)",
                    room.name()
                ),
            });
        }
    }
}

/// `--header-size N` / `-H N` / `--header-size=N` among imgtool arguments (the last one wins, as
/// click does for a repeated option).
fn header_size_arg(args: &[String]) -> Option<u64> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--header-size" || a == "-H" {
            found = it.next().and_then(|v| parse_int(v)).or(found);
        } else if let Some(v) = a.strip_prefix("--header-size=") {
            found = parse_int(v).or(found);
        }
    }
    found
}

/// The `hdr_size` of each signed application image against the room.
pub fn check_images(build: &Build, images: &[LoadedImage], out: &mut Vec<Finding>) {
    let Some(app) = &build.app else { return };
    if !app.bootloader_mcuboot.value {
        return;
    }
    let room = room(build, app);
    if room.size() == 0 {
        return; // reported by check_config
    }
    for li in images {
        if !matches!(li.image.role, ImageRole::App | ImageRole::AppUpdate) {
            continue;
        }
        let Ok(h) = ImageHeader::parse(&li.bytes) else {
            continue;
        };
        if u32::from(h.hdr_size) == room.size() {
            continue;
        }
        out.push(Finding {
            id: IMAGE_HDR,
            severity: Severity::Error,
            title: format!(
                "{} has hdr_size {:#x}; the application was linked for {} = {:#x}",
                image_label(&li.image),
                h.hdr_size,
                room.name(),
                room.size()
            ),
            cause: "MCUboot jumps to the vector table at slot + hdr_size; with another size it \
                    jumps into the header room or into the code, and the board faults right after \
                    MCUboot hands over"
                .into(),
            evidence: vec![
                Evidence::new(
                    &li.image.path,
                    None,
                    format!("image header @0x8: hdr_size = {:#x}", h.hdr_size),
                ),
                room.evidence().clone(),
            ],
            fix: format!(
                "sign with --header-size {:#x}{} (or rebuild and use the build's own \
                 zephyr.signed.bin / app_update.bin)",
                room.size(),
                if matches!(room, Room::Pad { .. }) {
                    " --pad-header"
                } else {
                    " and without --pad-header"
                }
            ),
        });
    }
}

/// Sysbuild signs with `--header-size ${SB_CONFIG_PM_MCUBOOT_PAD}` while the application is linked
/// after the `mcuboot_pad` partition Partition Manager placed (a `pm_static.yml` can size it
/// differently): NCS only warns at build time.
fn sysbuild_pad(build: &Build, pad: u32, pad_ev: &Evidence, out: &mut Vec<Finding>) {
    let Some(sb) = build.files.get("sysbuild.config") else {
        return;
    };
    let Some((line, text)) = kconfig_line(sb, "SB_CONFIG_PM_MCUBOOT_PAD") else {
        return;
    };
    let Some(v) = text.split_once('=').and_then(|(_, v)| parse_int(v)) else {
        return;
    };
    if v == u64::from(pad) {
        return;
    }
    out.push(Finding {
        id: SB_PAD_MISMATCH,
        severity: Severity::Error,
        title: format!(
            "images are signed with a {v:#x}-byte header (SB_CONFIG_PM_MCUBOOT_PAD); mcuboot_pad is {pad:#x}"
        ),
        cause: "the application is linked after mcuboot_pad, but its header claims another \
                size: MCUboot jumps to slot + hdr_size and misses the vector table (NCS prints \
                only a CMake warning)"
            .into(),
        evidence: vec![Evidence::new(sb, Some(line), text), pad_ev.clone()],
        fix: format!(
            "set SB_CONFIG_PM_MCUBOOT_PAD={pad:#x} in sysbuild.conf, or size mcuboot_pad \
             {v:#x} in pm_static.yml"
        ),
    });
}
