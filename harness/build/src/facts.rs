//! What each image of the build was configured to do, read from its `.config`. Every fact keeps
//! the file:line it came from ([`Source`]) so that `doctor` and a scenario error can point at it.
//!
//! Each reader takes a parsed [`Kconfig`] and applies the upstream Kconfig default (named in
//! the doc comment of each field's reader) when a symbol is absent; such a fact has no source.

use crate::build::BuildError;
use crate::kconfig::Kconfig;
use dfu_hil_mcuboot::trailer::UpgradeMode;
use std::path::PathBuf;

/// Where a fact was read: a file and a 1-based line (0 = the whole file, or a default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    pub line: u32,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

/// A value with where it came from. `source` is `None` when the value is the Kconfig default
/// the harness assumed because the symbol was absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact<T> {
    pub value: T,
    pub source: Option<Source>,
}

/// MCUboot's signature algorithm (`CONFIG_BOOT_SIGNATURE_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureType {
    None,
    Rsa2048,
    Rsa3072,
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

/// `build/mcuboot/zephyr/.config`.
#[derive(Debug, Clone)]
pub struct McubootFacts {
    pub config: PathBuf,
    /// `CONFIG_BOOT_SWAP_USING_MOVE`, `…_SCRATCH`, `…_OFFSET`, `CONFIG_BOOT_UPGRADE_ONLY`,
    /// `CONFIG_BOOT_DIRECT_XIP`; `None` for modes the harness does not model (RAM load, firmware
    /// loader, single application slot: see `single_slot`).
    pub mode: Fact<Option<UpgradeMode>>,
    /// `CONFIG_BOOT_MAX_IMG_SECTORS` (MCUboot `boot/zephyr/Kconfig`: `default 128`). When
    /// `CONFIG_BOOT_MAX_IMG_SECTORS_AUTO=y` MCUboot sizes its sector table from the
    /// devicetree itself; the value is then `u32::MAX` with the AUTO line as source.
    pub max_sectors: Fact<u32>,
    pub signature: Fact<SignatureType>,
    /// `CONFIG_BOOT_SIGNATURE_KEY_FILE` as written (may be a path on the author's machine).
    pub key_file: Option<Fact<String>>,
    /// `CONFIG_BOOT_VALIDATE_SLOT0`.
    pub validate_primary: Fact<bool>,
    /// `CONFIG_MCUBOOT_DOWNGRADE_PREVENTION`.
    pub downgrade_prevention: Fact<bool>,
    /// `CONFIG_UPDATEABLE_IMAGE_NUMBER` (1 when absent).
    pub image_number: Fact<u32>,
    /// A NOR flash driver for the secondary slot: `CONFIG_NORDIC_QSPI_NOR` or `CONFIG_SPI_NOR`.
    pub external_flash_driver: Fact<bool>,
    /// `CONFIG_MCUBOOT_SERIAL` (serial recovery).
    pub serial_recovery: Fact<bool>,
    /// `CONFIG_SINGLE_APPLICATION_SLOT`.
    pub single_slot: Fact<bool>,
    /// `CONFIG_BOOT_MAX_ALIGN` when set.
    pub max_align: Option<Fact<u32>>,
}

/// The application's (or network core's) `.config`.
#[derive(Debug, Clone)]
pub struct AppFacts {
    pub config: PathBuf,
    /// `CONFIG_BOARD`.
    pub board: Option<Fact<String>>,
    /// `CONFIG_SOC` (spelling varies by NCS version: `nRF52840_QIAA` vs `nrf52840`).
    pub soc: Option<Fact<String>>,
    /// `CONFIG_BOOTLOADER_MCUBOOT`.
    pub bootloader_mcuboot: Fact<bool>,
    /// `CONFIG_ROM_START_OFFSET`: room the app leaves for the MCUboot header.
    pub rom_start_offset: Fact<u32>,
    /// `CONFIG_MCUBOOT_IMGTOOL_SIGN_VERSION`.
    pub sign_version: Option<Fact<String>>,
    /// `CONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS`.
    pub extra_imgtool_args: Option<Fact<String>>,
    /// mcumgr groups compiled in: `img`, `os`, `stat`, `settings`, `fs`, `shell`, `zephyr_basic`, …
    /// (new `CONFIG_MCUMGR_GRP_*` and legacy `CONFIG_MCUMGR_CMD_*_MGMT` names).
    pub mcumgr_groups: Vec<Fact<String>>,
    /// mcumgr transports: `bt`, `uart`, `shell`, `udp`, … (new and legacy names).
    pub mcumgr_transports: Vec<Fact<String>>,
    /// `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE` (legacy `CONFIG_MCUMGR_BUF_SIZE`).
    pub netbuf_size: Option<Fact<u32>>,
    /// `CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT` (legacy `CONFIG_MCUMGR_BUF_COUNT`).
    pub netbuf_count: Option<Fact<u32>>,
    /// `CONFIG_BT_L2CAP_TX_MTU`.
    pub bt_l2cap_tx_mtu: Option<Fact<u32>>,
    /// `CONFIG_BT_BUF_ACL_RX_SIZE`.
    pub bt_acl_rx_size: Option<Fact<u32>>,
    /// `CONFIG_UART_MCUMGR_RX_BUF_SIZE` (serial transport receive line).
    pub uart_rx_buf_size: Option<Fact<u32>>,
    /// `CONFIG_BUILD_WITH_TFM` / `CONFIG_TRUSTED_EXECUTION_NONSECURE`.
    pub tfm: Fact<bool>,
    pub nonsecure: Fact<bool>,
    /// `CONFIG_SECURE_BOOT` as the app sees it (can be `y` without NSIB partitions).
    pub secure_boot: Fact<bool>,
}

/// NSIB (`b0`) and the counter-slot setting of the images it boots.
#[derive(Debug, Clone)]
pub struct NsibFacts {
    pub config: PathBuf,
    /// `CONFIG_SB_NUM_VER_COUNTER_SLOTS` as each image saw it (b0, mcuboot, app, s1_image).
    pub counter_slots: Vec<(String, Fact<u32>)>,
    /// `CONFIG_SB_SIGNING_KEY_FILE` / `SB_CONFIG_SECURE_BOOT_SIGNING_KEY_FILE`.
    pub signing_key_file: Option<Fact<String>>,
    /// Sysbuild builds an s1 variant of MCUboot (`SB_CONFIG_SECURE_BOOT_BUILD_S1_VARIANT_IMAGE`,
    /// or an `s1_image` child image).
    pub s1_variant: Fact<bool>,
}

/// Sysbuild's own `.config` (`build/zephyr/.config` holding `SB_CONFIG_*`).
#[derive(Debug, Clone)]
pub struct SysbuildFacts {
    pub config: PathBuf,
    /// `SB_CONFIG_MCUBOOT_*_IMAGE_NUMBER` (application, network core, MCUboot itself); -1 = none.
    pub app_image_number: Option<Fact<i64>>,
    pub netcore_image_number: Option<Fact<i64>>,
    pub mcuboot_image_number: Option<Fact<i64>>,
    pub partition_manager: Fact<bool>,
}

impl<T> Fact<T> {
    /// A value the harness assumed (the Kconfig default of an absent symbol).
    pub fn default_value(value: T) -> Fact<T> {
        Fact {
            value,
            source: None,
        }
    }
}

impl SignatureType {
    /// The name imgtool's `--key` type and MCUboot's Kconfig use.
    pub fn name(self) -> &'static str {
        match self {
            SignatureType::None => "none",
            SignatureType::Rsa2048 => "rsa-2048",
            SignatureType::Rsa3072 => "rsa-3072",
            SignatureType::EcdsaP256 => "ecdsa-p256",
            SignatureType::EcdsaP384 => "ecdsa-p384",
            SignatureType::Ed25519 => "ed25519",
        }
    }

    /// MCUboot's default key file for this type (`boot/zephyr/Kconfig`,
    /// `BOOT_SIGNATURE_KEY_FILE` defaults), relative to the MCUboot repository.
    pub fn default_key_file(self) -> Option<&'static str> {
        match self {
            SignatureType::None => None,
            SignatureType::Rsa2048 => Some("root-rsa-2048.pem"),
            SignatureType::Rsa3072 => Some("root-rsa-3072.pem"),
            SignatureType::EcdsaP256 => Some("root-ec-p256.pem"),
            SignatureType::EcdsaP384 => Some("root-ec-p384.pem"),
            SignatureType::Ed25519 => Some("root-ed25519.pem"),
        }
    }
}

/// MCUboot's upgrade-mode symbols in the order MCUboot gives them precedence: `BOOT_UPGRADE_ONLY`
/// becomes `MCUBOOT_OVERWRITE_ONLY` in `boot/zephyr/include/mcuboot_config/mcuboot_config.h`,
/// which `bootutil` checks before any swap mode. `None` = a mode the harness does not model.
const MODE_SYMBOLS: [(&str, Option<UpgradeMode>); 7] = [
    ("CONFIG_BOOT_UPGRADE_ONLY", Some(UpgradeMode::OverwriteOnly)),
    ("CONFIG_BOOT_DIRECT_XIP", Some(UpgradeMode::DirectXip)),
    ("CONFIG_BOOT_RAM_LOAD", None),
    ("CONFIG_BOOT_FIRMWARE_LOADER", None),
    (
        "CONFIG_BOOT_SWAP_USING_OFFSET",
        Some(UpgradeMode::SwapOffset),
    ),
    ("CONFIG_BOOT_SWAP_USING_MOVE", Some(UpgradeMode::SwapMove)),
    (
        "CONFIG_BOOT_SWAP_USING_SCRATCH",
        Some(UpgradeMode::SwapScratch),
    ),
];

impl McubootFacts {
    /// Read MCUboot's `.config` (`build/mcuboot/zephyr/.config`). Defaults from MCUboot's
    /// `boot/zephyr/Kconfig`: `BOOT_MAX_IMG_SECTORS` 128, `BOOT_VALIDATE_SLOT0` y,
    /// `BOOT_SIGNATURE_TYPE` choice RSA, `BOOT_SIGNATURE_TYPE_RSA_LEN` 2048,
    /// `UPDATEABLE_IMAGE_NUMBER` 1, everything else n.
    pub fn from_kconfig(k: &Kconfig) -> Result<McubootFacts, BuildError> {
        let single_slot = k.bool_or("CONFIG_SINGLE_APPLICATION_SLOT", false);
        let mode = if single_slot.value {
            Fact {
                value: None,
                source: single_slot.source.clone(),
            }
        } else {
            MODE_SYMBOLS
                .iter()
                .find(|(sym, _)| k.is_set(sym))
                .map(|(sym, mode)| Fact {
                    value: *mode,
                    source: k.source(sym),
                })
                // No mode symbol: MCUboot before the `BOOT_IMAGE_UPGRADE_MODE` choice swapped
                // with the scratch area unless told otherwise, and the choice's last default
                // is `BOOT_SWAP_USING_SCRATCH`.
                .unwrap_or(Fact::default_value(Some(UpgradeMode::SwapScratch)))
        };

        let max_sectors = match k.bool("CONFIG_BOOT_MAX_IMG_SECTORS_AUTO") {
            Some(auto) if auto.value => Fact {
                value: u32::MAX,
                source: auto.source,
            },
            _ => k
                .u32("CONFIG_BOOT_MAX_IMG_SECTORS")?
                .unwrap_or(Fact::default_value(128)),
        };

        let signature = read_signature(k)?;
        let key_file = match k.string("CONFIG_BOOT_SIGNATURE_KEY_FILE") {
            Some(f) if !f.value.is_empty() => Some(f),
            Some(_) => None,
            None => signature
                .value
                .default_key_file()
                .map(|f| Fact::default_value(f.to_string())),
        };

        let external_flash_driver = ["CONFIG_NORDIC_QSPI_NOR", "CONFIG_SPI_NOR"]
            .iter()
            .filter_map(|s| k.bool(s))
            .find(|f| f.value)
            .or_else(|| k.bool("CONFIG_NORDIC_QSPI_NOR"))
            .or_else(|| k.bool("CONFIG_SPI_NOR"))
            .unwrap_or(Fact::default_value(false));

        Ok(McubootFacts {
            config: k.path.clone(),
            mode,
            max_sectors,
            signature,
            key_file,
            validate_primary: k.bool_or("CONFIG_BOOT_VALIDATE_SLOT0", true),
            downgrade_prevention: k.bool_or("CONFIG_MCUBOOT_DOWNGRADE_PREVENTION", false),
            image_number: k
                .u32("CONFIG_UPDATEABLE_IMAGE_NUMBER")?
                .unwrap_or(Fact::default_value(1)),
            external_flash_driver,
            serial_recovery: k.bool_or("CONFIG_MCUBOOT_SERIAL", false),
            single_slot,
            max_align: k.u32("CONFIG_BOOT_MAX_ALIGN")?,
        })
    }

    /// MCUboot sizes its sector table itself (`CONFIG_BOOT_MAX_IMG_SECTORS_AUTO=y`).
    pub fn max_sectors_auto(&self) -> bool {
        self.max_sectors.value == u32::MAX
    }
}

fn read_signature(k: &Kconfig) -> Result<Fact<SignatureType>, BuildError> {
    let simple = [
        ("CONFIG_BOOT_SIGNATURE_TYPE_NONE", SignatureType::None),
        (
            "CONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P256",
            SignatureType::EcdsaP256,
        ),
        (
            "CONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P384",
            SignatureType::EcdsaP384,
        ),
        ("CONFIG_BOOT_SIGNATURE_TYPE_ED25519", SignatureType::Ed25519),
    ];
    for (sym, ty) in simple {
        if k.is_set(sym) {
            return Ok(Fact {
                value: ty,
                source: k.source(sym),
            });
        }
    }
    let rsa_len = k
        .u32("CONFIG_BOOT_SIGNATURE_TYPE_RSA_LEN")?
        .map_or(2048, |f| f.value);
    let rsa = if rsa_len == 3072 {
        SignatureType::Rsa3072
    } else {
        SignatureType::Rsa2048
    };
    Ok(if k.is_set("CONFIG_BOOT_SIGNATURE_TYPE_RSA") {
        Fact {
            value: rsa,
            source: k.source("CONFIG_BOOT_SIGNATURE_TYPE_RSA"),
        }
    } else {
        // The `BOOT_SIGNATURE_TYPE` choice's default.
        Fact::default_value(rsa)
    })
}

/// mcumgr command groups: the names since Zephyr 3.2 (`subsys/mgmt/mcumgr/grp/*/Kconfig`) and
/// the legacy ones before it (`subsys/mgmt/mcumgr/Kconfig`, `CONFIG_MCUMGR_CMD_*_MGMT`; the
/// Zephyr basic group was `MCUMGR_GRP_ZEPHYR_BASIC`).
const GROUP_SYMBOLS: [(&str, &str); 14] = [
    ("CONFIG_MCUMGR_GRP_IMG", "img"),
    ("CONFIG_MCUMGR_GRP_OS", "os"),
    ("CONFIG_MCUMGR_GRP_STAT", "stat"),
    ("CONFIG_MCUMGR_GRP_SETTINGS", "settings"),
    ("CONFIG_MCUMGR_GRP_FS", "fs"),
    ("CONFIG_MCUMGR_GRP_SHELL", "shell"),
    ("CONFIG_MCUMGR_GRP_ZBASIC", "zephyr_basic"),
    ("CONFIG_MCUMGR_GRP_ENUM", "enum"),
    ("CONFIG_MCUMGR_CMD_IMG_MGMT", "img"),
    ("CONFIG_MCUMGR_CMD_OS_MGMT", "os"),
    ("CONFIG_MCUMGR_CMD_STAT_MGMT", "stat"),
    ("CONFIG_MCUMGR_CMD_FS_MGMT", "fs"),
    ("CONFIG_MCUMGR_CMD_SHELL_MGMT", "shell"),
    ("CONFIG_MCUMGR_GRP_ZEPHYR_BASIC", "zephyr_basic"),
];

/// mcumgr SMP transports: `CONFIG_MCUMGR_TRANSPORT_*` since Zephyr 3.2
/// (`subsys/mgmt/mcumgr/transport/Kconfig*`), `CONFIG_MCUMGR_SMP_*` before.
const TRANSPORT_SYMBOLS: [(&str, &str); 12] = [
    ("CONFIG_MCUMGR_TRANSPORT_BT", "bt"),
    ("CONFIG_MCUMGR_TRANSPORT_UART", "uart"),
    ("CONFIG_MCUMGR_TRANSPORT_RAW_UART", "raw_uart"),
    ("CONFIG_MCUMGR_TRANSPORT_SHELL", "shell"),
    ("CONFIG_MCUMGR_TRANSPORT_UDP", "udp"),
    ("CONFIG_MCUMGR_TRANSPORT_LORAWAN", "lorawan"),
    ("CONFIG_MCUMGR_TRANSPORT_DUMMY", "dummy"),
    ("CONFIG_MCUMGR_SMP_BT", "bt"),
    ("CONFIG_MCUMGR_SMP_UART", "uart"),
    ("CONFIG_MCUMGR_SMP_SHELL", "shell"),
    ("CONFIG_MCUMGR_SMP_UDP", "udp"),
    ("CONFIG_MCUMGR_SMP_DUMMY", "dummy"),
];

fn set_names(k: &Kconfig, table: &[(&str, &str)]) -> Vec<Fact<String>> {
    let mut out: Vec<Fact<String>> = Vec::new();
    for (sym, name) in table {
        if k.is_set(sym) && !out.iter().any(|f| f.value == *name) {
            out.push(Fact {
                value: (*name).to_string(),
                source: k.source(sym),
            });
        }
    }
    out
}

/// The first of `names` that the file sets (new spelling first, then legacy).
fn first_u32(k: &Kconfig, names: &[&str]) -> Result<Option<Fact<u32>>, BuildError> {
    for n in names {
        if let Some(f) = k.u32(n)? {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

impl AppFacts {
    /// Read an application's (or the network core's) `.config`. Absent bools are n;
    /// `ROM_START_OFFSET` absent is 0 (Zephyr `Kconfig.zephyr` gives 0x200 only with
    /// `BOOTLOADER_MCUBOOT`, and writes the symbol whenever it is visible).
    pub fn from_kconfig(k: &Kconfig) -> Result<AppFacts, BuildError> {
        let non_empty = |f: Option<Fact<String>>| f.filter(|f| !f.value.is_empty());
        Ok(AppFacts {
            config: k.path.clone(),
            board: non_empty(k.string("CONFIG_BOARD")),
            soc: non_empty(k.string("CONFIG_SOC")),
            bootloader_mcuboot: k.bool_or("CONFIG_BOOTLOADER_MCUBOOT", false),
            rom_start_offset: k
                .u32("CONFIG_ROM_START_OFFSET")?
                .unwrap_or(Fact::default_value(0)),
            sign_version: non_empty(k.string("CONFIG_MCUBOOT_IMGTOOL_SIGN_VERSION")),
            extra_imgtool_args: non_empty(k.string("CONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS")),
            mcumgr_groups: set_names(k, &GROUP_SYMBOLS),
            mcumgr_transports: set_names(k, &TRANSPORT_SYMBOLS),
            netbuf_size: first_u32(
                k,
                &[
                    "CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE",
                    "CONFIG_MCUMGR_BUF_SIZE",
                ],
            )?,
            netbuf_count: first_u32(
                k,
                &[
                    "CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT",
                    "CONFIG_MCUMGR_BUF_COUNT",
                ],
            )?,
            bt_l2cap_tx_mtu: k.u32("CONFIG_BT_L2CAP_TX_MTU")?,
            bt_acl_rx_size: k.u32("CONFIG_BT_BUF_ACL_RX_SIZE")?,
            uart_rx_buf_size: k.u32("CONFIG_UART_MCUMGR_RX_BUF_SIZE")?,
            tfm: k.bool_or("CONFIG_BUILD_WITH_TFM", false),
            nonsecure: k.bool_or("CONFIG_TRUSTED_EXECUTION_NONSECURE", false),
            secure_boot: k.bool_or("CONFIG_SECURE_BOOT", false),
        })
    }

    /// Whether the image is the nRF5340 network core (`CONFIG_SOC_NRF5340_CPUNET`).
    pub fn is_netcore(k: &Kconfig) -> bool {
        k.is_set("CONFIG_SOC_NRF5340_CPUNET") || k.is_set("CONFIG_SOC_NRF5340_CPUNET_QKAA")
    }
}

impl NsibFacts {
    /// NSIB facts from the images that carry them. `b0` is `build/b0/zephyr/.config` (NSIB
    /// itself); `images` are the other images by label (`mcuboot`, `app`, `s1_image`,
    /// `netcore`, `b0n`), each of which may set `CONFIG_SB_NUM_VER_COUNTER_SLOTS` (NCS
    /// `subsys/bootloader/Kconfig`, default 240); `s1_image` says an s1 variant of MCUboot
    /// was built (parent/child builds). `None` when no image mentions NSIB.
    pub fn read(
        b0: Option<&Kconfig>,
        images: &[(&str, &Kconfig)],
        sysbuild: Option<&Kconfig>,
        s1_image: bool,
    ) -> Result<Option<NsibFacts>, BuildError> {
        let mut counter_slots = Vec::new();
        for (label, k) in b0.iter().map(|k| ("b0", *k)).chain(images.iter().copied()) {
            if let Some(f) = k.u32("CONFIG_SB_NUM_VER_COUNTER_SLOTS")? {
                counter_slots.push((label.to_string(), f));
            }
        }
        if b0.is_none() && counter_slots.is_empty() {
            return Ok(None);
        }
        let non_empty = |f: Option<Fact<String>>| f.filter(|f| !f.value.is_empty());
        let signing_key_file = b0
            .and_then(|k| non_empty(k.string("CONFIG_SB_SIGNING_KEY_FILE")))
            .or_else(|| {
                sysbuild.and_then(|k| non_empty(k.string("SB_CONFIG_SECURE_BOOT_SIGNING_KEY_FILE")))
            });
        let s1_variant = sysbuild
            .and_then(|k| k.bool("SB_CONFIG_SECURE_BOOT_BUILD_S1_VARIANT_IMAGE"))
            .filter(|f| f.value || !s1_image)
            .unwrap_or(Fact::default_value(s1_image));
        let config = b0
            .map(|k| k.path.clone())
            .or_else(|| {
                counter_slots
                    .first()
                    .and_then(|(_, f)| f.source.as_ref().map(|s| s.file.clone()))
            })
            .unwrap_or_default();
        Ok(Some(NsibFacts {
            config,
            counter_slots,
            signing_key_file,
            s1_variant,
        }))
    }
}

impl SysbuildFacts {
    /// Read sysbuild's `build/zephyr/.config`. The image numbers are NCS
    /// `sysbuild/Kconfig.mcuboot` (`SB_CONFIG_MCUBOOT_*_IMAGE_NUMBER`, -1 = no such image);
    /// `SB_CONFIG_PARTITION_MANAGER` absent = a plain Zephyr sysbuild without PM.
    pub fn from_kconfig(k: &Kconfig) -> Result<SysbuildFacts, BuildError> {
        Ok(SysbuildFacts {
            config: k.path.clone(),
            app_image_number: k.int("SB_CONFIG_MCUBOOT_APPLICATION_IMAGE_NUMBER")?,
            netcore_image_number: k.int("SB_CONFIG_MCUBOOT_NETWORK_CORE_IMAGE_NUMBER")?,
            mcuboot_image_number: k.int("SB_CONFIG_MCUBOOT_MCUBOOT_IMAGE_NUMBER")?,
            partition_manager: k.bool_or("SB_CONFIG_PARTITION_MANAGER", false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn k(text: &str) -> Kconfig {
        Kconfig::parse(Path::new("mcuboot/zephyr/.config"), text).unwrap()
    }

    #[test]
    fn mcuboot_defaults_when_symbols_are_absent() {
        let m = McubootFacts::from_kconfig(&k("CONFIG_MCUBOOT=y\n")).unwrap();
        assert_eq!(m.mode.value, Some(UpgradeMode::SwapScratch));
        assert!(m.mode.source.is_none());
        assert_eq!(m.max_sectors.value, 128);
        assert!(m.max_sectors.source.is_none());
        assert_eq!(m.signature.value, SignatureType::Rsa2048);
        assert_eq!(m.key_file.unwrap().value, "root-rsa-2048.pem");
        assert!(m.validate_primary.value);
        assert_eq!(m.image_number.value, 1);
        assert!(!m.external_flash_driver.value);
        assert!(!m.single_slot.value);
    }

    #[test]
    fn mcuboot_values_keep_their_lines() {
        let m = McubootFacts::from_kconfig(&k("CONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P256=y\n\
             CONFIG_BOOT_SIGNATURE_KEY_FILE=\"C:/ncs/v3.0.2/bootloader/mcuboot/root-ec-p256.pem\"\n\
             CONFIG_BOOT_UPGRADE_ONLY=y\nCONFIG_BOOT_SWAP_USING_MOVE=y\n\
             # CONFIG_NORDIC_QSPI_NOR is not set\nCONFIG_SPI_NOR=y\n\
             CONFIG_UPDATEABLE_IMAGE_NUMBER=2\n# CONFIG_BOOT_MAX_IMG_SECTORS_AUTO is not set\n\
             CONFIG_BOOT_MAX_IMG_SECTORS=512\n# CONFIG_BOOT_VALIDATE_SLOT0 is not set\n"))
        .unwrap();
        assert!(!m.max_sectors_auto());
        assert_eq!(m.signature.value, SignatureType::EcdsaP256);
        assert_eq!(m.signature.source.unwrap().line, 1);
        assert!(m.key_file.as_ref().unwrap().value.starts_with("C:/ncs/"));
        assert_eq!(m.mode.value, Some(UpgradeMode::OverwriteOnly));
        assert_eq!(m.mode.source.unwrap().line, 3);
        assert!(m.external_flash_driver.value);
        assert_eq!(m.external_flash_driver.source.unwrap().line, 6);
        assert_eq!(m.image_number.value, 2);
        assert_eq!(m.max_sectors.value, 512);
        assert!(!m.validate_primary.value);
        assert_eq!(m.validate_primary.source.unwrap().line, 10);
    }

    #[test]
    fn mcuboot_auto_sectors_single_slot_and_rsa_3072() {
        let m = McubootFacts::from_kconfig(&k("CONFIG_BOOT_MAX_IMG_SECTORS_AUTO=y\n\
             CONFIG_SINGLE_APPLICATION_SLOT=y\nCONFIG_BOOT_SIGNATURE_TYPE_RSA=y\n\
             CONFIG_BOOT_SIGNATURE_TYPE_RSA_LEN=3072\n"))
        .unwrap();
        assert!(m.max_sectors_auto());
        assert_eq!(m.mode.value, None);
        assert_eq!(m.mode.source.unwrap().line, 2);
        assert_eq!(m.signature.value, SignatureType::Rsa3072);
        assert_eq!(m.key_file.unwrap().value, "root-rsa-3072.pem");
    }

    #[test]
    fn app_reads_new_and_legacy_mcumgr_names() {
        let new = AppFacts::from_kconfig(&k("CONFIG_MCUMGR=y\nCONFIG_MCUMGR_GRP_IMG=y\n\
             CONFIG_MCUMGR_GRP_IMG_LOG_LEVEL=3\nCONFIG_MCUMGR_GRP_OS=y\nCONFIG_MCUMGR_GRP_ZBASIC=y\n\
             CONFIG_MCUMGR_TRANSPORT_BT=y\nCONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY=y\n\
             # CONFIG_MCUMGR_TRANSPORT_UART is not set\nCONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=2475\n\
             CONFIG_BT_L2CAP_TX_MTU=498\nCONFIG_ROM_START_OFFSET=0x800\nCONFIG_SOC=\"nrf54l15\"\n"))
        .unwrap();
        let names = |v: &[Fact<String>]| v.iter().map(|f| f.value.clone()).collect::<Vec<_>>();
        assert_eq!(names(&new.mcumgr_groups), ["img", "os", "zephyr_basic"]);
        assert_eq!(names(&new.mcumgr_transports), ["bt"]);
        assert_eq!(new.netbuf_size.unwrap().value, 2475);
        assert_eq!(new.bt_l2cap_tx_mtu.unwrap().value, 498);
        assert_eq!(new.rom_start_offset.value, 0x800);
        assert_eq!(new.soc.unwrap().value, "nrf54l15");
        let legacy = AppFacts::from_kconfig(&k("CONFIG_MCUMGR_CMD_IMG_MGMT=y\n\
             CONFIG_MCUMGR_CMD_OS_MGMT=y\nCONFIG_MCUMGR_SMP_BT=y\nCONFIG_MCUMGR_BUF_SIZE=384\n\
             CONFIG_MCUMGR_BUF_COUNT=4\n"))
        .unwrap();
        assert_eq!(names(&legacy.mcumgr_groups), ["img", "os"]);
        assert_eq!(names(&legacy.mcumgr_transports), ["bt"]);
        assert_eq!(legacy.netbuf_size.unwrap().source.unwrap().line, 4);
        assert_eq!(legacy.netbuf_count.unwrap().value, 4);
    }

    #[test]
    fn nsib_and_sysbuild() {
        let b0 = k("CONFIG_SB_SIGNING_KEY_FILE=\"\"\n");
        let mcuboot = k("CONFIG_SB_NUM_VER_COUNTER_SLOTS=20\n");
        let sb = k("SB_CONFIG_SECURE_BOOT_SIGNING_KEY_FILE=\"key.pem\"\n\
             SB_CONFIG_SECURE_BOOT_BUILD_S1_VARIANT_IMAGE=y\nSB_CONFIG_PARTITION_MANAGER=y\n\
             SB_CONFIG_MCUBOOT_MCUBOOT_IMAGE_NUMBER=1\nSB_CONFIG_MCUBOOT_NETWORK_CORE_IMAGE_NUMBER=-1\n");
        let n = NsibFacts::read(Some(&b0), &[("mcuboot", &mcuboot)], Some(&sb), false)
            .unwrap()
            .unwrap();
        assert_eq!(n.counter_slots.len(), 1);
        assert_eq!(n.counter_slots[0].0, "mcuboot");
        assert_eq!(n.signing_key_file.unwrap().value, "key.pem");
        assert!(n.s1_variant.value);
        assert!(
            NsibFacts::read(None, &[("app", &k("CONFIG_A=y\n"))], None, false)
                .unwrap()
                .is_none()
        );
        let s = SysbuildFacts::from_kconfig(&sb).unwrap();
        assert_eq!(s.mcuboot_image_number.unwrap().value, 1);
        assert_eq!(s.netcore_image_number.unwrap().value, -1);
        assert!(s.app_image_number.is_none());
        assert!(s.partition_manager.value);
    }
}
