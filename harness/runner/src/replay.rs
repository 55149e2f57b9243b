//! Booting an evidence folder's flash again (`dfu-hil replay`): so a failure a nightly run
//! found can be stepped through on a desk. The folder holds everything needed — the layout,
//! the bootloader settings the trailers are decoded with, the whole-flash image (also as it
//! was at a failing sweep's cut point) and the core state the run ended in, which the replayed
//! boot is compared with.
//!
//! The board is the caller's (the simulated board, or native-sim executables given a copy of
//! `flash.bin` as their flash file): this module reads the folder, boots the board once and
//! says what happened.

use crate::evidence::{trailers, AT_CUT_DIR, BOOTLOADER_FILE, CORE_STATE_FILE};
use crate::scenario::BootloaderSpec;
use dfu_hil_board::{BoardError, CoreState, Probe, ResetKind};
use dfu_hil_mcuboot::layout::{Layout, LayoutError};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why an evidence folder cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{dir}: not an evidence folder with a flash image (no {missing}; folders written before flash images were kept cannot be replayed)")]
    NotEvidence { dir: PathBuf, missing: String },
    #[error("{0}")]
    Layout(#[from] LayoutError),
    #[error("{path}: {message}")]
    Bootloader { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("replay board: {0}")]
    Board(#[from] BoardError),
}

/// What an evidence folder says about the state to replay.
#[derive(Debug, Clone)]
pub struct EvidenceFolder {
    pub dir: PathBuf,
    pub layout: Layout,
    pub bootloader: BootloaderSpec,
    /// The whole-flash image to boot: `flash.bin`, or `at-cut/flash.bin`.
    pub flash: PathBuf,
    pub at_cut: bool,
    /// `core-state.txt`: how the recorded run ended (`None` when the folder has none).
    pub recorded_core: Option<String>,
    /// The fixture images the run used (`images/<name>.bin`), to name what is in each slot.
    pub images: Vec<(String, Vec<u8>)>,
}

/// Read an evidence folder; with `at_cut`, the state at a failing sweep's cut point.
pub fn open_folder(dir: &Path, at_cut: bool) -> Result<EvidenceFolder, ReplayError> {
    let need = |rel: &str| -> Result<PathBuf, ReplayError> {
        let p = dir.join(rel);
        if p.is_file() {
            Ok(p)
        } else {
            Err(ReplayError::NotEvidence {
                dir: dir.to_owned(),
                missing: rel.to_owned(),
            })
        }
    };
    let layout = Layout::load(&need("layout.yaml")?)?;
    let boot_path = need(BOOTLOADER_FILE)?;
    let text = read_text(&boot_path)?;
    let bootloader: BootloaderSpec =
        serde_saphyr::from_str(&text).map_err(|e| ReplayError::Bootloader {
            path: boot_path.clone(),
            message: e.to_string(),
        })?;
    let flash = if at_cut {
        need(&format!("{AT_CUT_DIR}/flash.bin")).map_err(|_| ReplayError::NotEvidence {
            dir: dir.to_owned(),
            missing: format!(
                "{AT_CUT_DIR}/flash.bin: only a failing power-cut sweep leaves the flash at its cut point"
            ),
        })?
    } else {
        need("flash.bin")?
    };
    let recorded_core = std::fs::read_to_string(dir.join(CORE_STATE_FILE))
        .ok()
        .map(|s| s.trim().to_owned());
    let mut images = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("images")) {
        for e in entries.flatten() {
            let p = e.path();
            let (Some(stem), Ok(bytes)) = (p.file_stem(), std::fs::read(&p)) else {
                continue;
            };
            if !bytes.is_empty() {
                images.push((stem.to_string_lossy().into_owned(), bytes));
            }
        }
    }
    images.sort();
    Ok(EvidenceFolder {
        dir: dir.to_owned(),
        layout,
        bootloader,
        flash,
        at_cut,
        recorded_core,
        images,
    })
}

fn read_text(p: &Path) -> Result<String, ReplayError> {
    std::fs::read_to_string(p).map_err(|source| ReplayError::Io {
        path: p.to_owned(),
        source,
    })
}

/// What one replayed boot did.
#[derive(Debug, Clone)]
pub struct Replay {
    pub core: CoreState,
    /// The reset itself failed: the bootloader did not hand over (native-sim), with why.
    pub boot_error: Option<String>,
    /// The image that runs (its fixture name when known), when the core runs.
    pub running: Option<String>,
    /// `(slot, what is in it)` for every MCUboot slot after the boot.
    pub slots: Vec<(String, String)>,
    /// The decoded trailers after the boot (as in `trailers.txt`).
    pub trailers: String,
    /// The device log of the boot.
    pub log: Vec<String>,
}

/// How a boot ended, comparable across board kinds (the simulated board names MCUboot's
/// panic loop; a native_sim MCUboot that spins is killed and reported as not handing over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The application runs.
    App,
    /// The CPU never reached the application: fault loop, lock-up, bootloader spinning.
    Stuck,
    Halted,
    Off,
}

impl Outcome {
    /// The outcome a recorded `core-state.txt` line stands for (`None`: `unknown: …`).
    pub fn of_recorded(core: &str) -> Option<Outcome> {
        let core = core.trim();
        if core == "running" {
            Some(Outcome::App)
        } else if core.starts_with("fault loop") || core == "locked up" {
            Some(Outcome::Stuck)
        } else if core == "halted" {
            Some(Outcome::Halted)
        } else if core == "off" {
            Some(Outcome::Off)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::App => "the application runs",
            Outcome::Stuck => "stuck before the application",
            Outcome::Halted => "halted",
            Outcome::Off => "off",
        })
    }
}

/// Power the board on once (its flash already holds the folder's image) and read what it did.
pub fn boot_once(probe: &mut dyn Probe, folder: &EvidenceFolder) -> Result<Replay, ReplayError> {
    // A native_sim MCUboot that never hands over fails the reset (it is killed after its
    // timeout): that is the boot's outcome, not a broken board.
    let boot_error = probe.reset(ResetKind::Run).err().map(|e| e.to_string());
    let core = probe.core_state()?;
    if let (Some(e), CoreState::Running) = (&boot_error, &core) {
        return Err(ReplayError::Board(BoardError::Probe(format!(
            "the reset failed ({e}) yet the core runs"
        ))));
    }
    let log = probe.take_log();
    let mut slots = Vec::new();
    for pair in &folder.layout.images {
        for region in [&pair.primary, &pair.secondary] {
            slots.push((region.clone(), slot_content(probe, folder, region)));
        }
    }
    // Swap modes run the image in the (first) primary slot; direct-xip picks one itself.
    let running = match (&core, folder.layout.images.first()) {
        (CoreState::Running, Some(pair)) => slots
            .iter()
            .find(|(r, _)| *r == pair.primary)
            .map(|(r, what)| format!("{what} in {r}")),
        _ => None,
    };
    let decoded = trailers::decode_all(probe, &folder.layout, &folder.bootloader);
    Ok(Replay {
        core,
        boot_error,
        running,
        slots,
        trailers: trailers::text(&decoded, &folder.layout),
        log,
    })
}

/// Which of the folder's fixture images a slot holds, or that it is erased / unknown.
fn slot_content(probe: &mut dyn Probe, folder: &EvidenceFolder, region: &str) -> String {
    let Ok(size) = probe.region_size(region) else {
        return "unreadable".into();
    };
    for (name, bytes) in &folder.images {
        let Ok(len) = u32::try_from(bytes.len()) else {
            continue;
        };
        if len > size {
            continue;
        }
        if probe.read(region, 0, len).is_ok_and(|b| b == *bytes) {
            return name.clone();
        }
    }
    let erased = folder
        .layout
        .partition(region)
        .map(|p| folder.layout.device_of(p).erased);
    match probe.read(region, 0, 32.min(size)) {
        Ok(head) if !head.is_empty() && head.iter().all(|b| Some(*b) == erased) => {
            "erased (header)".into()
        }
        Ok(_) => "no image of this run (partly swapped or foreign)".into(),
        Err(e) => format!("unreadable ({e})"),
    }
}

impl Replay {
    /// How this boot ended, in the terms two boards can share.
    pub fn outcome(&self) -> Outcome {
        if self.boot_error.is_some() {
            return Outcome::Stuck;
        }
        match self.core {
            CoreState::Running => Outcome::App,
            CoreState::FaultLoop { .. } | CoreState::LockedUp => Outcome::Stuck,
            CoreState::Halted => Outcome::Halted,
            CoreState::Off => Outcome::Off,
        }
    }

    /// Whether the replayed boot ended as the recorded run did: the same core state, or (on
    /// another board kind, whose words differ) the same outcome. `None` without a record.
    pub fn reproduced(&self, folder: &EvidenceFolder) -> Option<bool> {
        let rec = folder.recorded_core.as_deref()?;
        Some(rec == self.core.to_string() || Outcome::of_recorded(rec) == Some(self.outcome()))
    }

    /// The report `dfu-hil replay` prints.
    pub fn report(&self, folder: &EvidenceFolder) -> String {
        let mut s = String::new();
        let from = if folder.at_cut {
            format!("{AT_CUT_DIR}/flash.bin (the flash at the failing cut point)")
        } else {
            "flash.bin (the flash when the scenario ended)".into()
        };
        let _ = writeln!(s, "replayed {} from {from}", folder.dir.display());
        let what = match &self.core {
            CoreState::Running => "the application runs",
            CoreState::FaultLoop { .. } | CoreState::LockedUp => "the CPU is stuck",
            CoreState::Halted => "the CPU is halted",
            CoreState::Off => "the board is off",
        };
        let _ = writeln!(s, "core:     {} ({what})", self.core);
        if let Some(e) = &self.boot_error {
            let _ = writeln!(s, "boot:     the bootloader did not hand over: {e}");
        }
        if let Some(r) = &self.running {
            let _ = writeln!(s, "running:  {r}");
        }
        for (slot, what) in &self.slots {
            let _ = writeln!(s, "{slot:<9} {what}");
        }
        s.push_str("trailers after the boot:\n");
        for l in self.trailers.lines() {
            let _ = writeln!(s, "  {l}");
        }
        if !self.log.is_empty() {
            s.push_str("device log:\n");
            for l in &self.log {
                let _ = writeln!(s, "  {l}");
            }
        }
        match (&folder.recorded_core, self.reproduced(folder)) {
            (Some(rec), Some(true)) if *rec == self.core.to_string() => {
                let _ = writeln!(
                    s,
                    "reproduced: the recorded run also ended with core `{rec}`"
                );
            }
            (Some(rec), Some(true)) => {
                let _ = writeln!(
                    s,
                    "reproduced: {} as in the recorded run (core `{rec}` there)",
                    self.outcome()
                );
            }
            (Some(rec), _) => {
                let _ = writeln!(
                    s,
                    "DIFFERENT: the recorded run ended with core `{rec}`, this boot with `{}`",
                    self.core
                );
            }
            (None, _) => {
                let _ = writeln!(
                    s,
                    "no {CORE_STATE_FILE} in the folder: nothing to compare with"
                );
            }
        }
        s
    }
}
