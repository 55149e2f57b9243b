//! The signed images and ELF files a build wrote, and reading any image file a user hands the
//! CLI (`.bin`, Intel HEX, `dfu_application.zip`, its `manifest.json`).
//!
//! Where NCS writes them (NCS `cmake/sysbuild/image_signing.cmake` and `…/sysbuild/b0_mcuboot_signing.cmake`
//! for sysbuild; `cmake/mcuboot.cmake` and `subsys/bootloader/cmake/` for parent/child;
//! `scripts/bootloader/generate_zip.py` for the zip):
//!
//! | layout | file | role |
//! |---|---|---|
//! | sysbuild | `build/<app>/zephyr/zephyr.signed.bin`, `.hex` | app |
//! | sysbuild | `build/dfu_application.zip` (entries per its manifest) | app, netcore, MCUboot |
//! | sysbuild | `build/signed_by_mcuboot_and_b0_mcuboot.bin`, `…_s1_image.bin` | MCUboot for s0 / s1 |
//! | sysbuild | `build/signed_by_mcuboot_and_b0_<netcore>.bin` | network core |
//! | sysbuild | `build/merged.hex`, `merged_CPUNET.hex` | merged |
//! | parent/child | `build/zephyr/zephyr.signed.bin`, `.hex`, `app_signed.hex` | app |
//! | parent/child | `build/zephyr/app_update.bin` | app update |
//! | parent/child | `build/zephyr/net_core_app_update.bin` | network core |
//! | parent/child | `build/zephyr/signed_by_mcuboot_and_b0_s0_image_update.bin`, `…_s1_…` | MCUboot for s0 / s1 |
//! | parent/child | `build/zephyr/dfu_application.zip`, `merged.hex`, `merged_domains.hex` | zip, merged |
//!
//! `signed_by_b0_*.bin` files are NSIB-signed images (a `fw_info` and b0's own validation
//! metadata), not MCUboot images, so they are not listed as images of the build.

pub mod archive;
pub mod ihex;
pub mod manifest;

use crate::build::{BuildError, BuildImage, ImageRole};
use crate::discover::Discovered;
use crate::facts::SysbuildFacts;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Image numbers the build gives its roles (sysbuild `SB_CONFIG_MCUBOOT_*_IMAGE_NUMBER`;
/// parent/child NCS: the app is 0 and the nRF5340 network core 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageNumbers {
    pub app: Option<u32>,
    pub netcore: Option<u32>,
    pub mcuboot: Option<u32>,
}

impl ImageNumbers {
    pub fn from_sysbuild(s: Option<&SysbuildFacts>, has_netcore: bool) -> ImageNumbers {
        let n = |f: Option<&crate::facts::Fact<i64>>| f.and_then(|f| u32::try_from(f.value).ok());
        match s {
            Some(s) => ImageNumbers {
                app: n(s.app_image_number.as_ref()).or(Some(0)),
                netcore: n(s.netcore_image_number.as_ref()),
                mcuboot: n(s.mcuboot_image_number.as_ref()),
            },
            None => ImageNumbers {
                app: Some(0),
                netcore: has_netcore.then_some(1),
                mcuboot: None,
            },
        }
    }

    fn of(&self, role: &ImageRole) -> Option<u32> {
        match role {
            ImageRole::App | ImageRole::AppUpdate => self.app,
            ImageRole::NetCore => self.netcore,
            ImageRole::McubootUpdate { .. } => self.mcuboot,
            ImageRole::Merged => None,
        }
    }
}

/// The role of a zip entry, from its manifest line and the build's numbering.
fn zip_role(f: &manifest::ManifestFile, numbers: &ImageNumbers) -> ImageRole {
    let name = f.file.as_str();
    let cpunet = f.board.as_deref().is_some_and(|b| b.contains("cpunet"));
    if name.contains("s1_image") {
        return ImageRole::McubootUpdate { nsib_slot: 1 };
    }
    if f.kind.as_deref() == Some("mcuboot")
        || name.starts_with("signed_by_mcuboot_and_b0_mcuboot")
        || name.contains("s0_image")
        || (f.image_index.is_some() && f.image_index == numbers.mcuboot)
    {
        return ImageRole::McubootUpdate { nsib_slot: 0 };
    }
    if cpunet
        || name.starts_with("net_core_app_update")
        || (f.image_index.is_some() && f.image_index == numbers.netcore)
    {
        return ImageRole::NetCore;
    }
    if name == "app_update.bin" {
        return ImageRole::AppUpdate;
    }
    ImageRole::App
}

/// The signed images of the build, in a stable order, and its ELF files by label.
pub fn find(
    d: &Discovered,
    numbers: &ImageNumbers,
) -> Result<(Vec<BuildImage>, BTreeMap<String, PathBuf>), BuildError> {
    let mut images = Vec::new();
    let mut add = |role: ImageRole, path: PathBuf| {
        if path.is_file() {
            let image_index = numbers.of(&role);
            images.push(BuildImage {
                role,
                path,
                entry: None,
                image_index,
            });
        }
    };
    let b = &d.build_dir;
    let top = b.join("zephyr");
    if let Some(app) = &d.app {
        let z = app.zephyr_dir();
        add(ImageRole::App, z.join("zephyr.signed.bin"));
        add(ImageRole::App, z.join("zephyr.signed.hex"));
        add(ImageRole::App, z.join("app_signed.hex"));
        add(ImageRole::AppUpdate, z.join("app_update.bin"));
    }
    // Parent/child keeps the update files in build/zephyr (the application's own directory
    // there, already covered above); sysbuild puts the combined ones in build/.
    for dir in [b.as_path(), top.as_path()] {
        if d.app.as_ref().is_none_or(|a| a.zephyr_dir() != dir) {
            add(ImageRole::AppUpdate, dir.join("app_update.bin"));
        }
        add(ImageRole::NetCore, dir.join("net_core_app_update.bin"));
        add(
            ImageRole::McubootUpdate { nsib_slot: 0 },
            dir.join("signed_by_mcuboot_and_b0_s0_image_update.bin"),
        );
        add(
            ImageRole::McubootUpdate { nsib_slot: 1 },
            dir.join("signed_by_mcuboot_and_b0_s1_image_update.bin"),
        );
        add(
            ImageRole::McubootUpdate { nsib_slot: 0 },
            dir.join("signed_by_mcuboot_and_b0_mcuboot.bin"),
        );
        add(
            ImageRole::McubootUpdate { nsib_slot: 1 },
            dir.join("signed_by_mcuboot_and_b0_s1_image.bin"),
        );
        if let Some(net) = &d.netcore {
            add(
                ImageRole::NetCore,
                dir.join(format!("signed_by_mcuboot_and_b0_{}.bin", net.name)),
            );
        }
        for merged in ["merged.hex", "merged_domains.hex"] {
            add(ImageRole::Merged, dir.join(merged));
        }
    }
    for dir in [b.as_path(), top.as_path()] {
        let zip = dir.join("dfu_application.zip");
        if !zip.is_file() {
            continue;
        }
        match archive::read_manifest(&zip)? {
            Some(m) => {
                for f in &m.files {
                    let role = zip_role(f, numbers);
                    let image_index = f.image_index.or_else(|| numbers.of(&role));
                    images.push(BuildImage {
                        role,
                        path: zip.clone(),
                        entry: Some(f.file.clone()),
                        image_index,
                    });
                }
            }
            None => {
                return Err(BuildError::Malformed {
                    at: zip.display().to_string(),
                    message: "the zip has no manifest.json".into(),
                })
            }
        }
    }

    let mut elfs = BTreeMap::new();
    let mut elf = |label: &str, dir: Option<&crate::discover::ImageDir>| {
        if let Some(p) = dir
            .map(|i| i.zephyr_dir().join("zephyr.elf"))
            .filter(|p| p.is_file())
        {
            elfs.insert(label.to_string(), p);
        }
    };
    elf("app", d.app.as_ref());
    elf("mcuboot", d.mcuboot.as_ref());
    elf("b0", d.b0.as_ref());
    elf("s1_image", d.s1_image.as_ref());
    elf("spm", d.spm.as_ref());
    elf("netcore", d.netcore.as_ref());
    elf("b0n", d.b0n.as_ref());
    Ok((images, elfs))
}

/// What a file is, from its first bytes (then its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Zip,
    IntelHex,
    Manifest,
    Binary,
}

pub fn sniff(path: &Path, head: &[u8]) -> FileKind {
    let first = head.iter().copied().find(|b| !b.is_ascii_whitespace());
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        FileKind::Zip
    } else if first == Some(b':') && head.iter().all(|b| b.is_ascii()) {
        FileKind::IntelHex
    } else if first == Some(b'{') && path.extension().is_some_and(|e| e == "json") {
        FileKind::Manifest
    } else {
        FileKind::Binary
    }
}

fn read(path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Where a manifest's `file` is on disk when the manifest sits in a build directory rather than
/// in the zip: beside it, or (sysbuild renames `zephyr.signed.bin` to `<app>.signed.bin` in the
/// zip) in `<image>/zephyr/zephyr.signed.bin`, or as the MCUboot-signed network-core file.
fn manifest_entry_path(dir: &Path, file: &str) -> Option<PathBuf> {
    let mut candidates = vec![dir.join(file)];
    if let Some(image) = file.strip_suffix(".signed.bin") {
        candidates.push(dir.join(image).join("zephyr").join("zephyr.signed.bin"));
    } else if let Some(image) = file.strip_suffix(".bin") {
        candidates.push(dir.join(format!("signed_by_mcuboot_and_b0_{image}.bin")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Read an image file the way the CLI's `image` commands take it: a `.bin` as is; Intel HEX
/// cut to each MCUboot image it holds (lowest address first); a zip's images as its manifest
/// lists them; a `manifest.json` with the files it names. Each item is a label (file or entry
/// name, with the address for hex images) and the bytes.
pub fn read_image_file(path: &Path) -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let bytes = read(path)?;
    let head = &bytes[..bytes.len().min(64)];
    let file_name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    match sniff(path, head) {
        FileKind::Binary => Ok(vec![(file_name, bytes)]),
        FileKind::IntelHex => {
            let text = String::from_utf8_lossy(&bytes);
            let hex = ihex::parse(path, &text)?;
            let found = hex.images();
            if found.is_empty() {
                return Err(BuildError::Missing {
                    path: path.to_path_buf(),
                    what: "MCUboot image (no data starts with the magic 0x96f3b83d)".into(),
                    hint:
                        " — is it signed? `zephyr.hex` is the unsigned app; use `zephyr.signed.hex`"
                            .into(),
                });
            }
            Ok(found
                .into_iter()
                .map(|(addr, img)| (format!("{file_name}@0x{addr:08x}"), img))
                .collect())
        }
        FileKind::Zip => {
            let Some(m) = archive::read_manifest(path)? else {
                return Err(BuildError::Malformed {
                    at: path.display().to_string(),
                    message: "the zip has no manifest.json (not a dfu_application.zip)".into(),
                });
            };
            m.files
                .iter()
                .map(|f| Ok((f.file.clone(), archive::read_entry(path, &f.file)?)))
                .collect()
        }
        FileKind::Manifest => {
            let text = String::from_utf8_lossy(&bytes);
            let m = manifest::parse(path, &text)?;
            let dir = path.parent().unwrap_or(Path::new("."));
            m.files
                .iter()
                .map(|f| match manifest_entry_path(dir, &f.file) {
                    Some(p) => Ok((f.file.clone(), read(&p)?)),
                    None => Err(BuildError::Missing {
                        path: dir.join(&f.file),
                        what: format!("file `{}` the manifest lists", f.file),
                        hint: " — read the zip itself, or run from the build directory".into(),
                    }),
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_of_real_manifest_lines() {
        let f = |file: &str, board: &str, idx: Option<u32>| manifest::ManifestFile {
            file: file.into(),
            kind: Some("application".into()),
            board: Some(board.into()),
            soc: None,
            image_index: idx,
            load_address: None,
            version: None,
            size: None,
        };
        let sysbuild = ImageNumbers {
            app: Some(0),
            netcore: Some(1),
            mcuboot: None,
        };
        assert_eq!(
            zip_role(&f("sensing_fw.signed.bin", "nrf5340dk", Some(0)), &sysbuild),
            ImageRole::App
        );
        assert_eq!(
            zip_role(
                &f("ipc_radio.bin", "nrf5340dk/nrf5340/cpunet", Some(1)),
                &sysbuild
            ),
            ImageRole::NetCore
        );
        assert_eq!(
            zip_role(
                &f("net_core_app_update.bin", "thingy53_nrf5340_cpunet", None),
                &ImageNumbers::default()
            ),
            ImageRole::NetCore
        );
        assert_eq!(
            zip_role(
                &f("app_update.bin", "nrf52dk_nrf52832", None),
                &ImageNumbers::default()
            ),
            ImageRole::AppUpdate
        );
        let nsib = ImageNumbers {
            app: Some(0),
            netcore: None,
            mcuboot: Some(1),
        };
        assert_eq!(
            zip_role(
                &f("signed_by_mcuboot_and_b0_mcuboot.bin", "thingy91x", Some(1)),
                &nsib
            ),
            ImageRole::McubootUpdate { nsib_slot: 0 }
        );
        assert_eq!(
            zip_role(
                &f(
                    "signed_by_mcuboot_and_b0_s1_image.bin",
                    "thingy91x",
                    Some(1)
                ),
                &nsib
            ),
            ImageRole::McubootUpdate { nsib_slot: 1 }
        );
    }

    #[test]
    fn sniffs_by_content() {
        let p = Path::new("x.bin");
        assert_eq!(sniff(p, b"PK\x03\x04...."), FileKind::Zip);
        assert_eq!(sniff(p, b":020000040000FA"), FileKind::IntelHex);
        assert_eq!(
            sniff(Path::new("m.json"), b"{ \"files\""),
            FileKind::Manifest
        );
        assert_eq!(sniff(p, &[0x3d, 0xb8, 0xf3, 0x96]), FileKind::Binary);
    }

    /// Arbitrary bytes in every reader: errors, never a panic.
    #[test]
    fn no_panics_on_garbage() {
        let mut state = 0x2545_f491_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let t = tempfile::tempdir().unwrap();
        let seeds: [&[u8]; 5] = [
            b":10000000",
            b"PK\x03\x04",
            b"{\"files\": [",
            b"CONFIG_A=\"",
            &[0x3d, 0xb8, 0xf3, 0x96, 0, 0, 0, 0, 0x20, 0],
        ];
        for round in 0..400 {
            let mut bytes = seeds[round % seeds.len()].to_vec();
            let extra = (next() % 96) as usize;
            for _ in 0..extra {
                let r = next();
                // Mostly printable hex-ish text so the parsers get past their first check.
                bytes.push(if r % 3 == 0 {
                    (r >> 8) as u8
                } else {
                    b"0123456789ABCDEF:\n=\"{}[],"[(r >> 8) as usize % 25]
                });
            }
            let name = ["x.bin", "x.hex", "x.zip", "manifest.json"][round % 4];
            let p = t.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            let _ = read_image_file(&p);
            let text = String::from_utf8_lossy(&bytes);
            let _ = ihex::parse(&p, &text).map(|h| h.images());
            let _ = manifest::parse(&p, &text);
            let _ = ihex::image_len(&bytes);
            if let Ok(k) = crate::kconfig::Kconfig::parse(&p, &text) {
                let _ = crate::facts::McubootFacts::from_kconfig(&k);
                let _ = crate::facts::AppFacts::from_kconfig(&k);
            }
        }
    }
}
