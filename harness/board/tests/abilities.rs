//! Optional abilities are discovered by asking the probe, and each backend declares what it
//! can do once.

use dfu_hil_board::hw::Capability;
use dfu_hil_board::native_sim::{self, CommandSpec, NativeSimConfig};
use dfu_hil_mcuboot::layout::Layout;
use std::path::{Path, PathBuf};

fn layout() -> Layout {
    Layout::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../partitions/nrf52840-internal.yaml"),
    )
    .unwrap()
}

#[test]
fn the_simulated_board_has_every_ability() {
    let (mut board, _sim) = dfu_hil_board::sim::open(layout(), "sim");
    let p = board.probe.as_mut();
    assert!(p.snapshots().is_some());
    assert!(p.power_control().is_some());
    let cuts = p.flash_op_cuts().expect("the sim counts flash operations");
    let before = cuts.flash_op_count();
    p.flash("slot1", &[0x55; 64]).unwrap();
    let cuts = p.flash_op_cuts().unwrap();
    assert!(cuts.flash_op_count() > before);
    assert!(cuts.last_flash_op().unwrap().contains("slot1"));
    let snapshots = p.snapshots().unwrap();
    let snap = snapshots.snapshot().unwrap();
    snapshots.restore(&snap).unwrap();
    p.flash_op_cuts().unwrap().cut_before_flash_op(1).unwrap();
    assert_eq!(
        dfu_hil_board::sim::capabilities().len(),
        Capability::ALL.len()
    );
}

#[test]
fn native_sim_has_snapshots_and_power_control_but_no_flash_op_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = NativeSimConfig::new(
        layout(),
        dir.path().join("flash.bin"),
        CommandSpec {
            program: PathBuf::from("/bin/true"),
            args: vec![],
        },
    );
    // Nothing starts before the first reset.
    let (mut board, _h) = native_sim::open(cfg, "native-sim").unwrap();
    let p = board.probe.as_mut();
    assert!(p.snapshots().is_some());
    assert!(p.power_control().is_some());
    assert!(p.flash_op_cuts().is_none());
    let caps = native_sim::capabilities();
    assert!(caps.contains(&Capability::PowerCut));
    assert!(!caps.contains(&Capability::FlashOpCut));
    assert!(!caps.contains(&Capability::ExecutesImage));
}
