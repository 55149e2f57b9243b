//! NSIB's provisioned data (nRF52 layout of NCS `scripts/bootloader/provision.py`, read by
//! `bl_storage.c`): the s0/s1 image addresses, the truncated public-key hashes with their
//! invalidation tokens, and one monotonic counter of 16-bit slots.
//!
//! Deviations from NCS, deliberate: no OTP-reserved LCS / implementation-ID words.

use crate::nsib::{NsibError, PAD};
use dfu_hil_mcuboot::keys::PublicKey;
use dfu_hil_mcuboot::layout::Layout;

/// Partition holding the provisioned data (slot addresses, key hashes, monotonic counter).
pub const PROVISION_PARTITION: &str = "provision";
/// `SB_CONFIG_SECURE_BOOT_NUM_VER_COUNTER_SLOTS` default when MCUboot is the second stage.
pub const DEFAULT_COUNTER_SLOTS: u16 = 20;
/// `BL_MONOTONIC_COUNTERS_DESC_NSIB`.
const COUNTER_DESC_NSIB: u16 = 1;

/// The truncated (16-byte) SHA-256 of a public key, as provisioned.
pub fn key_hash16(key: &PublicKey) -> [u8; 16] {
    let mut h = [0u8; 16];
    h.copy_from_slice(&key.key_hash()[..16]);
    h
}

/// The provision blob `provision.py` writes (nRF52 layout): s0 and s1 addresses, the key
/// hashes with their invalidation tokens, one NSIB monotonic counter of `counter_slots`
/// free 16-bit slots.
pub fn provision_blob(s0: u32, s1: u32, keys: &[PublicKey], counter_slots: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&s0.to_le_bytes());
    b.extend_from_slice(&s1.to_le_bytes());
    b.extend_from_slice(&(keys.len() as u32).to_le_bytes());
    for k in keys {
        b.extend_from_slice(&0xffff_ffffu32.to_le_bytes());
        b.extend_from_slice(&key_hash16(k));
    }
    b.extend_from_slice(&1u16.to_le_bytes()); // type: monotonic counters
    b.extend_from_slice(&1u16.to_le_bytes()); // one counter
    b.extend_from_slice(&COUNTER_DESC_NSIB.to_le_bytes());
    b.extend_from_slice(&counter_slots.to_le_bytes());
    b.extend(std::iter::repeat_n(0xffu8, 2 * counter_slots as usize));
    b
}

/// The provision blob for the s0/s1 slots of `layout` (image start = slot + pad).
pub fn provision_for(
    layout: &Layout,
    keys: &[PublicKey],
    counter_slots: u16,
) -> Result<Vec<u8>, NsibError> {
    let addr = |n: &str| {
        layout
            .partition(n)
            .map(|p| layout.address(p) + PAD)
            .ok_or_else(|| NsibError::NoPartition(n.to_owned()))
    };
    Ok(provision_blob(
        addr("s0")?,
        addr("s1")?,
        keys,
        counter_slots,
    ))
}

/// The parsed provision data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    pub s0: u32,
    pub s1: u32,
    pub key_hashes: Vec<[u8; 16]>,
    /// Offset of counter slot 0 in the provision partition.
    pub counter_off: u32,
    pub counter_slots: u16,
}

/// The NSIB monotonic counter as read from the provision partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Slots written so far.
    pub used: u16,
    /// Slots provisioned.
    pub total: u16,
    /// Last stored value, `(version << 1) | !slot` (0 when no slot is used).
    pub value: u16,
}

impl Counter {
    /// The firmware version recorded (b0 refuses anything lower).
    pub fn version(&self) -> u16 {
        self.value >> 1
    }
}

impl Provision {
    /// Parse the provision partition's bytes (what `bl_storage.c` reads); `None` when it is
    /// erased or not in the layout [`provision_blob`] writes.
    pub fn parse(b: &[u8]) -> Option<Provision> {
        let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
        let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
        let (s0, s1, n) = (u32_at(0)?, u32_at(4)?, u32_at(8)?);
        if n == u32::MAX || n > 16 {
            return None;
        }
        let mut key_hashes = Vec::new();
        let mut o = 12usize;
        for _ in 0..n {
            if u32_at(o)? == 0xffff_ffff {
                key_hashes.push(b.get(o + 4..o + 20)?.try_into().ok()?);
            }
            o += 20;
        }
        if u16_at(o)? != 1 || u16_at(o + 2)? < 1 || u16_at(o + 4)? != COUNTER_DESC_NSIB {
            return None;
        }
        let counter_slots = u16_at(o + 6)?;
        Some(Provision {
            s0,
            s1,
            key_hashes,
            counter_off: (o + 8) as u32,
            counter_slots,
        })
    }
}

impl Counter {
    /// The counter from its `total` slots' raw bytes (each slot stored bit-inverted; the first
    /// erased slot ends the used ones).
    pub fn decode(raw: &[u8], total: u16) -> Counter {
        let mut c = Counter {
            used: 0,
            total,
            value: 0,
        };
        for ch in raw.chunks_exact(2) {
            let v = u16::from_le_bytes([ch[0], ch[1]]);
            if v == 0xffff {
                break;
            }
            c.used += 1;
            c.value = !v;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_parses_back() {
        let b = provision_blob(0x1000, 0x9000, &[], 4);
        let p = Provision::parse(&b).unwrap();
        assert_eq!((p.s0, p.s1, p.counter_slots), (0x1000, 0x9000, 4));
        assert!(p.key_hashes.is_empty());
        assert_eq!(p.counter_off as usize, b.len() - 8);
        assert_eq!(Provision::parse(&[0xff; 64]), None);
    }

    #[test]
    fn counter_counts_written_slots() {
        let raw = [!5u16, !7, 0xffff, 0xffff]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>();
        let c = Counter::decode(&raw, 4);
        assert_eq!((c.used, c.total, c.value, c.version()), (2, 4, 7, 3));
    }
}
