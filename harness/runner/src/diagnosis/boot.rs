//! Diagnoses from MCUboot's log and the trailers after a reset (swap type, rejected images, NSIB).

use super::*;
use dfu_hil_mcuboot::trailer::{Flag, MagicState};

pub(super) fn diagnose(f: &Facts<'_>, boot: &[String]) -> Option<String> {
    if logged(boot, "Image in the secondary slot is not valid!") {
        return Some(
            "MCUboot rejected the image in the secondary slot and erased it: its signature does \
             not verify with MCUboot's key, its hash does not match, or it is too large"
                .into(),
        );
    }
    if logged(boot, "erased due to downgrade prevention")
        || logged(boot, "Insufficient version in secondary slot")
    {
        return Some(
            "MCUboot refused the update as a downgrade (its version is lower than the running \
             image's) and erased it"
                .into(),
        );
    }
    if logged(boot, "Image in slot is for wrong s0/s1 image") {
        return Some(
            "the MCUboot update was built for the s0/s1 slot NSIB is running from; MCUboot erased \
             it — upload the variant for the inactive slot (s1 when s0 runs, and back)"
                .into(),
        );
    }
    if let Some(line) = boot
        .iter()
        .find(|l| l.contains("is smaller than monotonic counter"))
    {
        return Some(format!(
            "b0 (NSIB) refused an MCUboot build whose CONFIG_FW_INFO_FIRMWARE_VERSION is below \
             the version its monotonic counter records (\"{}\") and invalidated it for good — \
             raise CONFIG_FW_INFO_FIRMWARE_VERSION in the MCUboot build with every MCUboot \
             update (the counter has CONFIG_SB_NUM_VER_COUNTER_SLOTS slots, default 240; one is \
             used per higher version)",
            line.trim()
        ));
    }
    if let Some(d) = nsib_wrong_variant_pending(f, boot) {
        return Some(d);
    }
    let secondary_pending = f.trailers.get(1).is_some_and(|(_, t)| {
        t.magic == MagicState::Good && t.image_ok == Flag::Unset && t.copy_done == Flag::Unset
    });
    let sectors = boot.iter().find(|l| l.contains("Failed reading sectors"));
    let unreachable = boot
        .iter()
        .find(|l| l.contains("is unreachable. Treat it as empty"));
    if secondary_pending && (sectors.is_some() || unreachable.is_some()) {
        let region = &f.trailers[1].0;
        let (cause, other) = match (sectors, unreachable) {
            (Some(l), _) => (
                format!(
                    "MCUboot logged \"{}\": CONFIG_BOOT_MAX_IMG_SECTORS is below the slot's \
                     sector count — raise it to at least slot size / sector size",
                    l.trim()
                ),
                "(the driver is present: MCUboot read the slot's sectors)",
            ),
            (None, Some(l)) => (
                format!(
                    "MCUboot logged \"{}\": it has no flash-map entry for the secondary — \
                     the external flash driver is not in MCUboot's build; check MCUboot's \
                     (child image's) .config for CONFIG_SPI_NOR (SPI) or \
                     CONFIG_NORDIC_QSPI_NOR (QSPI) and CONFIG_PM_EXTERNAL_FLASH_HAS_DRIVER",
                    l.trim()
                ),
                "(if the driver is there, the other documented cause is \
                 CONFIG_BOOT_MAX_IMG_SECTORS below slot size / sector size, which MCUboot \
                 reports as \"Failed reading sectors\")",
            ),
            (None, None) => return None,
        };
        return Some(format!(
            "{region} was marked for test (magic good, image_ok unset) but after reset the swap \
             type stayed NONE and the trailer is unchanged, so it stays pending: {cause} {other}"
        ));
    }
    if secondary_pending && logged(boot, "Swap type: none") {
        let region = &f.trailers[1].0;
        return Some(format!(
            "{region} was marked for test (magic good, image_ok unset) but after reset the swap \
             type stayed NONE and the trailer is unchanged: MCUboot did not take the request"
        ));
    }
    if logged(boot, "Swap type: revert") {
        return Some(
            "MCUboot reverted: the test image was not confirmed before the reset \
             (image confirm, or boot_write_img_confirmed() in the app)"
                .into(),
        );
    }
    None
}

/// NCS ≤ 2.2 MCUboot behind b0 with `mcuboot_secondary` on external flash: the s0/s1 check in
/// `boot_validated_swap_type` read the header through `(struct image_header *)fa_off`, i.e.
/// from internal flash, so image 0 took an MCUboot update as an app update and swapped it into
/// the app's primary (fixed by sdk-mcuboot 68b46483, NCS 2.3). Evidence: the CPU is in a fault
/// loop and the image in the app's primary carries b0's `fw_info` (magic at `hdr_size` +
/// `CONFIG_FW_INFO_OFFSET` 0x200): an MCUboot build, not an app. Checked before the fault rules,
/// which would otherwise read that image's header as an app's.
pub(super) fn nsib_mcuboot_in_app_slot(f: &Facts<'_>) -> Option<String> {
    if !matches!(f.core, Some(CoreState::FaultLoop { .. })) {
        return None;
    }
    let head = f.primary_head.as_deref()?;
    if le32(head, 0)? != dfu_hil_mcuboot::image::IMAGE_MAGIC {
        return None;
    }
    let hdr_size = u16::from_le_bytes([*head.get(8)?, *head.get(9)?]) as usize;
    if le32(head, hdr_size + 0x200)? != dfu_hil_firmware::fw_info::FW_INFO_MAGIC_COMMON {
        return None;
    }
    Some(
        "MCUboot installed an MCUboot update (an image with b0's fw_info) in the app's primary \
         slot and the CPU faulted running it: the NCS MCUboot took it for an app update. With \
         mcuboot_secondary on external flash, sdk-mcuboot up to NCS 2.2 reads the candidate's \
         header and reset vector from internal flash at the slot's offset \
         (boot_validated_swap_type), so it cannot tell an MCUboot update from an app — update \
         to NCS 2.3 or later or apply sdk-mcuboot commit 68b46483; a reset reverts this \
         unconfirmed test swap"
            .into(),
    )
}

/// NCS ≤ 2.7 MCUboot behind b0: an MCUboot update linked for the s0/s1 slot b0 is running has
/// its reset vector in neither primary, so `boot_validated_swap_type` returns NONE for image 0
/// and image 1 before `boot_swap_type_multi` logs anything: the trailer stays, slot1 pending.
/// Evidence: b0 booted this chain ("Attempting to boot slot N."), slot1's trailer is pending,
/// and MCUboot printed no swap type for image 0.
fn nsib_wrong_variant_pending(f: &Facts<'_>, boot: &[String]) -> Option<String> {
    let slot = boot.iter().rev().find_map(|l| {
        l.trim()
            .strip_prefix("Attempting to boot slot ")
            .and_then(|r| r.trim_end_matches('.').parse::<u8>().ok())
    })?;
    let pending = f.trailers.get(1).is_some_and(|(_, t)| {
        t.magic == MagicState::Good && t.image_ok == Flag::Unset && t.copy_done == Flag::Unset
    });
    if !pending || logged(boot, "Image index: 0, Swap type") || logged(boot, "unreachable") {
        return None;
    }
    let other = 1 - slot.min(1);
    Some(format!(
        "b0 runs MCUboot from s{slot}, and the update in slot1 stays pending with no swap type \
         for image 0: it is the MCUboot variant linked for s{slot} — the running slot. MCUboot \
         before NCS 2.8 ignores it (swap type NONE, trailer left, pending forever; NCS 2.8+ \
         erases it with \"Image in slot is for wrong s0/s1 image\"). Upload the variant for the \
         inactive slot: signed_by_mcuboot_and_b0_s{other}_image_update.bin"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfu_hil_mcuboot::trailer::Trailer;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn trailer(magic: MagicState) -> Trailer {
        Trailer {
            magic,
            magic_raw: [0xff; 16],
            image_ok: Flag::Unset,
            image_ok_raw: 0xff,
            copy_done: Flag::Unset,
            copy_done_raw: 0xff,
            swap_info: None,
            swap_size: None,
            status: Vec::new(),
            erased: 0xff,
        }
    }

    fn pending() -> Trailer {
        trailer(MagicState::Good)
    }

    #[test]
    fn mcuboot_in_app_slot_needs_fault_and_fw_info() {
        let mut head = vec![0u8; 0x1000];
        head[0..4].copy_from_slice(&dfu_hil_mcuboot::image::IMAGE_MAGIC.to_le_bytes());
        head[8] = 0x00;
        head[9] = 0x02; // hdr_size 0x200
        head[0x400..0x404]
            .copy_from_slice(&dfu_hil_firmware::fw_info::FW_INFO_MAGIC_COMMON.to_le_bytes());
        let fault = Some(CoreState::FaultLoop {
            pc: 0x1a2c,
            symbol: None,
        });
        let f = Facts {
            core: fault.clone(),
            primary_head: Some(head.clone()),
            ..Facts::default()
        };
        assert!(nsib_mcuboot_in_app_slot(&f).unwrap().contains("68b46483"));
        // Near miss: an ordinary app image (no fw_info) that faults.
        let mut app = head.clone();
        app[0x400..0x404].copy_from_slice(&[0; 4]);
        let f = Facts {
            core: fault,
            primary_head: Some(app),
            ..Facts::default()
        };
        assert!(nsib_mcuboot_in_app_slot(&f).is_none());
        // Near miss: the same image but the CPU runs (no fault).
        let f = Facts {
            core: Some(CoreState::Running),
            primary_head: Some(head),
            ..Facts::default()
        };
        assert!(nsib_mcuboot_in_app_slot(&f).is_none());
    }

    #[test]
    fn counter_rule_fires_on_b0_line_only() {
        let l = lines(&[
            "*** Booting nRF Secure Immutable Bootloader (b0) ***",
            "Attempting to boot slot 1.",
            "Firmware version (2) is smaller than monotonic counter (3).",
            "Failed to validate, permanently invalidating!",
        ]);
        let f = Facts {
            log: &l,
            ..Facts::default()
        };
        let d = diagnose(&f, &l).unwrap();
        assert!(d.contains("CONFIG_FW_INFO_FIRMWARE_VERSION"), "{d}");
        assert!(d.contains("CONFIG_SB_NUM_VER_COUNTER_SLOTS"), "{d}");
        assert!(!d.contains("SB_MONOTONIC_COUNTER_SLOTS"), "{d}");
        // Near miss: a higher version booted normally.
        let l = lines(&["Attempting to boot slot 1.", "Firmware version 3"]);
        let f = Facts {
            log: &l,
            ..Facts::default()
        };
        assert!(diagnose(&f, &l).is_none());
    }

    #[test]
    fn external_secondary_pending_names_the_cause_the_log_shows() {
        let t = vec![
            ("slot0".into(), trailer(MagicState::Unset)),
            ("slot1".into(), pending()),
        ];
        let l = lines(&[
            "*** Booting MCUboot ***",
            "I: Secondary image of image pair (0.) is unreachable. Treat it as empty",
            "I: Image index: 0, Swap type: none",
        ]);
        let f = Facts {
            log: &l,
            trailers: t.clone(),
            ..Facts::default()
        };
        let d = diagnose(&f, &l).unwrap();
        assert!(
            d.contains("CONFIG_SPI_NOR") && d.contains("CONFIG_BOOT_MAX_IMG_SECTORS"),
            "{d}"
        );
        let l = lines(&[
            "*** Booting MCUboot ***",
            "W: Failed reading sectors; BOOT_MAX_IMG_SECTORS=128 - too small?",
            "W: Cannot upgrade: not a compatible amount of sectors",
        ]);
        let f = Facts {
            log: &l,
            trailers: t.clone(),
            ..Facts::default()
        };
        let d = diagnose(&f, &l).unwrap();
        assert!(
            d.contains("BOOT_MAX_IMG_SECTORS=128") && !d.contains("CONFIG_SPI_NOR"),
            "{d}"
        );
        // Near miss: the same log but slot1 not pending (nothing was requested).
        let t2 = vec![
            ("slot0".into(), trailer(MagicState::Unset)),
            ("slot1".into(), trailer(MagicState::Unset)),
        ];
        let f = Facts {
            log: &l,
            trailers: t2,
            ..Facts::default()
        };
        assert!(diagnose(&f, &l).is_none());
    }

    #[test]
    fn wrong_variant_pending_needs_b0_pending_and_no_image0_swap_type() {
        let l = lines(&[
            "*** Booting nRF Secure Immutable Bootloader (b0) ***",
            "Attempting to boot slot 0.",
            "Firmware version 1",
            "*** Booting MCUboot ***",
            "I: Jumping to the first image slot",
        ]);
        let f = Facts {
            log: &l,
            trailers: vec![
                ("slot0".into(), trailer(MagicState::Unset)),
                ("slot1".into(), pending()),
            ],
            ..Facts::default()
        };
        let d = diagnose(&f, &l).unwrap();
        assert!(
            d.contains("signed_by_mcuboot_and_b0_s1_image_update.bin"),
            "{d}"
        );
        // Near miss: MCUboot did decide a swap type for image 0 (an app update it skipped).
        let mut l2 = l.clone();
        l2.insert(4, "I: Image index: 0, Swap type: none".into());
        let f2 = Facts {
            log: &l2,
            trailers: f.trailers.clone(),
            ..Facts::default()
        };
        assert!(!diagnose(&f2, &l2).unwrap_or_default().contains("variant"));
        // Near miss: no b0 in the chain.
        let l3 = lines(&[
            "*** Booting MCUboot ***",
            "I: Jumping to the first image slot",
        ]);
        let f3 = Facts {
            log: &l3,
            trailers: f.trailers.clone(),
            ..Facts::default()
        };
        assert!(diagnose(&f3, &l3).is_none());
    }
}
