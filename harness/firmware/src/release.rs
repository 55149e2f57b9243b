//! Which Zephyr / MCUboot / nRF Connect SDK release the simulated firmware follows.
//!
//! Real devices answer differently depending on the code they were built from: img_mgmt's
//! answer to a confirm of an image already marked for test changed in Zephyr 3.4.99
//! (`img_mgmt_state.c`, `img_mgmt_set_next_boot_slot`), NCS MCUboot read the secondary slot's
//! header through a memory pointer up to NCS 2.2 (`loader.c`, `boot_validated_swap_type`),
//! the NCS Bluetooth OTA-DFU defaults changed in NCS 3.2. The simulated board chooses each such
//! behaviour from the release its firmware carries; `docs/firmware-versions.md` lists every
//! difference with its upstream source.
//!
//! The release comes from the scenario (`firmware: { ncs: 2.4.0 }`) or from a build directory
//! (`zephyr/include/generated/ncs_version.h` and `version.h`). Without either the board
//! follows current upstream ([`Release::default`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A `major.minor.patch` version; Zephyr's development versions end in `.99` (3.4.99 is the
/// tree between 3.4.0 and 3.5.0), which orders correctly as a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ver {
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
}

impl Ver {
    pub const fn new(major: u16, minor: u16, patch: u16) -> Ver {
        Ver {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for Ver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Ver {
    type Err = String;
    /// `2.4`, `2.4.0`, `v2.4.0`, `3.4.99`, `2.2.0-rc1` (a pre-release counts as its release);
    /// a trailing `-ncsN` tag of an NCS fork (`1.10.0-ncs1`) is ignored the same way.
    fn from_str(s: &str) -> Result<Ver, String> {
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let core = t.split(['-', '+']).next().unwrap_or("");
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "`{s}` is not a version (expected major.minor[.patch], e.g. 2.4.0 or 3.4.99)"
            ));
        }
        let mut n = [0u16; 3];
        for (i, p) in parts.iter().enumerate() {
            n[i] = p
                .parse()
                .map_err(|_| format!("`{s}`: `{p}` is not a number from 0 to 65535"))?;
        }
        if parts.len() == 1 {
            return Err(format!(
                "`{s}` is not a version (give at least major.minor)"
            ));
        }
        Ok(Ver::new(n[0], n[1], n[2]))
    }
}

impl TryFrom<String> for Ver {
    type Error = String;
    fn try_from(s: String) -> Result<Ver, String> {
        s.parse()
    }
}

impl From<Ver> for String {
    fn from(v: Ver) -> String {
        v.to_string()
    }
}

/// The releases one firmware was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Release {
    /// nRF Connect SDK release; `None` for upstream Zephyr + MCUboot.
    pub ncs: Option<Ver>,
    /// The Zephyr tree (for NCS its `sdk-zephyr` fork's version, e.g. 3.3.99 in NCS 2.4).
    pub zephyr: Ver,
    /// The MCUboot tree (for NCS its `sdk-mcuboot` fork's version, e.g. 1.10.0 in NCS 2.4).
    pub mcuboot: Ver,
}

/// What the simulated board models when nothing says otherwise: upstream Zephyr 4.2 with
/// MCUboot 2.2 (the current releases when this table was written).
pub const UPSTREAM_DEFAULT: Release = Release {
    ncs: None,
    zephyr: Ver::new(4, 2, 0),
    mcuboot: Ver::new(2, 2, 0),
};

impl Default for Release {
    fn default() -> Self {
        UPSTREAM_DEFAULT
    }
}

/// NCS release (major.minor) → the versions of its Zephyr and MCUboot forks.
///
/// Zephyr column: read from `zephyr/include/generated/version.h` beside `ncs_version.h` in
/// real NCS build directories for 1.5, 1.7, 2.0–2.3, 2.5–2.7, 2.9, 3.0–3.2; 2.4 (3.3.99) from
/// the sdk-nrf v2.4.0 manifest; 1.6, 1.8, 1.9 and 2.8 are unverified (the fork of that period).
/// MCUboot column: the `nrfconnect/sdk-mcuboot` tag each NCS release pins, verified for 1.9
/// (`v1.8.99-ncs1`) through 2.9 (`v2.1.0-ncs3`); the rows before 1.9 and from 3.0 on are
/// unverified estimates — no modelled behaviour depends on them today.
const NCS_TABLE: &[((u16, u16), Ver, Ver)] = &[
    ((1, 5), Ver::new(2, 4, 99), Ver::new(1, 7, 99)),
    ((1, 6), Ver::new(2, 6, 0), Ver::new(1, 7, 99)),
    ((1, 7), Ver::new(2, 6, 99), Ver::new(1, 7, 99)),
    ((1, 8), Ver::new(2, 7, 99), Ver::new(1, 8, 99)),
    ((1, 9), Ver::new(2, 7, 99), Ver::new(1, 8, 99)),
    ((2, 0), Ver::new(3, 0, 99), Ver::new(1, 9, 99)),
    ((2, 1), Ver::new(3, 1, 99), Ver::new(1, 9, 99)),
    ((2, 2), Ver::new(3, 2, 99), Ver::new(1, 9, 99)),
    ((2, 3), Ver::new(3, 2, 99), Ver::new(1, 9, 99)),
    ((2, 4), Ver::new(3, 3, 99), Ver::new(1, 10, 0)),
    ((2, 5), Ver::new(3, 4, 99), Ver::new(1, 10, 99)),
    ((2, 6), Ver::new(3, 5, 99), Ver::new(2, 0, 99)),
    ((2, 7), Ver::new(3, 6, 99), Ver::new(2, 1, 0)),
    ((2, 8), Ver::new(3, 7, 99), Ver::new(2, 1, 0)),
    ((2, 9), Ver::new(3, 7, 99), Ver::new(2, 1, 0)),
    ((3, 0), Ver::new(4, 0, 99), Ver::new(2, 1, 99)),
    ((3, 1), Ver::new(4, 1, 99), Ver::new(2, 2, 0)),
    ((3, 2), Ver::new(4, 2, 99), Ver::new(2, 2, 99)),
];

impl Release {
    /// The release of an NCS version, with its Zephyr and MCUboot forks from the table above.
    pub fn ncs(v: Ver) -> Result<Release, String> {
        let row = NCS_TABLE
            .iter()
            .find(|(mm, _, _)| *mm == (v.major, v.minor))
            .ok_or_else(|| {
                format!(
                    "nRF Connect SDK {v} is not in the release table (known: {}); give \
                     `zephyr:` and `mcuboot:` versions instead",
                    NCS_TABLE
                        .iter()
                        .map(|((a, b), _, _)| format!("{a}.{b}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        Ok(Release {
            ncs: Some(v),
            zephyr: row.1,
            mcuboot: row.2,
        })
    }

    /// Upstream Zephyr `zephyr` with the MCUboot of the same period (or `mcuboot` if given).
    pub fn zephyr(zephyr: Ver, mcuboot: Option<Ver>) -> Release {
        let mcuboot = mcuboot.unwrap_or_else(|| {
            // The MCUboot Zephyr's west.yml pinned around that release.
            match (zephyr.major, zephyr.minor) {
                (0..=2, _) => Ver::new(1, 7, 99),
                (3, 0..=2) => Ver::new(1, 9, 0),
                (3, 3..=4) => Ver::new(1, 10, 0),
                (3, 5) => Ver::new(2, 0, 0),
                (3, 6..=7) => Ver::new(2, 1, 0),
                _ => UPSTREAM_DEFAULT.mcuboot,
            }
        });
        Release {
            ncs: None,
            zephyr,
            mcuboot,
        }
    }

    /// `NCS 2.4.0 (Zephyr 3.3.99, MCUboot 1.10.0)` or `Zephyr 4.2.0, MCUboot 2.2.0`.
    pub fn describe(&self) -> String {
        match self.ncs {
            Some(n) => format!(
                "nRF Connect SDK {n} (Zephyr {}, MCUboot {})",
                self.zephyr, self.mcuboot
            ),
            None => format!("Zephyr {}, MCUboot {}", self.zephyr, self.mcuboot),
        }
    }

    /// True when the NCS release is known and lower than `major.minor`.
    pub fn ncs_before(&self, major: u16, minor: u16) -> bool {
        self.ncs.is_some_and(|n| n < Ver::new(major, minor, 0))
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order_like_zephyr() {
        let v: Ver = "3.4.99".parse().unwrap();
        assert!(v > Ver::new(3, 4, 0) && v < Ver::new(3, 5, 0));
        assert_eq!("v2.4".parse::<Ver>().unwrap(), Ver::new(2, 4, 0));
        assert_eq!("2.2.0-rc1".parse::<Ver>().unwrap(), Ver::new(2, 2, 0));
        assert_eq!("1.10.0-ncs1".parse::<Ver>().unwrap(), Ver::new(1, 10, 0));
        assert!("2".parse::<Ver>().is_err());
        assert!("2.x".parse::<Ver>().is_err());
        assert!("1.2.3.4".parse::<Ver>().is_err());
        assert!("99999.0".parse::<Ver>().is_err());
    }

    #[test]
    fn ncs_releases_map_to_their_forks() {
        let r = Release::ncs(Ver::new(2, 4, 0)).unwrap();
        assert_eq!(r.zephyr, Ver::new(3, 3, 99));
        assert_eq!(r.mcuboot, Ver::new(1, 10, 0));
        assert!(r.ncs_before(2, 5) && !r.ncs_before(2, 4));
        assert!(Release::ncs(Ver::new(9, 9, 0)).unwrap_err().contains("2.4"));
        assert!(!UPSTREAM_DEFAULT.ncs_before(9, 0));
    }

    #[test]
    fn release_round_trips_through_serde() {
        let r = Release::ncs(Ver::new(2, 5, 2)).unwrap();
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"2.5.2\""), "{j}");
        assert_eq!(serde_json::from_str::<Release>(&j).unwrap(), r);
    }
}
