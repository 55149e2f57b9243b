//! What each image of the build was configured to do, read from its `.config`. Every fact keeps
//! the file:line it came from ([`Source`]) so that `doctor` and a scenario error can point at it.
//!
//! Types are fixed here so that the layout, doctor and runner work can use them; the readers
//! (`from_kconfig`) are filled in by the build-directory work.

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
    /// `CONFIG_BOOT_MAX_IMG_SECTORS`.
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
