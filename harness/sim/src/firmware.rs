//! What the simulated CPU executes: synthetic but structurally real firmware.
//!
//! A simulated app binary is laid out like Zephyr's `zephyr.bin` for an MCUboot slot:
//! `rom_start_offset` zero bytes (the room MCUboot's header takes), then a Cortex-M vector table
//! (initial SP, reset vector), then — where the reset vector points — a descriptor that tells the
//! simulator what this firmware does (its name, version, which SMP groups it has). The simulator
//! follows the vector table exactly as MCUboot's `do_boot` does, so an image signed with the
//! wrong `--header-size` jumps into zeros and faults, with no special case anywhere.
//!
//! The bootloader partition holds a similar descriptor carrying MCUboot's build configuration
//! (upgrade mode, max-align, BOOT_MAX_IMG_SECTORS, the public key, optional drivers).

use serde::{Deserialize, Serialize};

/// Start of RAM on nRF52/nRF53 application cores; a valid initial SP lies above it.
pub const RAM_START: u32 = 0x2000_0000;
pub const RAM_END: u32 = 0x2008_0000;
/// Where the descriptor sits after the vector table (the reset handler's address).
const CODE_OFFSET: u32 = 0x100;
const APP_MAGIC: &[u8; 8] = b"SIMAPP\0\x01";
const BOOT_MAGIC: &[u8; 8] = b"SIMBOOT\x01";

/// Description of a simulated application, as built into its binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AppDescriptor {
    /// Firmware name printed in the boot banner.
    pub name: String,
    /// Version string the app reports (kept for the banner; SMP reports the header's version).
    pub version: String,
    /// SMP groups compiled in (Zephyr `CONFIG_MCUMGR_GRP_*`): 0 = OS, 1 = image.
    #[serde(default = "default_groups")]
    pub smp_groups: Vec<u16>,
    /// The app confirms itself at boot (`boot_write_img_confirmed()` in main).
    #[serde(default)]
    pub confirm_on_boot: bool,
    /// `CONFIG_MCUBOOT_BOOT_MAX_ALIGN` the app's bootutil was built with (8 unless set).
    #[serde(default = "default_max_align")]
    pub max_align: u32,
    /// `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`.
    #[serde(default = "default_buf_size")]
    pub buf_size: u32,
    /// `CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT`.
    #[serde(default = "default_buf_count")]
    pub buf_count: u32,
    /// `CONFIG_UART_MCUMGR_RX_BUF_SIZE`: bytes of one received SMP line, `\n` included
    /// (Zephyr's default 128).
    #[serde(default = "default_uart_rx_buf_size")]
    pub uart_rx_buf_size: u32,
    /// `CONFIG_UART_MCUMGR_RX_BUF_COUNT`: received lines the UART transport can hold (Zephyr's
    /// default 2).
    #[serde(default = "default_uart_rx_buf_count")]
    pub uart_rx_buf_count: u32,
    /// `CONFIG_MCUMGR_GRP_OS_RESET_MS`: how long the app keeps running after it answered
    /// `os reset` (Zephyr's default 250).
    #[serde(default = "default_reset_ms")]
    pub reset_ms: u32,
}

fn default_groups() -> Vec<u16> {
    vec![0, 1]
}
fn default_max_align() -> u32 {
    8
}
fn default_buf_size() -> u32 {
    384
}
fn default_buf_count() -> u32 {
    4
}
fn default_uart_rx_buf_size() -> u32 {
    dfu_hil_smp::limits::DEFAULT_LINE_SIZE as u32
}
fn default_uart_rx_buf_count() -> u32 {
    dfu_hil_smp::limits::DEFAULT_LINE_COUNT as u32
}
fn default_reset_ms() -> u32 {
    250
}

impl AppDescriptor {
    pub fn new(name: &str, version: &str) -> Self {
        AppDescriptor {
            name: name.to_owned(),
            version: version.to_owned(),
            smp_groups: default_groups(),
            confirm_on_boot: false,
            max_align: 8,
            buf_size: default_buf_size(),
            buf_count: default_buf_count(),
            uart_rx_buf_size: default_uart_rx_buf_size(),
            uart_rx_buf_count: default_uart_rx_buf_count(),
            reset_ms: default_reset_ms(),
        }
    }
}

/// Build an unsigned app binary linked to run at `link_base + rom_start_offset` (the address of
/// its vector table), `size` bytes long (at least big enough for the descriptor). The filler is
/// a deterministic pattern derived from the name and version so two versions differ everywhere,
/// like two real builds.
pub fn build_app(
    desc: &AppDescriptor,
    link_base: u32,
    rom_start_offset: u32,
    size: u32,
) -> Vec<u8> {
    let vt = link_base + rom_start_offset;
    let json = serde_json::to_vec(desc).expect("descriptor serialises");
    let mut code = Vec::new();
    code.extend_from_slice(APP_MAGIC);
    code.extend_from_slice(&(json.len() as u32).to_le_bytes());
    code.extend_from_slice(&json);
    let min = (rom_start_offset + CODE_OFFSET) as usize + code.len();
    let total = (size as usize).max(min);
    let mut bin = vec![0u8; total];
    let o = rom_start_offset as usize;
    bin[o..o + 4].copy_from_slice(&(RAM_START + 0x4_0000).to_le_bytes());
    bin[o + 4..o + 8].copy_from_slice(&((vt + CODE_OFFSET) | 1).to_le_bytes());
    let c = o + CODE_OFFSET as usize;
    bin[c..c + code.len()].copy_from_slice(&code);
    // xorshift filler seeded from the identity: reproducible, incompressible-ish, distinct per build.
    let mut seed: u32 = 0x811c_9dc5;
    for b in desc.name.bytes().chain(desc.version.bytes()) {
        seed = (seed ^ b as u32).wrapping_mul(0x0100_0193);
    }
    for byte in bin[c + code.len()..].iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        *byte = seed as u8;
    }
    bin
}

/// Read an app descriptor at `code` (bytes at the reset handler's address).
pub fn read_app(code: &[u8]) -> Option<AppDescriptor> {
    read_blob(code, APP_MAGIC).and_then(|j| serde_json::from_slice(&j).ok())
}

fn read_blob(code: &[u8], magic: &[u8; 8]) -> Option<Vec<u8>> {
    if code.len() < 12 || &code[..8] != magic {
        return None;
    }
    let len = u32::from_le_bytes(code[8..12].try_into().ok()?) as usize;
    code.get(12..12 + len).map(|s| s.to_vec())
}

/// MCUboot's build configuration, as the simulated bootloader binary carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BootloaderBuild {
    pub mode: dfu_hil_mcuboot::trailer::UpgradeMode,
    pub max_align: u32,
    pub max_sectors: u32,
    /// SPKI PEM of the built-in verification key; `None` = hash-only validation.
    pub key_pem: Option<String>,
    /// `CONFIG_BOOT_VALIDATE_SLOT0`: validate the primary image on every boot.
    pub validate_primary: bool,
    pub downgrade_prevention: bool,
    /// Flash drivers compiled in, by device kind (`external` = QSPI/SPI NOR driver).
    pub external_flash_driver: bool,
    /// Version banner.
    pub version: String,
    /// `MCUBOOT_HW_ROLLBACK_PROT`: every image (but the netcore and NSIB-owned ones) must carry
    /// a SEC_CNT TLV no lower than the hardware security counter of its image number, and the
    /// counter is raised to the running image's SEC_CNT once it is confirmed (or at once after
    /// a permanent swap / an overwrite).
    #[serde(default)]
    pub hw_rollback_prot: bool,
    /// Partitions missing from this MCUboot build's flash map (devicetree node disabled, no
    /// driver, `CONFIG_FLASH_SIMULATOR` off for the netcore's RAM slot): `flash_area_open`
    /// fails for them and MCUboot panics ("Failed to open flash area ID n (image i slot s)").
    #[serde(default)]
    pub missing_partitions: Vec<String>,
    /// NSIB second stage: `CONFIG_FW_INFO_FIRMWARE_VERSION` of this MCUboot build (the version
    /// b0 compares and records in its monotonic counter). `None` = not built for NSIB.
    #[serde(default)]
    pub fw_info_version: Option<u32>,
    /// NSIB second stage: the slot (`s0` or `s1`) this MCUboot variant is linked for (NCS
    /// builds MCUboot for s0 and an `s1_image` variant). It is also the slot MCUboot knows it
    /// runs from (`CONFIG_NCS_IS_VARIANT_IMAGE`).
    #[serde(default)]
    pub nsib_slot: Option<String>,
}

impl Default for BootloaderBuild {
    fn default() -> Self {
        BootloaderBuild {
            mode: dfu_hil_mcuboot::trailer::UpgradeMode::SwapMove,
            max_align: 8,
            max_sectors: 128,
            key_pem: None,
            validate_primary: true,
            downgrade_prevention: false,
            external_flash_driver: true,
            version: "2.1.0".into(),
            hw_rollback_prot: false,
            missing_partitions: Vec::new(),
            fw_info_version: None,
            nsib_slot: None,
        }
    }
}

/// Address of MCUboot's `arch_system_halt` in the simulated bootloader (offset in its partition);
/// where a CPU that took a fatal fault inside MCUboot ends up spinning.
pub const BOOT_ARCH_SYSTEM_HALT: u32 = 0x1a2c;

/// `CONFIG_FW_INFO_OFFSET`: where an NSIB-booted image carries its `fw_info`.
pub const FW_INFO_OFFSET: u32 = 0x200;
/// Where the build descriptor sits in an image that has a `fw_info` (after it).
const NSIB_CODE_OFFSET: u32 = 0x400;

/// A bootloader binary linked at `link_base`: vector table at 0, then the build descriptor
/// where the reset vector points. With `fw_info_version` set (an MCUboot variant for NSIB's
/// s0/s1) a `fw_info` struct sits at [`FW_INFO_OFFSET`] and the descriptor after it; sign it
/// for b0 with [`crate::nsib::sign_for_b0`].
pub fn build_bootloader(build: &BootloaderBuild, link_base: u32) -> Vec<u8> {
    let json = serde_json::to_vec(build).expect("build serialises");
    let code_off = if build.fw_info_version.is_some() {
        NSIB_CODE_OFFSET
    } else {
        CODE_OFFSET
    };
    let mut bin = vec![0u8; code_off as usize];
    bin[0..4].copy_from_slice(&(RAM_START + 0x1_0000).to_le_bytes());
    bin[4..8].copy_from_slice(&((link_base + code_off) | 1).to_le_bytes());
    bin.extend_from_slice(BOOT_MAGIC);
    bin.extend_from_slice(&(json.len() as u32).to_le_bytes());
    bin.extend_from_slice(&json);
    bin.resize(bin.len().next_multiple_of(4), 0);
    if let Some(version) = build.fw_info_version {
        let info = crate::nsib::FwInfo::new(version, link_base, bin.len() as u32, link_base);
        let o = FW_INFO_OFFSET as usize;
        bin[o..o + crate::nsib::FW_INFO_SIZE].copy_from_slice(&info.to_bytes());
    }
    bin
}

/// Read the bootloader build from the start of the bootloader partition.
pub fn read_bootloader(partition: &[u8]) -> Option<BootloaderBuild> {
    let code = partition.get(CODE_OFFSET as usize..)?;
    read_bootloader_code(code)
}

/// Read a bootloader build descriptor at `code` (the bytes at its reset handler).
pub fn read_bootloader_code(code: &[u8]) -> Option<BootloaderBuild> {
    read_blob(code, BOOT_MAGIC).and_then(|j| serde_json::from_slice(&j).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_round_trip_through_vector_table() {
        let d = AppDescriptor::new("blinky", "1.0.0");
        let bin = build_app(&d, 0xc000, 0x200, 0x4000);
        assert_eq!(bin.len(), 0x4000);
        assert!(bin[..0x200].iter().all(|&b| b == 0));
        let reset = u32::from_le_bytes(bin[0x204..0x208].try_into().unwrap());
        assert_eq!(reset & 1, 1);
        let off = ((reset & !1) - 0xc000) as usize;
        assert_eq!(read_app(&bin[off..]), Some(d.clone()));
        let other = build_app(
            &AppDescriptor::new("blinky", "2.0.0"),
            0xc000,
            0x200,
            0x4000,
        );
        assert_ne!(bin[0x1000..], other[0x1000..]);
        assert_eq!(bin, build_app(&d, 0xc000, 0x200, 0x4000), "reproducible");
    }

    #[test]
    fn bootloader_round_trip() {
        let b = BootloaderBuild::default();
        let bin = build_bootloader(&b, 0);
        assert_eq!(read_bootloader(&bin), Some(b));
        assert_eq!(read_bootloader(&[0xff; 512]), None);
    }
}
