//! The fixture language: what a scenario's `fixtures:` block and the fixture manifest
//! (`firmware-fixtures/fixtures.yaml`) say. Kept apart from the builder in [`crate::fixtures`]
//! so the scenario language can hold fixture definitions without knowing how they are built.

use dfu_hil_firmware::provision::DEFAULT_COUNTER_SLOTS;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum FixtureSpec {
    /// The bootloader, built from the scenario's `bootloader:` block; with `nsib-slot` the
    /// variant linked for NSIB's s0 or s1 (with its fw_info version), as programmed there.
    Mcuboot(McubootFixture),
    /// An MCUboot update for an NSIB board: the s0/s1 variant signed for b0 and wrapped as an
    /// MCUboot image (NCS's `signed_by_mcuboot_and_b0_s*_image_update.bin`).
    McubootUpdate(McubootFixture),
    /// The NSIB immutable bootloader (b0).
    B0 {},
    /// NSIB's provision data: the public key hash and the monotonic counter slots.
    Provision(ProvisionFixture),
    /// A synthetic application signed for the primary slot.
    App(AppFixture),
    /// A real image file (path relative to the manifest or scenario): a signed `.bin`, an
    /// Intel HEX (`zephyr.signed.hex`) or `dfu_application.zip`.
    File(PathBuf),
    /// One of the signed images of the build the scenario runs on (`build:` / `--build`):
    /// `app` (`zephyr.signed.bin`), `app-update` (`app_update.bin`), `net-core`
    /// (`net_core_app_update.bin`), `mcuboot-s0` / `mcuboot-s1` (MCUboot updates for NSIB's
    /// slots). Derive the next version from it with `derived:` (re-signed with the build's key).
    Build(BuildRole),
    /// Another fixture with derivations applied in order (`image derive`): re-signed with
    /// another version or key, corrupted payload/hash/signature, wrong header size, too large,
    /// truncated, non-bootable — every bad-input case without a firmware build.
    Derived(DerivedFixture),
}

/// Which of a build's images a `build:` fixture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BuildRole {
    App,
    AppUpdate,
    NetCore,
    McubootS0,
    McubootS1,
}

impl BuildRole {
    /// The build crate's name for the role.
    pub fn image_role(self) -> dfu_hil_build::build::ImageRole {
        use dfu_hil_build::build::ImageRole;
        match self {
            BuildRole::App => ImageRole::App,
            BuildRole::AppUpdate => ImageRole::AppUpdate,
            BuildRole::NetCore => ImageRole::NetCore,
            BuildRole::McubootS0 => ImageRole::McubootUpdate { nsib_slot: 0 },
            BuildRole::McubootS1 => ImageRole::McubootUpdate { nsib_slot: 1 },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BuildRole::App => "app",
            BuildRole::AppUpdate => "app-update",
            BuildRole::NetCore => "net-core",
            BuildRole::McubootS0 => "mcuboot-s0",
            BuildRole::McubootS1 => "mcuboot-s1",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DerivedFixture {
    pub from: String,
    #[schemars(with = "Vec<serde_json::Value>")]
    pub derive: Vec<dfu_hil_mcuboot::derive::Derivation>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct McubootFixture {
    /// `s0` or `s1`: build the NSIB variant linked for that slot.
    pub nsib_slot: Option<String>,
    /// fw_info firmware version (CONFIG_FW_INFO_FIRMWARE_VERSION); NSIB boots the highest.
    #[serde(default = "one")]
    pub fw_version: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProvisionFixture {
    /// Monotonic counter slots (NCS default 20 when MCUboot is the second stage).
    #[serde(default = "default_counter_slots")]
    pub counter_slots: u16,
}

fn default_counter_slots() -> u16 {
    DEFAULT_COUNTER_SLOTS
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AppFixture {
    /// Application name (shown in its boot banner).
    pub name: String,
    /// Image version, `major.minor.revision[+build]`.
    pub version: String,
    /// Size of the unsigned binary in bytes.
    #[serde(default = "default_size")]
    pub size: u32,
    /// Key name from the manifest's `keys:`; `none` signs hash-only.
    #[serde(default = "default_key")]
    pub key: String,
    /// imgtool `--header-size`.
    #[serde(default = "default_hdr")]
    pub header_size: u16,
    /// Where the app's vector table is linked, from the slot start (Zephyr ROM_START_OFFSET).
    #[serde(default = "default_hdr_u32")]
    pub rom_start_offset: u32,
    /// imgtool `--pad-header`.
    #[serde(default)]
    pub pad_header: bool,
    /// The app calls `boot_write_img_confirmed()` at start-up.
    #[serde(default)]
    pub confirm_on_boot: bool,
    /// SMP groups compiled in (0 = OS, 1 = image).
    pub smp_groups: Option<Vec<u16>>,
    /// The app's `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE` (Zephyr's default 384; 2475 with NCS
    /// 2.3–3.1's `CONFIG_NCS_SAMPLE_MCUMGR_BT_OTA_DFU`), reported by `os mcumgr_params`.
    pub netbuf_size: Option<u32>,
    /// The app's `CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT` (Zephyr's default 4).
    pub netbuf_count: Option<u32>,
    /// The app's `CONFIG_UART_MCUMGR_RX_BUF_SIZE` (default 128): bytes per received SMP line.
    pub uart_rx_buf_size: Option<u32>,
    /// The app's `CONFIG_UART_MCUMGR_RX_BUF_COUNT` (default 2): SMP line buffers.
    pub uart_rx_buf_count: Option<u32>,
    /// The app's `CONFIG_MCUMGR_GRP_OS_RESET_MS` (default 250): how long it keeps answering
    /// after `os reset`.
    pub reset_ms: Option<u32>,
    /// MCUboot image number it is built for: linked for that image's primary slot and sized
    /// for its secondary (1 = the nRF5340 network core, linked at the netcore flash).
    #[serde(default)]
    pub image: u32,
    /// imgtool `--dependencies`: images that must be at least this version for this one to be
    /// installed (MCUboot holds every image of the update until they are met).
    #[serde(default)]
    pub dependencies: Vec<DependencySpec>,
}

/// One `--dependencies "(image, version)"` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DependencySpec {
    pub image: u8,
    /// Minimum version, `major.minor.revision[+build]`.
    pub version: String,
}

fn default_size() -> u32 {
    0x6000
}
fn default_key() -> String {
    "default".into()
}
fn default_hdr() -> u16 {
    0x200
}
fn default_hdr_u32() -> u32 {
    0x200
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Key name → PEM path (relative to the manifest).
    #[serde(default)]
    pub keys: BTreeMap<String, PathBuf>,
    #[serde(default)]
    pub images: BTreeMap<String, FixtureSpec>,
}
