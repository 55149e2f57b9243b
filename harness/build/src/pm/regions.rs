//! `regions.yml`: the memory regions Partition Manager placed partitions in, as the build saw
//! them (NCS `cmake/partition_manager.cmake` writes one entry per region: `base_address`,
//! `size`, `device`, `placement_strategy`). `flash_primary` is the SoC's flash from
//! `CONFIG_FLASH_BASE_ADDRESS`/`CONFIG_FLASH_SIZE`; `external_flash` is sized by
//! `CONFIG_PM_PARTITION_REGION_EXTERNAL_FLASH_SIZE` or the chosen `nordic,pm-ext-flash` device;
//! `ram_flash` is the nRF5340 network-core update's RAM stand-in.

use super::PmError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub line: u32,
    pub base_address: u64,
    pub size: u64,
    /// Devicetree device (`flash_controller`, `DT_CHOSEN(nordic_pm_ext_flash)`, …); `None` when
    /// the file has `''`.
    pub device: Option<String>,
}

#[derive(Deserialize)]
struct RawRegion {
    base_address: u64,
    size: u64,
    device: Option<String>,
}

/// Regions by name.
pub type Regions = BTreeMap<String, Region>;

/// Read a `regions.yml`.
pub fn read_regions(text: &str, file: &Path) -> Result<Regions, PmError> {
    let raw: BTreeMap<String, RawRegion> = serde_saphyr::from_str(text)
        .map_err(|e| super::yaml::syntax_error(file, "a Partition Manager regions.yml", &e))?;
    Ok(raw
        .into_iter()
        .map(|(name, r)| {
            let line = super::yaml::key_line(text, &name).unwrap_or(0);
            let region = Region {
                name: name.clone(),
                line,
                base_address: r.base_address,
                size: r.size,
                device: r.device.filter(|d| !d.is_empty()),
            };
            (name, region)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_base_size_and_device() {
        let t = "external_flash:\n  base_address: 0x0\n  device: DT_CHOSEN(nordic_pm_ext_flash)\n  dynamic_partition: null\n  size: 0x800000\n\
                 otp:\n  base_address: 0xff8100\n  default_driver_kconfig: ''\n  device: ''\n  size: 0x2fc\n";
        let r = read_regions(t, Path::new("regions.yml")).unwrap();
        assert_eq!(r["external_flash"].size, 0x80_0000);
        assert_eq!(r["otp"].line, 6);
        assert_eq!(r["otp"].device, None);
        let e = read_regions("a: 1\n", Path::new("regions.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("regions.yml") && e.contains("regions.yml"),
            "{e}"
        );
    }
}
