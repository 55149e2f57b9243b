//! A real imgtool-signed image (plausible vector table, random code: nothing the simulator could
//! execute) goes through upload, test, swap and confirm on the simulated board with no build
//! given: the board models the app (Zephyr's defaults) and says so, and reports no fault.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn real_signed_image_updates_without_a_false_verdict() {
    let Ok(imgtool) = std::env::var("IMGTOOL") else {
        assert!(
            std::env::var("DFU_HIL_REQUIRE_CORPUS").is_err(),
            "IMGTOOL not set"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // zephyr.bin for nrf52840-internal, linked at slot0 (0xc000) + 0x200 as NCS links it.
    let link = 0xc200u32;
    let mut bin = Vec::new();
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&(link + 0x2c1).to_le_bytes());
    for i in 0..14u32 {
        bin.extend_from_slice(&(link + 0x301 + 4 * i).to_le_bytes());
    }
    let mut x = 0x1234_5678u32;
    for _ in 0..0x6000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bin.push(x as u8);
    }
    let raw = tmp.path().join("zephyr.bin");
    let signed = tmp.path().join("zephyr.signed.bin");
    std::fs::write(&raw, &bin).unwrap();
    let key = root().join("firmware-fixtures/keys/ec-p256.pem");
    let st = Command::new(&imgtool)
        .args([
            "sign",
            "--header-size",
            "0x200",
            "--pad-header",
            "--align",
            "4",
        ])
        .args(["--slot-size", "0x7a000", "--version", "2.0.0", "--key"])
        .arg(&key)
        .arg(&raw)
        .arg(&signed)
        .status()
        .unwrap();
    assert!(st.success());
    let scenario = tmp.path().join("real.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: real-image-no-build\ndescription: real image, no build\n\
             layout: {}\nbootloader: {{ mode: swap-move }}\n\
             fixtures:\n  real-v2: {{ file: {} }}\nsteps:\n\
             \x20 - flash: {{ mcuboot: mcuboot, slot0: app-v1 }}\n\
             \x20 - upload: {{ image: real-v2 }}\n  - test: real-v2\n  - reset: {{}}\n\
             \x20 - expect: {{ slot0: {{ image: real-v2, active: true }} }}\n\
             \x20 - confirm: {{}}\n  - reset: {{}}\n\
             \x20 - expect: {{ slot0: {{ image: real-v2, confirmed: true }} }}\n",
            root().join("partitions/nrf52840-internal.yaml").display(),
            signed.display()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .current_dir(root())
        .args(["scenario", scenario.to_str().unwrap(), "--evidence"])
        .arg(tmp.path().join("ev"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("fault"), "{out}");
}
