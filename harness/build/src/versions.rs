//! Which NCS / Zephyr release a build came from: `zephyr/include/generated/ncs_version.h`
//! (`NCS_VERSION_MAJOR`, `_MINOR`, `NCS_PATCHLEVEL`, written by sdk-nrf's build) and
//! `zephyr/include/generated/version.h` (`KERNEL_VERSION_MAJOR`, `_MINOR`, `KERNEL_PATCHLEVEL`,
//! written by Zephyr's `version.cmake` from its `VERSION` file) of the application image.
//! A missing file or define is `None`: the caller says what it assumed instead.

use std::path::{Path, PathBuf};

/// The versions a build's generated headers state, as `major.minor.patch` text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildVersions {
    /// nRF Connect SDK release, e.g. `2.4.0`, with the file it was read from.
    pub ncs: Option<(String, PathBuf)>,
    /// Zephyr tree version, e.g. `3.3.99`, with the file it was read from.
    pub zephyr: Option<(String, PathBuf)>,
}

/// Read both headers under an image's `zephyr/` build directory.
pub fn read(zephyr_dir: &Path) -> BuildVersions {
    let gen = zephyr_dir.join("include").join("generated");
    let ncs_h = gen.join("ncs_version.h");
    let zephyr_h = gen.join("version.h");
    BuildVersions {
        ncs: read_triplet(
            &ncs_h,
            "NCS_VERSION_MAJOR",
            "NCS_VERSION_MINOR",
            "NCS_PATCHLEVEL",
        )
        .map(|v| (v, ncs_h)),
        zephyr: read_triplet(
            &zephyr_h,
            "KERNEL_VERSION_MAJOR",
            "KERNEL_VERSION_MINOR",
            "KERNEL_PATCHLEVEL",
        )
        .map(|v| (v, zephyr_h)),
    }
}

fn read_triplet(path: &Path, major: &str, minor: &str, patch: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_triplet(&text, major, minor, patch)
}

/// `#define NAME value` lines → `major.minor.patch` (patch 0 when absent).
pub fn parse_triplet(text: &str, major: &str, minor: &str, patch: &str) -> Option<String> {
    let define = |name: &str| -> Option<u32> {
        text.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "#define" && w.next()? == name)
                .then(|| w.next()?.parse().ok())
                .flatten()
        })
    };
    Some(format!(
        "{}.{}.{}",
        define(major)?,
        define(minor)?,
        define(patch).unwrap_or(0)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ncs_and_kernel_defines() {
        let ncs = "#define NCS_VERSION_NUMBER 0x20400\n#define NCS_VERSION_MAJOR 2\n\
                   #define NCS_VERSION_MINOR 4\n#define NCS_PATCHLEVEL 0\n";
        assert_eq!(
            parse_triplet(
                ncs,
                "NCS_VERSION_MAJOR",
                "NCS_VERSION_MINOR",
                "NCS_PATCHLEVEL"
            ),
            Some("2.4.0".into())
        );
        let z = "#define ZEPHYR_VERSION_CODE 197475\n#define KERNEL_VERSION_MAJOR 3\n\
                 #define KERNEL_VERSION_MINOR 3\n#define KERNEL_PATCHLEVEL 99\n";
        assert_eq!(
            parse_triplet(
                z,
                "KERNEL_VERSION_MAJOR",
                "KERNEL_VERSION_MINOR",
                "KERNEL_PATCHLEVEL"
            ),
            Some("3.3.99".into())
        );
        assert_eq!(parse_triplet("", "A", "B", "C"), None);
    }
}
