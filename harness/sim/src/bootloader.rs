//! A model of MCUboot's boot decision (`loader.c`: `context_boot_go`,
//! `boot_prepare_image_for_update`, `boot_validate_slot`, `boot_perform_update`,
//! `boot_complete_partial_swap`) on the simulated flash. The upgrade algorithms are in
//! [`crate::swap_move`], [`crate::swap_scratch`], [`crate::swap_offset`], [`crate::overwrite`]
//! and [`crate::direct_xip`], selected by the build's [`UpgradeMode`].
//!
//! Faithfulness matters more than brevity here: the harness's verdicts are only as good as this
//! model. Every erase and write goes through [`FlashMap`], so a power cut can land between any two
//! of them, and the next boot resumes from the status records exactly as MCUboot would.

use crate::firmware::BootloaderBuild;
use crate::flash_map::{FlashMap, MapError};
use crate::swap_move::Status;
use dfu_hil_mcuboot::image::{Image, ImageHeader, IMAGE_MAGIC};
use dfu_hil_mcuboot::keys::PublicKey;
use dfu_hil_mcuboot::layout::DeviceKind;
use dfu_hil_mcuboot::swap::swap_type;
use dfu_hil_mcuboot::trailer::{Field, Flag, SwapType, Trailer, TrailerLayout, UpgradeMode};

/// How one boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootOutcome {
    /// MCUboot jumps to the image in `partition`; the vector table is at `hdr_size`.
    Jump {
        image: usize,
        partition: String,
        hdr_size: u16,
    },
    /// MCUboot stopped (`FIH_PANIC`, assert, nothing bootable): the CPU spins in MCUboot.
    Halt { reason: String },
    /// Power was cut before a flash operation.
    PowerCut { op: u64 },
}

/// What the model decided for one image, kept for evidence and assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDecision {
    pub image: usize,
    pub swap_type: SwapType,
    /// A partially done swap was found and completed.
    pub resumed: bool,
}

/// Why a boot stopped early. A power cut is not an error of MCUboot's but ends the run.
#[derive(Debug)]
pub(crate) enum Stop {
    Cut(u64),
    Halt(String),
}

impl From<MapError> for Stop {
    fn from(e: MapError) -> Self {
        match e {
            MapError::Flash {
                source: crate::flash::FlashError::PowerCut { op },
                ..
            } => Stop::Cut(op),
            other => Stop::Halt(format!("flash error: {other}")),
        }
    }
}

/// The simulated MCUboot, configured from the build descriptor in its partition.
pub struct Bootloader<'a> {
    pub build: &'a BootloaderBuild,
    pub(crate) key: Option<PublicKey>,
    pub log: Vec<String>,
    pub decisions: Vec<ImageDecision>,
}

/// Per-image context: partition names and trailer geometry as this bootloader sees them.
pub(crate) struct Pair {
    pub image: usize,
    pub primary: String,
    pub secondary: String,
    pub pri_layout: TrailerLayout,
    pub sec_layout: TrailerLayout,
    pub sector: u32,
    /// Secondary readable by this bootloader (driver present for its device).
    pub sec_readable: bool,
}

/// Result of `boot_validate_slot` on the secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotCheck {
    Valid,
    /// `FIH_NO_BOOTABLE_IMAGE`: nothing (or nothing valid) there; it has been scrubbed.
    NoBootable,
}

impl<'a> Bootloader<'a> {
    pub fn new(build: &'a BootloaderBuild) -> Self {
        let key = build
            .key_pem
            .as_deref()
            .and_then(|pem| PublicKey::from_pem(pem).ok());
        Bootloader {
            build,
            key,
            log: Vec::new(),
            decisions: Vec::new(),
        }
    }

    pub(crate) fn info(&mut self, msg: impl Into<String>) {
        self.log.push(format!("I: {}", msg.into()));
    }

    pub(crate) fn warn(&mut self, msg: impl Into<String>) {
        self.log.push(format!("W: {}", msg.into()));
    }

    pub(crate) fn err(&mut self, msg: impl Into<String>) {
        self.log.push(format!("E: {}", msg.into()));
    }

    /// Run one boot: decide, swap if needed, validate the primary image and pick the jump target.
    pub fn boot(&mut self, flash: &mut FlashMap) -> BootOutcome {
        self.log.push("*** Booting MCUboot ***".into());
        self.info("Starting bootloader");
        match self.boot_inner(flash) {
            Ok(o) => o,
            Err(Stop::Cut(op)) => BootOutcome::PowerCut { op },
            Err(Stop::Halt(reason)) => {
                self.err(reason.clone());
                BootOutcome::Halt { reason }
            }
        }
    }

    pub(crate) fn pair(&self, flash: &FlashMap, image: usize) -> Result<Pair, Stop> {
        let layout = &flash.layout;
        let ip = &layout.images[image];
        let (Some(pri), Some(sec)) = (
            layout.partition(&ip.primary),
            layout.partition(&ip.secondary),
        ) else {
            return Err(Stop::Halt(format!(
                "Failed to open flash area ID {} (image {image} slot 1): -19",
                2 * image + 1
            )));
        };
        let pri_dev = layout.device_of(pri);
        let sec_dev = layout.device_of(sec);
        // BOOT_WRITE_SZ sizes the status area: the primary's write size, and in scratch mode
        // the larger of primary and scratch.
        let scratch_w = match (
            self.build.mode,
            layout.partition(crate::swap_scratch::SCRATCH),
        ) {
            (UpgradeMode::SwapScratch, Some(p)) => layout.device_of(p).write_size,
            _ => 1,
        };
        let mk = |size: u32, dev: &dfu_hil_mcuboot::layout::FlashDevice| TrailerLayout {
            slot_size: size,
            max_align: self.build.max_align,
            write_size: pri_dev.write_size.max(dev.write_size).max(scratch_w),
            erased: dev.erased,
            max_sectors: self.build.max_sectors,
            mode: self.build.mode,
        };
        Ok(Pair {
            image,
            primary: pri.name.clone(),
            secondary: sec.name.clone(),
            pri_layout: mk(pri.size, pri_dev),
            sec_layout: mk(sec.size, sec_dev),
            sector: pri_dev.sector_size,
            sec_readable: sec_dev.kind == DeviceKind::Internal || self.build.external_flash_driver,
        })
    }

    pub(crate) fn read_trailer(
        &self,
        flash: &FlashMap,
        part: &str,
        l: &TrailerLayout,
    ) -> Result<Trailer, Stop> {
        let size = l.trailer_size().min(l.slot_size);
        let tail = flash.read(part, l.slot_size - size, size)?;
        l.decode(&tail)
            .map_err(|e| Stop::Halt(format!("trailer of {part}: {e}")))
    }

    fn boot_inner(&mut self, flash: &mut FlashMap) -> Result<BootOutcome, Stop> {
        if self.build.mode == UpgradeMode::DirectXip {
            return self.boot_direct_xip(flash);
        }
        let images = flash.layout.images.len();
        for image in 0..images {
            let pair = self.pair(flash, image)?;
            let decision = self.prepare_and_update(flash, &pair)?;
            self.decisions.push(decision);
        }
        // Validate and pick image 0's primary (multi-image chaining comes with later issues).
        let pair = self.pair(flash, 0)?;
        let slot = flash.read(&pair.primary, 0, pair.pri_layout.slot_size)?;
        let hdr = match ImageHeader::parse(&slot) {
            Ok(h) => h,
            Err(_) => {
                let erased = pair.pri_layout.erased;
                if !slot[..4].iter().all(|&b| b == erased) {
                    self.err("Image in the primary slot is not valid!");
                }
                return Err(Stop::Halt("Unable to find bootable image".into()));
            }
        };
        if self.build.validate_primary {
            let valid = Image::parse(&slot).is_ok_and(|img| {
                img.total_size as u32 <= self.max_image_size(flash, &pair)
                    && img
                        .verify(&slot[..img.total_size], self.key.as_ref())
                        .is_valid()
            });
            if !valid {
                self.err("Image in the primary slot is not valid!");
                return Err(Stop::Halt("Unable to find bootable image".into()));
            }
        }
        let addr = flash.layout.address(flash.partition(&pair.primary)?);
        self.info(format!("Bootloader chainload address offset: 0x{addr:x}"));
        self.info(format!("Image version: v{}", hdr.version));
        self.info("Jumping to the first image slot");
        Ok(BootOutcome::Jump {
            image: 0,
            partition: pair.primary.clone(),
            hdr_size: hdr.hdr_size,
        })
    }

    /// `boot_read_sectors` + `boot_slots_compatible`; false means "no swap possible".
    fn sectors_ok(&mut self, flash: &FlashMap, pair: &Pair) -> Result<Option<bool>, Stop> {
        let pri_sectors = pair.pri_layout.slot_size / pair.sector;
        let sec_sector = flash.sector_size(&pair.secondary)?;
        let sec_sectors = pair.sec_layout.slot_size / sec_sector;
        let too_small = format!(
            "Failed reading sectors; BOOT_MAX_IMG_SECTORS={} - too small?",
            self.build.max_sectors
        );
        if pri_sectors > self.build.max_sectors {
            // BOOT_EFLASH on the primary: boot_prepare_image_for_update is skipped entirely.
            self.warn(too_small);
            return Ok(None);
        }
        if sec_sectors > self.build.max_sectors {
            // BOOT_EFLASH_SEC: preparation runs, but the slots cannot be compatible.
            self.warn(too_small);
            self.warn("Cannot upgrade: not a compatible amount of sectors");
            return Ok(Some(false));
        }
        Ok(Some(match self.build.mode {
            UpgradeMode::SwapScratch => self.slots_compatible_scratch(flash, pair, true)?,
            UpgradeMode::OverwriteOnly => self.slots_compatible_scratch(flash, pair, false)?,
            UpgradeMode::SwapOffset => {
                self.slots_compatible_offset(pri_sectors, sec_sectors, pair.sector, sec_sector)
            }
            _ => self.slots_compatible(pri_sectors, sec_sectors, pair.sector, sec_sector),
        }))
    }

    /// `boot_prepare_image_for_update`, then what `context_boot_go` does with the swap type
    /// (downgrade check, `boot_perform_update`, FAIL handling) for one image.
    fn prepare_and_update(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
    ) -> Result<ImageDecision, Stop> {
        let mut decision = ImageDecision {
            image: pair.image,
            swap_type: SwapType::None,
            resumed: false,
        };
        match self.sectors_ok(flash, pair)? {
            Some(true) => {}
            _ => return Ok(decision),
        }

        let pri = self.read_trailer(flash, &pair.primary, &pair.pri_layout)?;
        let sec = if pair.sec_readable {
            Some(self.read_trailer(flash, &pair.secondary, &pair.sec_layout)?)
        } else {
            None
        };

        // swap_read_status: is there an interrupted swap, and where is its status?
        let mut bs = match self.build.mode {
            UpgradeMode::SwapScratch => self.read_status_scratch(flash, pair, &pri)?,
            UpgradeMode::SwapOffset => self.read_status_offset(&pri, sec.as_ref()),
            // No status area: an interrupted copy is simply started again.
            UpgradeMode::OverwriteOnly | UpgradeMode::DirectXip => Status::reset(),
            UpgradeMode::SwapMove => self.read_status_move(&pri, sec.as_ref()),
        };
        if !bs.is_reset() {
            // boot_complete_partial_swap: finish the regions, then the post-swap flags.
            self.info(format!(
                "Image index: {}, Swap type: {} (resuming)",
                pair.image, bs.swap_type
            ));
            let table_revert = self.table_swap_type(&pri, sec.as_ref()) == SwapType::Revert;
            self.swap_run(flash, pair, &mut bs, table_revert)?;
            self.finish_swap(flash, pair, bs.swap_type)?;
            decision.swap_type = bs.swap_type;
            decision.resumed = true;
            return Ok(decision);
        }

        let st = if bs.swap_type == SwapType::None {
            // boot_validated_swap_type: the table, then the secondary must be valid.
            if sec.is_none() {
                self.info(format!(
                    "Secondary image of image pair ({}) is unreachable. Treat it as empty",
                    pair.image
                ));
            }
            let st = self.table_swap_type(&pri, sec.as_ref());
            self.info(format!("Image index: {}, Swap type: {}", pair.image, st));
            if is_upgrade(st) && self.validate_secondary(flash, pair, st, true)? != SlotCheck::Valid
            {
                SwapType::None
            } else {
                st
            }
        } else {
            // The trailer was initialised but no region was done yet: the swap type comes from
            // swap_info, and any validation failure is FAIL.
            self.info(format!(
                "Image index: {}, Swap type: {} (from swap_info)",
                pair.image, bs.swap_type
            ));
            match self.validate_secondary(flash, pair, bs.swap_type, false)? {
                SlotCheck::Valid => bs.swap_type,
                SlotCheck::NoBootable => SwapType::Fail,
            }
        };
        decision.swap_type = st;

        match st {
            SwapType::Test | SwapType::Perm
                if self.build.mode != UpgradeMode::OverwriteOnly
                    && self.downgrade_prevented(flash, pair)? =>
            {
                decision.swap_type = SwapType::None;
            }
            SwapType::Test | SwapType::Perm | SwapType::Revert => {
                bs.swap_type = st;
                self.perform_update(flash, pair, &mut bs)?;
            }
            SwapType::Fail if self.build.mode != UpgradeMode::OverwriteOnly => {
                // Pretend we just reverted, so the bad request is not retried forever.
                self.set_image_ok(flash, pair)?;
            }
            SwapType::Fail => {}
            SwapType::None | SwapType::Panic => {}
        }
        Ok(decision)
    }

    /// `boot_perform_update` → `boot_swap_image` → `swap_run` (or `boot_copy_image` in
    /// overwrite-only), then the post-swap flags. When the space check fails MCUboot still
    /// writes the flags (it checks the state's swap type, not the one `swap_run` reset), and so
    /// does the model.
    fn perform_update(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        bs: &mut Status,
    ) -> Result<(), Stop> {
        let sec_off = match self.build.mode {
            UpgradeMode::SwapOffset => self.offset_secondary_start(flash, pair, bs.swap_type)?,
            _ => 0,
        };
        bs.swap_size = self.copy_size(flash, pair, sec_off)?;
        match self.build.mode {
            UpgradeMode::OverwriteOnly => return self.copy_image(flash, pair),
            UpgradeMode::SwapScratch => self.swap_run(flash, pair, bs, false)?,
            UpgradeMode::SwapOffset => {
                if self.enough_space_offset(pair, bs.swap_size) {
                    self.swap_run(flash, pair, bs, false)?;
                }
            }
            _ => {
                if self.enough_space(pair, bs.swap_size) {
                    self.swap_run(flash, pair, bs, false)?;
                }
            }
        }
        self.finish_swap(flash, pair, bs.swap_type)
    }

    /// `swap_run` of the configured algorithm (resuming from `bs`).
    pub(crate) fn swap_run(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        bs: &mut Status,
        table_revert: bool,
    ) -> Result<(), Stop> {
        match self.build.mode {
            UpgradeMode::SwapScratch => self.swap_run_scratch(flash, pair, bs),
            UpgradeMode::SwapOffset => self.swap_run_offset(flash, pair, bs, table_revert),
            // Overwrite-only never resumes (no status); direct-xip never swaps.
            UpgradeMode::OverwriteOnly => self.copy_image(flash, pair),
            UpgradeMode::DirectXip => Ok(()),
            UpgradeMode::SwapMove => self.swap_run_move(flash, pair, bs),
        }
    }

    /// `boot_swap_type_multi` from the two trailers.
    fn table_swap_type(&self, pri: &Trailer, sec: Option<&Trailer>) -> SwapType {
        swap_type(pri.state(), sec.map(Trailer::state), self.build.mode)
    }

    /// `bootutil_max_image_size` / `app_max_size` of the configured mode.
    pub(crate) fn max_image_size(&self, flash: &FlashMap, pair: &Pair) -> u32 {
        self.max_image_size_slot(flash, pair, false)
    }

    /// The limit for the image in one slot (swap-offset's secondary loses its first sector;
    /// the other modes use one limit for both slots).
    pub(crate) fn max_image_size_slot(
        &self,
        flash: &FlashMap,
        pair: &Pair,
        secondary: bool,
    ) -> u32 {
        match self.build.mode {
            UpgradeMode::SwapScratch => self.max_image_size_scratch(flash, pair),
            UpgradeMode::SwapOffset => self.max_image_size_offset(pair, secondary),
            UpgradeMode::OverwriteOnly | UpgradeMode::DirectXip => {
                self.max_image_size_overwrite(pair)
            }
            UpgradeMode::SwapMove => self.max_image_size_move(pair),
        }
    }

    pub(crate) fn log_state(&mut self, area: &str, t: &Trailer) {
        self.info(format!(
            "{area}: magic={}, swap_type=0x{:x}, copy_done=0x{:x}, image_ok=0x{:x}",
            t.magic,
            t.swap_type().code(),
            flag_code(t.copy_done),
            flag_code(t.image_ok)
        ));
    }

    /// `boot_slots_compatible` for swap-using-move.
    fn slots_compatible(&mut self, pri: u32, sec: u32, pri_sz: u32, sec_sz: u32) -> bool {
        if pri != sec && pri != sec + 1 {
            self.warn("Cannot upgrade: not a compatible amount of sectors");
            return false;
        }
        if pri > self.build.max_sectors {
            self.warn("Cannot upgrade: more sectors than allowed");
            return false;
        }
        if pri_sz != sec_sz {
            self.warn("Cannot upgrade: not same sector layout");
            return false;
        }
        true
    }

    /// `boot_validate_slot` on the secondary. Invalid images are scrubbed (whole slot); an erased
    /// header or a non-bootable image only loses its trailer (`secondary_trailer_leftover`), and
    /// with a pending revert the primary trailer too ("stuck revert").
    fn validate_secondary(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        st: SwapType,
        from_table: bool,
    ) -> Result<SlotCheck, Stop> {
        let start = match self.build.mode {
            UpgradeMode::SwapOffset => self.offset_secondary_start(flash, pair, st)?,
            _ => 0,
        };
        let slot = flash.read(&pair.secondary, start, pair.sec_layout.slot_size - start)?;
        let erased = pair.sec_layout.erased;
        let header_erased = slot[..4].iter().all(|&b| b == erased);
        let non_bootable = ImageHeader::parse(&slot)
            .is_ok_and(|h| h.flags & dfu_hil_mcuboot::image::flags::NON_BOOTABLE != 0);
        if header_erased || non_bootable {
            self.erase_trailer_sectors(flash, &pair.secondary, &pair.sec_layout)?;
            if st == SwapType::Revert {
                self.erase_trailer_sectors(flash, &pair.primary, &pair.pri_layout)?;
                self.info(format!(
                    "Cleared image {} primary slot trailer due to stuck revert",
                    pair.image
                ));
            }
            return Ok(SlotCheck::NoBootable);
        }
        if self.build.mode == UpgradeMode::SwapOffset
            && from_table
            && matches!(st, SwapType::Test | SwapType::Perm)
        {
            // An image whose header sits in the first sector was uploaded to the wrong address
            // (only for a new request: a swap restarted from swap_info has already begun
            // copying the primary into that sector).
            let first = flash.read(&pair.secondary, 0, 4)?;
            if u32::from_le_bytes([first[0], first[1], first[2], first[3]]) == IMAGE_MAGIC {
                self.err("Secondary header magic detected in first sector, wrong upload address?");
                self.err("Image in the secondary slot is not valid!");
                self.scramble_slot(flash, &pair.secondary)?;
                return Ok(SlotCheck::NoBootable);
            }
        }
        if self.build.mode == UpgradeMode::OverwriteOnly && self.build.downgrade_prevention {
            let pri_hdr = ImageHeader::parse(&flash.read(&pair.primary, 0, 32)?).ok();
            if let (Ok(new), Some(cur)) = (ImageHeader::parse(&slot), pri_hdr) {
                if new.version.cmp_without_build(&cur.version) == std::cmp::Ordering::Less {
                    self.err("Insufficient version in secondary slot");
                    self.scramble_slot(flash, &pair.secondary)?;
                    return Ok(SlotCheck::NoBootable);
                }
            }
        }
        let valid = match Image::parse(&slot) {
            Ok(img) if img.header.magic == IMAGE_MAGIC => {
                if img.total_size as u32 > self.max_image_size_slot(flash, pair, true) {
                    self.log
                        .push("D: bootutil_img_validate: TLV beyond image size".into());
                    false
                } else {
                    img.verify(&slot[..img.total_size], self.key.as_ref())
                        .is_valid()
                }
            }
            _ => false,
        };
        if !valid {
            self.err("Image in the secondary slot is not valid!");
            self.scramble_slot(flash, &pair.secondary)?;
            return Ok(SlotCheck::NoBootable);
        }
        Ok(SlotCheck::Valid)
    }

    /// `check_downgrade_prevention` (swap modes, version compare without build number): a lower
    /// version in the secondary is scrubbed; equal is allowed.
    fn downgrade_prevented(&mut self, flash: &mut FlashMap, pair: &Pair) -> Result<bool, Stop> {
        if !self.build.downgrade_prevention {
            return Ok(false);
        }
        let hdr = |b: Vec<u8>| ImageHeader::parse(&b).ok();
        let (Some(sec), Some(pri)) = (
            hdr(flash.read(&pair.secondary, 0, 32)?),
            hdr(flash.read(&pair.primary, 0, 32)?),
        ) else {
            return Ok(false);
        };
        if sec.version.cmp_without_build(&pri.version) != std::cmp::Ordering::Less {
            return Ok(false);
        }
        self.info(format!(
            "Image {} in slot 1 erased due to downgrade prevention",
            pair.image
        ));
        self.scramble_slot(flash, &pair.secondary)?;
        Ok(true)
    }

    /// `swap_set_image_ok`: write the primary's image_ok unless already set.
    fn set_image_ok(&self, flash: &mut FlashMap, pair: &Pair) -> Result<(), Stop> {
        let l = &pair.pri_layout;
        let t = self.read_trailer(flash, &pair.primary, l)?;
        if t.image_ok == Flag::Unset {
            self.write(flash, &pair.primary, l.flag_write(Field::ImageOk, 1))?;
        }
        Ok(())
    }

    /// After the swap (`boot_perform_update` / `boot_complete_partial_swap`): PERM and REVERT
    /// mark the primary confirmed, every upgrade sets copy_done last. Overwrite-only writes no
    /// flags at all.
    fn finish_swap(&self, flash: &mut FlashMap, pair: &Pair, st: SwapType) -> Result<(), Stop> {
        if self.build.mode == UpgradeMode::OverwriteOnly {
            return Ok(());
        }
        if matches!(st, SwapType::Perm | SwapType::Revert) {
            self.set_image_ok(flash, pair)?;
        }
        if is_upgrade(st) {
            let l = &pair.pri_layout;
            let t = self.read_trailer(flash, &pair.primary, l)?;
            // MCUboot writes unconditionally; copy_done can only be unset here on a real swap,
            // and skipping other values keeps the simulator's write-once check meaningful.
            if t.copy_done == Flag::Unset {
                self.write(flash, &pair.primary, l.flag_write(Field::CopyDone, 1))?;
            }
        }
        Ok(())
    }
}

/// `BOOT_IS_UPGRADE`.
fn is_upgrade(st: SwapType) -> bool {
    matches!(st, SwapType::Test | SwapType::Perm | SwapType::Revert)
}

/// `BOOT_FLAG_*` codes as MCUboot logs them.
fn flag_code(f: Flag) -> u8 {
    match f {
        Flag::Set => 1,
        Flag::Bad => 2,
        Flag::Unset => 3,
    }
}

/// Every upgrade mode of [`UpgradeMode`] is modelled (direct-xip without its revert variant).
pub fn supported(mode: UpgradeMode) -> bool {
    matches!(
        mode,
        UpgradeMode::SwapMove
            | UpgradeMode::SwapScratch
            | UpgradeMode::SwapOffset
            | UpgradeMode::OverwriteOnly
            | UpgradeMode::DirectXip
    )
}
