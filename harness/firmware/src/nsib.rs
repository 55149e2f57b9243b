//! Fixture builders for a board with the nRF Secure Immutable Bootloader (NSIB, "b0") in front
//! of an upgradable MCUboot (NCS `samples/bootloader`, `scripts/bootloader/`): the b0 binary,
//! the MCUboot variants linked for `s0`/`s1` and signed for b0, and what a factory flasher
//! writes into those slots. The simulator's b0 stage reads what these write.
//!
//! Deviation from NCS, deliberate: the validation info stores the public key as PEM (NCS stores
//! the raw point).

use crate::app::RAM_START;
use crate::fw_info::{
    FwInfo, FW_INFO_COMPAT, FW_INFO_MAGIC_COMMON, FW_INFO_OFFSET, SB_VALIDATION_INFO_MAGIC,
};
use crate::mcuboot_build::{build_bootloader, BootloaderBuild};
use dfu_hil_mcuboot::keys::SigningKey;
use dfu_hil_mcuboot::layout::Layout;
use sha2::{Digest, Sha256};

/// Partition holding b0 itself.
pub const B0_PARTITION: &str = "b0";
/// The two slots b0 chooses between.
pub const SLOTS: [&str; 2] = ["s0", "s1"];
/// `s0_pad` / `s1_pad`: room for the MCUboot header of an update image.
pub const PAD: u32 = 0x200;

/// Why an NSIB fixture cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NsibError {
    #[error("the firmware has no fw_info at 0x{FW_INFO_OFFSET:x} (not built for NSIB)")]
    NoFwInfo,
    #[error("fw_info gives a size of {size} bytes but the firmware has {len}")]
    SizeMismatch { size: u32, len: usize },
    #[error("the layout has no `{0}` partition (NSIB)")]
    NoPartition(String),
}

/// Append b0's validation info to a firmware built with a `fw_info` (what NCS's
/// `sign.py`/`validation_data.py` do): magic, address, SHA-256 of `[0, size)`, the public
/// key, an ECDSA signature over the hash.
pub fn sign_for_b0(
    firmware: &[u8],
    link_base: u32,
    key: &SigningKey,
) -> Result<Vec<u8>, NsibError> {
    let info = firmware
        .get(FW_INFO_OFFSET as usize..)
        .and_then(FwInfo::parse)
        .ok_or(NsibError::NoFwInfo)?;
    let size = info.size as usize;
    let signed = firmware.get(..size).ok_or(NsibError::SizeMismatch {
        size: info.size,
        len: firmware.len(),
    })?;
    let hash = Sha256::digest(signed).to_vec();
    let pem = key.public().to_pem();
    let sig = key.sign_digest(&hash);
    let mut out = signed.to_vec();
    out.resize(size.next_multiple_of(4), 0);
    for w in [
        FW_INFO_MAGIC_COMMON,
        SB_VALIDATION_INFO_MAGIC,
        FW_INFO_COMPAT,
        link_base,
    ] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&hash);
    out.extend_from_slice(&(pem.len() as u32).to_le_bytes());
    out.extend_from_slice(pem.as_bytes());
    out.extend_from_slice(&(sig.len() as u32).to_le_bytes());
    out.extend_from_slice(&sig);
    out.resize(out.len().next_multiple_of(4), 0);
    Ok(out)
}

/// An MCUboot variant for `slot` (`s0`/`s1`) of `layout`, as NCS builds it: linked at the
/// slot start + `s*_pad`, with `fw_info_version` and `nsib_slot` set, signed for b0.
pub fn mcuboot_variant(
    build: &BootloaderBuild,
    layout: &Layout,
    slot: &str,
    fw_info_version: u32,
    key: &SigningKey,
) -> Result<Vec<u8>, NsibError> {
    let p = layout
        .partition(slot)
        .ok_or_else(|| NsibError::NoPartition(slot.to_owned()))?;
    let base = layout.address(p) + PAD;
    let b = BootloaderBuild {
        fw_info_version: Some(fw_info_version),
        nsib_slot: Some(slot.to_owned()),
        ..build.clone()
    };
    sign_for_b0(&build_bootloader(&b, base), base, key)
}

/// What a factory flasher writes into `s0`/`s1`: an empty pad, then the variant.
pub fn slot_contents(variant: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; PAD as usize];
    v.extend_from_slice(variant);
    v
}

const B0_MAGIC: &[u8; 8] = b"SIMB0\0\0\x01";

/// The b0 binary: a vector table and a marker (b0 has no configuration of its own; what it
/// needs is provisioned).
pub fn build_b0() -> Vec<u8> {
    let mut bin = vec![0u8; 0x100];
    bin[0..4].copy_from_slice(&(RAM_START + 0x8000).to_le_bytes());
    bin[4..8].copy_from_slice(&(0x100u32 | 1).to_le_bytes());
    bin.extend_from_slice(B0_MAGIC);
    bin
}

/// Whether a partition's bytes are the b0 binary.
pub fn is_b0(part: &[u8]) -> bool {
    part.get(0x100..0x108) == Some(&B0_MAGIC[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_for_b0_refuses_firmware_without_fw_info() {
        let key = SigningKey::generate_p256_from_seed(b"b0");
        assert_eq!(
            sign_for_b0(&[0u8; 0x100], 0, &key),
            Err(NsibError::NoFwInfo)
        );
    }

    #[test]
    fn b0_binary_is_recognised() {
        assert!(is_b0(&build_b0()));
        assert!(!is_b0(&[0xff; 0x200]));
    }
}
