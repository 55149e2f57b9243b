//! NSIB (b0) in front of an upgradable MCUboot (NCS `samples/bootloader/src/main.c`,
//! `subsys/bootloader/bl_validation/bl_validation.c`): slot choice by fw_info version, the
//! monotonic counter in the provision partition, MCUboot updated over SMP by uploading the s0 or s1
//! variant, wrong-variant clean-up, counter exhaustion.

mod common;

use common::*;
use dfu_hil_firmware::fw_info::FwInfo;
use dfu_hil_firmware::fw_info::FW_INFO_VALID_VAL;
use dfu_hil_firmware::nsib;
use dfu_hil_firmware::provision::{provision_for, DEFAULT_COUNTER_SLOTS};
use dfu_hil_firmware::release::Release;
use dfu_hil_firmware::BootloaderBuild;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use dfu_hil_sim::{CoreState, SimBoard};

fn nl() -> Layout {
    Layout::load(&repo().join("partitions/nrf52840-nsib.yaml")).expect("layout")
}

fn variant_for(b: &BootloaderBuild, l: &Layout, slot: &str, fw_ver: u32) -> Vec<u8> {
    nsib::mcuboot_variant(b, l, slot, fw_ver, &key()).unwrap()
}

fn ncs(v: &str) -> BootloaderBuild {
    BootloaderBuild {
        release: Release::ncs(v.parse().unwrap()).unwrap(),
        ..build()
    }
}

/// `signed_by_mcuboot_and_b0_s*_image_update.bin`: the b0-signed variant wrapped as an
/// MCUboot image for the app's secondary slot.
fn update_file(l: &Layout, slot: &str, fw_ver: u32) -> Vec<u8> {
    update_file_for(&build(), l, slot, fw_ver)
}

fn update_file_for(b: &BootloaderBuild, l: &Layout, slot: &str, fw_ver: u32) -> Vec<u8> {
    sign(
        &variant_for(b, l, slot, fw_ver),
        Some(&key()),
        &SignOptions {
            header_size: 0x200,
            pad_header: true,
            version: version(&format!("{fw_ver}.0.0")),
            slot_size: l.partition("slot1").unwrap().size,
            ..Default::default()
        },
    )
    .unwrap()
}

fn nsib_board(counter_slots: u16) -> SimBoard {
    nsib_board_for(&build(), nl(), counter_slots)
}

fn nsib_board_for(bb: &BootloaderBuild, l: Layout, counter_slots: u16) -> SimBoard {
    let mut b = SimBoard::new(l.clone());
    b.probe_program("b0", &nsib::build_b0()).unwrap();
    b.probe_program(
        "provision",
        &provision_for(&l, &[key().public()], counter_slots).unwrap(),
    )
    .unwrap();
    b.probe_program("s0", &nsib::slot_contents(&variant_for(bb, &l, "s0", 1)))
        .unwrap();
    b.probe_program("slot0", &app(&l, "1.0.0")).unwrap();
    b.reset();
    b
}

/// Upload an MCUboot update as the MCUboot image (image 1 = the s0/s1 pair) and test it.
fn update_mcuboot(b: &mut SimBoard, file: &[u8]) {
    upload_image(b, Some(1), file, 2048).expect("upload");
    test_image(b, &tlv_hash(file));
    b.reset();
}

#[test]
fn factory_boot_through_b0() {
    let b = nsib_board(DEFAULT_COUNTER_SLOTS);
    assert_eq!(running(&b), "1.0.0");
    assert_eq!(b.nsib_active_slot(), Some("s0"));
    assert_eq!(b.nsib_active_version(), Some(1));
    let c = b.nsib_counter().unwrap();
    assert_eq!((c.used, c.total, c.version()), (1, 20, 1));
    assert!(logged(&b, "Attempting to boot slot 0."));
    assert!(logged(&b, "Firmware version 1"));
}

#[test]
fn mcuboot_updated_twice_then_wrong_variant_cleaned_up() {
    let l = nl();
    let mut b = nsib_board(DEFAULT_COUNTER_SLOTS);

    update_mcuboot(&mut b, &update_file(&l, "s1", 2));
    assert!(!logged(&b, "nsib algorithm"), "MCUboot prints no such line");
    assert!(logged(&b, "Image index: 1, Swap type: test"));
    assert_eq!(b.nsib_active_slot(), Some("s1"));
    assert_eq!(b.nsib_active_version(), Some(2));
    assert_eq!(b.nsib_counter().unwrap().used, 2);
    assert_eq!(running(&b), "1.0.0", "the app is untouched");
    assert!(slot(&mut b, 1).is_none(), "secondary scrubbed");

    update_mcuboot(&mut b, &update_file(&l, "s0", 3));
    assert_eq!(b.nsib_active_slot(), Some("s0"));
    assert_eq!(b.nsib_active_version(), Some(3));
    assert_eq!(b.nsib_counter().unwrap().used, 3);

    // The s0 variant again, while s0 runs: wrong slot, erased, nothing changes.
    update_mcuboot(&mut b, &update_file(&l, "s0", 4));
    assert!(logged(&b, "Image in slot is for wrong s0/s1 image"));
    assert!(logged(&b, "Cleaned-up secondary slot of image 0"));
    assert_eq!(b.nsib_active_slot(), Some("s0"));
    assert_eq!(b.nsib_active_version(), Some(3));
    assert_eq!(b.nsib_counter().unwrap().used, 3);
    assert_eq!(running(&b), "1.0.0");
    assert!(slot(&mut b, 1).is_none());
}

#[test]
fn app_update_still_works_behind_b0() {
    let l = nl();
    let mut b = nsib_board(DEFAULT_COUNTER_SLOTS);
    let v2 = app(&l, "2.0.0");
    upload(&mut b, &v2, 2048).unwrap();
    test_image(&mut b, &tlv_hash(&v2));
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert_eq!(b.nsib_active_slot(), Some("s0"));
}

#[test]
fn counter_exhaustion_stops_mcuboot_updates() {
    let l = nl();
    let mut b = nsib_board(2);
    update_mcuboot(&mut b, &update_file(&l, "s1", 2));
    assert_eq!(b.nsib_active_slot(), Some("s1"));
    let c = b.nsib_counter().unwrap();
    assert_eq!((c.used, c.total), (2, 2));

    // v3 lands in s0, but its version can no longer be recorded: b0 (NCS ≥ 3.2) keeps
    // booting s1, silently (set_monotonic_version's -ENOMEM is not logged).
    update_mcuboot(&mut b, &update_file(&l, "s0", 3));
    assert!(!logged(&b, "monotonic counter slots used"));
    assert_eq!(b.nsib_active_slot(), Some("s1"));
    assert_eq!(b.nsib_active_version(), Some(2));
    assert_eq!(running(&b), "1.0.0");
    b.reset();
    assert_eq!(b.nsib_active_slot(), Some("s1"));
}

#[test]
fn invalid_slot_is_invalidated_and_other_slot_boots() {
    let l = nl();
    let mut b = nsib_board(DEFAULT_COUNTER_SLOTS);
    // A higher-version s1 signed with a key b0 does not know.
    let bad = nsib::mcuboot_variant(&build(), &l, "s1", 5, &other_key()).unwrap();
    b.probe_program("s1", &nsib::slot_contents(&bad)).unwrap();
    b.reset();
    assert!(logged(&b, "Failed to validate, permanently invalidating!"));
    assert_eq!(b.nsib_active_slot(), Some("s0"));
    // The fw_info `valid` word is cleared for good.
    let part = b.flash.partition("s1").unwrap().size;
    let bytes = b.flash.read("s1", 0, part).unwrap();
    let info = FwInfo::parse(&bytes[(nsib::PAD + 0x200) as usize..]).unwrap();
    assert_ne!(info.valid, FW_INFO_VALID_VAL);
}

#[test]
fn no_bootable_mcuboot_halts_in_b0() {
    let l = nl();
    let mut b = SimBoard::new(l.clone());
    b.probe_program("b0", &nsib::build_b0()).unwrap();
    b.probe_program(
        "provision",
        &provision_for(&l, &[key().public()], 20).unwrap(),
    )
    .unwrap();
    b.reset();
    assert!(logged(&b, "No bootable image found. Aborting boot."));
    assert!(matches!(b.core_state(), CoreState::FaultLoop { .. }));
}

#[test]
fn full_counter_before_ncs_3_2_boots_the_new_mcuboot_unrecorded() {
    let bb = ncs("1.9.0");
    let l = nl();
    let mut b = nsib_board_for(&bb, l.clone(), 2);
    update_mcuboot(&mut b, &update_file_for(&bb, &l, "s1", 2));
    update_mcuboot(&mut b, &update_file_for(&bb, &l, "s0", 3));
    assert_eq!(b.nsib_active_slot(), Some("s0"));
    assert_eq!(b.nsib_active_version(), Some(3));
    let c = b.nsib_counter().unwrap();
    assert_eq!((c.used, c.version()), (2, 2), "v3 not recorded");
}

#[test]
fn wrong_variant_before_ncs_2_8_stays_pending() {
    let bb = ncs("1.9.0");
    let l = nl();
    let mut b = nsib_board_for(&bb, l.clone(), DEFAULT_COUNTER_SLOTS);
    let wrong = update_file_for(&bb, &l, "s0", 2);
    update_mcuboot(&mut b, &wrong);
    assert!(!logged(&b, "Image in slot is for wrong s0/s1 image"));
    assert!(!logged(&b, "Cleaned-up secondary slot"));
    assert_eq!(b.nsib_active_slot(), Some("s0"));
    assert_eq!(b.nsib_active_version(), Some(1));
    assert!(slot(&mut b, 1).is_some(), "the update and its trailer stay");
    assert_eq!(running(&b), "1.0.0");
}

/// nRF52840 NSIB layout with the app's secondary on an external QSPI NOR.
fn external_layout() -> Layout {
    let text = std::fs::read_to_string(repo().join("partitions/nrf52840-nsib.yaml")).unwrap();
    let text = text
        .replace(
            "  - { name: slot1, device: internal, offset: 0x91000, size: 0x6e000 }",
            "  - { name: slot1, device: qspi, offset: 0x0, size: 0x6e000 }",
        )
        .replace(
            "partitions:",
            "  - { name: qspi, kind: external, base: 0x10000000, size: 0x800000, sector-size: 0x1000, write-size: 1, erased: 0xff }\npartitions:",
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.yaml");
    std::fs::write(&path, text).unwrap();
    Layout::load(&path).expect("external layout")
}

#[test]
fn mcuboot_update_from_external_secondary_by_release() {
    let l = external_layout();
    assert_ne!(
        l.device_of(l.partition("slot1").unwrap()).kind,
        dfu_hil_mcuboot::layout::DeviceKind::Internal,
        "layout built"
    );
    // NCS 2.3+: the header is read from the external slot; the update works.
    let bb = ncs("2.3.0");
    let mut b = nsib_board_for(&bb, l.clone(), DEFAULT_COUNTER_SLOTS);
    update_mcuboot(&mut b, &update_file_for(&bb, &l, "s1", 2));
    assert_eq!(b.nsib_active_slot(), Some("s1"));
    // NCS 1.9: the check reads internal flash at 0x0 (b0, no image magic) and is skipped;
    // MCUboot takes the MCUboot update as an app update: s0/s1 never change.
    let bb = ncs("1.9.0");
    let mut b = nsib_board_for(&bb, l.clone(), DEFAULT_COUNTER_SLOTS);
    update_mcuboot(&mut b, &update_file_for(&bb, &l, "s1", 2));
    assert_eq!(b.nsib_active_slot(), Some("s0"));
    assert_eq!(b.nsib_active_version(), Some(1));
    assert!(logged(&b, "Image index: 0, Swap type: test"));
}
