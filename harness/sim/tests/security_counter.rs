//! `MCUBOOT_HW_ROLLBACK_PROT`: SEC_CNT must be >= the OTP counter; the counter is raised once
//! the image is confirmed (or at once for a factory image / permanent swap) and survives resets.

mod common;

use common::*;
use dfu_hil_firmware::{build_app, AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::sign::{sign, SignOptions};

fn hw_build() -> BootloaderBuild {
    BootloaderBuild {
        hw_rollback_prot: true,
        ..build()
    }
}

fn app_cnt(ver: &str, sec_cnt: Option<u32>) -> Vec<u8> {
    let l = layout();
    let slot0 = l.partition("slot0").unwrap();
    let bin = build_app(
        &AppDescriptor::new("app", ver),
        l.address(slot0),
        0x200,
        APP_SIZE,
    );
    sign(
        &bin,
        Some(&key()),
        &SignOptions {
            header_size: 0x200,
            version: version(ver),
            slot_size: slot0.size,
            security_counter: sec_cnt,
            ..Default::default()
        },
    )
    .unwrap()
}

fn stage_test(b: &mut dfu_hil_sim::SimBoard, img: &[u8]) {
    upload(b, img, 2048).expect("upload");
    test_image(b, &tlv_hash(img));
    b.reset();
}

#[test]
fn lower_security_counter_is_rejected_equal_accepted_counter_advances() {
    let mut b = board_with(layout(), &hw_build(), &app_cnt("1.0.0", Some(2)));
    assert_eq!(running(&b), "1.0.0");
    assert_eq!(
        b.security_counter(0),
        2,
        "factory image (no trailer) raises the counter"
    );

    // Lower SEC_CNT: invalid, scrubbed, the old image keeps running.
    stage_test(&mut b, &app_cnt("2.0.0", Some(1)));
    assert_eq!(running(&b), "1.0.0");
    assert!(logged(&b, "Image in the secondary slot is not valid!"));
    assert!(logged(&b, "security counter 1 < stored 2"));
    assert!(slot(&mut b, 1).is_none());

    // Equal SEC_CNT is accepted; the counter is not raised before the confirm.
    stage_test(&mut b, &app_cnt("2.0.0", Some(2)));
    assert_eq!(running(&b), "2.0.0");
    assert_eq!(b.security_counter(0), 2);
    state_write(&mut b, None, true).expect("confirm");
    b.reset();

    // Higher SEC_CNT: test swap leaves the counter (revert must stay possible) ...
    stage_test(&mut b, &app_cnt("3.0.0", Some(5)));
    assert_eq!(running(&b), "3.0.0");
    assert_eq!(
        b.security_counter(0),
        2,
        "unconfirmed test image does not raise it"
    );
    // ... and confirming it raises it at the next boot.
    state_write(&mut b, None, true).expect("confirm");
    b.reset();
    assert_eq!(running(&b), "3.0.0");
    assert_eq!(b.security_counter(0), 5);
    assert!(logged(&b, "security counter updated to 5"));

    // Survives power cycles; an image without SEC_CNT is refused.
    b.power_off();
    b.reset();
    assert_eq!(b.security_counter(0), 5);
    stage_test(&mut b, &app_cnt("4.0.0", None));
    assert_eq!(running(&b), "3.0.0");
    assert!(logged(&b, "has no security counter TLV"));
}

#[test]
fn permanent_swap_raises_counter_at_once() {
    let mut b = board_with(layout(), &hw_build(), &app_cnt("1.0.0", Some(1)));
    let v2 = app_cnt("2.0.0", Some(7));
    upload(&mut b, &v2, 2048).unwrap();
    state_write(&mut b, Some(&tlv_hash(&v2)), true).expect("confirm slot 1");
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert_eq!(b.security_counter(0), 7);
}

#[test]
fn without_hw_rollback_prot_counter_is_ignored() {
    let mut b = board_with(layout(), &build(), &app_cnt("1.0.0", Some(3)));
    stage_test(&mut b, &app_cnt("2.0.0", Some(1)));
    assert_eq!(running(&b), "2.0.0");
    assert_eq!(b.security_counter(0), 0);
}
