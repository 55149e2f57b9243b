//! Evidence a DFU engineer can replay (issue #18): a swap-scratch power-cut sweep that fails
//! leaves a self-contained evidence folder — every partition (the scratch area too, decoded),
//! whole-flash images, the flash the failing recovery boot started from — and `dfu-hil replay`
//! boots that flash on the simulated board and reproduces the same failing boot.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dfu_hil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .arg("--root")
        .arg(root())
        .args(args)
        .output()
        .expect("run dfu-hil")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Test-only: the scratch area does not survive the power cut (the `then` block erases it while
/// the board is off, as a scratch on memory that loses its content would). A swap interrupted
/// after the region being swapped was copied into scratch then cannot be resumed: MCUboot
/// finishes the swap with the copy gone and finds no bootable image.
const SCENARIO: &str = "\
name: scratch-lost-at-power-cut
description: test-only, the scratch area is lost at a power cut, so resuming the swap fails
layout: nrf52840-scratch
bootloader: { mode: swap-scratch }
steps:
  - flash: { mcuboot: mcuboot, slot0: app-v1 }
  - upload: { image: app-v2 }
  - test: app-v2
  - sweep:
      cut-during: [ { reset: {} } ]
      then:
        - erase: { region: scratch }
        - reset: { how: probe }
        - expect: { running: app-v2 }
";

#[test]
fn failing_scratch_sweep_leaves_evidence_that_replay_reproduces() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("scratch-lost.yaml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let evidence = tmp.path().join("evidence");
    let o = dfu_hil(&[
        "scenario",
        scenario.to_str().unwrap(),
        "--evidence",
        evidence.to_str().unwrap(),
        "--junit",
        tmp.path().join("junit.xml").to_str().unwrap(),
        "--json",
        tmp.path().join("results.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(100), "the sweep fails:\n{}", text(&o));
    assert!(
        text(&o).contains("after a power cut at flash operation"),
        "{}",
        text(&o)
    );
    let dir = evidence.join("sim--scratch-lost-at-power-cut");

    // Self-contained: layout, scenario, bootloader settings, every partition, whole images.
    for f in [
        "layout.yaml",
        "scenario.yaml",
        "bootloader.yaml",
        "core-state.txt",
        "README.txt",
        "partition-mcuboot.bin",
        "partition-slot0.bin",
        "partition-slot1.bin",
        "partition-scratch.bin",
        "slot-slot0.bin",
        "trailer-scratch.bin",
        "flash-internal.bin",
        "at-cut/flash.bin",
        "at-cut/cut.txt",
        "at-cut/partition-scratch.bin",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    // flash.bin is the native-sim flash-file format: the one device, whole, partitions in place.
    let flash = std::fs::read(dir.join("flash.bin")).unwrap();
    assert_eq!(flash.len(), 0x100000);
    assert_eq!(
        flash,
        std::fs::read(dir.join("flash-internal.bin")).unwrap()
    );
    let scratch = std::fs::read(dir.join("partition-scratch.bin")).unwrap();
    assert_eq!(&flash[0xf8000..0x100000], &scratch[..]);

    // The scratch trailer is decoded, with the status source MCUboot resumes from.
    let trailers = std::fs::read_to_string(dir.join("trailers.txt")).unwrap();
    assert!(
        trailers.contains("scratch trailer, scratch (trailer at 0x7fc4, 60 bytes)"),
        "{trailers}"
    );
    assert!(
        trailers.contains("resume status source for slot0"),
        "{trailers}"
    );
    // Right after the cut the scratch held the region being swapped: the copy the resume lost.
    let after_cut = std::fs::read_to_string(dir.join("at-cut/after-cut/trailers.txt")).unwrap();
    assert!(
        after_cut.contains("scratch contents: written between"),
        "{after_cut}"
    );
    let at_boot = std::fs::read_to_string(dir.join("at-cut/trailers.txt")).unwrap();
    assert!(at_boot.contains("scratch contents: erased"), "{at_boot}");
    assert!(at_boot.contains("swap_info=0x02 (test)"), "{at_boot}");

    // Replaying the flash the failing recovery boot started from reproduces that boot.
    let recorded = std::fs::read_to_string(dir.join("core-state.txt")).unwrap();
    assert!(
        recorded.starts_with("fault loop in fih_panic_loop"),
        "{recorded}"
    );
    let o = dfu_hil(&["replay", "--at-cut", dir.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("core:     fault loop in fih_panic_loop"),
        "{out}"
    );
    assert!(
        out.contains("Swap type: test (resuming)"),
        "device log:\n{out}"
    );
    assert!(out.contains("Unable to find bootable image"), "{out}");
    assert!(out.contains("scratch trailer"), "{out}");
    assert!(
        out.contains("reproduced: the recorded run also ended with core `fault loop"),
        "{out}"
    );

    // The same flash through the native-sim backend, with the harness's stand-ins for a
    // native_sim MCUboot and app (docs/hardware.md): its MCUboot spins and is killed, which is
    // the recorded outcome in that backend's words.
    let at_cut_before = std::fs::read(dir.join("at-cut/flash.bin")).unwrap();
    let exe = env!("CARGO_BIN_EXE_dfu-hil");
    let layout = dir.join("layout.yaml");
    let layout = layout.to_str().unwrap();
    let boot = format!("{exe} sim boot --layout {layout} --flash {{flash}}");
    let app = format!(
        "{exe} sim serve --app-only --reset-exit-status 1 --layout {layout} --flash {{flash}}"
    );
    let o = dfu_hil(&[
        "replay",
        "--at-cut",
        dir.to_str().unwrap(),
        "--board",
        "native-sim",
        "--native-sim-bootloader",
        &boot,
        "--native-sim-app",
        &app,
        "--native-sim-boot-timeout-s",
        "1",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("the bootloader did not hand over"), "{out}");
    assert!(
        out.contains("reproduced: stuck before the application"),
        "{out}"
    );
    let at_cut_after = std::fs::read(dir.join("at-cut/flash.bin")).unwrap();
    assert!(
        at_cut_after == at_cut_before,
        "native-sim booted a copy: the evidence's image is left as written"
    );

    // The flash as the scenario ended is the state *after* the failing boot: booting it is the
    // next boot (MCUboot reverts to v1), which the report says differs from the record.
    let o = dfu_hil(&["replay", dir.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(100), "{out}");
    assert!(out.contains("running:  app-v1 in slot0"), "{out}");
    assert!(
        out.contains("DIFFERENT: the recorded run ended with core `fault loop"),
        "{out}"
    );
}

#[test]
fn replay_of_a_folder_without_flash_images_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let o = dfu_hil(&["replay", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(96), "{}", text(&o));
    assert!(text(&o).contains("not an evidence folder"), "{}", text(&o));
    let o = dfu_hil(&["replay", "--board", "lab-1", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(96), "{}", text(&o));
    assert!(text(&o).contains("not `lab-1`"), "{}", text(&o));
}
