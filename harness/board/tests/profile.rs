//! Board profiles: the bundled boards/*.yaml load and fit their layouts; the schema rejects
//! what it should; regions resolve to probe addresses or to the right "cannot" error.

use dfu_hil_board::hw::profile::{AccessError, BoardProfile, Capability, ProfileError};
use dfu_hil_mcuboot::layout::Layout;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn board(name: &str) -> BoardProfile {
    BoardProfile::find(&root().join("boards"), name).unwrap()
}

fn layout(name: &str) -> Layout {
    Layout::load(&root().join("partitions").join(format!("{name}.yaml"))).unwrap()
}

#[test]
fn bundled_profiles_load_and_fit_their_default_layouts() {
    let all = BoardProfile::load_dir(&root().join("boards")).unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["nrf52840dk", "nrf5340dk", "thingy53"]);
    for p in &all {
        let l = layout(p.default_layout.as_deref().expect("default layout"));
        assert_eq!(p.check_layout(&l), Vec::<String>::new(), "{}", p.name);
        // No bundled board claims the probe can read external flash (it needs QSPI set up).
        assert!(!p.has(Capability::ReadExternalFlash), "{}", p.name);
    }
    let dk = board("nrf52840dk");
    assert_eq!(dk.chip, "nRF52840_xxAA");
    assert!(dk.has(Capability::Ble) && dk.has(Capability::Serial));
    assert_eq!(dk.memory("mx25r64").unwrap().xip_window, Some(0x1200_0000));
    let n53 = board("nrf5340dk");
    assert_eq!(n53.chip, "nRF5340_xxAA");
    assert_eq!(n53.cores.len(), 2);
    assert!(n53.has(Capability::NetCore));
    assert_eq!(n53.memory("mx25r64").unwrap().xip_window, Some(0x1000_0000));
    // Both nRF52840 layouts fit the DK.
    assert!(dk
        .check_layout(&layout("nrf52840-external-qspi"))
        .is_empty());
}

#[test]
fn internal_regions_resolve_to_addresses() {
    let dk = board("nrf52840dk");
    let l = layout("nrf52840-external-qspi");
    let a = dk.access(&l, "slot0", 0xf3fe0, 0x20, false).unwrap();
    assert_eq!(a.address, 0xc000 + 0xf3fe0);
    assert_eq!(a.core, 0);
    assert!(!a.read_only);
    assert_eq!(
        dk.access(&l, "nope", 0, 4, false),
        Err(AccessError::NoRegion("nope".into()))
    );
    assert!(matches!(
        dk.access(&l, "slot0", 0xf4000, 1, false),
        Err(AccessError::OutOfRange { .. })
    ));
}

#[test]
fn external_flash_needs_the_capability() {
    let dk = board("nrf52840dk");
    let l = layout("nrf52840-external-qspi");
    let e = dk.access(&l, "slot1", 0xf3fe0, 0x20, false).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, AccessError::ExternalNotReadable { .. }));
    assert!(msg.contains("slot1") && msg.contains("mx25r64"), "{msg}");
    assert!(msg.contains("SMP"), "{msg}");
    assert!(msg.contains("0x12000000"), "{msg}");
    assert!(msg.contains("read-external-flash"), "{msg}");

    // A lab board whose probe sets up QSPI: reads go through the XIP window, writes do not.
    let text = std::fs::read_to_string(root().join("boards/nrf52840dk.yaml"))
        .unwrap()
        .replace("name: nrf52840dk\n", "name: nrf52840dk-xip\n")
        .replace(
            "capabilities: [serial,",
            "capabilities: [read-external-flash, serial,",
        );
    let xip = BoardProfile::parse(&text, Path::new("x.yaml")).unwrap();
    let a = xip.access(&l, "slot1", 0xf3fe0, 0x20, false).unwrap();
    assert_eq!(a.address, 0x1200_0000 + 0xf3fe0);
    assert!(a.read_only);
    assert!(matches!(
        xip.access(&l, "slot1", 0, 0x1000, true),
        Err(AccessError::ExternalReadOnly { .. })
    ));
}

#[test]
fn netcore_ram_slot_is_not_probe_readable() {
    let p = board("nrf5340dk");
    let l = layout("nrf5340-multi-image");
    let e = p.access(&l, "mcuboot_primary_1", 0, 16, false).unwrap_err();
    assert!(matches!(e, AccessError::RamEmulated { .. }));
    assert!(e.to_string().contains("SMP"), "{e}");
    // Its secondary is in app-core internal flash and readable.
    let a = p.access(&l, "mcuboot_secondary_1", 0, 16, false).unwrap();
    assert_eq!(a.address, 0xc0000);
}

#[test]
fn layout_for_another_board_is_named() {
    let dk = board("nrf52840dk");
    let problems = dk.check_layout(&layout("nrf5340-multi-image"));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("netcore-ram"), "{problems:?}");
    let e = dk
        .access(
            &layout("nrf5340-multi-image"),
            "mcuboot_primary_1",
            0,
            4,
            false,
        )
        .unwrap_err();
    assert!(matches!(e, AccessError::UnknownDevice { .. }));
}

const MINIMAL: &str = r#"
name: t
chip: nRF52840_xxAA
cores: [{ name: main, index: 0 }]
memory:
  - { name: internal, kind: internal, base: 0x0, size: 0x100000 }
capabilities: [serial]
"#;

fn parse_err(text: &str) -> String {
    match BoardProfile::parse(text, Path::new("t.yaml")) {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn schema_rejects_what_it_should() {
    BoardProfile::parse(MINIMAL, Path::new("t.yaml")).unwrap();
    // Unknown keys are typos, not extensions.
    let e = parse_err(&MINIMAL.replace("chip:", "chipp: x\nchip:"));
    assert!(e.contains("t.yaml") && e.contains("chipp"), "{e}");
    // Unknown capability.
    let e = parse_err(&MINIMAL.replace("[serial]", "[serial, telepathy]"));
    assert!(e.contains("telepathy"), "{e}");
    let e = parse_err(&MINIMAL.replace("[serial]", "[serial, read-external-flash]"));
    assert!(e.contains("xip-window"), "{e}");
    let e = parse_err(&MINIMAL.replace("[serial]", "[serial, net-core]"));
    assert!(e.contains("second core"), "{e}");
    let e = parse_err(&MINIMAL.replace("base: 0x0, size", "base: 0x0, core: 1, size"));
    assert!(e.contains("core 1"), "{e}");
    let e = parse_err(&MINIMAL.replace(
        "  - { name: internal, kind: internal, base: 0x0, size: 0x100000 }",
        "  - { name: internal, kind: internal, base: 0x0, size: 0x100000 }\n  - { name: uicr, kind: internal, base: 0x80000, size: 0x1000 }",
    ));
    assert!(e.contains("overlaps"), "{e}");
    let e = parse_err(&MINIMAL.replace(
        "kind: internal, base: 0x0,",
        "kind: internal, xip-window: 0x12000000, base: 0x0,",
    ));
    assert!(e.contains("only external"), "{e}");
    let e = parse_err(&MINIMAL.replace("chip: nRF52840_xxAA", "chip: ''"));
    assert!(e.contains("chip"), "{e}");
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    let e = BoardProfile::find(&root().join("boards"), "nrf9160dk").unwrap_err();
    assert!(matches!(e, ProfileError::Unknown { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("nrf52840dk") && msg.contains("thingy53"),
        "{msg}"
    );
}
