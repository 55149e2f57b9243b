//! `dfu-hil doctor BUILD` end to end: a parent/child build directory written here (the files
//! NCS writes, trimmed to the lines that matter) with the classic external-flash mistakes —
//! 244 sectors with `CONFIG_BOOT_MAX_IMG_SECTORS=128`, no NOR driver in MCUboot — exits 100 and
//! names both lines; `--json` has the stable schema; fixed, it exits 0; a folder that is not a
//! build exits 96.

use std::path::Path;
use std::process::{Command, Output};

fn dfu_hil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
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

const PARTITIONS: &str = "\
app:
  address: 0xc200
  end_address: 0x100000
  region: flash_primary
  size: 0xf3e00
mcuboot:
  address: 0x0
  end_address: 0xc000
  region: flash_primary
  size: 0xc000
mcuboot_pad:
  address: 0xc000
  end_address: 0xc200
  region: flash_primary
  size: 0x200
mcuboot_primary:
  address: 0xc000
  end_address: 0x100000
  orig_span: &id001
  - mcuboot_pad
  - app
  region: flash_primary
  size: 0xf4000
  span: *id001
mcuboot_primary_app:
  address: 0xc200
  end_address: 0x100000
  orig_span: &id002
  - app
  region: flash_primary
  size: 0xf3e00
  span: *id002
mcuboot_secondary:
  address: 0x0
  device: MX25R64
  end_address: 0xf4000
  region: external_flash
  size: 0xf4000
external_flash:
  address: 0xf4000
  device: MX25R64
  end_address: 0x800000
  region: external_flash
  size: 0x70c000
";

const REGIONS: &str = "\
external_flash:
  base_address: 0x0
  default_driver_kconfig: CONFIG_NORDIC_QSPI_NOR
  device: MX25R64
  dynamic_partition: null
  name: external_flash
  placement_strategy: start_to_end
  size: 0x800000
flash_primary:
  base_address: 0x0
  default_driver_kconfig: CONFIG_SOC_FLASH_NRF
  device: flash_controller
  dynamic_partition: null
  name: flash_primary
  placement_strategy: complex
  size: 0x100000
";

fn write_build(root: &Path, max_sectors: u32, driver: bool) -> std::path::PathBuf {
    let b = root.join("build");
    std::fs::create_dir_all(b.join("zephyr")).unwrap();
    std::fs::create_dir_all(b.join("mcuboot/zephyr")).unwrap();
    std::fs::write(b.join("partitions.yml"), PARTITIONS).unwrap();
    std::fs::write(b.join("regions.yml"), REGIONS).unwrap();
    std::fs::write(
        b.join("zephyr/.config"),
        format!(
            "CONFIG_BOARD=\"nrf52840dk_nrf52840\"\nCONFIG_SOC=\"nRF52840_QIAA\"\n\
         CONFIG_SOC_NRF52840_QIAA=y\nCONFIG_BOOTLOADER_MCUBOOT=y\nCONFIG_ROM_START_OFFSET=0\n\
         CONFIG_MCUMGR=y\nCONFIG_MCUMGR_TRANSPORT_UART=y\nCONFIG_MCUMGR_GRP_IMG=y\n\
         CONFIG_MCUMGR_GRP_OS=y\nCONFIG_MCUMGR_GRP_ZBASIC=y\n{}\n",
            if driver {
                "CONFIG_NORDIC_QSPI_NOR=y"
            } else {
                "# CONFIG_NORDIC_QSPI_NOR is not set"
            }
        ),
    )
    .unwrap();
    std::fs::write(
        b.join("mcuboot/zephyr/.config"),
        format!(
            "CONFIG_BOARD=\"nrf52840dk_nrf52840\"\nCONFIG_SOC=\"nRF52840_QIAA\"\n\
             CONFIG_BOOT_SWAP_USING_MOVE=y\n# CONFIG_BOOT_MAX_IMG_SECTORS_AUTO is not set\n\
             CONFIG_BOOT_MAX_IMG_SECTORS={max_sectors}\nCONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P256=y\n\
             CONFIG_BOOT_SIGNATURE_KEY_FILE=\"root-ec-p256.pem\"\n{}\n# CONFIG_SPI_NOR is not set\n",
            if driver {
                "CONFIG_NORDIC_QSPI_NOR=y"
            } else {
                "# CONFIG_NORDIC_QSPI_NOR is not set"
            }
        ),
    )
    .unwrap();
    b
}

#[test]
fn doctor_names_the_lines_and_exits_100() {
    let d = tempfile::tempdir().unwrap();
    let b = write_build(d.path(), 128, false);
    let o = dfu_hil(&["doctor", b.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(100), "{t}");
    assert!(t.contains("error[slot-sectors-over-max]"), "{t}");
    assert!(t.contains("244 sectors"), "{t}");
    assert!(
        t.contains("mcuboot/zephyr/.config:5: CONFIG_BOOT_MAX_IMG_SECTORS=128"),
        "{t}"
    );
    assert!(t.contains("error[ext-flash-no-driver]"), "{t}");
    assert!(t.contains("error[ext-flash-no-driver-app]"), "{t}");
    assert!(
        t.contains("mcuboot/zephyr/.config:8: # CONFIG_NORDIC_QSPI_NOR is not set"),
        "{t}"
    );

    let o = dfu_hil(&["doctor", "--json", b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(100), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(j["schema"], "dfu-hil-doctor/1");
    assert_eq!(j["kind"], "parent-child");
    let ids: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"slot-sectors-over-max"), "{ids:?}");
    let f0 = &j["findings"][0];
    for k in ["id", "severity", "title", "cause", "evidence", "fix"] {
        assert!(!f0[k].is_null(), "{k} missing: {f0}");
    }
    let e0 = &f0["evidence"][0];
    for k in ["file", "line", "text"] {
        assert!(e0.get(k).is_some(), "{k} missing: {e0}");
    }
}

#[test]
fn doctor_passes_a_fixed_build_and_refuses_a_non_build() {
    let d = tempfile::tempdir().unwrap();
    let b = write_build(d.path(), 256, true);
    let o = dfu_hil(&["doctor", b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("0 error(s)"), "{}", text(&o));

    let o = dfu_hil(&["doctor", d.path().join("nothing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(96), "{}", text(&o));
}

/// imgtool from `$IMGTOOL`, PATH or `<workspace>/.venv/bin`; `DFU_HIL_SKIP_IMGTOOL=1` skips.
fn imgtool() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("IMGTOOL")
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("imgtool"))
                .find(|c| c.is_file())
        })
        .or_else(|| {
            let v = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/imgtool");
            v.is_file().then_some(v)
        });
    if found.is_none() {
        assert_eq!(
            std::env::var("DFU_HIL_SKIP_IMGTOOL").as_deref(),
            Ok("1"),
            "imgtool not found ($IMGTOOL, PATH, .venv/bin); set DFU_HIL_SKIP_IMGTOOL=1 to skip"
        );
        eprintln!("skipped: no imgtool");
    }
    found
}

fn imgtool_run(tool: &Path, args: &[&str]) {
    let o = Command::new(tool).args(args).output().unwrap();
    assert!(o.status.success(), "imgtool {args:?}: {}", text(&o));
}

/// The build's own signed images, made by the real imgtool: signed with an Ed25519 key for an
/// MCUboot built for ECDSA P-256, and with `--header-size 0x400` for a 0x200 `mcuboot_pad`.
#[test]
fn doctor_reads_the_builds_signed_images() {
    let Some(tool) = imgtool() else { return };
    let d = tempfile::tempdir().unwrap();
    let b = write_build(d.path(), 256, true);
    let key = d.path().join("ed.pem");
    imgtool_run(
        &tool,
        &["keygen", "-k", key.to_str().unwrap(), "-t", "ed25519"],
    );
    let raw = d.path().join("zephyr.bin");
    let mut body = vec![0u8; 0x4000];
    body[..4].copy_from_slice(&0x2000_8000u32.to_le_bytes());
    body[4..8].copy_from_slice(&0x0000_c401u32.to_le_bytes());
    std::fs::write(&raw, &body).unwrap();
    let signed = b.join("zephyr/zephyr.signed.bin");
    imgtool_run(
        &tool,
        &[
            "sign",
            "--header-size",
            "0x400",
            "--pad-header",
            "--align",
            "4",
            "--version",
            "1.0.0",
            "--slot-size",
            "0xf4000",
            "-k",
            key.to_str().unwrap(),
            raw.to_str().unwrap(),
            signed.to_str().unwrap(),
        ],
    );
    let o = dfu_hil(&["doctor", b.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(100), "{t}");
    assert!(t.contains("error[signature-type-mismatch]"), "{t}");
    assert!(t.contains("error[image-header-size]"), "{t}");
    assert!(t.contains("hdr_size 0x400"), "{t}");
}

/// A secondary slot of size 0 is reported as that (exit 100), not as an unreadable layout.
#[test]
fn doctor_names_an_empty_secondary() {
    let d = tempfile::tempdir().unwrap();
    let b = write_build(d.path(), 256, true);
    let pm = PARTITIONS.replace(
        "  end_address: 0xf4000\n  region: external_flash\n  size: 0xf4000",
        "  end_address: 0x0\n  region: external_flash\n  size: 0x0",
    );
    assert_ne!(pm, PARTITIONS);
    std::fs::write(b.join("partitions.yml"), pm).unwrap();
    let o = dfu_hil(&["doctor", b.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(100), "{t}");
    assert!(t.contains("error[secondary-slot-empty]"), "{t}");
    assert!(!t.contains("layout-unreadable"), "{t}");
}

/// The flash part of `build/<app>/zephyr/zephyr.dts` of `west build -b nrf52840dk/nrf52840
/// --sysbuild` with an overlay moving slot1 to the MX25R64 (trimmed to what the reader needs).
const DTS: &str = r#"/dts-v1/;

/ {
	#address-cells = < 0x1 >;
	#size-cells = < 0x1 >;
	chosen {
		zephyr,flash = &flash0;
		zephyr,code-partition = &slot0_partition;
	};
	soc {
		#address-cells = < 0x1 >;
		#size-cells = < 0x1 >;
		flash_controller: flash-controller@4001e000 {
			compatible = "nordic,nrf52-flash-controller";
			reg = < 0x4001e000 0x1000 >;
			#address-cells = < 0x1 >;
			#size-cells = < 0x1 >;
			flash0: flash@0 {
				compatible = "soc-nv-flash";
				erase-block-size = < 0x1000 >;
				write-block-size = < 0x4 >;
				reg = < 0x0 0x100000 >;
				partitions {
					compatible = "fixed-partitions";
					#address-cells = < 0x1 >;
					#size-cells = < 0x1 >;
					boot_partition: partition@0 {
						label = "mcuboot";
						reg = < 0x0 0xc000 >;
					};
					slot0_partition: partition@c000 {
						label = "image-0";
						reg = < 0xc000 0xe8000 >;
					};
				};
			};
		};
		qspi: qspi@40029000 {
			compatible = "nordic,nrf-qspi";
			#address-cells = < 0x1 >;
			#size-cells = < 0x0 >;
			reg = < 0x40029000 0x1000 >, < 0x12000000 0x8000000 >;
			reg-names = "qspi", "qspi_mm";
			status = "okay";
			mx25r64: mx25r6435f@0 {
				compatible = "nordic,qspi-nor";
				reg = < 0x0 >;
				size = < 0x4000000 >;
				partitions {
					compatible = "fixed-partitions";
					#address-cells = < 0x1 >;
					#size-cells = < 0x1 >;
					slot1_partition: partition@0 {
						label = "image-1";
						reg = < 0x0 0xe8000 >;
					};
				};
			};
		};
	};
};
"#;

/// A plain Zephyr sysbuild build (devicetree partitions, no Partition Manager): 232 sectors with
/// 128, slot1 on QSPI without a driver in MCUboot, and `--pad-header` on a binary linked at
/// slot0 + ROM_START_OFFSET.
#[test]
fn doctor_checks_a_plain_zephyr_build() {
    let d = tempfile::tempdir().unwrap();
    let b = d.path().join("build");
    let w = |rel: &str, text: &str| {
        let p = b.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "zephyr/.config",
        "SB_CONFIG_BOOTLOADER_MCUBOOT=y\n# SB_CONFIG_PARTITION_MANAGER is not set\n",
    );
    w("domains.yaml", "default: app\nbuild_dir: /tmp/x\ndomains:\n  - name: app\n    build_dir: /tmp/x/app\n  - name: mcuboot\n    build_dir: /tmp/x/mcuboot\nflash_order:\n  - mcuboot\n  - app\n");
    w(
        "app/zephyr/.config",
        "CONFIG_BOARD=\"nrf52840dk\"\nCONFIG_SOC=\"nrf52840\"\nCONFIG_BOOTLOADER_MCUBOOT=y\n\
         CONFIG_ROM_START_OFFSET=0x200\nCONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS=\"--pad-header\"\n\
         CONFIG_MCUMGR=y\nCONFIG_MCUMGR_TRANSPORT_UART=y\nCONFIG_MCUMGR_GRP_IMG=y\n\
         CONFIG_MCUMGR_GRP_OS=y\n",
    );
    w("app/zephyr/zephyr.dts", DTS);
    w(
        "mcuboot/zephyr/.config",
        "CONFIG_SOC=\"nrf52840\"\nCONFIG_BOOT_SWAP_USING_MOVE=y\n\
         # CONFIG_BOOT_MAX_IMG_SECTORS_AUTO is not set\nCONFIG_BOOT_MAX_IMG_SECTORS=128\n\
         CONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P256=y\n# CONFIG_NORDIC_QSPI_NOR is not set\n\
         # CONFIG_SPI_NOR is not set\n",
    );
    let o = dfu_hil(&["doctor", b.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(100), "{t}");
    assert!(t.contains("(plain-zephyr)"), "{t}");
    assert!(t.contains("error[slot-sectors-over-max]"), "{t}");
    assert!(t.contains("232 sectors"), "{t}");
    assert!(t.contains("zephyr.dts:31: slot0"), "{t}");
    assert!(t.contains("error[ext-flash-no-driver]"), "{t}");
    assert!(t.contains("error[header-pad-twice]"), "{t}");
}
