//! The nRF Secure Immutable Bootloader (NSIB, "b0") in front of an upgradable MCUboot (NCS
//! `samples/bootloader/src/main.c`, `subsys/bootloader/bl_validation/bl_validation.c`,
//! `bl_storage/bl_storage.c`, `include/fw_info.h`, `scripts/bootloader/provision.py`).
//!
//! b0 owns two slots, `s0` and `s1`, each `s*_pad` (0x200, where an MCUboot update image keeps
//! its MCUboot header) + an MCUboot build linked for that slot. Each build carries a binary
//! `fw_info` at [`FW_INFO_OFFSET`] (magic, size, version, address, boot address, `valid`) and a
//! validation info right after the firmware (magic, address, SHA-256, public key, signature).
//! b0 tries the slot with the higher `fw_info` version first, validates it (a failure writes
//! `valid` = invalid for good), records a higher version in the monotonic counter in the
//! `provision` partition (one 16-bit slot per update, finitely many) and boots it.
//!
//! Deviations from NCS, all deliberate simplifications: `fw_info` is looked for only at
//! `CONFIG_FW_INFO_OFFSET` (0x200), not at every allowed offset; the validation info stores the
//! public key as PEM (NCS stores the raw point); a key that verifies does not invalidate the
//! lower-index keys; the nRF52 provision layout has no OTP-reserved LCS/implementation-ID
//! words; b0's own log wording for a full counter is the simulator's (NCS only returns
//! `-ENOMEM` from `set_monotonic_version` and skips the slot).

use crate::firmware::{self, BootloaderBuild, FW_INFO_OFFSET};
use crate::flash_map::{FlashMap, MapError};
use dfu_hil_mcuboot::keys::{PublicKey, SigningKey};
use sha2::{Digest, Sha256};

/// Partition holding b0 itself.
pub const B0_PARTITION: &str = "b0";
/// Partition holding the provisioned data (slot addresses, key hashes, monotonic counter).
pub const PROVISION_PARTITION: &str = "provision";
/// The two slots b0 chooses between.
pub const SLOTS: [&str; 2] = ["s0", "s1"];
/// `s0_pad` / `s1_pad`: room for the MCUboot header of an update image.
pub const PAD: u32 = 0x200;

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
/// Offset of `valid` inside `fw_info`.
const VALID_OFF: u32 = 32;
/// `SB_CONFIG_SECURE_BOOT_NUM_VER_COUNTER_SLOTS` default when MCUboot is the second stage.
pub const DEFAULT_COUNTER_SLOTS: u16 = 20;
/// `BL_MONOTONIC_COUNTERS_DESC_NSIB`.
const COUNTER_DESC_NSIB: u16 = 1;

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

/// Append b0's validation info to a firmware built with a `fw_info` (what NCS's
/// `sign.py`/`validation_data.py` do): magic, address, SHA-256 of `[0, size)`, the public
/// key, an ECDSA signature over the hash.
pub fn sign_for_b0(firmware: &[u8], link_base: u32, key: &SigningKey) -> Vec<u8> {
    let info = FwInfo::parse(&firmware[FW_INFO_OFFSET as usize..]).expect("firmware has fw_info");
    let size = info.size as usize;
    let hash = Sha256::digest(&firmware[..size]).to_vec();
    let pem = key.public().to_pem();
    let sig = key.sign_digest(&hash);
    let mut out = firmware[..size].to_vec();
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
    out
}

/// An MCUboot variant for `slot` (`s0`/`s1`) of `layout`, as NCS builds it: linked at the
/// slot start + `s*_pad`, with `fw_info_version` and `nsib_slot` set, signed for b0.
pub fn mcuboot_variant(
    build: &BootloaderBuild,
    layout: &dfu_hil_mcuboot::layout::Layout,
    slot: &str,
    fw_info_version: u32,
    key: &SigningKey,
) -> Vec<u8> {
    let p = layout.partition(slot).expect("s0/s1 partition");
    let base = layout.address(p) + PAD;
    let b = BootloaderBuild {
        fw_info_version: Some(fw_info_version),
        nsib_slot: Some(slot.to_owned()),
        ..build.clone()
    };
    sign_for_b0(&firmware::build_bootloader(&b, base), base, key)
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
    bin[0..4].copy_from_slice(&(firmware::RAM_START + 0x8000).to_le_bytes());
    bin[4..8].copy_from_slice(&(0x100u32 | 1).to_le_bytes());
    bin.extend_from_slice(B0_MAGIC);
    bin
}

fn is_b0(part: &[u8]) -> bool {
    part.get(0x100..0x108) == Some(&B0_MAGIC[..])
}

/// The truncated (16-byte) SHA-256 of a public key, as provisioned.
pub fn key_hash16(key: &PublicKey) -> [u8; 16] {
    key.key_hash()[..16].try_into().expect("16 bytes")
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
    layout: &dfu_hil_mcuboot::layout::Layout,
    keys: &[PublicKey],
    counter_slots: u16,
) -> Vec<u8> {
    let addr = |n: &str| layout.address(layout.partition(n).expect("s0/s1")) + PAD;
    provision_blob(addr("s0"), addr("s1"), keys, counter_slots)
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

pub fn read_provision(flash: &FlashMap) -> Option<Provision> {
    let size = flash.size(PROVISION_PARTITION).ok()?;
    let b = flash.read(PROVISION_PARTITION, 0, size).ok()?;
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

/// The monotonic counter (`get_monotonic_version` + `num_monotonic_counter_slots`).
pub fn read_counter(flash: &FlashMap) -> Option<Counter> {
    let p = read_provision(flash)?;
    let raw = flash
        .read(
            PROVISION_PARTITION,
            p.counter_off,
            2 * p.counter_slots as u32,
        )
        .ok()?;
    let mut c = Counter {
        used: 0,
        total: p.counter_slots,
        value: 0,
    };
    for ch in raw.chunks(2) {
        let v = u16::from_le_bytes([ch[0], ch[1]]);
        if v == 0xffff {
            break;
        }
        c.used += 1;
        c.value = !v;
    }
    Some(c)
}

/// Why a boot through b0 stopped before MCUboot.
#[derive(Debug)]
pub enum B0Stop {
    Cut(u64),
    NoBootable,
}

impl From<MapError> for B0Stop {
    fn from(e: MapError) -> Self {
        match e {
            MapError::Flash {
                source: crate::flash::FlashError::PowerCut { op },
                ..
            } => B0Stop::Cut(op),
            _ => B0Stop::NoBootable,
        }
    }
}

/// The MCUboot b0 handed over to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsibBoot {
    /// 0 = s0, 1 = s1.
    pub slot: usize,
    pub partition: String,
    pub fw_info_version: u32,
    pub build: BootloaderBuild,
}

/// b0 (`samples/bootloader/src/main.c`).
pub struct B0 {
    pub log: Vec<String>,
}

impl Default for B0 {
    fn default() -> Self {
        Self::new()
    }
}

impl B0 {
    pub fn new() -> Self {
        B0 { log: Vec::new() }
    }

    fn say(&mut self, s: impl Into<String>) {
        self.log.push(s.into());
    }

    /// b0 is present when its partition holds the b0 binary.
    pub fn present(flash: &FlashMap) -> bool {
        let Ok(size) = flash.size(B0_PARTITION) else {
            return false;
        };
        flash
            .read(B0_PARTITION, 0, size.min(0x200))
            .is_ok_and(|b| is_b0(&b))
    }

    /// Where slot `i`'s image lives: partition and offset of the image (after the pad).
    fn slot_image(flash: &FlashMap, p: &Provision, i: usize) -> Option<(String, u32)> {
        let addr = if i == 0 { p.s0 } else { p.s1 };
        let part = flash.partition(SLOTS[i]).ok()?;
        let base = flash.layout.address(part);
        (addr >= base && addr < base + part.size).then(|| (SLOTS[i].to_owned(), addr - base))
    }

    fn fw_info(flash: &FlashMap, p: &Provision, i: usize) -> Option<FwInfo> {
        let (part, off) = Self::slot_image(flash, p, i)?;
        let b = flash
            .read(&part, off + FW_INFO_OFFSET, FW_INFO_SIZE as u32)
            .ok()?;
        FwInfo::parse(&b)
    }

    /// Run b0: choose, validate (invalidating failures), record the version, hand over.
    pub fn run(&mut self, flash: &mut FlashMap) -> Result<NsibBoot, B0Stop> {
        self.say("*** Booting nRF Secure Immutable Bootloader (b0) ***");
        let Some(prov) = read_provision(flash) else {
            self.say("Failed to read provisioned data. Aborting boot.");
            return Err(B0Stop::NoBootable);
        };
        let s0 = Self::fw_info(flash, &prov, 0);
        let s1 = Self::fw_info(flash, &prov, 1);
        let order = match (s0, s1) {
            (_, None) => [0, 1],
            (Some(a), Some(b)) if a.version >= b.version => [0, 1],
            (None, Some(_)) => [1, 0],
            _ => [1, 0],
        };
        for slot in order {
            let info = if slot == 0 { s0 } else { s1 };
            if let Some(boot) = self.validate_and_boot(flash, &prov, slot, info)? {
                return Ok(boot);
            }
        }
        self.say("No bootable image found. Aborting boot.");
        Err(B0Stop::NoBootable)
    }

    fn validate_and_boot(
        &mut self,
        flash: &mut FlashMap,
        prov: &Provision,
        slot: usize,
        info: Option<FwInfo>,
    ) -> Result<Option<NsibBoot>, B0Stop> {
        self.say(format!("Attempting to boot slot {slot}."));
        let Some(info) = info else {
            self.say("No fw_info struct found.");
            return Ok(None);
        };
        self.say(format!(
            "Attempting to boot from address 0x{:x}.",
            info.address
        ));
        let counter = read_counter(flash).ok_or(B0Stop::NoBootable)?;
        if !self.validate(flash, prov, slot, &info, &counter) {
            self.say("Failed to validate, permanently invalidating!");
            self.invalidate(flash, prov, slot, &info)?;
            return Ok(None);
        }
        self.say(format!("Firmware version {}", info.version));
        if info.version > counter.version() as u32 {
            // set_monotonic_version(version, slot): (version << 1) | !slot, next free slot.
            let value = ((info.version as u16) << 1) | (slot == 0) as u16;
            if value <= counter.value {
                self.say(format!(
                    "Failed to set monotonic version {}: -22 (not greater than stored {})",
                    info.version,
                    counter.version()
                ));
                return Ok(None);
            }
            if counter.used >= counter.total {
                self.say(format!(
                    "Failed to set monotonic version {}: -12 (all {} monotonic counter slots \
                     used); not booting slot {slot}",
                    info.version, counter.total
                ));
                return Ok(None);
            }
            self.write_counter_slot(flash, prov, counter.used, value)?;
        }
        let Some((part, off)) = Self::slot_image(flash, prov, slot) else {
            return Ok(None);
        };
        let vt = flash.read(&part, off, 8)?;
        let pc = u32::from_le_bytes(vt[4..8].try_into().expect("4 bytes")) & !1;
        let p = flash.partition(&part)?.clone();
        let base = flash.layout.address(&p);
        let build = (pc >= base && pc < base + p.size)
            .then(|| {
                flash
                    .read(&part, pc - base, (base + p.size - pc).min(4096))
                    .ok()
            })
            .flatten()
            .and_then(|code| firmware::read_bootloader_code(&code));
        self.say(format!("Booting (0x{:x}).", info.address));
        let Some(build) = build else {
            // Valid signature but no MCUboot in it: the CPU runs whatever that is.
            return Err(B0Stop::NoBootable);
        };
        Ok(Some(NsibBoot {
            slot,
            partition: part,
            fw_info_version: info.version,
            build,
        }))
    }

    /// `bl_validate_firmware_local`.
    fn validate(
        &mut self,
        flash: &FlashMap,
        prov: &Provision,
        slot: usize,
        info: &FwInfo,
        counter: &Counter,
    ) -> bool {
        let addr = if slot == 0 { prov.s0 } else { prov.s1 };
        if info.address != addr {
            self.say("Firmware address does not match slot address.");
            return false;
        }
        if info.valid != FW_INFO_VALID_VAL {
            self.say("Firmware info is invalidated.");
            return false;
        }
        if info.version < counter.version() as u32 {
            self.say(format!(
                "Firmware version ({}) is smaller than monotonic counter ({}).",
                info.version,
                counter.version()
            ));
            return false;
        }
        if info.boot_address < info.address || info.boot_address >= info.address + info.size {
            self.say("Boot address is outside the firmware.");
            return false;
        }
        let Some((part, off)) = Self::slot_image(flash, prov, slot) else {
            return false;
        };
        let Ok(psize) = flash.size(&part) else {
            return false;
        };
        let Ok(img) = flash.read(&part, off, psize - off) else {
            return false;
        };
        let size = info.size as usize;
        let vi_at = size.next_multiple_of(4);
        let ok = (|| {
            let vi = img.get(vi_at..)?;
            let w = |i: usize| Some(u32::from_le_bytes(vi.get(i..i + 4)?.try_into().ok()?));
            if [w(0)?, w(4)?, w(8)?]
                != [
                    FW_INFO_MAGIC_COMMON,
                    SB_VALIDATION_INFO_MAGIC,
                    FW_INFO_COMPAT,
                ]
                || w(12)? != info.address
            {
                return Some(Err("Could not find valid firmware validation info."));
            }
            let hash = vi.get(16..48)?;
            let pem_len = w(48)? as usize;
            let pem = std::str::from_utf8(vi.get(52..52 + pem_len)?).ok()?;
            let sig_len = w(52 + pem_len)? as usize;
            let sig = vi.get(56 + pem_len..56 + pem_len + sig_len)?;
            let key = PublicKey::from_pem(pem).ok()?;
            if !prov.key_hashes.contains(&key_hash16(&key)) {
                return Some(Err("Public key not found in provisioned keys."));
            }
            if Sha256::digest(&img[..size])[..] != *hash || !key.verify_digest(hash, sig) {
                return Some(Err("Firmware signature verification failed."));
            }
            Some(Ok(()))
        })();
        match ok {
            Some(Ok(())) => {
                self.say("Firmware signature verified.");
                true
            }
            Some(Err(why)) => {
                self.say(why);
                false
            }
            None => {
                self.say("Could not find valid firmware validation info.");
                false
            }
        }
    }

    /// `fw_info_invalidate`: program `valid` with INVALID_VAL (bits can only be cleared).
    fn invalidate(
        &mut self,
        flash: &mut FlashMap,
        prov: &Provision,
        slot: usize,
        info: &FwInfo,
    ) -> Result<(), B0Stop> {
        if info.valid != FW_INFO_VALID_VAL {
            return Ok(());
        }
        let Some((part, off)) = Self::slot_image(flash, prov, slot) else {
            return Ok(());
        };
        let at = off + FW_INFO_OFFSET + VALID_OFF;
        let v = (info.valid & FW_INFO_INVALID_VAL).to_le_bytes();
        flash.write(&part, at, &v)?;
        Ok(())
    }

    /// One 16-bit counter slot, stored bit-inverted. The flash writes whole words, so the
    /// word is written with its other half unchanged.
    fn write_counter_slot(
        &mut self,
        flash: &mut FlashMap,
        prov: &Provision,
        index: u16,
        value: u16,
    ) -> Result<(), B0Stop> {
        let at = prov.counter_off + 2 * index as u32;
        let w = flash.write_size(PROVISION_PARTITION)?.max(2);
        let word_at = at / w * w;
        let mut word = flash.read(PROVISION_PARTITION, word_at, w)?;
        let i = (at - word_at) as usize;
        word[i..i + 2].copy_from_slice(&(!value).to_le_bytes());
        flash.write(PROVISION_PARTITION, word_at, &word)?;
        Ok(())
    }
}
