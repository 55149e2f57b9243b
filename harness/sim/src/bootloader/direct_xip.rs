//! Direct-XIP (`MCUBOOT_DIRECT_XIP`, design.md "Equal slots"): nothing is copied. MCUboot picks
//! the valid image with the highest version from either slot and jumps to it in place, so every
//! image must be linked for the slot it is written to. An invalid image is erased
//! (`boot_scramble_slot`, slots are equivalent) and the other slot is tried.
//!
//! Not modelled: `MCUBOOT_DIRECT_XIP_REVERT` (copy_done as "selected once").

use crate::bootloader::{BootOutcome, Bootloader, Stop};
use crate::device::flash_map::FlashMap;
use dfu_hil_mcuboot::image::{flags, Image, ImageHeader, IMAGE_MAGIC};
use std::cmp::Ordering;

impl Bootloader<'_> {
    /// `context_boot_go` for direct-xip: select, check the load address, validate, jump.
    pub(crate) fn boot_direct_xip(&mut self, flash: &mut FlashMap) -> Result<BootOutcome, Stop> {
        let pair = self.pair(flash, 0)?;
        let slots = [
            (pair.primary.clone(), pair.pri_layout, true),
            (pair.secondary.clone(), pair.sec_layout, pair.sec_readable),
        ];
        let mut usable = [slots[0].2, slots[1].2];
        loop {
            // find_slot_with_highest_version: strictly greater wins, so ties stay in slot 0.
            let mut best: Option<(usize, ImageHeader)> = None;
            for (i, (part, _, _)) in slots.iter().enumerate() {
                if !usable[i] {
                    continue;
                }
                let Ok(h) = ImageHeader::parse(&flash.read(part, 0, 32)?) else {
                    continue;
                };
                if h.magic != IMAGE_MAGIC {
                    continue;
                }
                if best.as_ref().is_none_or(|(_, b)| {
                    h.version.cmp_without_build(&b.version) == Ordering::Greater
                }) {
                    best = Some((i, h));
                }
            }
            let Some((i, hdr)) = best else {
                return Err(Stop::Halt("Unable to find bootable image".into()));
            };
            let (part, l, _) = &slots[i];
            let name = if i == 0 { "primary" } else { "secondary" };
            let addr = flash.layout.address(flash.partition(part)?);
            if hdr.flags & flags::ROM_FIXED != 0 && hdr.load_addr != addr {
                self.warn(format!(
                    "Image in {name} slot at 0x{addr:x} has been built for offset 0x{:x}, skipping",
                    hdr.load_addr
                ));
                usable[i] = false;
                continue;
            }
            let bytes = flash.read(part, 0, l.slot_size)?;
            let max = l.swap_info_off();
            let valid = Image::parse(&bytes).is_ok_and(|img| {
                img.total_size as u32 <= max
                    && img
                        .verify(&bytes[..img.total_size], self.key.as_ref())
                        .is_valid()
            });
            if !valid {
                self.err(format!("Image in the {name} slot is not valid!"));
                self.scramble_slot(flash, part)?;
                usable[i] = false;
                continue;
            }
            self.info(format!("Image 0 loaded from the {name} slot"));
            self.info(format!("Bootloader chainload address offset: 0x{addr:x}"));
            self.info(format!("Image version: v{}", hdr.version));
            self.info("Jumping to the first image slot");
            return Ok(BootOutcome::Jump {
                image: 0,
                partition: part.clone(),
                hdr_size: hdr.hdr_size,
            });
        }
    }
}
