//! MCUboot's NCS extensions for more than one image (NCS doc `ug_nrf5340_multi_image_dfu`,
//! "Simultaneous multi-image DFU with nRF5340 DK";
//! `nrfconnect/sdk-mcuboot:boot/bootutil/src/loader.c`, `swap_nsib.c`):
//!
//! * the nRF5340 network core image, whose primary `mcuboot_primary_1` is RAM-emulated flash:
//!   MCUboot overwrites it (no revert: after a reset the RAM is blank, so no revert row of the
//!   swap table can match) and PCD hands the image to the netcore's B0n, which copies it into
//!   the netcore's own flash ([`crate::bootloader::HwState::netcore`]);
//! * MCUboot as NSIB's second stage: an MCUboot update shares the app's secondary slot; the
//!   reset vector of the image there says whether it is for the inactive s0/s1 slot (copied
//!   there by `nsib_swap_run`, then MCUboot reboots so b0 can pick it), for the active one,
//!   or an app image. What MCUboot does with a variant for the active slot, and how it reads
//!   the header, depend on the sdk-mcuboot release (`BootloaderBuild.release`, see
//!   `docs/nsib.md`):
//!   - NCS ≤ 2.7: the reset vector is in neither primary, `boot_validated_swap_type` returns
//!     `BOOT_SWAP_TYPE_NONE` for both images, silently: the trailer stays, "pending" forever;
//!   - NCS ≥ 2.8 (sdk-mcuboot v2.1.0-ncs2): "Image in slot is for wrong s0/s1 image", the slot
//!     is cleaned, `BOOT_SWAP_TYPE_FAIL`;
//!   - NCS ≤ 2.2 (sdk-mcuboot ≤ v1.9.99-ncs3): the header and reset vector are read by
//!     dereferencing the secondary's `fa_off` as a memory address; with the secondary on
//!     external flash that reads internal flash at that offset (fixed by sdk-mcuboot
//!     68b46483, NCS 2.3).

use crate::bootloader::loader::NsibSecondary;
use crate::bootloader::swap_status::Status;
use crate::bootloader::{Bootloader, ImageDecision, NetcoreFw, Pair, Stop};
use crate::device::flash_map::FlashMap;
use dfu_hil_firmware::nsib::SLOTS;
use dfu_hil_firmware::release::Release;
use dfu_hil_mcuboot::image::{Image, ImageHeader, IMAGE_MAGIC};
use dfu_hil_mcuboot::layout::DeviceKind;
use dfu_hil_mcuboot::trailer::SwapType;

/// sdk-mcuboot ≤ v1.9.99-ncs3 (NCS ≤ 2.2) read the secondary's header through a pointer made
/// of `fa_off` (`loader.c` `boot_validated_swap_type`); commit 68b46483 "[nrf noup] loader: Fix
/// reading reset addr to support ext flash" (v1.9.99-ncs4 = NCS 2.3) reads it with
/// `flash_area_read`. Upstream MCUboot has no NSIB patch; a release without NCS follows the fix.
pub(crate) fn reads_header_by_pointer(r: &Release) -> bool {
    r.ncs_before(2, 3)
}

/// sdk-mcuboot v2.1.0-ncs2 (NCS 2.8) logs "Image in slot is for wrong s0/s1 image", erases the
/// secondary and returns `BOOT_SWAP_TYPE_FAIL`; before it the reset-vector check just returned
/// `BOOT_SWAP_TYPE_NONE` and left the slot (and its trailer) alone.
pub(crate) fn cleans_wrong_variant(r: &Release) -> bool {
    !r.ncs_before(2, 8)
}

fn is_upgrade(st: SwapType) -> bool {
    matches!(st, SwapType::Test | SwapType::Perm | SwapType::Revert)
}

impl Bootloader<'_> {
    /// The reset vector of the image in `part` (`ih_hdr_size + 4`), if it has a header.
    fn reset_vector(flash: &FlashMap, part: &str) -> Result<Option<u32>, Stop> {
        let h = flash.read(part, 0, 32)?;
        let Ok(hdr) = ImageHeader::parse(&h) else {
            return Ok(None);
        };
        if hdr.magic != IMAGE_MAGIC {
            return Ok(None);
        }
        let size = flash.size(part)?;
        if hdr.hdr_size as u32 + 8 > size {
            return Ok(None);
        }
        let v = flash.read(part, hdr.hdr_size as u32 + 4, 4)?;
        Ok(Some(
            u32::from_le_bytes(v[..4].try_into().expect("4 bytes")) & !1,
        ))
    }

    /// NCS ≤ 2.2 `boot_validated_swap_type`: `(struct image_header *)secondary_fa->fa_off`,
    /// then `vtable[1]`: the CPU reads its own (internal) flash at the number `fa_off`, which
    /// for an external secondary is an offset inside the external chip. Returns the reset
    /// vector found there if the bytes at that address happen to start with the image magic.
    fn reset_vector_by_pointer(flash: &FlashMap, part: &str) -> Result<Option<u32>, Stop> {
        let Ok(p) = flash.partition(part) else {
            return Ok(None);
        };
        let addr = p.offset;
        let internal = |a: u32, len: u32| -> Option<Vec<u8>> {
            let q = flash.layout.partitions.iter().find(|q| {
                let base = flash.layout.address(q);
                flash.layout.device_of(q).kind == DeviceKind::Internal
                    && a >= base
                    && a + len <= base + q.size
            })?;
            flash.read(&q.name, a - flash.layout.address(q), len).ok()
        };
        let Some(h) = internal(addr, 32) else {
            return Ok(None);
        };
        let Ok(hdr) = ImageHeader::parse(&h) else {
            return Ok(None);
        };
        if hdr.magic != IMAGE_MAGIC {
            return Ok(None);
        }
        Ok(internal(addr + hdr.hdr_size as u32 + 4, 4).and_then(|v| {
            v.get(..4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) & !1)
        }))
    }

    /// Partition range check by absolute address.
    fn targets(flash: &FlashMap, part: &str, addr: u32) -> bool {
        flash.partition(part).is_ok_and(|p| {
            let base = flash.layout.address(p);
            addr >= base && addr < base + p.size
        })
    }

    /// (active, inactive) s0/s1 slot of this MCUboot build, if it is NSIB's second stage.
    fn nsib_slots(&self, flash: &FlashMap) -> Option<(&'static str, &'static str)> {
        let active = self.build.nsib_slot.as_deref()?;
        if flash.partition(SLOTS[0]).is_err() || flash.partition(SLOTS[1]).is_err() {
            return None;
        }
        if active == SLOTS[0] {
            Some((SLOTS[0], SLOTS[1]))
        } else {
            Some((SLOTS[1], SLOTS[0]))
        }
    }

    /// The NCS patch at the top of `boot_validated_swap_type` for image 0 of an NSIB build.
    pub(crate) fn nsib_check_secondary(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
    ) -> Result<NsibSecondary, Stop> {
        let Some((active, inactive)) = self.nsib_slots(flash) else {
            return Ok(NsibSecondary::NotMcuboot);
        };
        if pair.image != 0 || !pair.sec_readable {
            return Ok(NsibSecondary::NotMcuboot);
        }
        let release = self.build.release;
        let external = flash
            .partition(&pair.secondary)
            .is_ok_and(|p| flash.layout.device_of(p).kind != DeviceKind::Internal);
        let vector = if reads_header_by_pointer(&release) && external {
            Self::reset_vector_by_pointer(flash, &pair.secondary)?
        } else {
            Self::reset_vector(flash, &pair.secondary)?
        };
        let Some(addr) = vector else {
            // No magic where the check looked: the patch is skipped and image 0 takes the
            // secondary as an app update (with the ≤ 2.2 pointer read, even an MCUboot update).
            return Ok(NsibSecondary::NotMcuboot);
        };
        if Self::targets(flash, inactive, addr) {
            return Ok(NsibSecondary::ForInactiveSlot);
        }
        if Self::targets(flash, active, addr) {
            if !cleans_wrong_variant(&release) {
                return Ok(NsibSecondary::NoneForEither);
            }
            self.err("Image in slot is for wrong s0/s1 image");
            flash.erase_all(&pair.secondary)?;
            self.err(format!("Cleaned-up secondary slot of image {}", pair.image));
            return Ok(NsibSecondary::Cleaned);
        }
        Ok(NsibSecondary::NotMcuboot)
    }

    /// The MCUboot image (`CONFIG_MCUBOOT_MCUBOOT_IMAGE_NUMBER`, the image after the app's):
    /// primary = the inactive s0/s1 slot, secondary = the app's secondary. Returns true when
    /// the update was copied (MCUboot then reboots).
    pub(crate) fn nsib_update(&mut self, flash: &mut FlashMap) -> Result<bool, Stop> {
        let Some((_, inactive)) = self.nsib_slots(flash) else {
            return Ok(false);
        };
        let image = flash.layout.images.len();
        let secondary = flash.layout.images[0].secondary.clone();
        let pair = self.pair_of(flash, image, inactive, &secondary)?;
        let pri = self.read_trailer(flash, &pair.primary, &pair.pri_layout)?;
        let sec = self.read_trailer(flash, &pair.secondary, &pair.sec_layout)?;
        let mut st =
            dfu_hil_mcuboot::swap::swap_type(pri.state(), Some(sec.state()), self.build.mode);
        self.info(format!("Image index: {image}, Swap type: {st}"));
        if matches!(st, SwapType::Test | SwapType::Perm)
            && !self.validate_secondary_pub(flash, &pair, st)?
        {
            st = SwapType::None;
        }
        let copy = matches!(st, SwapType::Test | SwapType::Perm);
        if copy {
            self.nsib_swap_run(flash, &pair)?;
        }
        self.decisions.push(ImageDecision {
            image,
            swap_type: st,
            resumed: false,
        });
        Ok(copy)
    }

    /// `nsib_swap_run`: erase the inactive slot, copy the secondary over it, scrub the
    /// secondary's trailer and its first `slot + 1 sector` bytes. No flags, no revert.
    fn nsib_swap_run(&mut self, flash: &mut FlashMap, pair: &Pair) -> Result<(), Stop> {
        let pri_size = pair.pri_layout.slot_size;
        flash.erase_all(&pair.primary)?;
        let len = pri_size.min(pair.sec_layout.slot_size);
        self.copy_region(flash, (&pair.secondary, 0), (&pair.primary, 0), len)?;
        self.erase_trailer_sectors(flash, &pair.secondary, &pair.sec_layout)?;
        let sector = flash.sector_size(&pair.secondary)?;
        let scrub = (pri_size + sector).min(pair.sec_layout.slot_size);
        let mut off = 0;
        while off < scrub {
            flash.erase(&pair.secondary, off, sector)?;
            off += sector;
        }
        Ok(())
    }

    /// Loop 1 for the network core image: the primary is RAM (blank after a reset), so only
    /// the secondary's request matters; the image must be linked for the netcore flash.
    pub(crate) fn prepare_netcore(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
    ) -> Result<(ImageDecision, Status), Stop> {
        let mut decision = ImageDecision {
            image: pair.image,
            swap_type: SwapType::None,
            resumed: false,
        };
        if !pair.sec_readable {
            self.info(format!(
                "Secondary image of image pair ({}.) is unreachable. Treat it as empty",
                pair.image
            ));
            return Ok((decision, Status::reset()));
        }
        let pri = self.read_trailer(flash, &pair.primary, &pair.pri_layout)?;
        let sec = self.read_trailer(flash, &pair.secondary, &pair.sec_layout)?;
        let st = dfu_hil_mcuboot::swap::swap_type(pri.state(), Some(sec.state()), self.build.mode);
        self.info(format!("Image index: {}, Swap type: {}", pair.image, st));
        if !is_upgrade(st) {
            return Ok((decision, Status::reset()));
        }
        if let Some(addr) = Self::reset_vector(flash, &pair.secondary)? {
            if !Self::targets(flash, &pair.primary, addr) {
                self.err(format!(
                    "Binary in secondary slot of image {} is not designated for the primary slot",
                    pair.image
                ));
                self.err("Erasing image from secondary slot");
                self.scramble_slot(flash, &pair.secondary)?;
                return Ok((decision, Status::reset()));
            }
        }
        if self.validate_secondary_pub(flash, pair, st)? {
            decision.swap_type = st;
        }
        Ok((decision, Status::reset()))
    }

    /// Loop 3 for the network core: overwrite the RAM primary, then PCD: B0n copies it into
    /// the netcore flash. TEST acts as permanent (there is no revert for the netcore).
    pub(crate) fn update_netcore(
        &mut self,
        flash: &mut FlashMap,
        pair: &Pair,
        decision: &mut ImageDecision,
    ) -> Result<(), Stop> {
        if !matches!(decision.swap_type, SwapType::Test | SwapType::Perm) {
            return Ok(());
        }
        let size = pair.sec_layout.slot_size.min(pair.pri_layout.slot_size);
        let data = flash.read(&pair.secondary, 0, size)?;
        let Ok(img) = Image::parse(&data) else {
            return Ok(());
        };
        let total = img.total_size;
        let version = img.header.version;
        self.info(format!(
            "Image {} upgrade secondary slot -> primary slot",
            pair.image
        ));
        let sector = pair.sector;
        let mut off = 0;
        while off < pair.pri_layout.slot_size {
            flash.erase(&pair.primary, off, sector)?;
            off += sector;
        }
        let len = (total as u32).next_multiple_of(flash.write_size(&pair.primary)?);
        self.copy_region(
            flash,
            (&pair.secondary, 0),
            (&pair.primary, 0),
            len.min(size),
        )?;
        // PCD: the command (address, size, SHA) goes to shared SRAM; B0n copies and checks.
        self.info("Starting network core update");
        self.info("Turned on network core");
        let copied = flash.read(&pair.primary, 0, total as u32)?;
        let updates = self.hw.netcore.as_ref().map_or(0, |n| n.updates) + 1;
        self.hw.netcore = Some(NetcoreFw {
            version,
            image: copied,
            updates,
        });
        self.info("Turned off network core");
        self.info("Done updating network core");
        // Overwrite-only clean-up of the secondary: header and trailer sectors.
        let sec_sector = flash.sector_size(&pair.secondary)?;
        flash.erase(&pair.secondary, 0, sec_sector)?;
        let last = pair.sec_layout.slot_size - sec_sector;
        if last != 0 {
            flash.erase(&pair.secondary, last, sec_sector)?;
        }
        Ok(())
    }
}
