//! Partition Manager maps (`pm_static.yml` / `partitions.yml`) import as harness layouts.

use std::path::Path;

use dfu_hil_build::pm::{import_text, ImportOptions, PmImport};
use dfu_hil_mcuboot::layout::{DeviceKind, Layout};

fn import(
    text: &str,
    path: &Path,
    opts: &ImportOptions,
) -> Result<PmImport, dfu_hil_build::pm::PmError> {
    import_text(text, path, opts)
}

/// An NCS nRF52840 + NSIB + MCUboot map (names as in NCS `partition_manager.rst`), written the way
/// a build's partitions.yml is (containers with `span`, pads and images inside the slots, sram and
/// EMPTY entries).
const NSIB_PARTITIONS_YML: &str = r#"
EMPTY_0:
  address: 0xff000
  end_address: 0x100000
  region: flash_primary
  size: 0x1000
app:
  address: 0x23200
  end_address: 0x91000
  region: flash_primary
  size: 0x6de00
b0:
  address: 0x0
  end_address: 0x8000
  placement:
    after: [start]
  region: flash_primary
  size: 0x8000
b0_container:
  address: 0x0
  end_address: 0x9000
  orig_span: &id001 [b0, provision]
  region: flash_primary
  size: 0x9000
  span: *id001
mcuboot:
  address: 0x9200
  end_address: 0x15200
  region: flash_primary
  size: 0xc000
mcuboot_pad:
  address: 0x23000
  end_address: 0x23200
  region: flash_primary
  size: 0x200
mcuboot_primary:
  address: 0x23000
  end_address: 0x91000
  orig_span: &id002 [mcuboot_pad, app]
  region: flash_primary
  sharers: 0x1
  size: 0x6e000
  span: *id002
mcuboot_primary_app:
  address: 0x23200
  end_address: 0x91000
  orig_span: &id003 [app]
  region: flash_primary
  size: 0x6de00
  span: *id003
mcuboot_secondary:
  address: 0x91000
  end_address: 0xff000
  placement:
    align: {start: 0x1000}
    after: [mcuboot_primary]
  region: flash_primary
  share_size: [mcuboot_primary]
  size: 0x6e000
provision:
  address: 0x8000
  end_address: 0x9000
  region: flash_primary
  size: 0x1000
s0:
  address: 0x9000
  end_address: 0x16000
  orig_span: &id004 [s0_pad, mcuboot]
  region: flash_primary
  size: 0xd000
  span: *id004
s0_image:
  address: 0x9200
  end_address: 0x16000
  orig_span: &id005 [mcuboot]
  region: flash_primary
  size: 0xce00
  span: *id005
s0_pad:
  address: 0x9000
  end_address: 0x9200
  region: flash_primary
  share_size: [mcuboot_pad]
  size: 0x200
s1:
  address: 0x16000
  end_address: 0x23000
  orig_span: &id006 [s1_pad, s1_image]
  region: flash_primary
  size: 0xd000
  span: *id006
s1_image:
  address: 0x16200
  end_address: 0x23000
  region: flash_primary
  size: 0xce00
s1_pad:
  address: 0x16000
  end_address: 0x16200
  region: flash_primary
  size: 0x200
sram_primary:
  address: 0x20000000
  end_address: 0x20040000
  region: sram_primary
  size: 0x40000
"#;

/// NCS default nRF52840 MCUboot with the secondary on the external MX25R64.
const EXTERNAL_PM_STATIC: &str = r#"
mcuboot:
  address: 0x0
  size: 0xc000
  region: flash_primary
mcuboot_pad:
  address: 0xc000
  size: 0x200
mcuboot_primary:
  address: 0xc000
  size: 0xf4000
  span: [mcuboot_pad, mcuboot_primary_app]
mcuboot_primary_app:
  address: 0xc200
  size: 0xf3e00
  span: [app]
mcuboot_secondary:
  address: 0x0
  size: 0xf4000
  device: MX25R64
  region: external_flash
external_flash:
  address: 0xf4000
  size: 0x70c000
  device: MX25R64
  region: external_flash
"#;

#[test]
fn nsib_map_imports_with_harness_names() {
    let l = import(
        NSIB_PARTITIONS_YML,
        Path::new("build/partitions.yml"),
        &ImportOptions::default(),
    )
    .unwrap()
    .layout;
    let got: Vec<(&str, u32, u32)> = l
        .partitions
        .iter()
        .map(|p| (p.name.as_str(), p.offset, p.size))
        .collect();
    assert_eq!(
        got,
        vec![
            ("b0", 0x0, 0x8000),
            ("provision", 0x8000, 0x1000),
            ("s0", 0x9000, 0xd000),
            ("s1", 0x16000, 0xd000),
            ("slot0", 0x23000, 0x6e000),
            ("slot1", 0x91000, 0x6e000),
        ]
    );
    assert_eq!(l.images.len(), 1);
    assert_eq!(
        (l.images[0].primary.as_str(), l.images[0].secondary.as_str()),
        ("slot0", "slot1")
    );
    assert_eq!(l.name, "partitions");
    // Same facts as the bundled layout.
    let bundled = Layout::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../partitions/nrf52840-nsib.yaml"),
    )
    .unwrap();
    assert_eq!(l.partitions, bundled.partitions);
    // And it renders to a file Layout::load accepts.
    let again = Layout::parse(&l.to_yaml(), Path::new("x.yaml")).unwrap();
    assert_eq!(again, l);
}

#[test]
fn external_flash_partitions_go_on_the_external_device() {
    let opts = ImportOptions {
        name: Some("ext".into()),
        external_base: 0x1200_0000,
        ..ImportOptions::default()
    };
    let l = import(EXTERNAL_PM_STATIC, Path::new("pm_static.yml"), &opts)
        .unwrap()
        .layout;
    assert_eq!(l.name, "ext");
    let s1 = l.partition("slot1").unwrap();
    assert_eq!(l.device_of(s1).kind, DeviceKind::External);
    assert_eq!(l.address(s1), 0x1200_0000);
    let s0 = l.partition("slot0").unwrap();
    assert_eq!((s0.offset, s0.size), (0xc000, 0xf4000));
    assert_eq!(l.device_of(s0).kind, DeviceKind::Internal);
    assert_eq!(l.partition_names(), vec!["mcuboot", "slot0", "slot1"]);
}

#[test]
fn nrf5340_ram_flash_and_image_1() {
    let text = r#"
mcuboot: { address: 0x0, size: 0x10000, region: flash_primary }
mcuboot_primary: { address: 0x10000, size: 0x58000, region: flash_primary }
mcuboot_secondary: { address: 0x68000, size: 0x58000, region: flash_primary }
mcuboot_secondary_1: { address: 0xc0000, size: 0x40000, region: flash_primary }
mcuboot_primary_1: { address: 0x0, size: 0x40000, device: flash_ctrl, region: ram_flash }
pcd_sram: { address: 0x20000000, size: 0x2000, region: sram_primary }
otp: { address: 0xff8100, size: 0x2fc, region: otp }
"#;
    let imp = import(text, Path::new("pm_static.yml"), &ImportOptions::default()).unwrap();
    let l = &imp.layout;
    assert_eq!(l.images.len(), 2);
    assert_eq!(l.images[1].primary, "mcuboot_primary_1");
    let p1 = l.partition("mcuboot_primary_1").unwrap();
    assert_eq!(l.device_of(p1).kind, DeviceKind::RamEmulated);
    assert!(l.partition("pcd_sram").is_none() && l.partition("otp").is_none());
    // Read but not modelled: said, not dropped.
    let notes = imp.notes.join("\n");
    assert!(
        notes.contains("pcd_sram") && notes.contains("otp"),
        "{notes}"
    );
}

#[test]
fn errors_name_file_and_partition() {
    // Partition Manager places by address and size and only writes end_address (real
    // pm_static files disagree with it): a mismatch is a note naming file:line, not a refusal.
    let odd = "mcuboot: { address: 0x0, size: 0xc000, end_address: 0xd000 }\n";
    let imp = import(odd, Path::new("pm_static.yml"), &ImportOptions::default()).unwrap();
    let n = imp.notes.join("\n");
    assert!(
        n.contains("pm_static.yml:1") && n.contains("mcuboot") && n.contains("end_address"),
        "{n}"
    );
    let e = import(
        "- a\n- b\n",
        Path::new("pm_static.yml"),
        &ImportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("pm_static.yml"), "{e}");
    // Partitions that overlap without one containing the other are refused at the line.
    let overlap = "a: { address: 0x0, size: 0x2000 }\nb: { address: 0x1000, size: 0x2000 }\n";
    let e = import(
        overlap,
        Path::new("pm_static.yml"),
        &ImportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("pm_static.yml:2:") && e.contains("overlaps"),
        "{e}"
    );
}

/// Regression (issue #16): an address at or past 4 GiB was truncated to 32 bits, and an
/// address + size that overflowed dropped `slot0` and still imported.
#[test]
fn addresses_past_32_bits_are_refused() {
    for bad in [
        "mcuboot_primary: { address: 0x100000000, size: 0x1000 }\n",
        "mcuboot_primary: { address: 0xfffff000, size: 0x2000 }\n",
        "mcuboot_primary: { address: 0x1000, size: 0xffffffffffffffff }\n\
         mcuboot_secondary: { address: 0x2000, size: 0x1000 }\n",
    ] {
        let e = import(bad, Path::new("pm_static.yml"), &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pm_static.yml") && e.contains("mcuboot_primary") && e.contains("32-bit"),
            "{bad}: {e}"
        );
    }
}

fn soc(s: &str) -> ImportOptions {
    ImportOptions {
        soc: Some(s.into()),
        ..ImportOptions::default()
    }
}

/// The pinned partitions only (the common `pm_static.yml`): partial, and what a scenario needs
/// is named.
#[test]
fn partial_pm_static_says_what_is_missing() {
    let t = "mcuboot: { address: 0x0, size: 0xc000, region: flash_primary }\n\
             settings_storage: { address: 0xfe000, size: 0x2000 }\n";
    let imp = import(t, Path::new("pm_static.yml"), &soc("nrf52840")).unwrap();
    assert!(imp.partial && !imp.is_usable());
    assert_eq!(imp.missing, vec!["mcuboot_primary", "mcuboot_secondary"]);
    assert!(
        imp.notes.iter().any(|n| n.contains("no `app`")),
        "{:?}",
        imp.notes
    );
    assert_eq!(
        imp.layout.partition_names(),
        vec!["mcuboot", "settings_storage"]
    );
}

/// The chip gives the flash size: an nRF52832 layout is not read as 1 MiB, and a partition
/// past its end is an error naming it at its line; without a SoC the assumption is said.
#[test]
fn geometry_comes_from_the_chip() {
    let t = "mcuboot: { address: 0x0, size: 0xc000 }\n\
             app: { address: 0xc000, size: 0x74000 }\n\
             storage: { address: 0x80000, size: 0x2000 }\n";
    let e = import(t, Path::new("pm_static.yml"), &soc("nRF52832_QFAA"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("pm_static.yml:3:") && e.contains("storage") && e.contains("nRF52832"),
        "{e}"
    );
    let imp = import(t, Path::new("pm_static.yml"), &ImportOptions::default()).unwrap();
    assert!(imp.chip_assumed);
    assert!(
        imp.notes[0].contains("nRF52840") && imp.notes[0].contains("--soc"),
        "{:?}",
        imp.notes
    );
    let e = import(t, Path::new("pm_static.yml"), &soc("esp32"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown SoC `esp32`"), "{e}");
}

/// nRF54L15: RRAM with 16-byte writes; `mcuboot_pad` is 0x800 there; `bootconf` is not flash.
#[test]
fn nrf54l15_rram_and_bootconf() {
    let t = "mcuboot: { address: 0x0, size: 0xc000, region: flash_primary }\n\
             mcuboot_pad: { address: 0xc000, size: 0x800, region: flash_primary }\n\
             app: { address: 0xc800, size: 0xa9800, region: flash_primary }\n\
             mcuboot_primary: { address: 0xc000, size: 0xaa000, region: flash_primary, span: [mcuboot_pad, app] }\n\
             mcuboot_secondary: { address: 0xb6000, size: 0xaa000, region: flash_primary }\n\
             storage: { address: 0x160000, size: 0x5000, region: flash_primary }\n\
             bootconf: { address: 0xffd080, size: 0x4, region: bootconf }\n";
    let imp = import(t, Path::new("partitions.yml"), &soc("nrf54l15_cpuapp")).unwrap();
    let d = &imp.layout.flash[0];
    assert_eq!(
        (d.size, d.sector_size, d.write_size),
        (1428 * 1024, 4096, 16)
    );
    assert!(imp.notes.iter().any(|n| n.contains("RRAM")));
    assert!(imp.notes.iter().any(|n| n.contains("bootconf")));
    assert!(imp.is_complete(), "{:?}", imp.notes);
}

/// regions.yml sizes the external device; pm.config gives flash area IDs; a pm.config from
/// another build is said.
#[test]
fn regions_and_pm_config_are_read_beside_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("partitions.yml");
    std::fs::write(
        &map,
        EXTERNAL_PM_STATIC.to_string() + "app: { address: 0xc200, size: 0xf3e00 }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("regions.yml"),
        "external_flash:\n  base_address: 0x0\n  device: MX25R64\n  size: 0x800000\n\
         flash_primary:\n  base_address: 0x0\n  device: flash_controller\n  size: 0x100000\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pm.config"),
        "PM_MCUBOOT_SECONDARY_ADDRESS=0x0\nPM_MCUBOOT_SECONDARY_SIZE=0xf4000\n\
         PM_MCUBOOT_SECONDARY_NAME=mcuboot_secondary\nPM_MCUBOOT_SECONDARY_ID=2\n\
         PM_MCUBOOT_ADDRESS=0x0\nPM_MCUBOOT_SIZE=0x10000\nPM_MCUBOOT_NAME=mcuboot\nPM_MCUBOOT_ID=0\n",
    )
    .unwrap();
    let imp = dfu_hil_build::pm::import_file(&map, &soc("nrf52840")).unwrap();
    assert_eq!(imp.ids["mcuboot_secondary"], 2);
    assert_eq!(imp.layout.device("external").unwrap().size, 0x80_0000);
    assert!(
        imp.notes.iter().any(|n| n.contains("pm.config:8")
            && n.contains("mcuboot")
            && n.contains("another build")),
        "{:?}",
        imp.notes
    );
}

/// Any file name: the content says it is a PM map; a regions.yml or pm.config given by
/// mistake is named as what it is.
#[test]
fn sniffed_by_content_not_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("my_layout.txt");
    std::fs::write(&odd, EXTERNAL_PM_STATIC).unwrap();
    let imp = dfu_hil_build::pm::import_file(&odd, &ImportOptions::default()).unwrap();
    assert_eq!(imp.layout.name, "my_layout");
    let r = dir.path().join("regions.yml");
    std::fs::write(
        &r,
        "flash_primary:\n  base_address: 0x0\n  size: 0x100000\n",
    )
    .unwrap();
    let e = import(
        "flash_primary:\n  base_address: 0x0\n  size: 0x100000\n",
        &r,
        &ImportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("regions.yml") && e.contains("partitions.yml"),
        "{e}"
    );
    let e = import("PM_B0_ID=0\n", Path::new("x"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("pm.config"), "{e}");
}

/// A slot inside another slot (nRF5340 non-simultaneous network-core update) is not an
/// overlap error: the outer slot is kept and the sharing said.
#[test]
fn slot_inside_a_slot_is_said_not_refused() {
    let t = "mcuboot: { address: 0x0, size: 0x14000 }\n\
             app: { address: 0x14000, size: 0x54000 }\n\
             mcuboot_primary: { address: 0x14000, size: 0x54000, span: [app] }\n\
             mcuboot_secondary: { address: 0x68000, size: 0x54000 }\n\
             mcuboot_secondary_1: { address: 0x68000, size: 0x40000 }\n\
             mcuboot_primary_1: { address: 0x0, size: 0x40000, region: ram_flash }\n\
             ram_flash: { address: 0x40000, size: 0x0, region: ram_flash }\n";
    let imp = import(t, Path::new("pm_static.yml"), &soc("nrf5340")).unwrap();
    assert_eq!(imp.layout.images.len(), 1);
    assert_eq!(imp.missing, vec!["mcuboot_secondary_1"]);
    assert!(
        imp.notes
            .iter()
            .any(|n| n.contains("pm_static.yml:5") && n.contains("inside `mcuboot_secondary`")),
        "{:?}",
        imp.notes
    );
    assert!(
        imp.notes
            .iter()
            .any(|n| n.contains("free space of region ram_flash")),
        "{:?}",
        imp.notes
    );
}

/// An unaligned slot cannot be updated by MCUboot: refused at its line.
#[test]
fn unaligned_slot_is_refused_at_its_line() {
    let t = "mcuboot: { address: 0x0, size: 0x9000 }\n\
             app: { address: 0x9200, size: 0x3a600 }\n\
             mcuboot_primary: { address: 0x9000, size: 0x3a800, span: [app] }\n\
             mcuboot_secondary: { address: 0x43800, size: 0x3a800 }\n";
    let e = import(t, Path::new("partitions.yml"), &soc("nrf52832"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("partitions.yml:3:")
            && e.contains("mcuboot_primary")
            && e.contains("erase units"),
        "{e}"
    );
}

/// Entries without `region` default to flash_primary, except RAM an older Partition Manager
/// did not tag (a regionless SRAM span).
#[test]
fn regionless_entries_default_to_flash_primary_but_sram_stays_sram() {
    let t = "app: {address: 0xc200, size: 0xf3e00}\n\
             mcuboot: {address: 0x0, size: 0xc000}\n\
             mcuboot_pad: {address: 0xc000, size: 0x200}\n\
             mcuboot_primary: {address: 0xc000, size: 0xf4000, span: [mcuboot_pad, app]}\n\
             sram_nonsecure: {address: 0x20010000, size: 0x30000, span: [sram_primary]}\n\
             sram_primary: {address: 0x20010000, size: 0x30000}\n";
    let imp = import(t, Path::new("pm_static.yml"), &soc("nrf52840")).unwrap();
    assert_eq!(imp.layout.partition_names(), vec!["mcuboot", "slot0"]);
    let n = imp.notes.join("\n");
    assert!(
        n.contains("pm_static.yml:6: `sram_primary` has no region")
            && n.contains("region sram_primary): sram_nonsecure, sram_primary"),
        "{n}"
    );
    assert_eq!(imp.missing, vec!["mcuboot_secondary"]);
}

/// Without a SoC, regions.yml beside the map sizes the internal flash (an nRF52832 build is not
/// read as 1 MiB).
#[test]
fn without_a_soc_regions_yml_sizes_the_flash() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("partitions.yml");
    std::fs::write(
        &map,
        "app: { address: 0x0, size: 0x7e000, region: flash_primary }\n\
         storage: { address: 0x7e000, size: 0x4000, region: flash_primary }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("regions.yml"),
        "flash_primary:\n  base_address: 0x0\n  device: flash_controller\n  size: 0x80000\n",
    )
    .unwrap();
    let e = dfu_hil_build::pm::import_file(&map, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("partitions.yml:2:") && e.contains("storage") && e.contains("--soc"),
        "{e}"
    );
}
