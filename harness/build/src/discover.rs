//! Which layout a build directory has and where each image's files are, found from the files
//! themselves (nothing is guessed from the directory's name).
//!
//! The three layouts NCS and Zephyr have written:
//!
//! - **Sysbuild** (Zephyr `share/sysbuild`, NCS ≥ 2.7 by default): `build/zephyr/.config` is
//!   sysbuild's own configuration (`SB_CONFIG_*`), every image builds in `build/<image>/`
//!   (`zephyr/.config` inside), `build/domains.yaml` names the default image (the application).
//!   MCUboot is `build/mcuboot/`, NSIB `build/b0/`, its s1 MCUboot variant `build/s1_image/`,
//!   the nRF5340 network core `build/<SB_CONFIG_NETCORE_IMAGE_NAME>/` (`ipc_radio`, `hci_ipc`,
//!   …) and its NSIB `build/b0n/`. Partition Manager writes `build/partitions.yml`.
//! - **Parent/child images** (NCS < 2.7, `nrf/cmake/multi_image.cmake`): `build/zephyr/.config`
//!   is the application; children are `build/mcuboot/`, `build/b0/`, `build/s1_image/`,
//!   `build/spm/`, and the network core `build/hci_rpmsg/` (or another child) with its NSIB in
//!   `build/<netcore>/b0n/` and its PM output `build/<netcore>/partitions_CPUNET.yml`.
//! - **Plain Zephyr** without Partition Manager (sysbuild or not): no `partitions.yml`; the
//!   flash partitions are in the devicetree (`<image>/zephyr/zephyr.dts`).

use crate::build::{BuildError, BuildKind};
use crate::kconfig::Kconfig;
use std::path::{Path, PathBuf};

/// Image directories that are never the application: sysbuild's and multi-image's other
/// images (NCS `sysbuild/CMakeLists.txt`, `subsys/bootloader/`, `subsys/spm/`, TF-M).
const NOT_THE_APP: [&str; 8] = [
    "mcuboot", "b0", "b0n", "s1_image", "spm", "tfm", "zephyr", "modules",
];

/// Network-core images NCS has shipped (`SB_CONFIG_NETCORE_*` choices and the older child
/// images); any other image whose `.config` says `CONFIG_SOC_NRF5340_CPUNET` is one too.
const NETCORE_NAMES: [&str; 7] = [
    "ipc_radio",
    "hci_ipc",
    "hci_rpmsg",
    "empty_net_core",
    "multiprotocol_rpmsg",
    "802154_rpmsg",
    "rpc_host",
];

/// One image of the build: its name and the directory that holds `zephyr/.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDir {
    pub name: String,
    pub dir: PathBuf,
}

impl ImageDir {
    pub fn config(&self) -> PathBuf {
        self.dir.join("zephyr").join(".config")
    }
    pub fn zephyr_dir(&self) -> PathBuf {
        self.dir.join("zephyr")
    }
}

/// Where everything is in one build directory.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The build directory (`…/build`).
    pub build_dir: PathBuf,
    /// The directory holding the build directory (the project, usually): relative key files
    /// are looked up there.
    pub project_dir: Option<PathBuf>,
    pub kind: BuildKind,
    /// Sysbuild's own `.config` (`build/zephyr/.config` holding `SB_CONFIG_*`).
    pub sysbuild_config: Option<PathBuf>,
    /// The application (sysbuild: `build/<app>`; parent/child and plain: `build`).
    pub app: Option<ImageDir>,
    pub mcuboot: Option<ImageDir>,
    pub b0: Option<ImageDir>,
    pub s1_image: Option<ImageDir>,
    pub spm: Option<ImageDir>,
    pub netcore: Option<ImageDir>,
    pub b0n: Option<ImageDir>,
    /// Partition Manager's outputs and the devicetree, where present.
    pub partitions_yml: Option<PathBuf>,
    pub regions_yml: Option<PathBuf>,
    pub pm_config: Option<PathBuf>,
    pub partitions_cpunet_yml: Option<PathBuf>,
    pub pm_cpunet_config: Option<PathBuf>,
    pub domains_yaml: Option<PathBuf>,
    /// The application's `zephyr.dts` (plain Zephyr builds take the layout from it).
    pub dts: Option<PathBuf>,
}

/// The marks of a build directory: any of these makes `dir` one.
fn looks_like_build(dir: &Path) -> bool {
    dir.join("zephyr").join(".config").is_file()
        || dir.join("partitions.yml").is_file()
        || dir.join("domains.yaml").is_file()
        || dir.join("CMakeCache.txt").is_file()
}

/// Find the build directory: `dir` itself, `dir/build` when `dir` is a project, or the parent
/// when `dir` is one image directory of a sysbuild build (`build/<app>`).
pub fn find_build_dir(dir: &Path) -> Result<PathBuf, BuildError> {
    if !dir.is_dir() {
        return Err(BuildError::NotABuild {
            path: dir.to_path_buf(),
            reason: if dir.exists() {
                "not a directory".into()
            } else {
                "no such directory".into()
            },
        });
    }
    if looks_like_build(dir) {
        // One image of a sysbuild build (`build/<app>`): the build is its parent.
        if let Some(parent) = dir.parent().filter(|p| p.join("domains.yaml").is_file()) {
            if !dir.join("domains.yaml").is_file() {
                return Ok(parent.to_path_buf());
            }
        }
        return Ok(dir.to_path_buf());
    }
    let nested = dir.join("build");
    if looks_like_build(&nested) {
        return Ok(nested);
    }
    Err(BuildError::NotABuild {
        path: dir.to_path_buf(),
        reason: "found neither zephyr/.config, partitions.yml nor domains.yaml here or in build/"
            .into(),
    })
}

/// Discover the layout of the build at `dir` (a build directory or a project holding `build/`).
pub fn discover(dir: &Path) -> Result<Discovered, BuildError> {
    let build_dir = find_build_dir(dir)?;
    let project_dir = build_dir.parent().map(Path::to_path_buf);
    let top_config = build_dir.join("zephyr").join(".config");
    let top = if top_config.is_file() {
        Some(Kconfig::read(&top_config)?)
    } else {
        None
    };
    let sysbuild = top.as_ref().is_some_and(Kconfig::is_sysbuild)
        || (top.is_none() && build_dir.join("domains.yaml").is_file());
    let file = |name: &str| Some(build_dir.join(name)).filter(|p| p.is_file());
    let image = |name: &str, dir: PathBuf| {
        Some(ImageDir {
            name: name.to_string(),
            dir,
        })
        .filter(|i| i.config().is_file())
    };

    let mut layout = Discovered {
        build_dir: build_dir.clone(),
        project_dir,
        kind: BuildKind::ParentChild,
        sysbuild_config: None,
        app: None,
        mcuboot: image("mcuboot", build_dir.join("mcuboot")),
        b0: image("b0", build_dir.join("b0")),
        s1_image: image("s1_image", build_dir.join("s1_image")),
        spm: image("spm", build_dir.join("spm")),
        netcore: None,
        b0n: image("b0n", build_dir.join("b0n")),
        partitions_yml: file("partitions.yml"),
        regions_yml: file("regions.yml"),
        pm_config: file("pm.config"),
        partitions_cpunet_yml: file("partitions_CPUNET.yml"),
        pm_cpunet_config: file("pm_CPUNET.config"),
        domains_yaml: file("domains.yaml"),
        dts: None,
    };

    let subdirs = image_subdirs(&build_dir);
    let netcore_hint = top
        .as_ref()
        .and_then(|k| k.string("SB_CONFIG_NETCORE_IMAGE_NAME"))
        .map(|f| f.value);
    layout.netcore = find_netcore(&subdirs, netcore_hint.as_deref())?;
    if let Some(net) = &layout.netcore {
        // Older builds keep the network core's NSIB and PM output inside its child directory.
        if layout.b0n.is_none() {
            layout.b0n = image("b0n", net.dir.join("b0n"));
        }
        let inner = |name: &str| Some(net.dir.join(name)).filter(|p| p.is_file());
        layout.partitions_cpunet_yml = layout
            .partitions_cpunet_yml
            .take()
            .or_else(|| inner("partitions_CPUNET.yml"));
        layout.pm_cpunet_config = layout
            .pm_cpunet_config
            .take()
            .or_else(|| inner("pm_CPUNET.config"));
    }

    if sysbuild {
        layout.sysbuild_config = top.as_ref().map(|_| top_config.clone());
        let default = layout
            .domains_yaml
            .as_deref()
            .and_then(|p| domains_default(p).ok().flatten());
        let netcore_name = layout.netcore.as_ref().map(|n| n.name.clone());
        let candidates: Vec<&ImageDir> = subdirs
            .iter()
            .filter(|i| !NOT_THE_APP.contains(&i.name.as_str()))
            .filter(|i| Some(&i.name) != netcore_name.as_ref())
            .collect();
        layout.app = match default {
            Some(name) => subdirs.iter().find(|i| i.name == name).cloned(),
            None if candidates.len() == 1 => Some(candidates[0].clone()),
            None => None,
        };
        let pm = top
            .as_ref()
            .is_some_and(|k| k.is_set("SB_CONFIG_PARTITION_MANAGER"));
        layout.kind = if pm || layout.partitions_yml.is_some() {
            BuildKind::Sysbuild
        } else {
            BuildKind::PlainZephyr
        };
    } else {
        layout.app = top.as_ref().map(|_| ImageDir {
            name: "app".into(),
            dir: build_dir.clone(),
        });
        layout.kind = if layout.partitions_yml.is_some() {
            BuildKind::ParentChild
        } else {
            BuildKind::PlainZephyr
        };
    }
    layout.dts = layout
        .app
        .as_ref()
        .map(|a| a.zephyr_dir().join("zephyr.dts"))
        .filter(|p| p.is_file());
    Ok(layout)
}

/// Directories of `build_dir` (and nothing deeper) that hold an image (`<name>/zephyr/.config`).
fn image_subdirs(build_dir: &Path) -> Vec<ImageDir> {
    let Ok(read) = std::fs::read_dir(build_dir) else {
        return Vec::new();
    };
    let mut out: Vec<ImageDir> = read
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let i = ImageDir {
                name,
                dir: e.path(),
            };
            i.config().is_file().then_some(i)
        })
        .filter(|i| i.name != "zephyr")
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn find_netcore(subdirs: &[ImageDir], hint: Option<&str>) -> Result<Option<ImageDir>, BuildError> {
    if let Some(i) = hint.and_then(|h| subdirs.iter().find(|i| i.name == h)) {
        return Ok(Some(i.clone()));
    }
    if let Some(i) = subdirs
        .iter()
        .find(|i| NETCORE_NAMES.contains(&i.name.as_str()))
    {
        return Ok(Some(i.clone()));
    }
    for i in subdirs
        .iter()
        .filter(|i| !NOT_THE_APP.contains(&i.name.as_str()))
    {
        let k = Kconfig::read(&i.config())?;
        if crate::facts::AppFacts::is_netcore(&k) {
            return Ok(Some(i.clone()));
        }
    }
    Ok(None)
}

/// `default:` of sysbuild's `domains.yaml` (Zephyr `scripts/pylib/build_helpers/domains.py`
/// writes `default`, `build_dir`, `domains`, `flash_order`).
pub fn domains_default(path: &Path) -> Result<Option<String>, BuildError> {
    let text = std::fs::read_to_string(path).map_err(|source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.lines().find_map(|l| {
        l.strip_prefix("default:")
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
            .filter(|v| !v.is_empty())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn sysbuild_with_network_core_from_a_project_dir() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(r, "build/zephyr/.config", "SB_CONFIG_PARTITION_MANAGER=y\n");
        touch(
            r,
            "build/domains.yaml",
            "default: sensing_fw\nbuild_dir: /x\n",
        );
        touch(r, "build/partitions.yml", "");
        touch(r, "build/sensing_fw/zephyr/.config", "CONFIG_BOARD=\"x\"\n");
        touch(r, "build/mcuboot/zephyr/.config", "CONFIG_MCUBOOT=y\n");
        touch(
            r,
            "build/ipc_radio/zephyr/.config",
            "CONFIG_SOC_NRF5340_CPUNET=y\n",
        );
        touch(r, "build/b0n/zephyr/.config", "\n");
        let l = discover(r).unwrap();
        assert_eq!(l.kind, BuildKind::Sysbuild);
        assert_eq!(l.build_dir, r.join("build"));
        assert_eq!(l.project_dir.as_deref(), Some(r));
        assert_eq!(l.app.as_ref().unwrap().name, "sensing_fw");
        let from_image = discover(&r.join("build/sensing_fw")).unwrap();
        assert_eq!(from_image.build_dir, r.join("build"));
        assert_eq!(l.netcore.unwrap().name, "ipc_radio");
        assert!(l.b0n.is_some() && l.mcuboot.is_some());
    }

    #[test]
    fn parent_child_with_child_netcore_and_its_b0n() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("build");
        touch(
            &r,
            "zephyr/.config",
            "CONFIG_BOARD=\"nrf5340dk_nrf5340_cpuapp\"\n",
        );
        touch(&r, "partitions.yml", "");
        touch(
            &r,
            "hci_rpmsg/zephyr/.config",
            "CONFIG_SOC_NRF5340_CPUNET_QKAA=y\n",
        );
        touch(&r, "hci_rpmsg/b0n/zephyr/.config", "\n");
        touch(&r, "hci_rpmsg/partitions_CPUNET.yml", "");
        let l = discover(&r).unwrap();
        assert_eq!(l.kind, BuildKind::ParentChild);
        assert_eq!(l.app.unwrap().dir, r);
        assert_eq!(l.netcore.unwrap().name, "hci_rpmsg");
        assert_eq!(l.b0n.unwrap().dir, r.join("hci_rpmsg/b0n"));
        assert!(l.partitions_cpunet_yml.is_some());
    }

    #[test]
    fn plain_zephyr_sysbuild_without_pm_and_no_domains_file() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(r, "zephyr/.config", "SB_CONFIG_BOOTLOADER_MCUBOOT=y\n");
        touch(r, "hello/zephyr/.config", "CONFIG_BOARD=\"x\"\n");
        touch(r, "hello/zephyr/zephyr.dts", "/dts-v1/;\n");
        touch(r, "mcuboot/zephyr/.config", "\n");
        let l = discover(r).unwrap();
        assert_eq!(l.kind, BuildKind::PlainZephyr);
        assert_eq!(l.app.as_ref().unwrap().name, "hello");
        assert!(l.dts.is_some());
    }

    #[test]
    fn not_a_build_says_why() {
        let t = tempfile::tempdir().unwrap();
        let e = discover(t.path()).unwrap_err();
        assert!(e.to_string().contains("not a Zephyr"), "{e}");
        let e = discover(&t.path().join("nope")).unwrap_err();
        assert!(e.to_string().contains("no such directory"), "{e}");
    }
}
