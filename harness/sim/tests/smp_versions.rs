//! SMP server behaviour chosen by the app's Zephyr release (docs/firmware-versions.md).

mod common;

use common::*;
use dfu_hil_firmware::{AppDescriptor, Release, Ver};
use dfu_hil_smp::{group, img_cmd, map, uint, Op, Value, Version as SmpVersion};

/// NCS 2.4.0: sdk-zephyr 3.3.99, sdk-mcuboot 1.10.0.
fn ncs_2_4() -> Release {
    Release {
        ncs: Some(Ver::new(2, 4, 0)),
        zephyr: Ver::new(3, 3, 99),
        mcuboot: Ver::new(1, 10, 0),
    }
}

fn app_rel(ver: &str, rel: Release, groups: &[u16]) -> Vec<u8> {
    let mut d = AppDescriptor::new("app", ver);
    d.release = rel;
    d.smp_groups = groups.to_vec();
    app_with(&layout(), &d, APP_SIZE, Some(&key()), 0x200)
}

/// v1 running, v2 uploaded and marked for test, both built from `rel`.
fn pending_board(rel: Release) -> (dfu_hil_sim::SimBoard, Vec<u8>) {
    let v1 = app_rel("1.0.0", rel, &[0, 1]);
    let v2 = app_rel("2.0.0", rel, &[0, 1]);
    let mut b = board_with(layout(), &build(), &v1);
    upload(&mut b, &v2, 250).expect("upload");
    test_image(&mut b, &tlv_hash(&v2));
    (b, v2)
}

#[test]
fn confirm_of_pending_before_3_4_99_answers_the_list_and_writes_nothing() {
    let (mut b, v2) = pending_board(ncs_2_4());
    let before = trailer(&b, "slot1");
    let ops = b.flash.op_count();
    for v in [SmpVersion::V1, SmpVersion::V2] {
        let body = request_v(
            &mut b,
            v,
            Op::Write,
            group::IMAGE,
            img_cmd::STATE,
            map([
                ("hash", Value::Bytes(tlv_hash(&v2))),
                ("confirm", Value::Bool(true)),
            ]),
        );
        let images = dfu_hil_smp::parse_image_state(&body).expect("the image list");
        let s1 = images.iter().find(|s| s.slot == 1).expect("slot1");
        assert!(s1.pending && !s1.permanent, "{s1:?}");
    }
    assert_eq!(
        b.flash.op_count(),
        ops,
        "boot_set_pending_multi wrote nothing"
    );
    assert_eq!(trailer(&b, "slot1"), before);
    // The reset runs the test swap it was always going to run.
    b.reset();
    assert_eq!(running(&b), "2.0.0");
}

#[test]
fn confirm_of_pending_from_3_4_99_is_already_pending() {
    let rel = Release {
        ncs: Some(Ver::new(2, 5, 0)),
        zephyr: Ver::new(3, 4, 99),
        mcuboot: Ver::new(1, 10, 99),
    };
    let (mut b, v2) = pending_board(rel);
    let req = |v| {
        (
            v,
            map([
                ("hash", Value::Bytes(tlv_hash(&v2))),
                ("confirm", Value::Bool(true)),
            ]),
        )
    };
    let (v, body) = req(SmpVersion::V2);
    let r = request_v(&mut b, v, Op::Write, group::IMAGE, img_cmd::STATE, body);
    assert_eq!(
        r,
        map([("err", map([("group", uint(1)), ("rc", uint(28))]))])
    );
    let (v, body) = req(SmpVersion::V1);
    let r = request_v(&mut b, v, Op::Write, group::IMAGE, img_cmd::STATE, body);
    assert_eq!(
        r,
        map([("rc", uint(6))]),
        "IMAGE_ALREADY_PENDING → EBADSTATE"
    );
}

#[test]
fn old_errors_are_legacy_codes() {
    let (mut b, _) = pending_board(ncs_2_4());
    // Confirm of the running image while a test is pending: EBADSTATE, v2 request too.
    assert_eq!(
        state_write(&mut b, None, true).unwrap_err(),
        dfu_hil_smp::DeviceError::Mgmt { rc: 6 }
    );
    // Unknown hash: EINVAL (not the group's HASH_NOT_FOUND).
    assert_eq!(
        state_write(&mut b, Some(&[0xab; 32]), false).unwrap_err(),
        dfu_hil_smp::DeviceError::Mgmt { rc: 3 }
    );
}

#[test]
fn erase_storage_without_zbasic_is_a_bare_enotsup() {
    let img = app_rel("1.0.0", ncs_2_4(), &[0, 1]);
    let mut b = board_with(layout(), &build(), &img);
    for v in [SmpVersion::V1, SmpVersion::V2] {
        let body = request_v(&mut b, v, Op::Write, group::ZEPHYR_BASIC, 0, map([]));
        assert_eq!(body, map([("rc", uint(8))]));
    }
}

#[test]
fn erase_storage_with_zbasic_erases_the_storage_partition() {
    let lay = layout_with_storage();
    let mut d = AppDescriptor::new("app", "1.0.0");
    d.smp_groups = vec![0, 1, 63];
    let img = app_with(&lay, &d, APP_SIZE, Some(&key()), 0x200);
    let mut b = board_with(lay, &build(), &img);
    b.probe_program("storage", &[0x11; 16])
        .expect("program storage");
    let body = request(&mut b, Op::Write, group::ZEPHYR_BASIC, 0, map([]));
    assert_eq!(body, map([]));
    let data = b.probe_read("storage", 0, 16).expect("read storage");
    assert!(data.iter().all(|&x| x == 0xff), "{data:?}");
}

/// nRF52840 internal flash with an 8 KiB `storage` partition at the end (slots shrunk).
fn layout_with_storage() -> dfu_hil_mcuboot::layout::Layout {
    let text = "name: with-storage
flash:
  - { name: internal, kind: internal, base: 0x0, size: 0x100000, sector-size: 0x1000, write-size: 4, erased: 0xff }
partitions:
  - { name: mcuboot, device: internal, offset: 0x0, size: 0xc000 }
  - { name: slot0, device: internal, offset: 0xc000, size: 0x79000 }
  - { name: slot1, device: internal, offset: 0x85000, size: 0x79000 }
  - { name: storage, device: internal, offset: 0xfe000, size: 0x2000 }
images:
  - { primary: slot0, secondary: slot1 }
";
    dfu_hil_mcuboot::layout::Layout::parse(text, std::path::Path::new("with-storage.yaml"))
        .expect("layout parses")
}
