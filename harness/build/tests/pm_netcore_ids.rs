//! Flash area IDs of real nRF5340 app + network core builds reach the layout (`id:`), and the
//! bundled layout of field case 5 carries the IDs of the build it was imported from.
//! Skips when the corpus is absent, fails then when `DFU_HIL_REQUIRE_CORPUS=1`.

use dfu_hil_build::pm::{import_file, ImportOptions};
use dfu_hil_mcuboot::layout::Layout;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("DFU_HIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    let why = format!("corpus not found at {} (set DFU_HIL_CORPUS)", dir.display());
    if std::env::var("DFU_HIL_REQUIRE_CORPUS").as_deref() == Ok("1") {
        panic!("DFU_HIL_REQUIRE_CORPUS=1 but {why}");
    }
    eprintln!("skipped: {why}");
    None
}

fn import(build: &str) -> Option<Layout> {
    let dir = corpus()?.join("ncs-builds").join(build);
    let opts = ImportOptions {
        soc: Some("nrf5340".into()),
        ..ImportOptions::default()
    };
    Some(
        import_file(&dir.join("partitions.yml"), &opts)
            .unwrap()
            .layout,
    )
}

fn id(l: &Layout, name: &str) -> Option<u32> {
    l.partition(name).and_then(|p| p.id)
}

/// NCS 3.0.2 sysbuild: `littlefs_storage` at external 0x0 is ID 0, so the RAM slot is ID 2.
#[test]
fn sysbuild_build_with_littlefs_numbers_the_ram_slot_2() {
    let Some(l) = import("Botz-Limited__sensing_system-Zephyr__e77d669") else {
        return;
    };
    assert_eq!(id(&l, "mcuboot_primary_1"), Some(2));
    assert_eq!(id(&l, "slot1"), Some(8));
    // The bundled layout of field case 5 is this import (bases aside).
    let bundled = Layout::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../partitions/nrf5340-ext-flash-netcore.yaml"),
    )
    .unwrap();
    for p in &bundled.partitions {
        assert_eq!(p.id, id(&l, &p.name), "{}", p.name);
        let q = l.partition(&p.name).unwrap();
        assert_eq!((p.offset, p.size), (q.offset, q.size), "{}", p.name);
    }
}

/// NCS 2.6.1 child images: nothing else at external 0x0, so `mcuboot_secondary` is ID 2 and
/// the RAM slot ID 1 (the numbering the thread's `PM_MCUBOOT_SECONDARY_ID=2` belongs to).
#[test]
fn child_image_build_numbers_the_app_secondary_2() {
    let Some(l) = import("manu897__Project-Carl__22fb2d1") else {
        return;
    };
    assert_eq!(id(&l, "slot1"), Some(2));
    assert_eq!(id(&l, "mcuboot_primary_1"), Some(1));
}
