//! `dfu-hil pm import` through the binary: any file name, `--soc`, exit codes for complete,
//! partial and refused maps.

use std::process::Command;

fn pm_import(file: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["pm", "import"])
        .arg(file)
        .args(extra)
        .output()
        .expect("run dfu-hil");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const COMPLETE: &str = "mcuboot: { address: 0x0, size: 0xc000 }\n\
    mcuboot_pad: { address: 0xc000, size: 0x200 }\n\
    app: { address: 0xc200, size: 0x39e00 }\n\
    mcuboot_primary: { address: 0xc000, size: 0x3a000, span: [mcuboot_pad, app] }\n\
    mcuboot_secondary: { address: 0x46000, size: 0x3a000 }\n";

#[test]
fn complete_map_under_any_name_exits_0_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("board-layout.txt");
    std::fs::write(&f, COMPLETE).unwrap();
    let (code, out, err) = pm_import(&f, &["--soc", "nRF52832_QFAA"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("size: 0x80000") && out.contains("\"slot1\""),
        "{out}"
    );
    // The YAML (comments included) is a layout the harness loads.
    let back = dir.path().join("back.yaml");
    std::fs::write(&back, &out).unwrap();
    dfu_hil_mcuboot::layout::Layout::load(&back).unwrap();
    // Without --soc the assumption is said.
    let (code, _, err) = pm_import(&f, &[]);
    assert_eq!(code, 0);
    assert!(
        err.contains("no --soc") && err.contains("nRF52840"),
        "{err}"
    );
}

#[test]
fn partial_or_refused_maps_exit_96_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pm_static.yml");
    std::fs::write(&f, "mcuboot: { address: 0x0, size: 0xc000 }\n").unwrap();
    let (code, out, err) = pm_import(&f, &["--soc", "nrf52840"]);
    assert_eq!(code, 96, "{err}");
    assert!(
        out.contains("mcuboot"),
        "the pinned partitions are still written: {out}"
    );
    assert!(
        err.contains("partial") && err.contains("mcuboot_primary, mcuboot_secondary"),
        "{err}"
    );
    let (code, _, err) = pm_import(&f, &["--soc", "nrf52833"]);
    assert_eq!(code, 96);
    assert!(err.contains("partial"), "{err}");
    std::fs::write(
        &f,
        COMPLETE.replace("0x46000, size: 0x3a000", "0x46000, size: 0x3b000"),
    )
    .unwrap();
    let (code, _, err) = pm_import(&f, &["--soc", "nrf52832"]);
    assert_eq!(code, 96);
    assert!(
        err.contains("pm_static.yml:5:") && err.contains("mcuboot_secondary"),
        "{err}"
    );
}
