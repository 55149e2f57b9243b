//! nRF5340 multi-image (MCUboot `loader.c`, `boot_verify_dependencies`; NCS doc
//! `ug_nrf5340_multi_image_dfu`): image 0 = app core, image 1 = network core whose primary is
//! RAM-emulated; updates go through PCD to the netcore flash; dependency TLVs hold all images back
//! when unmet; a build without the netcore partition panics.

mod common;

use common::*;
use dfu_hil_firmware::{build_app, AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::image::Dependency;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use dfu_hil_mcuboot::trailer::UpgradeMode;
use dfu_hil_sim::bootloader::BootOutcome;
use dfu_hil_sim::device::flash_map::MapError;
use dfu_hil_sim::{CoreState, SimBoard};

fn ml() -> Layout {
    Layout::load(&repo().join("partitions/nrf5340-multi-image.yaml")).expect("layout")
}

/// NCS requires overwrite-only for simultaneous nRF5340 multi-image updates.
fn mbuild() -> BootloaderBuild {
    BootloaderBuild {
        mode: UpgradeMode::OverwriteOnly,
        ..build()
    }
}

/// An image linked for `link` (slot0 or mcuboot_primary_1), sized for `slot`.
fn img(
    l: &Layout,
    link: &str,
    slot: &str,
    name: &str,
    ver: &str,
    deps: Vec<Dependency>,
) -> Vec<u8> {
    let p = l.partition(link).unwrap();
    let bin = build_app(
        &AppDescriptor::new(name, ver),
        l.address(p),
        0x200,
        12 * 1024,
    );
    sign(
        &bin,
        Some(&key()),
        &SignOptions {
            header_size: 0x200,
            version: version(ver),
            slot_size: l.partition(slot).unwrap().size,
            dependencies: deps,
            ..Default::default()
        },
    )
    .unwrap()
}

fn app(l: &Layout, ver: &str, deps: Vec<Dependency>) -> Vec<u8> {
    img(l, "slot0", "slot0", "app", ver, deps)
}

fn net(l: &Layout, ver: &str) -> Vec<u8> {
    img(
        l,
        "mcuboot_primary_1",
        "mcuboot_secondary_1",
        "netcore",
        ver,
        vec![],
    )
}

fn board() -> SimBoard {
    let l = ml();
    let mut b = board_with(l.clone(), &mbuild(), &app(&l, "1.0.0", vec![]));
    b.program_netcore(&net(&l, "1.0.0")).unwrap();
    b
}

#[test]
fn netcore_update_over_smp_with_image_1() {
    let l = ml();
    let mut b = board();
    assert_eq!(running(&b), "1.0.0");
    let n2 = net(&l, "2.0.0");
    upload_image(&mut b, Some(1), &n2, 2048).expect("upload image 1");
    // Landed in mcuboot_secondary_1, listed as image 1 slot 1.
    let h = b.flash.read("mcuboot_secondary_1", 0, 4).unwrap();
    assert_eq!(h, [0x3d, 0xb8, 0xf3, 0x96]);
    let s = list(&mut b);
    assert!(s.iter().any(|s| s.image == 0 && s.slot == 0 && s.active));
    let n = s.iter().find(|s| s.image == 1).expect("image 1 listed");
    assert_eq!((n.slot, n.version.as_str()), (1, "2.0.0"));
    test_image(&mut b, &n2_hash(&n2));
    assert!(list(&mut b).iter().any(|s| s.image == 1 && s.pending));
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert_eq!(b.netcore_version(), Some(version("2.0.0")));
    assert!(logged(&b, "Starting network core update"));
    assert!(logged(&b, "Done updating network core"));
    // Not reachable through the probe; gone after reset anyway.
    let e = b.probe_read("mcuboot_primary_1", 0, 32).unwrap_err();
    assert!(matches!(e, MapError::RamEmulated(_)));
    assert!(e.to_string().contains("RAM-emulated"));
    // Secondary scrubbed; nothing pending; no revert on the next resets (test acts as permanent).
    assert!(!list(&mut b).iter().any(|s| s.image == 1));
    b.reset();
    b.reset();
    assert_eq!(b.netcore_version(), Some(version("2.0.0")));
    assert_eq!(b.hw_state().netcore.as_ref().unwrap().updates, 1);
}

fn n2_hash(img: &[u8]) -> Vec<u8> {
    tlv_hash(img)
}

#[test]
fn unmet_dependency_holds_every_image() {
    let l = ml();
    let mut b = board();
    let a2 = app(
        &l,
        "2.0.0",
        vec![Dependency {
            image_id: 1,
            min_version: version("2.0.0"),
        }],
    );
    let n15 = net(&l, "1.5.0");
    upload_image(&mut b, Some(0), &a2, 2048).unwrap();
    upload_image(&mut b, Some(1), &n15, 2048).unwrap();
    test_image(&mut b, &tlv_hash(&n15));
    test_image(&mut b, &tlv_hash(&a2));
    b.reset();
    // All or nothing: neither the app nor the netcore moved; both stay pending.
    assert_eq!(running(&b), "1.0.0");
    assert_eq!(b.netcore_version(), Some(version("1.0.0")));
    assert!(logged(&b, "no image is upgraded"));
    let s = list(&mut b);
    assert!(s.iter().any(|s| s.image == 0 && s.slot == 1 && s.pending));
    assert!(s.iter().any(|s| s.image == 1 && s.slot == 1 && s.pending));

    // Replace the netcore candidate with one that satisfies the dependency: both go.
    let n2 = net(&l, "2.0.0");
    b.flash.erase_all("mcuboot_secondary_1").unwrap();
    upload_image(&mut b, Some(1), &n2, 2048).unwrap();
    test_image(&mut b, &tlv_hash(&n2));
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert_eq!(b.netcore_version(), Some(version("2.0.0")));
}

#[test]
fn netcore_partition_missing_from_mcuboot_build_panics() {
    let l = ml();
    let bl = BootloaderBuild {
        missing_partitions: vec!["mcuboot_secondary_1".into()],
        ..mbuild()
    };
    let b = board_with(l.clone(), &bl, &app(&l, "1.0.0", vec![]));
    assert!(logged(
        &b,
        "Failed to open flash area ID 3 (image 1 slot 1): -19"
    ));
    assert!(matches!(
        b.last_boot().outcome,
        Some(BootOutcome::Halt { .. })
    ));
    assert!(matches!(b.core_state(), CoreState::FaultLoop { .. }));
}

#[test]
fn netcore_image_linked_for_app_is_erased() {
    let l = ml();
    let mut b = board();
    // An app-core image uploaded as image 1: its reset vector is not in netcore flash.
    let wrong = img(&l, "slot0", "mcuboot_secondary_1", "app", "3.0.0", vec![]);
    upload_image(&mut b, Some(1), &wrong, 2048).unwrap();
    test_image(&mut b, &tlv_hash(&wrong));
    b.reset();
    assert!(logged(
        &b,
        "Binary in secondary slot of image 1 is not designated for the primary slot"
    ));
    assert_eq!(b.netcore_version(), Some(version("1.0.0")));
}
