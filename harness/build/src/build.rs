//! [`Build`]: one build directory opened — which layout NCS used, where each image's files are,
//! and the facts read from them. The entry point for `--build DIR`, `build:` in a scenario and
//! `dfu-hil doctor`.

use crate::discover::{self, ImageDir};
use crate::facts::{AppFacts, McubootFacts, NsibFacts, SysbuildFacts};
use crate::images::{self, ImageNumbers};
use crate::kconfig::Kconfig;
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
    /// NCS / Zephyr versions from the app image's generated headers.
    pub versions: crate::versions::BuildVersions,
}

impl Build {
    /// Open `dir` (a build directory, or a project directory holding `build/`): find its layout
    /// ([`crate::discover`]), read every image's `.config` into facts ([`crate::facts`]) and
    /// list its signed images and ELF files ([`crate::images`]).
    pub fn open(dir: &Path) -> Result<Build, BuildError> {
        let d = discover::discover(dir)?;
        let mut files = BTreeMap::new();
        let mut note = |role: &str, p: Option<&Path>| {
            if let Some(p) = p {
                files.insert(role.to_string(), p.to_path_buf());
            }
        };
        note("partitions.yml", d.partitions_yml.as_deref());
        note("regions.yml", d.regions_yml.as_deref());
        note("pm.config", d.pm_config.as_deref());
        note("partitions_CPUNET.yml", d.partitions_cpunet_yml.as_deref());
        note("pm_CPUNET.config", d.pm_cpunet_config.as_deref());
        note("domains.yaml", d.domains_yaml.as_deref());
        note("zephyr.dts", d.dts.as_deref());
        note("sysbuild.config", d.sysbuild_config.as_deref());
        for (role, name) in [
            ("dfu_application.zip", "dfu_application.zip"),
            (
                "dfu_application.zip_manifest.json",
                "dfu_application.zip_manifest.json",
            ),
        ] {
            let found = [
                d.build_dir.join(name),
                d.build_dir.join("zephyr").join(name),
            ]
            .into_iter()
            .find(|p| p.is_file());
            note(role, found.as_deref());
        }
        // The project's own static partition file (the input PM kept to), when beside build/.
        if let Some(project) = &d.project_dir {
            note(
                "pm_static.yml",
                Some(project.join("pm_static.yml").as_path()).filter(|p| p.is_file()),
            );
        }

        let read = |i: Option<&ImageDir>| -> Result<Option<Kconfig>, BuildError> {
            i.map(|i| Kconfig::read(&i.config())).transpose()
        };
        let app_k = read(d.app.as_ref())?;
        let mcuboot_k = read(d.mcuboot.as_ref())?;
        let b0_k = read(d.b0.as_ref())?;
        let s1_k = read(d.s1_image.as_ref())?;
        let net_k = read(d.netcore.as_ref())?;
        let b0n_k = read(d.b0n.as_ref())?;
        let spm_k = read(d.spm.as_ref())?;
        let sb_k = d
            .sysbuild_config
            .as_deref()
            .map(Kconfig::read)
            .transpose()?;
        for (role, k) in [
            ("app.config", &app_k),
            ("mcuboot.config", &mcuboot_k),
            ("b0.config", &b0_k),
            ("s1_image.config", &s1_k),
            ("netcore.config", &net_k),
            ("b0n.config", &b0n_k),
            ("spm.config", &spm_k),
        ] {
            note(role, k.as_ref().map(|k| k.path.as_path()));
        }

        let sysbuild = sb_k.as_ref().map(SysbuildFacts::from_kconfig).transpose()?;
        let mcuboot = mcuboot_k
            .as_ref()
            .map(McubootFacts::from_kconfig)
            .transpose()?;
        let app = app_k.as_ref().map(AppFacts::from_kconfig).transpose()?;
        let netcore = net_k.as_ref().map(AppFacts::from_kconfig).transpose()?;
        let mut with_slots: Vec<(&str, &Kconfig)> = Vec::new();
        for (label, k) in [
            ("mcuboot", &mcuboot_k),
            ("app", &app_k),
            ("s1_image", &s1_k),
            ("netcore", &net_k),
            ("b0n", &b0n_k),
        ] {
            if let Some(k) = k {
                with_slots.push((label, k));
            }
        }
        let nsib = NsibFacts::read(
            b0_k.as_ref(),
            &with_slots,
            sb_k.as_ref(),
            d.s1_image.is_some(),
        )?;

        let numbers = ImageNumbers::from_sysbuild(sysbuild.as_ref(), d.netcore.is_some());
        let (images, elfs) = images::find(&d, &numbers)?;
        let app_name = match d.kind {
            BuildKind::ParentChild => None,
            _ => d
                .app
                .as_ref()
                .filter(|a| a.dir != d.build_dir)
                .map(|a| a.name.clone()),
        };
        let versions = d
            .app
            .as_ref()
            .map(|a| crate::versions::read(&a.zephyr_dir()))
            .unwrap_or_default();
        Ok(Build {
            versions,
            dir: d.build_dir,
            kind: d.kind,
            app_name,
            mcuboot,
            app,
            netcore,
            nsib,
            sysbuild,
            files,
            images,
            elfs,
        })
    }

    /// The chip as the build names it (`CONFIG_SOC` of the app, else of MCUboot or sysbuild).
    pub fn soc(&self) -> Option<String> {
        if let Some(s) = self.app.as_ref().and_then(|a| a.soc.as_ref()) {
            return Some(s.value.clone());
        }
        for role in ["mcuboot.config", "sysbuild.config"] {
            let Some(k) = self.files.get(role).and_then(|p| Kconfig::read(p).ok()) else {
                continue;
            };
            if let Some(s) = k
                .string("CONFIG_SOC")
                .or_else(|| k.string("SB_CONFIG_SOC"))
                .filter(|s| !s.value.is_empty())
            {
                return Some(s.value);
            }
        }
        None
    }

    /// The flash layout: Partition Manager output (or the devicetree partitions of a plain
    /// Zephyr build), with the geometry of the chip and the external device.
    pub fn layout(&self) -> Result<Layout, BuildError> {
        if let Some(partitions) = self.files.get("partitions.yml") {
            let soc = self.soc();
            return crate::pm::import_build(
                partitions,
                self.files.get("regions.yml").map(PathBuf::as_path),
                self.files.get("pm.config").map(PathBuf::as_path),
                soc.as_deref(),
            )
            .map(|i| i.layout)
            .map_err(|e| BuildError::Layout(e.to_string()));
        }
        if let Some(dts) = self.files.get("zephyr.dts") {
            return crate::dts::layout_from_dts(dts).map_err(|e| BuildError::Layout(e.to_string()));
        }
        Err(BuildError::Missing {
            path: self.dir.clone(),
            what: "flash layout (neither partitions.yml nor <app>/zephyr/zephyr.dts)".into(),
            hint: " — build with Partition Manager, or keep zephyr/zephyr.dts".into(),
        })
    }

    /// The bytes of an MCUboot image of the build (from `.bin`, Intel HEX or the zip). Intel
    /// HEX is cut at the primary slot of the image's number (image 0 for `merged.hex`) when the
    /// layout is readable and an image starts there, else at the lowest address holding one.
    pub fn image_bytes(&self, image: &BuildImage) -> Result<Vec<u8>, BuildError> {
        if let Some(entry) = &image.entry {
            return images::archive::read_entry(&image.path, entry);
        }
        let bytes = std::fs::read(&image.path).map_err(|source| BuildError::Io {
            path: image.path.clone(),
            source,
        })?;
        if images::sniff(&image.path, &bytes[..bytes.len().min(64)]) != images::FileKind::IntelHex {
            return Ok(bytes);
        }
        let hex = images::ihex::parse(&image.path, &String::from_utf8_lossy(&bytes))?;
        // A merged hex holds the application at its primary slot (and MCUboot, NSIB, … below
        // it): image 0's slot unless the image has its own number.
        let slot = self.primary_slot_address(image.image_index.unwrap_or(0));
        hex.mcuboot_image(slot)
            .map(|(_, img)| img)
            .ok_or_else(|| BuildError::Missing {
                path: image.path.clone(),
                what: "MCUboot image (no data starts with the magic 0x96f3b83d)".into(),
                hint: String::new(),
            })
    }

    fn primary_slot_address(&self, index: u32) -> Option<u32> {
        let layout = self.layout().ok()?;
        let pair = layout.images.get(usize::try_from(index).ok()?)?;
        let p = layout.partition(&pair.primary)?;
        let dev = layout.device(&p.device)?;
        dev.base.checked_add(p.offset)
    }

    /// The first image of `role`.
    pub fn image(&self, role: &ImageRole) -> Option<&BuildImage> {
        self.images.iter().find(|i| &i.role == role)
    }

    /// NSIB (`b0`) is part of this build. [`Build::nsib`] can be `Some` without it: an image may
    /// set `CONFIG_SB_NUM_VER_COUNTER_SLOTS` (an app with `CONFIG_SECURE_BOOT=y` in a sysbuild
    /// build that has no b0, as in the corpus' npm1300_testground).
    pub fn has_b0(&self) -> bool {
        self.files.contains_key("b0.config")
    }

    /// The project directory (the one holding the build directory).
    pub fn project_dir(&self) -> Option<&Path> {
        self.dir.parent()
    }

    /// MCUboot's signing key file, resolved: absolute as written, else relative to the build's
    /// source tree; `None` when it does not exist on this machine.
    ///
    /// MCUboot's `boot/zephyr/CMakeLists.txt` takes an absolute `CONFIG_BOOT_SIGNATURE_KEY_FILE`
    /// as is, else looks in the directory of MCUboot's configuration and then the MCUboot
    /// repository (the Kconfig help says the same). Neither is known from the build directory
    /// alone, so this tries the project directory, the build directory, and MCUboot in the
    /// west workspace of `$ZEPHYR_BASE` (`$ZEPHYR_BASE/../bootloader/mcuboot`).
    pub fn signing_key(&self) -> Option<PathBuf> {
        let written = self.mcuboot.as_ref()?.key_file.as_ref()?.value.clone();
        self.resolve_key(&written)
    }

    /// NSIB's signing key (`CONFIG_SB_SIGNING_KEY_FILE` / `SB_CONFIG_SECURE_BOOT_SIGNING_KEY_FILE`),
    /// resolved like [`Build::signing_key`].
    pub fn nsib_signing_key(&self) -> Option<PathBuf> {
        let written = self.nsib.as_ref()?.signing_key_file.as_ref()?.value.clone();
        self.resolve_key(&written)
    }

    fn resolve_key(&self, written: &str) -> Option<PathBuf> {
        if written.is_empty() {
            return None;
        }
        let p = Path::new(written);
        if p.is_absolute() || looks_like_windows_absolute(written) {
            return p.is_file().then(|| p.to_path_buf());
        }
        let mut bases: Vec<PathBuf> = Vec::new();
        if let Some(project) = self.project_dir() {
            bases.push(project.to_path_buf());
        }
        bases.push(self.dir.clone());
        if let Some(zb) = std::env::var_os("ZEPHYR_BASE") {
            bases.push(
                PathBuf::from(zb)
                    .join("..")
                    .join("bootloader")
                    .join("mcuboot"),
            );
        }
        bases.into_iter().map(|b| b.join(p)).find(|c| c.is_file())
    }
}

/// `C:/ncs/…` or `D:\…`: absolute on the machine that built it, never relative here.
fn looks_like_windows_absolute(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'/' || b[2] == b'\\')
}
