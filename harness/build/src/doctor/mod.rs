//! `dfu-hil doctor BUILD`: check a build directory, before anything is flashed, for the failure
//! classes that cost DFU engineers days — each finding with a stable id, a severity, the cause
//! in a DFU engineer's words, the evidence (file:line of the Kconfig symbol or partition) and the
//! fix.
//!
//! One module per family of checks; every check cites the upstream code it follows in its doc
//! comment. The checks read only [`Build`] facts, the [`Layout`] and (when the build has them)
//! the signed images' bytes, so unit tests build those values directly.
//!
//! Exit codes (the CLI's table, `dfu_hil_runner::exit`): an `error` finding → 100; a build
//! directory or layout that cannot be read → 96; otherwise (clean, warnings, infos) → 0.

mod fit;
pub mod header;
mod nsib;
mod pm_text;
mod signature;
mod slots;
mod smp;
pub mod text;

use crate::build::{Build, BuildImage, BuildKind, ImageRole};
pub use dfu_hil_mcuboot::inspect::Severity;
use dfu_hil_mcuboot::layout::Layout;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

pub use fit::{max_image_size, SlotGeometry};

/// One piece of evidence: a file and a 1-based line (`None` when the fact is the whole file, an
/// assumed default, or a byte offset told in `text`), and the text that shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub file: String,
    pub line: Option<u32>,
    pub text: String,
}

impl Evidence {
    pub fn new(file: &Path, line: Option<u32>, text: impl Into<String>) -> Self {
        Evidence {
            file: file.display().to_string(),
            line: line.filter(|l| *l > 0),
            text: text.into(),
        }
    }

    /// `file:line` (or `file`).
    pub fn at(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }
}

/// One finding of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable kebab-case id (one of [`CHECKS`]); scripts and tests match on it.
    pub id: &'static str,
    pub severity: Severity,
    /// One line: what is wrong.
    pub title: String,
    /// Why it breaks a DFU, in a DFU engineer's words (the symptom on the device included).
    pub cause: String,
    pub evidence: Vec<Evidence>,
    /// What to change, naming the Kconfig option or partition.
    pub fix: String,
}

/// Every check id with its default severity and one line on what it finds (the table in
/// `docs/build-directories.md`, section "doctor", is checked against this list by a test).
pub const CHECKS: &[(&str, Severity, &str)] = &[
    (
        slots::SECTORS,
        Severity::Error,
        "a slot has more erase sectors than CONFIG_BOOT_MAX_IMG_SECTORS",
    ),
    (
        slots::EXT_DRIVER,
        Severity::Error,
        "secondary slot on external flash, MCUboot built without a NOR driver",
    ),
    (
        slots::EXT_DRIVER_APP,
        Severity::Error,
        "secondary slot on external flash, the application built without a NOR driver",
    ),
    (
        slots::SECONDARY_EMPTY,
        Severity::Error,
        "secondary slot of size 0",
    ),
    (
        slots::SINGLE_SLOT,
        Severity::Warning,
        "MCUboot has one application slot: no SMP upload from the running app",
    ),
    (
        slots::SERIAL_RECOVERY_ONLY,
        Severity::Warning,
        "serial recovery is the only update path (the app has no SMP transport)",
    ),
    (
        header::ROM_OFFSET_WITH_PAD,
        Severity::Error,
        "app ROM_START_OFFSET non-zero in a Partition Manager build (mcuboot_pad holds the header)",
    ),
    (
        header::NO_ROOM,
        Severity::Error,
        "app leaves no room for the MCUboot header (ROM_START_OFFSET=0 without mcuboot_pad)",
    ),
    (
        header::PAD_TWICE,
        Severity::Error,
        "--pad-header on a binary that already starts with ROM_START_OFFSET of room",
    ),
    (
        header::ARG_MISMATCH,
        Severity::Error,
        "--header-size in MCUBOOT_EXTRA_IMGTOOL_ARGS differs from the room the app leaves",
    ),
    (
        header::SB_PAD_MISMATCH,
        Severity::Error,
        "sysbuild signs with SB_CONFIG_PM_MCUBOOT_PAD ≠ the mcuboot_pad partition",
    ),
    (
        header::IMAGE_HDR,
        Severity::Error,
        "a signed image's hdr_size differs from the room the app leaves",
    ),
    (
        smp::NO_TRANSPORT,
        Severity::Warning,
        "app under MCUboot with no SMP transport",
    ),
    (
        smp::NO_IMG,
        Severity::Error,
        "SMP transport without the image management group",
    ),
    (
        smp::NO_OS,
        Severity::Warning,
        "SMP transport without the OS group (reset, echo)",
    ),
    (
        smp::NO_BASIC,
        Severity::Info,
        "no zephyr_basic group (group 63 \"erase storage\")",
    ),
    (
        smp::BT_NETBUF_SMALL,
        Severity::Warning,
        "SMP buffer smaller than one Bluetooth write the MTU allows",
    ),
    (
        smp::BT_NETBUF_SPLIT,
        Severity::Info,
        "reassembled SMP buffer not a whole number of MTU-sized writes",
    ),
    (
        fit::TOO_LARGE,
        Severity::Error,
        "signed image larger than MCUboot accepts in the slot for its mode",
    ),
    (
        signature::TYPE,
        Severity::Error,
        "image signature type differs from MCUboot's CONFIG_BOOT_SIGNATURE_TYPE_*",
    ),
    (
        signature::KEY,
        Severity::Error,
        "image not signed by (or not naming) MCUboot's key",
    ),
    (
        nsib::COUNTER_SLOTS,
        Severity::Error,
        "CONFIG_SB_NUM_VER_COUNTER_SLOTS differs between images",
    ),
    (
        nsib::NO_S1,
        Severity::Warning,
        "NSIB with MCUboot but no s1 variant: MCUboot cannot be updated",
    ),
    (
        nsib::UPDATE_MISSING,
        Severity::Warning,
        "s1 variant built but no MCUboot update image found",
    ),
    (
        pm_text::UNALIGNED,
        Severity::Error,
        "an MCUboot slot off the chip's erase boundaries (layout refused)",
    ),
    (
        pm_text::BEYOND_FLASH,
        Severity::Error,
        "a partition past the end of the chip's flash (layout refused)",
    ),
    (
        LAYOUT_UNREADABLE,
        Severity::Error,
        "the build's flash layout could not be read (exit 96)",
    ),
    (
        IMAGE_UNREADABLE,
        Severity::Warning,
        "a signed image of the build could not be read",
    ),
];

/// The layout could not be read: reported as a finding so the other checks still run, and the
/// command exits 96 (unreadable input) rather than 100.
pub const LAYOUT_UNREADABLE: &str = "layout-unreadable";
/// An image listed by the build could not be read or parsed.
pub const IMAGE_UNREADABLE: &str = "image-unreadable";

/// What `doctor` found in one build.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `dfu-hil-doctor/1`: bumped when a field changes meaning.
    pub schema: &'static str,
    pub build_dir: String,
    /// `sysbuild`, `parent-child` or `plain-zephyr`.
    pub kind: &'static str,
    pub findings: Vec<Finding>,
}

/// The JSON schema tag of [`Report`].
pub const SCHEMA: &str = "dfu-hil-doctor/1";

/// How the CLI should end after a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No finding of severity error.
    Clean,
    /// At least one error finding.
    Errors,
    /// Part of the input could not be read (the layout).
    Unreadable,
}

impl Report {
    pub fn has(&self, id: &str) -> bool {
        self.findings.iter().any(|f| f.id == id)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn verdict(&self) -> Verdict {
        if self.has(LAYOUT_UNREADABLE) {
            Verdict::Unreadable
        } else if self.count(Severity::Error) > 0 {
            Verdict::Errors
        } else {
            Verdict::Clean
        }
    }

    /// Console text: findings grouped by severity (errors first), each with cause, evidence and
    /// fix, then a one-line summary.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "doctor: {} ({})", self.build_dir, self.kind);
        for sev in [Severity::Error, Severity::Warning, Severity::Info] {
            let group: Vec<&Finding> = self.findings.iter().filter(|f| f.severity == sev).collect();
            if group.is_empty() {
                continue;
            }
            let heading = match sev {
                Severity::Error => "errors",
                Severity::Warning => "warnings",
                Severity::Info => "notes",
            };
            let _ = writeln!(s, "\n{heading} ({}):", group.len());
            for f in group {
                let _ = writeln!(s, "\n  {sev}[{}]: {}", f.id, f.title);
                let _ = writeln!(s, "    cause: {}", f.cause);
                for e in &f.evidence {
                    let _ = writeln!(s, "    at {}: {}", e.at(), e.text);
                }
                let _ = writeln!(s, "    fix: {}", f.fix);
            }
        }
        let _ = writeln!(
            s,
            "\n{} error(s), {} warning(s), {} note(s)",
            self.count(Severity::Error),
            self.count(Severity::Warning),
            self.count(Severity::Info)
        );
        s
    }
}

/// The name of a build kind in reports.
pub fn kind_name(kind: BuildKind) -> &'static str {
    match kind {
        BuildKind::Sysbuild => "sysbuild",
        BuildKind::ParentChild => "parent-child",
        BuildKind::PlainZephyr => "plain-zephyr",
    }
}

/// A signed image of the build with its bytes, for the checks that look inside images.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub image: BuildImage,
    pub bytes: Vec<u8>,
}

/// Check `build`: read its layout and images, then run every check.
pub fn run(build: &Build) -> Report {
    let mut findings = Vec::new();
    let (layout, layout_error) = match build.layout() {
        Ok(l) => (Some(l), None),
        Err(e) => {
            // A refusal that is a defect of the build is reported as that defect (exit 100);
            // anything else means the input could not be read (exit 96).
            findings.extend(
                partitions_yml(build)
                    .map(|pm| pm_text::check(build, pm))
                    .unwrap_or_default(),
            );
            (None, Some(e))
        }
    };
    let mut images = Vec::new();
    for image in &build.images {
        if image.role == ImageRole::Merged {
            continue;
        }
        match build.image_bytes(image) {
            Ok(bytes) => images.push(LoadedImage {
                image: image.clone(),
                bytes,
            }),
            Err(e) => findings.push(Finding {
                id: IMAGE_UNREADABLE,
                severity: Severity::Warning,
                title: format!("image {} could not be read", image_label(image)),
                cause: format!("the checks that look inside signed images skip it: {e}"),
                evidence: vec![Evidence::new(&image.path, None, e.to_string())],
                fix: "rebuild, or point doctor at the build directory west wrote".into(),
            }),
        }
    }
    findings.extend(check(build, layout.as_ref(), &images));
    if let Some(e) = layout_error {
        let explained = [
            pm_text::UNALIGNED,
            pm_text::BEYOND_FLASH,
            slots::SECONDARY_EMPTY,
        ];
        let mut any = false;
        for f in findings.iter_mut().filter(|f| explained.contains(&f.id)) {
            f.cause
                .push_str(" (the layout was refused for it: the checks that need it did not run)");
            any = true;
        }
        if !any {
            findings.insert(
                0,
                Finding {
                    id: LAYOUT_UNREADABLE,
                    severity: Severity::Error,
                    title: "the flash layout of the build could not be read".into(),
                    cause: format!(
                        "without the partitions no slot, sector or fit check can run: {e}"
                    ),
                    evidence: partitions_yml(build)
                        .map(|p| vec![Evidence::new(p, None, "refused by the layout import")])
                        .unwrap_or_default(),
                    fix: "fix the file named in the message (or report it if NCS wrote it that \
                          way); the Kconfig checks below ran without it"
                        .into(),
                },
            );
        }
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Report {
        schema: SCHEMA,
        build_dir: build.dir.display().to_string(),
        kind: kind_name(build.kind),
        findings,
    }
}

/// Run every check on facts already read (unit tests call this with built values).
pub fn check(build: &Build, layout: Option<&Layout>, images: &[LoadedImage]) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(layout) = layout {
        slots::max_sectors(build, layout, &mut out);
        slots::external_driver(build, layout, &mut out);
        slots::external_driver_app(build, layout, &mut out);
    }
    slots::secondary_empty(build, layout, &mut out);
    slots::single_slot(build, &mut out);
    slots::serial_recovery_only(build, &mut out);
    header::check_config(build, &mut out);
    header::check_images(build, images, &mut out);
    smp::groups(build, &mut out);
    smp::bt_buffers(build, &mut out);
    if let Some(layout) = layout {
        fit::check_images(build, layout, images, &mut out);
    }
    signature::check_images(build, images, &mut out);
    nsib::counter_slots(build, &mut out);
    nsib::variants(build, &mut out);
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// How an image is named in findings: the file (and zip entry).
pub fn image_label(image: &BuildImage) -> String {
    match &image.entry {
        Some(e) => format!("{}!{e}", image.path.display()),
        None => image.path.display().to_string(),
    }
}

/// The application's partition file (`partitions.yml`) when the build has one.
fn partitions_yml(build: &Build) -> Option<&Path> {
    build.files.get("partitions.yml").map(|p| p.as_path())
}

#[cfg(test)]
mod tests;
