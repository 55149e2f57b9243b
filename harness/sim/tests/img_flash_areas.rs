//! The simulated app's img_mgmt on the nRF5340 external-flash layout of field case 5: every
//! image list logs `Failed to open flash area ID 2: -2` (the RAM-emulated `mcuboot_primary_1`,
//! PM ID 2 in that build) and lists no image 1 slot 0; no other request logs it.

mod common;

use common::*;
use dfu_hil_firmware::{build_app, AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use dfu_hil_mcuboot::trailer::UpgradeMode;
use dfu_hil_smp::header::{group, os_cmd, Op};
use dfu_hil_smp::map;

const LINE: &str = "<err> mcumgr_img_grp: Failed to open flash area ID 2: -2";

fn ext() -> Layout {
    Layout::load(&repo().join("partitions/nrf5340-ext-flash-netcore.yaml")).expect("layout")
}

fn app(l: &Layout) -> Vec<u8> {
    let p = l.partition("slot0").unwrap();
    let bin = build_app(
        &AppDescriptor::new("app", "1.0.0"),
        l.address(p),
        0x200,
        12 * 1024,
    );
    sign(
        &bin,
        Some(&key()),
        &SignOptions {
            header_size: 0x200,
            version: version("1.0.0"),
            slot_size: p.size,
            ..Default::default()
        },
    )
    .unwrap()
}

fn count(b: &dfu_hil_sim::SimBoard) -> usize {
    b.log().iter().filter(|l| l.as_str() == LINE).count()
}

#[test]
fn image_list_logs_the_ram_slot_id_from_the_layout() {
    let l = ext();
    let build = BootloaderBuild {
        mode: UpgradeMode::OverwriteOnly,
        max_sectors: 2048,
        ..build()
    };
    let mut b = board_with(l.clone(), &build, &app(&l));
    assert_eq!(count(&b), 0, "nothing before a request");
    request(
        &mut b,
        Op::Write,
        group::OS,
        os_cmd::ECHO,
        map([("d", "x".into())]),
    );
    assert_eq!(count(&b), 0, "echo opens no flash area");
    let slots = list(&mut b);
    assert_eq!(count(&b), 1);
    assert!(
        !slots.iter().any(|s| s.image == 1 && s.slot == 0),
        "no image 1 slot 0: {slots:?}"
    );
    list(&mut b);
    assert_eq!(count(&b), 2, "once per image list");
}
