//! Partition Manager files read faithfully (`partitions.yml`, `pm_static.yml`, `regions.yml`,
//! `pm.config`) and turned into a harness [`Layout`].
//!
//! - [`yaml`]: the map itself, entries with their lines (`span`, anchors, flow style).
//! - [`regions`]: `regions.yml` (region bases and sizes).
//! - [`config`]: `pm.config` (partition IDs).
//! - [`flatten`]: entries → flash devices and non-overlapping partitions, image pairs, notes.
//! - [`sniff`]: what a file is, from its content (not its name).

pub mod config;
pub mod flatten;
pub mod regions;
pub mod sniff;
pub mod yaml;

use crate::chip::Chip;
use dfu_hil_mcuboot::layout::Layout;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PmError {
    /// `at` is `file:line[:col]`; `partition` names the entry when there is one.
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A Partition Manager map turned into a harness layout.
#[derive(Debug, Clone)]
pub struct PmImport {
    pub layout: Layout,
    /// `PM_<NAME>_ID` from `pm.config` (flash area IDs), by PM partition name.
    pub ids: BTreeMap<String, u32>,
    /// A `pm_static.yml` that pins only some partitions (no slots, no app): the layout holds
    /// what is pinned and `missing` says what a complete map would have.
    pub partial: bool,
    pub missing: Vec<String>,
    /// Things read but not modelled, said rather than dropped (e.g. `otp`, `pcd_sram`).
    pub notes: Vec<String>,
    /// The chip whose geometry the internal flash got, and whether it was assumed (no SoC given).
    pub chip: &'static Chip,
    pub chip_assumed: bool,
}

impl PmImport {
    /// What a build's `partitions.yml` is: not partial, at least one image pair, no half pair.
    pub fn is_complete(&self) -> bool {
        !self.partial && self.missing.is_empty()
    }

    /// Enough for a scenario: every slot pair it can name is there (`missing` is empty), even
    /// if the file pins only part of the flash.
    pub fn is_usable(&self) -> bool {
        self.missing.is_empty()
    }
}

/// How to read a map beyond its own text.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Layout name (default: the file stem).
    pub name: Option<String>,
    /// `CONFIG_SOC` in any spelling ([`crate::chip::lookup`]); `None`: [`crate::chip::DEFAULT`]
    /// is assumed and a note says so.
    pub soc: Option<String>,
    pub regions: Option<regions::Regions>,
    /// The file `regions` came from (for notes).
    pub regions_file: Option<PathBuf>,
    pub pm_config: Option<config::PmConfig>,
    pub pm_config_file: Option<PathBuf>,
    /// Where the harness places the external flash device (a harness-local base: PM addresses
    /// on `external_flash` are device offsets).
    pub external_base: u32,
}

fn read_text(path: &Path) -> Result<String, PmError> {
    let bytes = std::fs::read(path).map_err(|source| PmError::Io {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| PmError::Invalid {
        at: path.display().to_string(),
        message: format!(
            "not UTF-8 text: invalid byte at byte offset {}",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Import a map from its text; `path` names it in errors and gives the default layout name.
pub fn import_text(text: &str, path: &Path, opts: &ImportOptions) -> Result<PmImport, PmError> {
    match sniff::sniff(text) {
        sniff::FileKind::Regions => {
            return Err(PmError::Invalid {
                at: path.display().to_string(),
                message: "this is a regions.yml (memory regions), not a partition map: give the \
                          build's partitions.yml (regions.yml beside it is read too)"
                    .into(),
            })
        }
        sniff::FileKind::PmConfig => {
            return Err(PmError::Invalid {
                at: path.display().to_string(),
                message: "this is a pm.config (PM_* lines), not a partition map: give the \
                          build's partitions.yml (pm.config beside it is read too)"
                    .into(),
            })
        }
        sniff::FileKind::Layout => {
            return Err(PmError::Invalid {
                at: path.display().to_string(),
                message: "this is already a dfu-hil layout (flash:/partitions:), not a \
                          Partition Manager map"
                    .into(),
            })
        }
        _ => {}
    }
    let entries = yaml::read_map(text, path)?;
    flatten::flatten(&entries, path, opts)
}

/// Import a map file; `regions.yml` and `pm.config` beside it are read when `opts` has none
/// (a note names them), so `pm import build/partitions.yml` gets the build's regions and IDs.
pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<PmImport, PmError> {
    let text = read_text(path)?;
    let mut opts = opts.clone();
    let dir = path.parent().unwrap_or(Path::new("."));
    if opts.regions.is_none() {
        let r = dir.join("regions.yml");
        if r.is_file() && r != path {
            opts.regions = Some(regions::read_regions(&read_text(&r)?, &r)?);
            opts.regions_file = Some(r);
        }
    }
    if opts.pm_config.is_none() {
        let c = dir.join("pm.config");
        if c.is_file() {
            opts.pm_config = Some(config::read_pm_config(&read_text(&c)?, &c)?);
            opts.pm_config_file = Some(c);
        }
    }
    import_text(&text, path, &opts)
}

/// Import a build's Partition Manager output. `soc` is `CONFIG_SOC` (any spelling NCS used) and
/// gives the internal flash geometry; `regions_yml` and `pm_config` are read when present.
pub fn import_build(
    partitions_yml: &Path,
    regions_yml: Option<&Path>,
    pm_config: Option<&Path>,
    soc: Option<&str>,
) -> Result<PmImport, PmError> {
    let mut opts = ImportOptions {
        soc: soc.map(str::to_string),
        ..Default::default()
    };
    if let Some(r) = regions_yml {
        opts.regions = Some(regions::read_regions(&read_text(r)?, r)?);
        opts.regions_file = Some(r.to_owned());
    }
    if let Some(c) = pm_config {
        opts.pm_config = Some(config::read_pm_config(&read_text(c)?, c)?);
        opts.pm_config_file = Some(c.to_owned());
    }
    let text = read_text(partitions_yml)?;
    import_text(&text, partitions_yml, &opts)
}
