//! NCS's `fw_info` (`include/fw_info.h`): the struct an NSIB-booted image carries at
//! `CONFIG_FW_INFO_OFFSET` so b0 can find its size, version and boot address, and the magic
//! words of the validation info that follows the firmware.

/// `CONFIG_FW_INFO_OFFSET`: where an NSIB-booted image carries its `fw_info`.
pub const FW_INFO_OFFSET: u32 = 0x200;

pub const FW_INFO_MAGIC_COMMON: u32 = 0x281e_e6de;
pub const FW_INFO_MAGIC_FIRMWARE_INFO: u32 = 0x8fce_bb4c;
pub const SB_VALIDATION_INFO_MAGIC: u32 = 0x8651_8483;
/// `FW_INFO_VERSION` 2 | `HARDWARE_ID` 52 << 8 (nRF52) | `CRYPTO_ID` 1 (ECDSA P-256) << 16.
pub const FW_INFO_COMPAT: u32 = 2 | (52 << 8) | (1 << 16);
/// `CONFIG_FW_INFO_VALID_VAL`.
pub const FW_INFO_VALID_VAL: u32 = 0x9102_ffff;
/// What `fw_info_invalidate` writes over `valid` (NOR programming ANDs it in).
pub const FW_INFO_INVALID_VAL: u32 = 0xffff_0000;
pub const FW_INFO_SIZE: usize = 60;
/// Offset of `valid` inside `fw_info` (what `fw_info_invalidate` programs).
pub const VALID_OFF: u32 = 32;
/// `struct fw_info` (without ext_api entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwInfo {
    pub magic: [u32; 3],
    pub total_size: u32,
    /// Firmware size: the signed region is `[address, address + size)`.
    pub size: u32,
    pub version: u32,
    pub address: u32,
    pub boot_address: u32,
    pub valid: u32,
}

impl FwInfo {
    pub fn new(version: u32, address: u32, size: u32, boot_address: u32) -> Self {
        FwInfo {
            magic: [
                FW_INFO_MAGIC_COMMON,
                FW_INFO_MAGIC_FIRMWARE_INFO,
                FW_INFO_COMPAT,
            ],
            total_size: FW_INFO_SIZE as u32,
            size,
            version,
            address,
            boot_address,
            valid: FW_INFO_VALID_VAL,
        }
    }

    pub fn to_bytes(&self) -> [u8; FW_INFO_SIZE] {
        let mut b = [0u8; FW_INFO_SIZE];
        let words = [
            self.magic[0],
            self.magic[1],
            self.magic[2],
            self.total_size,
            self.size,
            self.version,
            self.address,
            self.boot_address,
            self.valid,
        ];
        for (i, w) in words.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// `fw_info_check`: the magic words must match.
    pub fn parse(b: &[u8]) -> Option<FwInfo> {
        if b.len() < FW_INFO_SIZE {
            return None;
        }
        let w = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        let info = FwInfo {
            magic: [w(0), w(1), w(2)],
            total_size: w(3),
            size: w(4),
            version: w(5),
            address: w(6),
            boot_address: w(7),
            valid: w(8),
        };
        (info.magic
            == [
                FW_INFO_MAGIC_COMMON,
                FW_INFO_MAGIC_FIRMWARE_INFO,
                FW_INFO_COMPAT,
            ])
        .then_some(info)
    }
}
