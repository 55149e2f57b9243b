//! [`Build`]: one build directory opened — which layout NCS used, where each image's files are,
//! and the facts read from them. The entry point for `--build DIR`, `build:` in a scenario and
//! `dfu-hil doctor`.

use crate::facts::{AppFacts, McubootFacts, NsibFacts, SysbuildFacts};
use dfu_hil_mcuboot::layout::Layout;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How the build directory is organised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildKind {
    /// NCS ≥ 2.7 / Zephyr sysbuild: `build/<app>/zephyr/`, `build/mcuboot/zephyr/`,
    /// `build/zephyr/.config` holds `SB_CONFIG_*`.
    Sysbuild,
    /// NCS < 2.7 parent/child images: the app in `build/zephyr/`, children in
    /// `build/mcuboot/zephyr/`, `build/hci_rpmsg/…`.
    ParentChild,
    /// Zephyr without Partition Manager: partitions from the devicetree (`zephyr/zephyr.dts`).
    PlainZephyr,
}

/// What a signed image of the build is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImageRole {
    /// The application, signed for its primary slot (`zephyr.signed.bin|hex`, `<app>.signed.bin`).
    App,
    /// The application update (`app_update.bin`; identical to the signed app in NCS).
    AppUpdate,
    /// The nRF5340 network core update (`net_core_app_update.bin`, `signed_by_b0_*`…).
    NetCore,
    /// MCUboot itself as an MCUboot update for NSIB slot s0 or s1
    /// (`signed_by_mcuboot_and_b0_mcuboot.bin`, `…_s1_image.bin`, older `…_s0_image_update.bin`).
    McubootUpdate { nsib_slot: u8 },
    /// Everything together (`merged.hex`, `merged_domains.hex`): not an MCUboot image.
    Merged,
}

/// One image file found in the build directory, or an entry of `dfu_application.zip`.
#[derive(Debug, Clone)]
pub struct BuildImage {
    pub role: ImageRole,
    /// The file (for a zip entry: the zip, with `entry` set).
    pub path: PathBuf,
    pub entry: Option<String>,
    /// MCUboot image number from the zip manifest or the build's sysbuild numbering.
    pub image_index: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a Zephyr / nRF Connect SDK build directory: {reason}")]
    NotABuild { path: PathBuf, reason: String },
    /// A file of the build is malformed; `at` is the file with `:line[:col]` or `@offset`.
    #[error("{at}: {message}")]
    Malformed { at: String, message: String },
    #[error("{path}: the build has no {what}{hint}")]
    Missing {
        path: PathBuf,
        what: String,
        hint: String,
    },
    #[error("{0}")]
    Layout(String),
}

/// A build directory, opened and read.
#[derive(Debug, Clone)]
pub struct Build {
    pub dir: PathBuf,
    pub kind: BuildKind,
    /// The application's image name in a sysbuild build (`build/<app>/`), e.g. `peripheral_lbs`.
    pub app_name: Option<String>,
    pub mcuboot: Option<McubootFacts>,
    pub app: Option<AppFacts>,
    /// The nRF5340 network-core image's facts.
    pub netcore: Option<AppFacts>,
    pub nsib: Option<NsibFacts>,
    pub sysbuild: Option<SysbuildFacts>,
    /// Files a fact or the layout was read from, by role (`partitions.yml`, `pm.config`,
    /// `regions.yml`, `zephyr.dts`, `dfu_application.zip`, …).
    pub files: BTreeMap<String, PathBuf>,
    pub images: Vec<BuildImage>,
    /// ELF files by label (`app`, `mcuboot`, `b0`, `netcore`).
    pub elfs: BTreeMap<String, PathBuf>,
}

impl Build {
    /// Open `dir` (a build directory, or a project directory holding `build/`).
    pub fn open(dir: &Path) -> Result<Build, BuildError> {
        Err(BuildError::NotABuild {
            path: dir.to_path_buf(),
            reason: "build directories are not read yet".into(),
        })
    }

    /// The flash layout: Partition Manager output (or the devicetree partitions of a plain
    /// Zephyr build), with the geometry of the chip and the external device.
    pub fn layout(&self) -> Result<Layout, BuildError> {
        Err(BuildError::Layout("not read yet".into()))
    }

    /// The bytes of an MCUboot image of the build (from `.bin`, Intel HEX or the zip).
    pub fn image_bytes(&self, image: &BuildImage) -> Result<Vec<u8>, BuildError> {
        Err(BuildError::Missing {
            path: image.path.clone(),
            what: "image reader".into(),
            hint: String::new(),
        })
    }

    /// The first image of `role`.
    pub fn image(&self, role: &ImageRole) -> Option<&BuildImage> {
        self.images.iter().find(|i| &i.role == role)
    }

    /// MCUboot's signing key file, resolved: absolute as written, else relative to the build's
    /// source tree; `None` when it does not exist on this machine.
    pub fn signing_key(&self) -> Option<PathBuf> {
        None
    }
}
