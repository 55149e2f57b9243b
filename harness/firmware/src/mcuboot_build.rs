//! MCUboot's build configuration as the simulated bootloader binary carries it (upgrade mode,
//! max-align, `BOOT_MAX_IMG_SECTORS`, the public key, optional drivers), and the binary itself:
//! a vector table, then the descriptor where the reset vector points — and for an NSIB
//! second stage a `fw_info` b0 can read.

use crate::app::{CODE_OFFSET, RAM_START};
use crate::descriptor;
use crate::fw_info::{FwInfo, FW_INFO_OFFSET, FW_INFO_SIZE};
use serde::{Deserialize, Serialize};

const BOOT_MAGIC: &[u8; 8] = b"SIMBOOT\x01";

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
    /// Not part of MCUboot: what the simulated CPU runs when MCUboot hands over to a real
    /// image (a user's `zephyr.signed.bin`) it cannot execute. The simulator follows that
    /// image's vector table as for any image (a wrong header size still faults); when the
    /// table is sound it runs this model of the app — an SMP server with the groups and
    /// buffers the build's `.config` gives — and says so in the boot log. Carried in this
    /// descriptor because it is what the simulated board reads at every boot. `None`: a real
    /// image is garbage to the simulator (it faults), as before builds were an input.
    #[serde(default)]
    pub stand_in_app: Option<crate::app::AppDescriptor>,
    /// The MCUboot (and NCS) release this build follows: version-dependent bootloader
    /// behaviour (NCS's s0/s1 variant check, reading an external secondary's header) follows it.
    #[serde(default)]
    pub release: crate::release::Release,
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
            stand_in_app: None,
            release: crate::release::Release::default(),
        }
    }
}

/// Address of MCUboot's `arch_system_halt` in the simulated bootloader (offset in its partition);
/// where a CPU that took a fatal fault inside MCUboot ends up spinning.
pub const BOOT_ARCH_SYSTEM_HALT: u32 = 0x1a2c;

/// Where the build descriptor sits in an image that has a `fw_info` (after it).
const NSIB_CODE_OFFSET: u32 = 0x400;

/// A bootloader binary linked at `link_base`: vector table at 0, then the build descriptor
/// where the reset vector points. With `fw_info_version` set (an MCUboot variant for NSIB's
/// s0/s1) a `fw_info` struct sits at [`FW_INFO_OFFSET`] and the descriptor after it; sign it
/// for b0 with [`crate::nsib::sign_for_b0`].
pub fn build_bootloader(build: &BootloaderBuild, link_base: u32) -> Vec<u8> {
    let code_off = if build.fw_info_version.is_some() {
        NSIB_CODE_OFFSET
    } else {
        CODE_OFFSET
    };
    let mut bin = vec![0u8; code_off as usize];
    bin[0..4].copy_from_slice(&(RAM_START + 0x1_0000).to_le_bytes());
    bin[4..8].copy_from_slice(&((link_base + code_off) | 1).to_le_bytes());
    bin.extend_from_slice(&descriptor::encode(BOOT_MAGIC, build));
    bin.resize(bin.len().next_multiple_of(4), 0);
    if let Some(version) = build.fw_info_version {
        let info = FwInfo::new(version, link_base, bin.len() as u32, link_base);
        let o = FW_INFO_OFFSET as usize;
        bin[o..o + FW_INFO_SIZE].copy_from_slice(&info.to_bytes());
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
    descriptor::decode(code, BOOT_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootloader_round_trip() {
        let b = BootloaderBuild::default();
        let bin = build_bootloader(&b, 0);
        assert_eq!(read_bootloader(&bin), Some(b));
        assert_eq!(read_bootloader(&[0xff; 512]), None);
    }
}
