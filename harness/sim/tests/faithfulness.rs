//! Cases from MCUboot's own simulator (MCUboot `sim/tests/core.rs`, runners in `sim/src/image.rs`)
//! and field failures: a header size smaller than the link offset (docs/protocol-facts.md), too few
//! `BOOT_MAX_IMG_SECTORS` (`loader.c`: "Failed reading sectors") and an external-flash secondary
//! MCUboot cannot read (`bootutil_public.c`: "Treat it as empty").

mod common;

use common::*;
use dfu_hil_firmware::{AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::{Field, Flag, MagicState, TrailerLayout};
use dfu_hil_sim::CoreState;
use std::path::Path;

/// Put `img` in slot1 with the probe and write the trailer bytes `boot_set_pending` writes.
fn stage_secondary(b: &mut dfu_hil_sim::SimBoard, img: &[u8], permanent: bool) {
    b.probe_program("slot1", img).expect("program slot1");
    let size = b.flash.size("slot1").unwrap();
    let l = TrailerLayout::new(size, dfu_hil_mcuboot::trailer::UpgradeMode::SwapMove);
    let s = b.flash.sector_size("slot1").unwrap();
    b.flash.erase("slot1", size - s, s).unwrap();
    let mut writes = vec![l.magic_write()];
    if permanent {
        writes.push(l.flag_write(Field::ImageOk, 1));
    }
    for w in writes {
        b.flash.write("slot1", w.offset, &w.data).unwrap();
    }
}

#[test]
fn bad_signature_secondary_is_scrubbed() {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let bad = app_with(
        &lay,
        &AppDescriptor::new("app", "2.0.0"),
        APP_SIZE,
        Some(&other_key()),
        0x200,
    );
    let mut b = board_with(lay, &build(), &v1);
    stage_secondary(&mut b, &bad, false);
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert!(logged(&b, "Image in the secondary slot is not valid!"));
    let s1 = b
        .flash
        .read("slot1", 0, b.flash.size("slot1").unwrap())
        .unwrap();
    assert!(s1.iter().all(|&x| x == 0xff), "secondary erased");
    assert_eq!(triple(&trailer(&b, "slot0")), ERASED);
}

#[test]
fn secondary_trailer_leftover_is_scrubbed() {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let mut b = board_with(lay, &build(), &v1);
    // Trailer with magic + image_ok but no image (interrupted scrub).
    stage_secondary(&mut b, &[], true);
    assert_eq!(trailer(&b, "slot1").magic, MagicState::Good);
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert_eq!(triple(&trailer(&b, "slot1")), ERASED);
    assert_eq!(triple(&trailer(&b, "slot0")), ERASED);
    assert!(!logged(&b, "not valid"));
}

#[test]
fn oversized_secondary_is_not_swapped() {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    // app_max_size on this layout: 0x7a000 - one trailer sector - one move sector = 0x78000.
    let big_img = app_with(
        &lay,
        &AppDescriptor::new("app", "2.0.0"),
        0x78000,
        Some(&key()),
        0x200,
    );
    assert!(big_img.len() > 0x78000);
    let mut b = board_with(lay, &build(), &v1);
    stage_secondary(&mut b, &big_img, false);
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert!(logged(&b, "TLV beyond image size"));
    assert!(slot(&mut b, 1).is_none());
}

#[test]
fn downgrade_prevention() {
    let lay = layout();
    let v2 = app(&lay, "2.0.0");
    let v1 = app(&lay, "1.0.0");
    let bl = BootloaderBuild {
        downgrade_prevention: true,
        ..build()
    };
    let mut b = board_with(lay.clone(), &bl, &v2);
    stage_secondary(&mut b, &v1, false);
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert!(logged(
        &b,
        "Image 0 in slot 1 erased due to downgrade prevention"
    ));
    assert!(slot(&mut b, 1).is_none());
    // Equal versions are allowed.
    let same = app_with(
        &lay,
        &AppDescriptor::new("other", "2.0.0"),
        APP_SIZE,
        Some(&key()),
        0x200,
    );
    stage_secondary(&mut b, &same, false);
    b.reset();
    assert!(logged(&b, "Swap type: test"));
    // Without the option the downgrade goes through.
    let mut b = board_with(lay, &build(), &v2);
    stage_secondary(&mut b, &v1, false);
    b.reset();
    assert_eq!(running(&b), "1.0.0");
}

const EXTERNAL: &str = r#"
name: ext
flash:
  - { name: internal, kind: internal, base: 0x0, size: 0x100000, sector-size: 0x1000, write-size: 4 }
  - { name: qspi, kind: external, base: 0x10000000, size: 0x800000, sector-size: 0x1000, write-size: 4 }
partitions:
  - { name: mcuboot, device: internal, offset: 0x0, size: 0xc000 }
  - { name: slot0, device: internal, offset: 0xc000, size: 0x7a000 }
  - { name: slot1, device: qspi, offset: 0x0, size: 0x7a000 }
"#;

#[test]
fn external_secondary_without_driver_stays_pending() {
    let lay = Layout::parse(EXTERNAL, Path::new("ext.yaml")).unwrap();
    let v1 = app(&lay, "1.0.0");
    let v2 = app(&lay, "2.0.0");
    let bl = BootloaderBuild {
        external_flash_driver: false,
        ..build()
    };
    let mut b = board_with(lay.clone(), &bl, &v1);
    upload(&mut b, &v2, 256).expect("app has the driver");
    test_image(&mut b, &tlv_hash(&v2));
    for _ in 0..3 {
        b.reset();
        assert_eq!(running(&b), "1.0.0");
        assert_eq!(b.last_boot().decisions[0].swap_type.name(), "none");
        assert!(slot(&mut b, 1).unwrap().pending, "pending forever");
    }
    assert!(logged(
        &b,
        "Secondary image of image pair (0.) is unreachable"
    ));
    // With the driver the same flash upgrades.
    let mut b = board_with(lay, &build(), &v1);
    upload(&mut b, &v2, 256).unwrap();
    test_image(&mut b, &tlv_hash(&v2));
    b.reset();
    assert_eq!(running(&b), "2.0.0");
}

#[test]
fn header_size_mismatch_faults_in_arch_system_halt() {
    let lay = layout();
    let bad = app_with(
        &lay,
        &AppDescriptor::new("app", "1.0.0"),
        APP_SIZE,
        Some(&key()),
        32,
    );
    let b = board_with(lay, &build(), &bad);
    match b.core_state() {
        CoreState::FaultLoop { symbol, .. } => {
            assert_eq!(symbol.as_deref(), Some("arch_system_halt"))
        }
        other => panic!("expected a fault loop, got {other:?}"),
    }
    assert!(logged(&b, "Jumping to the first image slot"));
    assert!(logged(&b, "USAGE FAULT"));
}

#[test]
fn too_many_sectors_no_swap() {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let v2 = app(&lay, "2.0.0");
    // 0x7a000 / 4 KiB = 122 sectors > 64.
    let bl = BootloaderBuild {
        max_sectors: 64,
        ..build()
    };
    let mut b = board_with(lay, &bl, &v1);
    upload(&mut b, &v2, 256).unwrap();
    test_image(&mut b, &tlv_hash(&v2));
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert!(logged(
        &b,
        "Failed reading sectors; BOOT_MAX_IMG_SECTORS=64 - too small?"
    ));
    assert!(slot(&mut b, 1).unwrap().pending);
}

#[test]
fn norevert_newimage_padded_primary() {
    // Primary with magic only (imgtool --pad): no swap, trailer untouched, confirm is a no-op.
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let mut b = board_with(lay, &build(), &v1);
    let size = b.flash.size("slot0").unwrap();
    let l = TrailerLayout::new(size, dfu_hil_mcuboot::trailer::UpgradeMode::SwapMove);
    let w = l.magic_write();
    b.flash.write("slot0", w.offset, &w.data).unwrap();
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert_eq!(
        triple(&trailer(&b, "slot0")),
        (MagicState::Good, Flag::Unset, Flag::Unset)
    );
    assert_eq!(triple(&trailer(&b, "slot1")), ERASED);
}

#[test]
fn invalid_primary_halts() {
    let lay = layout();
    let unsigned = app_with(
        &lay,
        &AppDescriptor::new("app", "1.0.0"),
        APP_SIZE,
        Some(&other_key()),
        0x200,
    );
    let b = board_with(lay, &build(), &unsigned);
    assert!(matches!(b.core_state(), CoreState::FaultLoop { .. }));
    assert!(logged(&b, "Image in the primary slot is not valid!"));
    assert!(logged(&b, "Unable to find bootable image"));
}
