//! The evidence folder of one scenario run: what a DFU engineer opens when the verdict is not
//! enough — SMP transcript, device log, trailer dumps (raw and decoded), every partition, whole
//! flash images (also at a failing sweep's cut point), fixture hashes, and the layout and
//! scenario files, so the folder alone is enough to boot the state again (`dfu-hil replay`).

pub mod flash_areas;
pub mod flash_image;
pub mod nsib;
pub mod trailers;

pub use flash_image::{capture, DeviceImage, FlashImages};

use crate::fixtures::Built;
use crate::options::RunOptions;
use crate::result::ScenarioResult;
use crate::scenario::BootloaderSpec;
use dfu_hil_board::Probe;
use dfu_hil_mcuboot::layout::Layout;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What evidence is read from after the last step.
pub struct Sources<'a> {
    pub probe: &'a mut dyn Probe,
    pub layout: &'a Layout,
    pub bootloader: &'a BootloaderSpec,
    pub fixtures: &'a BTreeMap<String, Built>,
    /// The flash as it was at a failing sweep's cut point, before the recovery boot.
    pub at_cut: Option<&'a AtCut>,
    /// The build the scenario ran on: `build.txt` says what came from it and what the
    /// simulated board modelled.
    pub from_build: Option<&'a crate::build_input::FromBuild>,
}

/// Subfolder with the images at a failing sweep's cut point.
pub const AT_CUT_DIR: &str = "at-cut";
/// The bootloader settings the trailers were decoded with (mode, alignment, sectors).
pub const BOOTLOADER_FILE: &str = "bootloader.yaml";
/// The probe's core state when the scenario ended, as text (`running`, `fault loop in …`).
pub const CORE_STATE_FILE: &str = "core-state.txt";

/// The board's state at the cut point of a sweep whose recovery failed: read just before the
/// `then` block powered the board on again after the cut.
#[derive(Debug, Clone)]
pub struct AtCut {
    /// `flash operation 12/96 (#12 erase slot0 …)`.
    pub cut: String,
    pub images: FlashImages,
    /// `trailers.txt` of that state.
    pub trailers: String,
    /// The state right after the cut, when steps of the `then` block changed the flash before
    /// its power-on (written to `after-cut/` inside the folder).
    pub after_cut: Option<Box<AtCut>>,
}

impl AtCut {
    /// Read the board as it is now (the state the recovery boot started from).
    pub fn capture(
        probe: &mut dyn Probe,
        layout: &Layout,
        bootloader: &BootloaderSpec,
        cut: String,
    ) -> AtCut {
        let decoded = trailers::decode_all(probe, layout, bootloader);
        let images = flash_image::capture(probe, layout);
        AtCut {
            cut,
            trailers: trailers::text(&decoded, layout) + &nsib::describe(&images, layout),
            images,
            after_cut: None,
        }
    }

    /// `flash.bin`, `flash-<device>.bin`, `README.txt`, `trailers.txt`, `cut.txt` into `dir`.
    pub fn write(&self, dir: &Path, layout: &Layout) -> std::io::Result<()> {
        self.images.write(dir, layout)?;
        write_partitions(dir, &self.images, layout)?;
        std::fs::write(dir.join("trailers.txt"), &self.trailers)?;
        if let Some(a) = &self.after_cut {
            a.write(&dir.join("after-cut"), layout)?;
            std::fs::write(
                dir.join("after-cut").join("cut.txt"),
                format!(
                    "power cut before {}\nthe flash right after the cut; steps before the recovery \
                     boot changed it into the flash one folder up\n",
                    a.cut
                ),
            )?;
        }
        std::fs::write(
            dir.join("cut.txt"),
            format!(
                "power cut before {}\nthis is the flash the failing recovery boot started from (its first \
                 power-on after the cut; the flash right after the cut when it had none)\n",
                self.cut
            ),
        )
    }
}

/// `partition-<name>.bin` for every partition read, and `slot-<name>.bin` for the slots (the
/// names earlier evidence folders used).
fn write_partitions(dir: &Path, images: &FlashImages, layout: &Layout) -> std::io::Result<()> {
    for p in &layout.partitions {
        let Some(bytes) = images.partition(layout, &p.name) else {
            continue;
        };
        let part = dir.join(format!("partition-{}.bin", p.name));
        std::fs::write(&part, bytes)?;
        if layout
            .images
            .iter()
            .any(|i| i.primary == p.name || i.secondary == p.name)
        {
            flash_image::link_or_write(&part, &dir.join(format!("slot-{}.bin", p.name)), bytes)?;
        }
    }
    Ok(())
}

/// The bootloader settings that place trailers, as `bootloader:` keys of a scenario.
fn bootloader_yaml(b: &BootloaderSpec) -> String {
    format!(
        "mode: {}\nmax-align: {}\nmax-sectors: {}\n",
        b.mode.name(),
        b.max_align,
        b.max_sectors
    )
}

/// Folder name: scenario name made safe for a path.
pub fn folder_name(r: &ScenarioResult) -> String {
    bounded_folder_name(&format!("{}--{}", r.board, r.name))
}

/// Longest evidence folder name. File systems refuse names over 255 bytes, and a refused name
/// used to mean no evidence at all; long names keep a readable prefix and a hash of the whole.
const MAX_FOLDER_NAME: usize = 120;

fn bounded_folder_name(full: &str) -> String {
    let safe: String = full
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.len() <= MAX_FOLDER_NAME {
        return safe;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(full.as_bytes());
    let tag = hex::encode(&digest[..6]);
    // `safe` is ASCII, so any byte index is a char boundary.
    format!("{}--{tag}", &safe[..MAX_FOLDER_NAME - tag.len() - 2])
}

pub fn write(
    src: &mut Sources<'_>,
    r: &ScenarioResult,
    opts: &RunOptions,
) -> std::io::Result<PathBuf> {
    let dir = opts.evidence_dir.join(folder_name(r));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("smp-transcript.txt"), &r.transcript)?;
    std::fs::write(dir.join("device.log"), r.device_log.join("\n") + "\n")?;
    std::fs::write(dir.join("link.txt"), format!("{}\n", r.link))?;
    if let Some(n) = flash_areas::note(&r.device_log, src.layout) {
        std::fs::write(dir.join("flash-areas.txt"), n + "\n")?;
    }
    let decoded = trailers::decode_all(src.probe, src.layout, src.bootloader);
    for d in &decoded {
        if let Some(raw) = &d.raw {
            std::fs::write(dir.join(format!("trailer-{}.bin", d.region)), raw)?;
        }
    }
    // Every partition the layout has (scratch, s0/s1, provision, …), and the whole devices:
    // the state a failure analysis starts from.
    let images = flash_image::capture(src.probe, src.layout);
    let text = trailers::text(&decoded, src.layout) + &nsib::describe(&images, src.layout);
    std::fs::write(dir.join("trailers.txt"), text)?;
    write_partitions(&dir, &images, src.layout)?;
    images.write(&dir, src.layout)?;
    // What the run ended on, and what replay needs to boot it again.
    std::fs::write(dir.join("layout.yaml"), src.layout.to_yaml())?;
    std::fs::write(dir.join(BOOTLOADER_FILE), bootloader_yaml(src.bootloader))?;
    if let Some(b) = src.from_build {
        std::fs::write(dir.join("build.txt"), b.describe())?;
    }
    if let Some(cut) = src.at_cut {
        cut.write(&dir.join(AT_CUT_DIR), src.layout)?;
    }
    let core = match src.probe.core_state() {
        Ok(c) => c.to_string(),
        Err(e) => format!("unknown: {e}"),
    };
    std::fs::write(dir.join(CORE_STATE_FILE), core + "\n")?;
    // The exact images used, so a failure can be reproduced byte for byte.
    let images_dir = dir.join("images");
    std::fs::create_dir_all(&images_dir)?;
    for (name, b) in src.fixtures {
        std::fs::write(images_dir.join(format!("{name}.bin")), &b.bytes)?;
    }
    let mut images = String::new();
    for (name, b) in src.fixtures {
        let _ = writeln!(
            images,
            "{name}: {} bytes, file sha256 {}, image hash {}, version {}",
            b.bytes.len(),
            hex::encode(b.file_sha256),
            b.image_hash
                .as_deref()
                .map(hex::encode)
                .unwrap_or_else(|| "-".into()),
            b.version.as_deref().unwrap_or("-")
        );
    }
    std::fs::write(dir.join("images.txt"), images)?;
    let mut steps = String::new();
    for s in &r.steps {
        let _ = writeln!(
            steps,
            "[{:>2}] {} {:<40} {:?} {}",
            s.index,
            s.location(),
            s.summary,
            s.status,
            s.message
        );
        let detail = s.detail();
        if !detail.is_empty() {
            steps.push_str(&detail);
            steps.push('\n');
        }
    }
    std::fs::write(dir.join("steps.txt"), steps)?;
    if let Ok(text) = std::fs::read_to_string(&r.path) {
        std::fs::write(dir.join("scenario.yaml"), text)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod folder_name_tests {
    use super::bounded_folder_name;

    /// Regression (issue #16): a 100 kB scenario name made a folder name the file system
    /// refuses, and the run silently wrote no evidence.
    #[test]
    fn long_names_are_bounded_and_stay_distinct() {
        let a = format!("sim--{}", "x".repeat(100_000));
        let b = format!("sim--{}y", "x".repeat(100_000));
        let (fa, fb) = (bounded_folder_name(&a), bounded_folder_name(&b));
        assert_eq!(fa.len(), 120);
        assert!(fa.starts_with("sim--xxx"), "{fa}");
        assert_ne!(fa, fb);
        assert_eq!(bounded_folder_name("sim--a b/c"), "sim--a_b_c");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(&fa)).unwrap();
    }
}
