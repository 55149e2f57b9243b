//! The internal flash (or RRAM) of each Nordic SoC NCS builds for: where it starts, how big it
//! is, its erase and write units — so a layout is checked against the chip it runs on, not
//! against a constant.
//!
//! Numbers come from Zephyr's SoC devicetree, the `soc-nv-flash` node under the flash
//! controller (`erase-block-size`, `write-block-size`) and its `reg` (size), per part:
//!
//! | SoC | files (`zephyr/dts/…`) | reg | erase / write |
//! |---|---|---|---|
//! | nRF52805/10/11/20/32/33/40 | `arm/nordic/nrf52*.dtsi` (flash0), size in `nrf528xx_<pkg>.dtsi` | 192 K … 1 M at 0 | 4096 / 4 |
//! | nRF52832 QFAB | `arm/nordic/nrf52832_qfab.dtsi` | 256 K | 4096 / 4 |
//! | nRF5340 application core | `arm/nordic/nrf5340_cpuapp_peripherals.dtsi`, `nrf5340_cpuapp_qkaa.dtsi` | 1 M at 0 | 4096 / 4 |
//! | nRF5340 network core | `arm/nordic/nrf5340_cpunet.dtsi` (flash1), `nrf5340_cpunet_qkaa.dtsi` | 256 K at 0x0100_0000 | 2048 / 4 |
//! | nRF9131/51/60/61 | `arm/nordic/nrf91_peripherals.dtsi` (flash0) | 1 M at 0 | 4096 / 4 |
//! | nRF54L05/10/15 (RRAM) | `vendor/nordic/nrf54l05.dtsi`, `nrf54l10.dtsi`, `nrf54l15.dtsi` (`cpuapp_rram`), units in `nrf54l_05_10_15.dtsi` | 470 K / 960 K / 1428 K at 0 | 4096 / 16 |
//!
//! RRAM has no erase: Zephyr's driver (`drivers/flash/soc_flash_nrf_rram.c`) presents it as
//! flash with a 4 KiB "erase" that writes 0xff, so MCUboot treats it like NOR with 4 KiB sectors
//! and 16-byte writes. The nRF54L15's 1524 KB of RRAM minus the 96 KB `cpuflpr_rram` leaves the
//! 1428 KB the application core sees, which is what `CONFIG_FLASH_SIZE` says in NCS builds.

/// One SoC's internal non-volatile memory as Zephyr's devicetree describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chip {
    /// Canonical name, e.g. `nRF52840`, `nRF5340 network core`.
    pub name: &'static str,
    /// A `CONFIG_SOC` spelling [`lookup`] maps back to this chip (`nrf52832_qfab`,
    /// `nrf5340_cpunet`).
    pub soc: &'static str,
    /// Where the flash starts in the CPU's address map (`reg` of the `soc-nv-flash` node).
    pub flash_base: u32,
    pub flash_size: u32,
    /// `erase-block-size`: the page/sector MCUboot erases.
    pub erase_unit: u32,
    /// `write-block-size`: the program unit (and MCUboot's minimum trailer alignment).
    pub write_unit: u32,
    pub erased: u8,
    /// Resistive RAM (nRF54L): no real erase, 4 KiB is the unit the driver presents.
    pub rram: bool,
    /// The devicetree file the numbers were taken from.
    pub dtsi: &'static str,
}

const fn nrf52(name: &'static str, soc: &'static str, kib: u32, dtsi: &'static str) -> Chip {
    Chip {
        name,
        soc,
        flash_base: 0,
        flash_size: kib * 1024,
        erase_unit: 4096,
        write_unit: 4,
        erased: 0xff,
        rram: false,
        dtsi,
    }
}

const fn nrf91(name: &'static str, soc: &'static str, dtsi: &'static str) -> Chip {
    nrf52(name, soc, 1024, dtsi)
}

const fn nrf54l(name: &'static str, soc: &'static str, kib: u32, dtsi: &'static str) -> Chip {
    Chip {
        name,
        soc,
        flash_base: 0,
        flash_size: kib * 1024,
        erase_unit: 4096,
        write_unit: 16,
        erased: 0xff,
        rram: true,
        dtsi,
    }
}

pub const NRF52805: Chip = nrf52("nRF52805", "nrf52805", 192, "arm/nordic/nrf52805_caaa.dtsi");
pub const NRF52810: Chip = nrf52("nRF52810", "nrf52810", 192, "arm/nordic/nrf52810_qfaa.dtsi");
pub const NRF52811: Chip = nrf52("nRF52811", "nrf52811", 192, "arm/nordic/nrf52811_qfaa.dtsi");
pub const NRF52820: Chip = nrf52("nRF52820", "nrf52820", 256, "arm/nordic/nrf52820_qdaa.dtsi");
pub const NRF52832_QFAA: Chip = nrf52(
    "nRF52832 QFAA",
    "nrf52832_qfaa",
    512,
    "arm/nordic/nrf52832_qfaa.dtsi",
);
pub const NRF52832_QFAB: Chip = nrf52(
    "nRF52832 QFAB",
    "nrf52832_qfab",
    256,
    "arm/nordic/nrf52832_qfab.dtsi",
);
pub const NRF52833: Chip = nrf52("nRF52833", "nrf52833", 512, "arm/nordic/nrf52833_qiaa.dtsi");
pub const NRF52840: Chip = nrf52(
    "nRF52840",
    "nrf52840",
    1024,
    "arm/nordic/nrf52840_qiaa.dtsi",
);
pub const NRF5340_APP: Chip = nrf52(
    "nRF5340 application core",
    "nrf5340_cpuapp",
    1024,
    "arm/nordic/nrf5340_cpuapp_qkaa.dtsi",
);
pub const NRF5340_NET: Chip = Chip {
    name: "nRF5340 network core",
    soc: "nrf5340_cpunet",
    flash_base: 0x0100_0000,
    flash_size: 256 * 1024,
    erase_unit: 2048,
    write_unit: 4,
    erased: 0xff,
    rram: false,
    dtsi: "arm/nordic/nrf5340_cpunet_qkaa.dtsi",
};
pub const NRF9131: Chip = nrf91("nRF9131", "nrf9131", "arm/nordic/nrf9131_laca.dtsi");
pub const NRF9151: Chip = nrf91("nRF9151", "nrf9151", "arm/nordic/nrf9151_laca.dtsi");
pub const NRF9160: Chip = nrf91("nRF9160", "nrf9160", "arm/nordic/nrf9160_sica.dtsi");
pub const NRF9161: Chip = nrf91("nRF9161", "nrf9161", "arm/nordic/nrf9161_laca.dtsi");
pub const NRF54L05: Chip = nrf54l("nRF54L05", "nrf54l05", 470, "vendor/nordic/nrf54l05.dtsi");
pub const NRF54L10: Chip = nrf54l("nRF54L10", "nrf54l10", 960, "vendor/nordic/nrf54l10.dtsi");
pub const NRF54L15: Chip = nrf54l("nRF54L15", "nrf54l15", 1428, "vendor/nordic/nrf54l15.dtsi");

/// Every chip this table knows.
pub const ALL: [&Chip; 17] = [
    &NRF52805,
    &NRF52810,
    &NRF52811,
    &NRF52820,
    &NRF52832_QFAA,
    &NRF52832_QFAB,
    &NRF52833,
    &NRF52840,
    &NRF5340_APP,
    &NRF5340_NET,
    &NRF9131,
    &NRF9151,
    &NRF9160,
    &NRF9161,
    &NRF54L05,
    &NRF54L10,
    &NRF54L15,
];

/// The chip a bare Partition Manager file is read against when no SoC is given: the nRF52840
/// DK, the board most NCS samples default to.
pub const DEFAULT: &Chip = &NRF52840;

/// Look up a `CONFIG_SOC` value in any spelling NCS has used — `nRF52840_QIAA` (NCS < 2.7),
/// `nrf52840` (hardware model v2), `NRF5340_CPUAPP_QKAA`, `nrf5340_cpuapp`, `nRF9160_SICA`,
/// `nrf54l15_cpuapp` — or a part symbol (`SOC_NRF52832_QFAB`, `CONFIG_SOC_NRF5340_CPUNET_QKAA`).
///
/// A bare `nrf5340` (hardware model v2 spells both cores so) is the application core, where
/// MCUboot and the Partition Manager map of the build live; a bare `nrf52832` is the QFAA part
/// (512 KiB) unless the build's `CONFIG_SOC_NRF52832_QFAB=y` says otherwise (see
/// [`from_config`]).
pub fn lookup(soc: &str) -> Option<&'static Chip> {
    let s = soc
        .trim()
        .trim_matches('"')
        .to_ascii_lowercase()
        .replace('-', "_");
    let s = s.strip_prefix("config_").unwrap_or(&s);
    let s = s.strip_prefix("soc_").unwrap_or(s);
    // `nrf9160ns`, `nrf5340_cpuapp_ns`: the non-secure build of the same part.
    let s = s.trim_end_matches("_ns").trim_end_matches("ns");
    let mut parts = s.split('_');
    let part = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let has = |w: &str| rest.contains(&w);
    let chip = match part {
        "nrf52805" => &NRF52805,
        "nrf52810" => &NRF52810,
        "nrf52811" => &NRF52811,
        "nrf52820" => &NRF52820,
        "nrf52832" if has("qfab") => &NRF52832_QFAB,
        "nrf52832" => &NRF52832_QFAA,
        "nrf52833" => &NRF52833,
        "nrf52840" => &NRF52840,
        "nrf5340" if has("cpunet") => &NRF5340_NET,
        "nrf5340" => &NRF5340_APP,
        "nrf9131" => &NRF9131,
        "nrf9151" => &NRF9151,
        "nrf9160" => &NRF9160,
        "nrf9161" => &NRF9161,
        "nrf54l05" => &NRF54L05,
        "nrf54l10" => &NRF54L10,
        "nrf54l15" => &NRF54L15,
        _ => return None,
    };
    Some(chip)
}

/// The chip of a Zephyr `.config` (or sysbuild's, with `SB_CONFIG_*`): the most specific
/// `CONFIG_SOC_NRF…_<package>=y` symbol (which tells QFAA from QFAB and the nRF5340 cores
/// apart), else `CONFIG_SOC`.
pub fn from_config(text: &str) -> Option<&'static Chip> {
    let mut soc = None;
    let mut part = None;
    for line in text.lines() {
        let line = line.trim();
        // Sysbuild's own .config spells the same symbols with an SB_ prefix.
        let line = line.strip_prefix("SB_").unwrap_or(line);
        if let Some(v) = line.strip_prefix("CONFIG_SOC=") {
            soc = Some(v.trim_matches('"').to_string());
        } else if let Some(sym) = line.strip_suffix("=y") {
            // A package symbol has three or more words: SOC_NRF52832_QFAB, SOC_NRF5340_CPUNET_QKAA.
            if let Some(rest) = sym.strip_prefix("CONFIG_SOC_NRF") {
                if rest.split('_').count() >= 2 && lookup(sym).is_some() {
                    part = Some(sym.to_string());
                }
            }
        }
    }
    part.as_deref()
        .and_then(lookup)
        .or_else(|| soc.as_deref().and_then(lookup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_in_ncs_builds_resolves() {
        for (soc, name, size) in [
            ("nRF52840_QIAA", "nRF52840", 0x10_0000),
            ("nrf52840", "nRF52840", 0x10_0000),
            ("nRF52832_QFAA", "nRF52832 QFAA", 0x8_0000),
            ("nrf52832", "nRF52832 QFAA", 0x8_0000),
            ("SOC_NRF52832_QFAB", "nRF52832 QFAB", 0x4_0000),
            ("nrf52810", "nRF52810", 0x3_0000),
            ("nrf52820", "nRF52820", 0x4_0000),
            ("nrf52833", "nRF52833", 0x8_0000),
            ("nRF5340_CPUAPP_QKAA", "nRF5340 application core", 0x10_0000),
            ("NRF5340_CPUAPP_QKAA", "nRF5340 application core", 0x10_0000),
            ("nrf5340_cpuapp", "nRF5340 application core", 0x10_0000),
            ("nrf5340", "nRF5340 application core", 0x10_0000),
            ("nRF5340_CPUNET_QKAA", "nRF5340 network core", 0x4_0000),
            ("nRF9160_SICA", "nRF9160", 0x10_0000),
            ("nrf9160", "nRF9160", 0x10_0000),
            ("nrf9151", "nRF9151", 0x10_0000),
            ("nrf9161", "nRF9161", 0x10_0000),
            ("nrf9131", "nRF9131", 0x10_0000),
            ("nrf54l15_cpuapp", "nRF54L15", 1428 * 1024),
            ("nrf54l15", "nRF54L15", 1428 * 1024),
            ("nrf54l10", "nRF54L10", 960 * 1024),
            ("nrf54l05", "nRF54L05", 470 * 1024),
        ] {
            let c = lookup(soc).unwrap_or_else(|| panic!("{soc}"));
            assert_eq!((c.name, c.flash_size), (name, size), "{soc}");
        }
        for c in ALL {
            assert_eq!(lookup(c.soc), Some(c), "{}", c.soc);
        }
        assert!(lookup("stm32f4").is_none());
        assert!(lookup("").is_none());
    }

    #[test]
    fn geometry_follows_the_devicetree() {
        let net = lookup("nRF5340_CPUNET_QKAA").unwrap();
        assert_eq!((net.erase_unit, net.flash_base), (2048, 0x0100_0000));
        let l15 = lookup("nrf54l15").unwrap();
        assert!(l15.rram && l15.write_unit == 16);
        let n91 = lookup("nrf9160").unwrap();
        assert!(!n91.rram && n91.erase_unit == 4096 && n91.write_unit == 4);
    }

    #[test]
    fn package_symbol_beats_the_bare_soc_name() {
        let cfg = "CONFIG_SOC=\"nrf52832\"\nCONFIG_SOC_NRF52832=y\nCONFIG_SOC_NRF52832_QFAB=y\n";
        assert_eq!(from_config(cfg), Some(&NRF52832_QFAB));
        let net = "CONFIG_SOC=\"nrf5340\"\nCONFIG_SOC_NRF5340_CPUNET_QKAA=y\n";
        assert_eq!(from_config(net), Some(&NRF5340_NET));
        assert_eq!(from_config("CONFIG_SOC=\"nRF9160_SICA\"\n"), Some(&NRF9160));
        assert_eq!(from_config("# nothing\n"), None);
        let sb = "SB_CONFIG_SOC=\"nrf9161\"\nSB_CONFIG_SOC_NRF9161_LACA=y\n";
        assert_eq!(from_config(sb), Some(&NRF9161));
    }
}
