//! `pm.config`: the `PM_<NAME>_<FIELD>=value` lines NCS `scripts/partition_manager_output.py`
//! (`write_kconfig_file`) writes for each partition. The harness keeps `PM_<NAME>_ID` — the
//! flash area ID the image's `FIXED_PARTITION_ID()`/`flash_area_open()` use, so "Failed to open
//! flash area ID 2" can be traced to a partition — and `PM_<NAME>_ADDRESS`/`_SIZE` to check
//! that this `pm.config` belongs to the map beside it.

use super::PmError;
use std::collections::BTreeMap;
use std::path::Path;

/// What one partition's lines say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PmConfigEntry {
    pub id: Option<u32>,
    pub address: Option<u64>,
    pub size: Option<u64>,
    /// Line of `PM_<NAME>_ID`.
    pub line: u32,
}

/// Partition entries by PM name (lower case, from `PM_<NAME>_NAME=`).
pub type PmConfig = BTreeMap<String, PmConfigEntry>;

fn number(v: &str) -> Option<u64> {
    let v = v.trim().trim_matches('"');
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Read a `pm.config`. Lines that are not `KEY=value` (other than blank and `#` comments) are
/// an error at their line; values that are not numbers where one is expected are an error too.
pub fn read_pm_config(text: &str, file: &Path) -> Result<PmConfig, PmError> {
    // PM_<UPPER>_* fields by UPPER, then renamed through PM_<UPPER>_NAME.
    let mut by_upper: BTreeMap<String, PmConfigEntry> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            return Err(PmError::Invalid {
                at: format!("{}:{line}", file.display()),
                message: format!("not a KEY=value line: `{l}`"),
            });
        };
        let Some(key) = key.strip_prefix("PM_") else {
            continue;
        };
        // `PM_b0_ID=PM_B0_ID` (lower-case aliases) and `PM_0_LABEL=B0` carry nothing new.
        if key.chars().any(|c| c.is_ascii_lowercase()) {
            continue;
        }
        let bad = |what: &str| PmError::Invalid {
            at: format!("{}:{line}", file.display()),
            message: format!("`PM_{key}`: {what} `{value}` is not a number"),
        };
        if let Some(upper) = key.strip_suffix("_NAME") {
            names.insert(upper.to_string(), value.trim_matches('"').to_string());
        } else if let Some(upper) = key.strip_suffix("_ID") {
            let id = number(value).ok_or_else(|| bad("ID"))?;
            let e = by_upper.entry(upper.to_string()).or_default();
            e.id = Some(u32::try_from(id).map_err(|_| bad("ID"))?);
            e.line = line;
        } else if let Some(upper) = key.strip_suffix("_END_ADDRESS") {
            let _ = upper;
        } else if let Some(upper) = key.strip_suffix("_ADDRESS") {
            let a = number(value).ok_or_else(|| bad("address"))?;
            by_upper.entry(upper.to_string()).or_default().address = Some(a);
        } else if let Some(upper) = key.strip_suffix("_SIZE") {
            // `PM_<NAME>_SIZE` only; `PM_SRAM_SIZE`-style region totals have no `_NAME` and drop out.
            if let Some(s) = number(value) {
                by_upper.entry(upper.to_string()).or_default().size = Some(s);
            }
        }
    }
    Ok(by_upper
        .into_iter()
        .filter_map(|(upper, e)| names.get(&upper).map(|n| (n.clone(), e)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_addresses_and_sizes_by_partition_name() {
        let t =
            "PM_B0_OFFSET=0x0\nPM_B0_ADDRESS=0x0\nPM_B0_END_ADDRESS=0x8000\nPM_B0_SIZE=0x8000\n\
                 PM_B0_NAME=b0\nPM_B0_ID=0\nPM_b0_ID=PM_B0_ID\nPM_b0_IS_ENABLED=1\nPM_0_LABEL=B0\n\
                 PM_MCUBOOT_SECONDARY_ADDRESS=0x0\nPM_MCUBOOT_SECONDARY_SIZE=0xd0000\n\
                 PM_MCUBOOT_SECONDARY_NAME=mcuboot_secondary\nPM_MCUBOOT_SECONDARY_ID=2\n\
                 PM_S0_SPAN=\"mcuboot s0_pad\"\nPM_NUM=3\n";
        let c = read_pm_config(t, Path::new("pm.config")).unwrap();
        assert_eq!(c["b0"].id, Some(0));
        assert_eq!(c["b0"].line, 6);
        assert_eq!(c["mcuboot_secondary"].id, Some(2));
        assert_eq!(c["mcuboot_secondary"].size, Some(0xd0000));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let e = read_pm_config("PM_A_NAME=a\nnonsense\n", Path::new("pm.config"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("pm.config:2:"), "{e}");
        let e = read_pm_config("PM_A_NAME=a\nPM_A_ID=two\n", Path::new("pm.config"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("pm.config:2:") && e.contains("PM_A_ID"),
            "{e}"
        );
    }
}
