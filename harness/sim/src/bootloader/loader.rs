//! A model of MCUboot's boot decision (`loader.c`: `context_boot_go`,
//! `boot_prepare_image_for_update`, `boot_validate_slot`, `boot_perform_update`,
//! `boot_complete_partial_swap`) on the simulated flash. The upgrade algorithms are in
//! [`crate::bootloader::swap_move`], [`crate::bootloader::swap_scratch`], [`crate::bootloader::swap_offset`], [`crate::bootloader::overwrite`]
//! and [`crate::bootloader::direct_xip`], selected by the build's [`UpgradeMode`].
//!
//! Faithfulness matters more than brevity here: the harness's verdicts are only as good as this
//! model. Every erase and write goes through [`FlashMap`], so a power cut can land between any two
//! of them, and the next boot resumes from the status records exactly as MCUboot would.

use crate::bootloader::swap_status::Status;
use crate::device::flash_map::{FlashMap, MapError};
use dfu_hil_firmware::BootloaderBuild;
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
    /// MCUboot rebooted the SoC itself (`sys_reboot` after copying an MCUboot update into the
    /// inactive NSIB slot); the board runs the boot chain again.
    Reboot,
}

/// State outside flash that survives resets: one-time-programmable security counters and the
/// network core's own flash (reached only through PCD).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HwState {
    /// `MCUBOOT_HW_ROLLBACK_PROT` counters, by image number (absent = 0).
    pub security_counters: std::collections::BTreeMap<usize, u32>,
    /// What the nRF5340 network core's B0n last installed.
    pub netcore: Option<NetcoreFw>,
}

/// The firmware in the network core's flash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetcoreFw {
    /// Version from the installed image's MCUboot header.
    pub version: dfu_hil_mcuboot::image::Version,
    /// The image as copied (header, payload, TLVs).
    pub image: Vec<u8>,
    /// Number of PCD updates done so far.
    pub updates: u32,
}

/// What the model decided for one image, kept for evidence and assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDecision {
    pub image: usize,
    pub swap_type: SwapType,
    /// A partially done swap was found and completed.
    pub resumed: bool,
}

impl ImageDecision {
    fn none(image: usize) -> Self {
        ImageDecision {
            image,
            swap_type: SwapType::None,
            resumed: false,
        }
    }
}

/// What the reset vector of the image in the app's secondary slot targets, as the multi-image
/// step ([`crate::bootloader::multi_image`]) tells the loader on an NSIB board.
pub(crate) enum NsibSecondary {
    /// An app image (or no image, or not an NSIB build).
    NotMcuboot,
    /// An MCUboot update for the inactive s0/s1 slot.
    ForInactiveSlot,
    /// An MCUboot update for the running slot: erased (NCS ≥ 2.8).
    Cleaned,
    /// An MCUboot update for the running slot, NCS ≤ 2.7: the reset vector is in neither
    /// primary, so both images get `BOOT_SWAP_TYPE_NONE` and the trailer stays.
    NoneForEither,
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
                source: crate::device::flash::FlashError::PowerCut { op },
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
    /// OTP counters and netcore flash; the board copies them in before and out after a boot.
    pub hw: HwState,
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
            hw: HwState::default(),
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
        flash.set_ram_access(true);
        let r = self.boot_inner(flash);
        flash.set_ram_access(false);
        match r {
            Ok(o) => o,
            Err(Stop::Cut(op)) => BootOutcome::PowerCut { op },
            Err(Stop::Halt(reason)) => {
                self.err(reason.clone());
                BootOutcome::Halt { reason }
            }
        }
    }

    pub(crate) fn pair(&self, flash: &FlashMap, image: usize) -> Result<Pair, Stop> {
        let ip = &flash.layout.images[image];
        self.pair_of(flash, image, &ip.primary.clone(), &ip.secondary.clone())
    }

    pub(crate) fn pair_of(
        &self,
        flash: &FlashMap,
        image: usize,
        primary: &str,
        secondary: &str,
    ) -> Result<Pair, Stop> {
        let layout = &flash.layout;
        let (Some(pri), Some(sec)) = (layout.partition(primary), layout.partition(secondary))
        else {
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
            layout.partition(crate::bootloader::swap_scratch::SCRATCH),
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
        let (off, len) = l.tail();
        let tail = flash.read(part, off, len)?;
        l.decode(&tail)
            .map_err(|e| Stop::Halt(format!("trailer of {part}: {e}")))
    }

    fn boot_inner(&mut self, flash: &mut FlashMap) -> Result<BootOutcome, Stop> {
        self.open_flash_areas(flash)?;
        if self.build.mode == UpgradeMode::DirectXip {
            return self.boot_direct_xip(flash);
        }
        let images = flash.layout.images.len();
        // Loop 1: finish interrupted swaps, decide every image's swap type.
        let mut staged: Vec<(Pair, ImageDecision, Status)> = Vec::new();
        let mut nsib_candidate = false;
        for image in 0..images {
            let pair = self.pair(flash, image)?;
            let (decision, bs) = if flash.is_ram_emulated(&pair.primary) {
                self.prepare_netcore(flash, &pair)?
            } else {
                match self.nsib_check_secondary(flash, &pair)? {
                    NsibSecondary::NotMcuboot => self.prepare(flash, &pair)?,
                    NsibSecondary::ForInactiveSlot => {
                        // Image 0 pretends its secondary is empty; the MCUboot image takes it.
                        nsib_candidate = true;
                        (ImageDecision::none(image), Status::reset())
                    }
                    NsibSecondary::NoneForEither => (ImageDecision::none(image), Status::reset()),
                    NsibSecondary::Cleaned => (
                        ImageDecision {
                            image,
                            swap_type: SwapType::Fail,
                            resumed: false,
                        },
                        Status::reset(),
                    ),
                }
            };
            staged.push((pair, decision, bs));
        }
        // Loop 2: dependencies (all or nothing).
        let has_upgrade = staged
            .iter()
            .any(|(_, d, _)| !d.resumed && is_upgrade(d.swap_type));
        if images > 1 && has_upgrade {
            self.verify_dependencies(flash, &mut staged)?;
        }
        // Loop 3: perform the updates.
        for (pair, decision, bs) in staged.iter_mut() {
            if !decision.resumed {
                if flash.is_ram_emulated(&pair.primary) {
                    self.update_netcore(flash, pair, decision)?;
                } else {
                    self.update(flash, pair, decision, bs)?;
                }
            }
            self.decisions.push(decision.clone());
        }
        if nsib_candidate && self.nsib_update(flash)? {
            // NCS MCUboot resets the SoC after copying itself (no log line of its own), so
            // b0 can choose the new s0/s1 build.
            return Ok(BootOutcome::Reboot);
        }
        // Loop 4: validate the other images' primaries, raise their security counters.
        for image in 1..images {
            let pair = self.pair(flash, image)?;
            if flash.is_ram_emulated(&pair.primary) {
                // The netcore's primary is RAM: nothing to validate after a reset (B0n
                // validates the netcore image itself).
                continue;
            }
            if self.build.validate_primary && !self.primary_valid(flash, &pair)? {
                self.err("Image in the primary slot is not valid!");
                return Err(Stop::Halt("Unable to find bootable image".into()));
            }
            self.update_hw_rollback(flash, &pair)?;
        }
        // Validate and pick image 0's primary.
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
        if self.build.validate_primary && !self.primary_valid(flash, &pair)? {
            self.err("Image in the primary slot is not valid!");
            return Err(Stop::Halt("Unable to find bootable image".into()));
        }
        self.update_hw_rollback(flash, &pair)?;
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

    /// `boot_validate_slot` on a primary: signature, size limit, security counter.
    fn primary_valid(&mut self, flash: &FlashMap, pair: &Pair) -> Result<bool, Stop> {
        let slot = flash.read(&pair.primary, 0, pair.pri_layout.slot_size)?;
        let max = self.max_image_size(flash, pair);
        Ok(match Image::parse(&slot) {
            Ok(img) => {
                img.total_size as u32 <= max
                    && img
                        .verify(&slot[..img.total_size], self.key.as_ref())
                        .is_valid()
                    && self.sec_cnt_ok(flash, pair.image, &img)
            }
            Err(_) => false,
        })
    }

    /// `boot_open_all_flash_areas`: a partition this build has no flash area for panics.
    fn open_flash_areas(&mut self, flash: &FlashMap) -> Result<(), Stop> {
        if self.build.missing_partitions.is_empty() {
            return Ok(());
        }
        for (image, ip) in flash.layout.images.iter().enumerate() {
            for (slot, name) in [(0, &ip.primary), (1, &ip.secondary)] {
                if self.build.missing_partitions.contains(name) {
                    // Flash area IDs follow the partition order of the map (devicetree
                    // fixed-partitions order).
                    let id = flash
                        .layout
                        .partitions
                        .iter()
                        .position(|p| &p.name == name)
                        .unwrap_or(0);
                    self.err(format!(
                        "Failed to open flash area ID {id} (image {image} slot {slot}): -19"
                    ));
                    return Err(Stop::Halt(
                        "Failed to open flash areas, cannot continue".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `MCUBOOT_HW_ROLLBACK_PROT` applies to this image number (not to the netcore image nor
    /// to the NSIB-owned MCUboot image, whose downgrades NSIB handles).
    fn counter_applies(&self, flash: &FlashMap, image: usize) -> bool {
        self.build.hw_rollback_prot
            && image < flash.layout.images.len()
            && !flash.is_ram_emulated(&flash.layout.images[image].primary)
    }

    /// The image's SEC_CNT TLV must exist and be at least the stored counter.
    fn sec_cnt_ok(&mut self, flash: &FlashMap, image: usize, img: &Image) -> bool {
        if !self.counter_applies(flash, image) {
            return true;
        }
        let stored = self.security_counter(image);
        match img.security_counter() {
            None => {
                self.log.push(format!(
                    "D: bootutil_img_validate: image {image} has no security counter TLV"
                ));
                false
            }
            Some(c) if c < stored => {
                self.log.push(format!(
                    "D: bootutil_img_validate: image {image} security counter {c} < stored {stored}"
                ));
                false
            }
            Some(_) => true,
        }
    }

    /// The hardware security counter of `image` (0 until first written).
    pub fn security_counter(&self, image: usize) -> u32 {
        self.hw.security_counters.get(&image).copied().unwrap_or(0)
    }

    /// `boot_update_security_counter`: raise the counter to the SEC_CNT of the image now in
    /// the primary (never lowers it).
    fn raise_counter(&mut self, flash: &FlashMap, pair: &Pair) -> Result<(), Stop> {
        if !self.counter_applies(flash, pair.image) {
            return Ok(());
        }
        let slot = flash.read(&pair.primary, 0, pair.pri_layout.slot_size)?;
        if let Some(c) = Image::parse(&slot).ok().and_then(|i| i.security_counter()) {
            if c > self.security_counter(pair.image) {
                self.hw.security_counters.insert(pair.image, c);
                self.info(format!(
                    "Image {}: security counter updated to {c}",
                    pair.image
                ));
            }
        }
        Ok(())
    }

    /// `boot_update_hw_rollback_protection`: after validating the primary, raise the counter
    /// when the image is confirmed (or has no trailer: a factory image).
    fn update_hw_rollback(&mut self, flash: &FlashMap, pair: &Pair) -> Result<(), Stop> {
        if !self.counter_applies(flash, pair.image) {
            return Ok(());
        }
        let t = self.read_trailer(flash, &pair.primary, &pair.pri_layout)?;
        if t.magic != dfu_hil_mcuboot::trailer::MagicState::Good || t.image_ok == Flag::Set {
            self.raise_counter(flash, pair)?;
        }
        Ok(())
    }

    /// `boot_verify_dependencies` (swap modes): check the DEPENDENCY TLVs of the image each
    /// image will run after this boot against the version the other image will have; any
    /// unmet dependency turns every image's swap type to NONE.
    fn verify_dependencies(
        &mut self,
        flash: &FlashMap,
        staged: &mut [(Pair, ImageDecision, Status)],
    ) -> Result<(), Stop> {
        let header_of = |flash: &FlashMap, part: &str| -> Result<Vec<u8>, Stop> {
            Ok(flash.read(part, 0, flash.size(part)?)?)
        };
        // Version of each image after this boot (an unreadable/erased header reads as all
        // 0xff, as MCUboot's header buffer would hold).
        let mut after = Vec::new();
        for (pair, d, _) in staged.iter() {
            let part = if !d.resumed && is_upgrade(d.swap_type) {
                &pair.secondary
            } else {
                &pair.primary
            };
            let bytes = header_of(flash, part)?;
            let v = ImageHeader::parse(&bytes).map(|h| h.version).unwrap_or(
                dfu_hil_mcuboot::image::Version::new(255, 255, 65535, u32::MAX),
            );
            after.push((bytes, v));
        }
        for (i, (pair, _, _)) in staged.iter().enumerate() {
            let Ok(img) = Image::parse(&after[i].0) else {
                continue;
            };
            for dep in img.dependencies() {
                let Some((_, have)) = after.get(dep.image_id as usize) else {
                    continue;
                };
                if have.cmp_without_build(&dep.min_version) == std::cmp::Ordering::Less {
                    self.log.push(format!(
                        "D: boot_verify_dependencies: image {} needs image {} >= {}, which will \
                         be {}; no image is upgraded",
                        pair.image, dep.image_id, dep.min_version, have
                    ));
                    for (_, d, _) in staged.iter_mut() {
                        if !d.resumed {
                            d.swap_type = SwapType::None;
                        }
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
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

    /// `boot_prepare_image_for_update` for one image: complete an interrupted swap (the
    /// decision is then `resumed`), or decide the swap type of a new one.
    fn prepare(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
    ) -> Result<(ImageDecision, Status), Stop> {
        let mut decision = ImageDecision {
            image: pair.image,
            swap_type: SwapType::None,
            resumed: false,
        };
        match self.sectors_ok(flash, pair)? {
            Some(true) => {}
            _ => return Ok((decision, Status::reset())),
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
            return Ok((decision, bs));
        }

        let st = if bs.swap_type == SwapType::None {
            // boot_validated_swap_type: the table, then the secondary must be valid.
            if sec.is_none() {
                self.info(format!(
                    "Secondary image of image pair ({}.) is unreachable. Treat it as empty",
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
        Ok((decision, bs))
    }

    /// What `context_boot_go` does with one image's swap type (downgrade check,
    /// `boot_perform_update`, the security counter after a permanent update, FAIL handling).
    fn update(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        decision: &mut ImageDecision,
        bs: &mut Status,
    ) -> Result<(), Stop> {
        let st = decision.swap_type;
        match st {
            SwapType::Test | SwapType::Perm
                if self.build.mode != UpgradeMode::OverwriteOnly
                    && self.downgrade_prevented(flash, pair)? =>
            {
                decision.swap_type = SwapType::None;
            }
            SwapType::Test | SwapType::Perm | SwapType::Revert => {
                bs.swap_type = st;
                self.perform_update(flash, pair, bs)?;
                if st == SwapType::Perm || self.build.mode == UpgradeMode::OverwriteOnly {
                    self.raise_counter(flash, pair)?;
                }
            }
            SwapType::Fail if self.build.mode != UpgradeMode::OverwriteOnly => {
                // Pretend we just reverted, so the bad request is not retried forever.
                self.set_image_ok(flash, pair)?;
            }
            SwapType::Fail => {}
            SwapType::None | SwapType::Panic => {}
        }
        Ok(())
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
                        && self.sec_cnt_ok(flash, pair.image, &img)
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

    /// [`Self::validate_secondary`] for a new request: true when the secondary is valid.
    pub(crate) fn validate_secondary_pub(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        st: SwapType,
    ) -> Result<bool, Stop> {
        Ok(self.validate_secondary(flash, pair, st, true)? == SlotCheck::Valid)
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
