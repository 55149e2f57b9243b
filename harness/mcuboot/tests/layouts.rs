//! Every bundled layout in `partitions/` loads, and the facts scenarios rely on hold.

use std::path::{Path, PathBuf};

use dfu_hil_mcuboot::layout::{DeviceKind, Layout};
use dfu_hil_mcuboot::trailer::{TrailerLayout, UpgradeMode};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../partitions")
}

fn load(name: &str) -> Layout {
    let p = dir().join(format!("{name}.yaml"));
    Layout::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_layout_loads_and_names_itself() {
    let mut n = 0;
    for e in std::fs::read_dir(dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let l = Layout::load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                Some(l.name.as_str()),
                p.file_stem().and_then(|s| s.to_str()),
                "{}: name should equal the file stem",
                p.display()
            );
            assert!(!l.images.is_empty(), "{}", p.display());
            for pair in &l.images {
                let (a, b) = (
                    l.partition(&pair.primary).unwrap(),
                    l.partition(&pair.secondary).unwrap(),
                );
                // Swap modes need equal slots (swap-offset allows one sector more in the secondary).
                assert!(b.size >= a.size, "{}: {pair:?}", p.display());
            }
            n += 1;
        }
    }
    assert!(n >= 6, "expected the six bundled layouts, found {n}");
}

#[test]
fn ncs_worked_example_trailer_offsets() {
    // docs/protocol-facts.md, "Trailer offsets: the NCS nRF52840 example": mcuboot_primary 0xC000
    // size 0x7A000 → magic 0x85FF0 … swap_size 0x85FD0.
    let l = load("nrf52840-internal");
    for (slot, magic) in [("slot0", 0x85ff0), ("slot1", 0xffff0)] {
        let p = l.partition(slot).unwrap();
        let t = TrailerLayout::new(p.size, UpgradeMode::SwapMove);
        let at = |off: u32| l.address(p) + off;
        assert_eq!(at(t.magic_off()), magic);
        assert_eq!(at(t.image_ok_off()), magic - 0x8);
        assert_eq!(at(t.copy_done_off()), magic - 0x10);
        assert_eq!(at(t.swap_info_off()), magic - 0x18);
        assert_eq!(at(t.swap_size_off()), magic - 0x20);
    }
}

#[test]
fn external_qspi_secondary_is_external() {
    let l = load("nrf52840-external-qspi");
    let s1 = l.partition("slot1").unwrap();
    let dev = l.device_of(s1);
    assert_eq!(dev.kind, DeviceKind::External);
    assert_eq!(dev.base, 0x1200_0000);
    assert_eq!(dev.size, 8 << 20);
    assert_eq!(l.address(s1), 0x1200_0000);
    // The sector count that breaks MCUboot's default BOOT_MAX_IMG_SECTORS (128, MCUboot
    // `boot/zephyr/Kconfig`; `loader.c` logs "Failed reading sectors").
    assert_eq!(s1.size / dev.sector_size, 244);
    let s0 = l.partition("slot0").unwrap();
    assert_eq!(l.device_of(s0).kind, DeviceKind::Internal);
    assert_eq!(s0.size, s1.size);
}

#[test]
fn scratch_nsib_and_overwrite_only() {
    let l = load("nrf52840-scratch");
    let scratch = l.partition("scratch").unwrap();
    assert!(scratch.size >= l.device_of(scratch).sector_size);

    let l = load("nrf52840-nsib");
    let want = [
        ("b0", 0x0, 0x8000),
        ("provision", 0x8000, 0x1000),
        ("s0", 0x9000, 0xd000),
        ("s1", 0x16000, 0xd000),
        ("slot0", 0x23000, 0x6e000),
        ("slot1", 0x91000, 0x6e000),
    ];
    for (name, off, size) in want {
        let p = l.partition(name).unwrap();
        assert_eq!((p.offset, p.size), (off, size), "{name}");
    }

    let l = load("nrf52840-overwrite-only");
    assert_eq!(l.images.len(), 1);
    assert!(l.partition("scratch").is_none());
}

#[test]
fn nrf5340_netcore_primary_is_ram_emulated() {
    let l = load("nrf5340-multi-image");
    assert_eq!(l.images.len(), 2);
    assert_eq!(l.images[1].primary, "mcuboot_primary_1");
    let p1 = l.partition("mcuboot_primary_1").unwrap();
    assert_eq!(l.device_of(p1).kind, DeviceKind::RamEmulated);
    let s1 = l.partition("mcuboot_secondary_1").unwrap();
    assert_eq!(l.device_of(s1).kind, DeviceKind::Internal);
    assert_eq!(p1.size, s1.size);
}
