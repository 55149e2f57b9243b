//! The evidence folder of one scenario run: what a DFU engineer opens when the verdict is not
//! enough — SMP transcript, device log, trailer dumps (raw and decoded), fixture hashes.

use crate::expect;
use crate::fixtures::Built;
use crate::options::RunOptions;
use crate::result::ScenarioResult;
use crate::scenario::BootloaderSpec;
use dfu_hil_board::Probe;
use dfu_hil_mcuboot::layout::Layout;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// What evidence is read from after the last step.
pub struct Sources<'a> {
    pub probe: &'a mut dyn Probe,
    pub layout: &'a Layout,
    pub bootloader: &'a BootloaderSpec,
    pub fixtures: &'a BTreeMap<String, Built>,
}

/// Longest evidence folder name. File systems refuse names over 255 bytes, and a refused name
/// used to mean no evidence at all; long names keep a readable prefix and a hash of the whole.
const MAX_FOLDER_NAME: usize = 120;

/// Folder name: board and scenario name made safe for a path, at most [`MAX_FOLDER_NAME`]
/// bytes (a longer one is cut and ends in a short hash of the full name, so two long names
/// that share a prefix still get separate folders).
pub fn folder_name(r: &ScenarioResult) -> String {
    bounded_folder_name(&format!("{}--{}", r.board, r.name))
}

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
    let mut decoded = String::new();
    for pair in &src.layout.images {
        for region in [&pair.primary, &pair.secondary] {
            let Some(l) = expect::trailer_layout(src.layout, src.bootloader, region) else {
                continue;
            };
            let (off, len) = l.tail();
            match src.probe.read(region, off, len) {
                Ok(raw) => {
                    std::fs::write(dir.join(format!("trailer-{region}.bin")), &raw)?;
                    match l.decode(&raw) {
                        Ok(t) => {
                            let _ = writeln!(
                                decoded,
                                "{region} (trailer at 0x{:x}, {} bytes): {t}\n  status records written: {}",
                                off,
                                len,
                                t.status_written()
                            );
                        }
                        Err(e) => {
                            let _ = writeln!(decoded, "{region}: {e}");
                        }
                    }
                }
                Err(e) => {
                    let _ = writeln!(decoded, "{region}: unreadable through the probe: {e}");
                }
            }
        }
    }
    std::fs::write(dir.join("trailers.txt"), decoded)?;
    // Whole slot dumps, as the probe reads them (what a failure analysis starts from).
    for pair in &src.layout.images {
        for region in [&pair.primary, &pair.secondary] {
            if let Ok(size) = src.probe.region_size(region) {
                if let Ok(raw) = src.probe.read(region, 0, size) {
                    std::fs::write(dir.join(format!("slot-{region}.bin")), raw)?;
                }
            }
        }
    }
    let core = match src.probe.core_state() {
        Ok(c) => c.to_string(),
        Err(e) => format!("unknown: {e}"),
    };
    std::fs::write(dir.join("core-state.txt"), core + "\n")?;
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
mod tests {
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
