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

/// Folder name: scenario name made safe for a path.
pub fn folder_name(r: &ScenarioResult) -> String {
    format!("{}--{}", r.board, r.name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
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
