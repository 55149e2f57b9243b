//! The evidence beside a failed step mentions the network core's unreadable RAM slot only when
//! the device log shows MCUboot working on the network core (issue #15: it used to appear on
//! every nRF5340 failure, with an internal Rust name in it).

use dfu_hil_runner::event::Collector;
use dfu_hil_runner::run::{prepare, run_scenario, RunOptions};
use dfu_hil_runner::scenario;
use std::path::{Path, PathBuf};

fn run_text(text: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.yaml");
    std::fs::write(&path, text).unwrap();
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let opts = RunOptions::new(root, tmp.path().join("evidence"));
    let loaded = scenario::load(&path).expect("scenario loads");
    let (layout, fixtures) = prepare(&loaded, &opts).expect("scenario prepares");
    let (board, _shared) = dfu_hil_board::sim::open(layout.clone(), "sim");
    let r = run_scenario(
        &loaded,
        &layout,
        &fixtures,
        board,
        &opts,
        &mut Collector::default(),
    );
    r.failed_step().expect("a step fails").evidence.clone()
}

#[test]
fn app_only_failure_has_no_netcore_line() {
    let e = run_text(
        "name: app-only\nlayout: nrf5340-multi-image\nbootloader: { mode: overwrite-only }\n\
         steps:\n\
         \x20 - flash: { mcuboot: mcuboot, slot0: app-v1, mcuboot_primary_1: net-v1 }\n\
         \x20 - expect: { running: app-v2 }\n",
    );
    assert!(e.contains("trailer slot0"), "{e}");
    assert!(!e.contains("mcuboot_primary_1"), "{e}");
    assert!(!e.contains("RAM-emulated"), "{e}");
    assert!(!e.contains("::"), "{e}");
}

#[test]
fn failure_after_a_netcore_update_names_the_ram_slot() {
    let e = run_text(
        "name: after-netcore\nlayout: nrf5340-multi-image\nbootloader: { mode: overwrite-only }\n\
         steps:\n\
         \x20 - flash: { mcuboot: mcuboot, slot0: app-v1, mcuboot_primary_1: net-v1 }\n\
         \x20 - upload: { image: net-v2, image-number: 1 }\n\
         \x20 - test: net-v2\n\
         \x20 - reset: {}\n\
         \x20 - expect: { running: app-v2 }\n",
    );
    assert!(
        e.contains("trailer mcuboot_primary_1: not readable: RAM-emulated network-core slot"),
        "{e}"
    );
    assert!(e.contains("netcore-version"), "{e}");
}
