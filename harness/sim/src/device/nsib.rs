//! The b0 stage: the nRF Secure Immutable Bootloader (NSIB, "b0") in front of an upgradable
//! MCUboot (NCS `samples/bootloader/src/main.c`, `subsys/bootloader/bl_validation/bl_validation.c`,
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
//! The formats b0 reads (`fw_info`, validation info, provisioning) and the fixture builders that
//! write them are in `dfu_hil_firmware::{fw_info, nsib, provision}`; this file is what b0 does
//! with them at boot.
//!
//! Deviations from NCS, all deliberate simplifications: `fw_info` is looked for only at
//! `CONFIG_FW_INFO_OFFSET` (0x200), not at every allowed offset; the validation info stores the
//! public key as PEM (NCS stores the raw point); a key that verifies does not invalidate the
//! lower-index keys; the nRF52 provision layout has no OTP-reserved LCS/implementation-ID
//! words.
//!
//! The counter (`CONFIG_SB_NUM_VER_COUNTER_SLOTS`, default 240) gets one slot per MCUboot
//! boot with a higher `CONFIG_FW_INFO_FIRMWARE_VERSION`; a version below the counter fails
//! validation ("Firmware version (%u) is smaller than monotonic counter (%u)."). When no slot
//! is left, `set_monotonic_version` returns -ENOMEM and b0 prints nothing about it. NCS 1.x
//! ignored the return value (`samples/bootloader/src/main.c` `validate_and_boot`) and booted the
//! new MCUboot unrecorded; sdk-nrf PR #25402 (NCS 3.2.0, "image booting despite available
//! monotonic counter slot count being exceeded") made b0 give up on that slot and try the
//! other one ([`refuses_when_counter_full`]).

use crate::device::flash_map::{FlashMap, MapError};
use dfu_hil_firmware::fw_info::{
    FwInfo, FW_INFO_COMPAT, FW_INFO_INVALID_VAL, FW_INFO_MAGIC_COMMON, FW_INFO_OFFSET,
    FW_INFO_SIZE, FW_INFO_VALID_VAL, SB_VALIDATION_INFO_MAGIC, VALID_OFF,
};
use dfu_hil_firmware::nsib::{is_b0, B0_PARTITION, SLOTS};
use dfu_hil_firmware::provision::{key_hash16, Counter, Provision, PROVISION_PARTITION};
use dfu_hil_firmware::{read_bootloader_code, BootloaderBuild};
use dfu_hil_mcuboot::keys::PublicKey;
use sha2::{Digest, Sha256};

/// NCS ≥ 3.2.0 (sdk-nrf PR #25402): a slot whose version cannot be recorded is not booted. Before
/// it b0 booted it anyway. A release without an NCS version follows current NCS.
pub fn refuses_when_counter_full(r: &dfu_hil_firmware::release::Release) -> bool {
    !r.ncs_before(3, 2)
}

/// The provision partition as b0 reads it at boot.
pub fn read_provision(flash: &FlashMap) -> Option<Provision> {
    let size = flash.size(PROVISION_PARTITION).ok()?;
    let b = flash.read(PROVISION_PARTITION, 0, size).ok()?;
    Provision::parse(&b)
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
    Some(Counter::decode(&raw, p.counter_slots))
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
                source: crate::device::flash::FlashError::PowerCut { op },
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
            .and_then(|code| read_bootloader_code(&code));
        // `if (fw_info->version > stored) set_monotonic_version(version, slot)`: one 16-bit
        // slot per higher version, `(version << 1) | !slot`. With every slot used
        // `set_monotonic_version` returns -ENOMEM without a log line; what b0 then does
        // depends on its release (read from the MCUboot build it is about to boot, b0 and
        // MCUboot being built from one NCS tree).
        if info.version > counter.version() as u32 {
            let value = ((info.version as u16) << 1) | (slot == 0) as u16;
            if counter.used >= counter.total {
                let release = build.as_ref().map(|b| b.release).unwrap_or_default();
                if refuses_when_counter_full(&release) {
                    return Ok(None);
                }
            } else {
                self.write_counter_slot(flash, prov, counter.used, value)?;
            }
        }
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
