//! One positive and one negative case per check, on `Build` values and layouts built here (the
//! `.config` / `partitions.yml` text is written to a temporary folder so evidence lines resolve).

use super::*;
use crate::build::{BuildImage, BuildKind, ImageRole};
use crate::facts::{AppFacts, Fact, McubootFacts, NsibFacts, SignatureType, Source};
use dfu_hil_mcuboot::image::Version;
use dfu_hil_mcuboot::keys::SigningKey;
use dfu_hil_mcuboot::layout::{DeviceKind, FlashDevice, ImagePair, Partition};
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use dfu_hil_mcuboot::trailer::UpgradeMode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fact<T>(value: T) -> Fact<T> {
    Fact {
        value,
        source: None,
    }
}

fn at<T>(value: T, file: &Path, line: u32) -> Fact<T> {
    Fact {
        value,
        source: Some(Source {
            file: file.to_owned(),
            line,
        }),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    build: Build,
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Give the build a `partitions.yml` with `text`.
    fn pm(&mut self, text: &str) {
        let p = self.write("partitions.yml", text);
        self.build.files.insert("partitions.yml".into(), p);
    }

    fn findings(&self, layout: Option<&Layout>, images: &[LoadedImage]) -> Vec<Finding> {
        check(&self.build, layout, images)
    }

    fn ids(&self, layout: Option<&Layout>, images: &[LoadedImage]) -> Vec<&'static str> {
        self.findings(layout, images).iter().map(|f| f.id).collect()
    }

    fn m(&mut self) -> &mut McubootFacts {
        self.build.mcuboot.as_mut().unwrap()
    }

    fn app(&mut self) -> &mut AppFacts {
        self.build.app.as_mut().unwrap()
    }
}

/// A sysbuild build with MCUboot swap-move (128 sectors, ECDSA P-256) and an app with BT SMP,
/// img + os + zephyr_basic, ROM_START_OFFSET 0, NCS's speed-up buffers.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mc = dir.path().join("mcuboot.config");
    std::fs::write(
        &mc,
        "CONFIG_BOOT_SWAP_USING_MOVE=y\nCONFIG_BOOT_MAX_IMG_SECTORS=128\n\
         # CONFIG_NORDIC_QSPI_NOR is not set\n# CONFIG_SPI_NOR is not set\n\
         CONFIG_BOOT_SIGNATURE_TYPE_ECDSA_P256=y\n",
    )
    .unwrap();
    let ac = dir.path().join("app.config");
    std::fs::write(
        &ac,
        "CONFIG_BOOTLOADER_MCUBOOT=y\nCONFIG_ROM_START_OFFSET=0\nCONFIG_MCUMGR=y\n\
         CONFIG_MCUMGR_TRANSPORT_BT=y\nCONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY=y\n\
         CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=2475\nCONFIG_BT_L2CAP_TX_MTU=498\n\
         CONFIG_BT_BUF_ACL_RX_SIZE=502\nCONFIG_MCUMGR_EXTRA=1\n",
    )
    .unwrap();
    let mcuboot = McubootFacts {
        config: mc.clone(),
        mode: at(Some(UpgradeMode::SwapMove), &mc, 1),
        max_sectors: at(128, &mc, 2),
        signature: at(SignatureType::EcdsaP256, &mc, 5),
        key_file: None,
        validate_primary: fact(true),
        downgrade_prevention: fact(false),
        image_number: fact(1),
        external_flash_driver: fact(false),
        serial_recovery: fact(false),
        single_slot: fact(false),
        max_align: None,
    };
    let app = AppFacts {
        config: ac.clone(),
        board: None,
        soc: None,
        bootloader_mcuboot: at(true, &ac, 1),
        rom_start_offset: at(0, &ac, 2),
        sign_version: None,
        extra_imgtool_args: None,
        mcumgr_groups: vec![
            fact("img".into()),
            fact("os".into()),
            fact("zephyr_basic".into()),
        ],
        mcumgr_transports: vec![at("bt".into(), &ac, 4)],
        netbuf_size: Some(at(2475, &ac, 6)),
        netbuf_count: None,
        bt_l2cap_tx_mtu: Some(at(498, &ac, 7)),
        bt_acl_rx_size: Some(at(502, &ac, 8)),
        uart_rx_buf_size: None,
        tfm: fact(false),
        nonsecure: fact(false),
        secure_boot: fact(false),
    };
    let build = Build {
        dir: dir.path().to_owned(),
        kind: BuildKind::Sysbuild,
        app_name: Some("app".into()),
        mcuboot: Some(mcuboot),
        app: Some(app),
        netcore: None,
        nsib: None,
        sysbuild: None,
        files: BTreeMap::new(),
        images: Vec::new(),
        elfs: BTreeMap::new(),
        versions: Default::default(),
    };
    Fixture { dir, build }
}

/// nRF52840-like: 1 MiB internal (4 KiB sectors), optional 8 MiB QSPI; slots of `slot` bytes.
fn layout(slot: u32, secondary_external: bool) -> Layout {
    let mut flash = vec![FlashDevice {
        name: "flash_primary".into(),
        kind: DeviceKind::Internal,
        base: 0,
        size: 0x10_0000,
        sector_size: 0x1000,
        write_size: 4,
        erased: 0xff,
    }];
    if secondary_external {
        flash.push(FlashDevice {
            name: "external_flash".into(),
            kind: DeviceKind::External,
            base: 0x1000_0000,
            size: 0x80_0000,
            sector_size: 0x1000,
            write_size: 1,
            erased: 0xff,
        });
    }
    Layout {
        name: "t".into(),
        description: String::new(),
        flash,
        partitions: vec![
            Partition {
                name: "mcuboot_primary".into(),
                device: "flash_primary".into(),
                offset: 0xc000,
                size: slot,
                id: None,
            },
            Partition {
                name: "mcuboot_secondary".into(),
                device: if secondary_external {
                    "external_flash".into()
                } else {
                    "flash_primary".into()
                },
                offset: if secondary_external { 0 } else { 0xc000 + slot },
                size: slot,
                id: None,
            },
        ],
        images: vec![ImagePair {
            primary: "mcuboot_primary".into(),
            secondary: "mcuboot_secondary".into(),
        }],
    }
}

const PM: &str = "app:\n  address: 0xc200\n  size: 0x6fe00\nmcuboot_pad:\n  address: 0xc000\n  \
                  size: 0x200\nmcuboot_secondary:\n  address: 0x7c000\n  size: 0x70000\n";

fn signed(hdr: u16, payload: usize, key: Option<&SigningKey>) -> Vec<u8> {
    let opts = SignOptions {
        header_size: hdr,
        pad_header: true,
        version: Version::new(1, 0, 0, 0),
        ..SignOptions::default()
    };
    // A plausible vector table: SP in SRAM, Thumb reset vector.
    let mut body = vec![0u8; payload];
    body[..4].copy_from_slice(&0x2000_8000u32.to_le_bytes());
    body[4..8].copy_from_slice(&0x0000_c401u32.to_le_bytes());
    sign(&body, key, &opts).unwrap()
}

fn loaded(path: &Path, bytes: Vec<u8>) -> LoadedImage {
    LoadedImage {
        image: BuildImage {
            role: ImageRole::App,
            path: path.to_owned(),
            entry: None,
            image_index: None,
        },
        bytes,
    }
}

#[test]
fn a_good_build_is_clean() {
    let mut f = fixture();
    f.pm(PM);
    let l = layout(0x70000, false);
    assert_eq!(f.ids(Some(&l), &[]), Vec::<&str>::new());
}

#[test]
fn slot_sectors_over_max_is_an_error_with_both_lines() {
    let f = fixture();
    let l = layout(0xf4000, true); // 244 sectors
    let all = f.findings(Some(&l), &[]);
    let s: Vec<_> = all.iter().filter(|x| x.id == slots::SECTORS).collect();
    assert_eq!(s.len(), 2, "{all:#?}");
    assert_eq!(s[0].severity, Severity::Error);
    assert!(s[0].title.contains("244 sectors"), "{}", s[0].title);
    assert_eq!(s[0].evidence[0].line, Some(2));
    assert!(s[0].evidence[0]
        .text
        .contains("CONFIG_BOOT_MAX_IMG_SECTORS=128"));
    assert!(s[0].fix.contains("CONFIG_BOOT_MAX_IMG_SECTORS=256"));
}

#[test]
fn slot_sectors_within_max_or_assumed_default() {
    let mut f = fixture();
    f.m().max_sectors.value = 256;
    assert!(!f
        .ids(Some(&layout(0xf4000, false)), &[])
        .contains(&slots::SECTORS));
    // A default the build did not write is only a warning.
    let mut f = fixture();
    f.m().max_sectors.source = None;
    let all = f.findings(Some(&layout(0xf4000, false)), &[]);
    let s = all.iter().find(|x| x.id == slots::SECTORS).unwrap();
    assert_eq!(s.severity, Severity::Warning);
}

#[test]
fn external_secondary_without_driver() {
    let mut f = fixture();
    let l = layout(0x70000, true);
    let all = f.findings(Some(&l), &[]);
    let e = all
        .iter()
        .find(|x| x.id == slots::EXT_DRIVER)
        .expect("finding");
    assert_eq!(e.severity, Severity::Error);
    assert!(e
        .evidence
        .iter()
        .any(|x| x.line == Some(3) && x.text == "# CONFIG_NORDIC_QSPI_NOR is not set"));
    f.m().external_flash_driver.value = true;
    assert!(!f.ids(Some(&l), &[]).contains(&slots::EXT_DRIVER));
    let ac = f.write(
        "app.config",
        "CONFIG_BOOTLOADER_MCUBOOT=y\nCONFIG_NORDIC_QSPI_NOR=y\n",
    );
    f.app().config = ac;
    assert!(!f.ids(Some(&l), &[]).contains(&slots::EXT_DRIVER_APP));
    // Internal secondary: no driver needed.
    let mut f = fixture();
    f.m().external_flash_driver.value = false;
    assert!(!f
        .ids(Some(&layout(0x70000, false)), &[])
        .contains(&slots::EXT_DRIVER));
}

#[test]
fn secondary_of_size_zero() {
    let mut f = fixture();
    f.pm("mcuboot_secondary:\n  address: 0x80000\n  region: flash_primary\n  size: 0x0\n");
    let all = f.findings(None, &[]);
    let e = all.iter().find(|x| x.id == slots::SECONDARY_EMPTY).unwrap();
    assert_eq!(e.evidence[0].line, Some(4));
    f.pm(PM);
    assert!(!f.ids(None, &[]).contains(&slots::SECONDARY_EMPTY));
}

#[test]
fn single_slot_and_serial_recovery_only() {
    let mut f = fixture();
    f.m().single_slot.value = true;
    let all = f.findings(None, &[]);
    let e = all.iter().find(|x| x.id == slots::SINGLE_SLOT).unwrap();
    assert_eq!(e.severity, Severity::Error);
    f.m().serial_recovery.value = true;
    let all = f.findings(None, &[]);
    assert_eq!(
        all.iter()
            .find(|x| x.id == slots::SINGLE_SLOT)
            .unwrap()
            .severity,
        Severity::Warning
    );
    let mut f = fixture();
    assert!(!f.ids(None, &[]).contains(&slots::SINGLE_SLOT));
    f.m().serial_recovery.value = true;
    assert!(!f.ids(None, &[]).contains(&slots::SERIAL_RECOVERY_ONLY));
    f.app().mcumgr_transports.clear();
    let ids = f.ids(None, &[]);
    assert!(ids.contains(&slots::SERIAL_RECOVERY_ONLY), "{ids:?}");
    assert!(!ids.contains(&smp::NO_TRANSPORT), "{ids:?}");
}

#[test]
fn rom_start_offset_in_a_pm_build() {
    let mut f = fixture();
    f.pm(PM);
    f.app().rom_start_offset.value = 0x200;
    let all = f.findings(None, &[]);
    let e = all
        .iter()
        .find(|x| x.id == header::ROM_OFFSET_WITH_PAD)
        .unwrap();
    assert!(e.evidence.iter().any(|x| x.line == Some(6)), "{e:#?}");
    f.app().rom_start_offset.value = 0;
    assert!(!f.ids(None, &[]).contains(&header::ROM_OFFSET_WITH_PAD));
}

#[test]
fn no_header_room_without_pm() {
    let mut f = fixture();
    f.build.kind = BuildKind::PlainZephyr;
    assert!(f.ids(None, &[]).contains(&header::NO_ROOM));
    f.app().rom_start_offset.source = None; // not written: nothing to say
    assert!(!f.ids(None, &[]).contains(&header::NO_ROOM));
    f.app().rom_start_offset.value = 0x200;
    assert!(!f.ids(None, &[]).contains(&header::NO_ROOM));
}

#[test]
fn pad_header_on_a_binary_with_room() {
    let mut f = fixture();
    f.build.kind = BuildKind::PlainZephyr;
    f.app().rom_start_offset.value = 0x200;
    f.app().extra_imgtool_args = Some(fact("--pad-header".into()));
    assert!(f.ids(None, &[]).contains(&header::PAD_TWICE));
    // NCS with mcuboot_pad: --pad-header is what the build does anyway.
    let mut f = fixture();
    f.pm(PM);
    f.app().extra_imgtool_args = Some(fact("--pad-header".into()));
    assert!(!f.ids(None, &[]).contains(&header::PAD_TWICE));
}

#[test]
fn header_size_argument_against_the_room() {
    let mut f = fixture();
    f.pm(PM);
    f.app().extra_imgtool_args = Some(fact("--header-size 0x400".into()));
    assert!(f.ids(None, &[]).contains(&header::ARG_MISMATCH));
    f.app().extra_imgtool_args = Some(fact("--header-size=0x200 --pad-header".into()));
    assert!(!f.ids(None, &[]).contains(&header::ARG_MISMATCH));
}

#[test]
fn image_header_size_against_the_room() {
    let mut f = fixture();
    f.pm(PM);
    let p = f.path("zephyr.signed.bin");
    let bad = loaded(&p, signed(0x400, 0x1000, None));
    let e = f.findings(None, &[bad]);
    assert!(e.iter().any(|x| x.id == header::IMAGE_HDR), "{e:#?}");
    let good = loaded(&p, signed(0x200, 0x1000, None));
    assert!(!f.ids(None, &[good]).contains(&header::IMAGE_HDR));
}

#[test]
fn smp_transport_and_groups() {
    let mut f = fixture();
    f.app().mcumgr_groups = vec![fact("os".into())];
    let ids = f.ids(None, &[]);
    assert!(
        ids.contains(&smp::NO_IMG) && ids.contains(&smp::NO_BASIC),
        "{ids:?}"
    );
    assert!(!ids.contains(&smp::NO_OS));
    f.app().mcumgr_groups = vec![fact("img".into())];
    let ids = f.ids(None, &[]);
    assert!(
        ids.contains(&smp::NO_OS) && !ids.contains(&smp::NO_IMG),
        "{ids:?}"
    );
    f.app().mcumgr_transports.clear();
    let ids = f.ids(None, &[]);
    assert!(ids.contains(&smp::NO_TRANSPORT), "{ids:?}");
    assert!(
        !ids.contains(&smp::NO_IMG),
        "no transport: the groups do not matter"
    );
    // Not under MCUboot: nothing to say.
    f.app().bootloader_mcuboot.value = false;
    assert!(!f.ids(None, &[]).contains(&smp::NO_TRANSPORT));
}

#[test]
fn smp_buffer_against_the_bt_mtu() {
    let mut f = fixture();
    f.app().netbuf_size = Some(fact(384));
    let all = f.findings(None, &[]);
    let e = all.iter().find(|x| x.id == smp::BT_NETBUF_SMALL).unwrap();
    assert!(e.title.contains("495-byte writes"), "{}", e.title);
    f.app().netbuf_size = Some(fact(2400));
    let ids = f.ids(None, &[]);
    assert!(ids.contains(&smp::BT_NETBUF_SPLIT) && !ids.contains(&smp::BT_NETBUF_SMALL));
    // The default MTU (23): 20-byte writes fit the 384-byte default buffer.
    f.app().netbuf_size = None;
    f.app().bt_l2cap_tx_mtu = Some(fact(23));
    f.app().bt_acl_rx_size = Some(fact(27));
    let ids = f.ids(None, &[]);
    assert!(!ids.contains(&smp::BT_NETBUF_SMALL), "{ids:?}");
}

#[test]
fn mcuboot_max_image_size_per_mode() {
    let g = SlotGeometry {
        primary_size: 0x70000,
        primary_sector: 0x1000,
        secondary_size: 0x70000,
        secondary_sector: 0x1000,
        write_size: 4,
        max_align: 8,
        max_sectors: 128,
    };
    // Trailer 128 × 3 × 4 + 48 = 1584 → one sector; swap-move loses one more in the primary.
    assert_eq!(max_image_size(UpgradeMode::SwapMove, &g), 0x70000 - 0x2000);
    assert_eq!(
        max_image_size(UpgradeMode::SwapOffset, &g),
        0x70000 - 0x2000
    );
    // Up to swap_info: magic 16 + image_ok, copy_done, swap_info cells of 8.
    assert_eq!(max_image_size(UpgradeMode::OverwriteOnly, &g), 0x70000 - 40);
    assert_eq!(max_image_size(UpgradeMode::DirectXip, &g), 0x70000 - 40);
    // Swap-scratch: trailer_off = 0x70000 - 1584; its sector holds 1584 bytes of trailer, more
    // than the scratch trailer (12 + 48), so no padding.
    assert_eq!(max_image_size(UpgradeMode::SwapScratch, &g), 0x70000 - 1584);
    // A trailer that ends exactly on a sector boundary leaves no room for the scratch trailer.
    let g2 = SlotGeometry {
        max_sectors: 337, // 337 × 12 + 48 = 4092 → trailer_off = 4 bytes into the last sector
        ..g
    };
    let t = 337 * 12 + 48;
    assert_eq!(max_image_size(UpgradeMode::SwapScratch, &g2), 0x70000 - t);
}

#[test]
fn image_too_large_for_swap_move() {
    let mut f = fixture();
    f.pm(PM);
    let l = layout(0x70000, false);
    let p = f.path("zephyr.signed.bin");
    let big = loaded(&p, signed(0x200, 0x70000 - 0x2000, None));
    let all = f.findings(Some(&l), &[big]);
    let e = all
        .iter()
        .find(|x| x.id == fit::TOO_LARGE)
        .expect("finding");
    assert!(e.cause.contains("spare sector"), "{}", e.cause);
    let fits = loaded(&p, signed(0x200, 0x70000 - 0x3000, None));
    assert!(!f.ids(Some(&l), &[fits]).contains(&fit::TOO_LARGE));
    // CONFIG_BOOT_MAX_IMG_SECTORS_AUTO (read as u32::MAX): the table is the slot's own count.
    f.m().max_sectors.value = u32::MAX;
    let fits = loaded(&p, signed(0x200, 0x70000 - 0x3000, None));
    assert!(!f.ids(Some(&l), &[fits]).contains(&fit::TOO_LARGE));
    f.m().max_sectors.value = 128;
    // The same image fits overwrite-only.
    f.m().mode.value = Some(UpgradeMode::OverwriteOnly);
    let big = loaded(&p, signed(0x200, 0x70000 - 0x2000, None));
    assert!(!f.ids(Some(&l), &[big]).contains(&fit::TOO_LARGE));
}

#[test]
fn signature_type_and_key() {
    let f = fixture();
    let p = f.path("zephyr.signed.bin");
    let ed = SigningKey::generate_ed25519_from_seed(b"doctor-ed");
    let p256 = SigningKey::generate_p256_from_seed(b"doctor-p256");
    let other = SigningKey::generate_p256_from_seed(b"doctor-other");
    let mut out = Vec::new();
    let img = loaded(&p, signed(0x200, 0x800, Some(&ed)));
    signature::check_images_with_key(&f.build, &[img], None, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, signature::TYPE);
    assert_eq!(out[0].evidence[0].line, Some(5));
    // Unsigned image, MCUboot wants a signature.
    let mut out = Vec::new();
    let img = loaded(&p, signed(0x200, 0x800, None));
    signature::check_images_with_key(&f.build, &[img], None, &mut out);
    assert_eq!(out[0].id, signature::TYPE);
    // Right type, right key: clean; another key: KEY.
    let kp = f.write("root-ec-p256.pem", &p256.to_pem());
    let public = p256.public();
    let mut out = Vec::new();
    let img = loaded(&p, signed(0x200, 0x800, Some(&p256)));
    signature::check_images_with_key(&f.build, &[img], Some((&kp, &public)), &mut out);
    assert!(out.is_empty(), "{out:#?}");
    let img = loaded(&p, signed(0x200, 0x800, Some(&other)));
    signature::check_images_with_key(&f.build, &[img], Some((&kp, &public)), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, signature::KEY);
}

#[test]
fn nsib_counter_slots_and_variants() {
    let mut f = fixture();
    let b0 = f.write("b0.config", "CONFIG_SB_NUM_VER_COUNTER_SLOTS=240\n");
    f.build.files.insert("b0.config".into(), b0.clone());
    f.build.nsib = Some(NsibFacts {
        config: b0.clone(),
        counter_slots: vec![("b0".into(), at(240, &b0, 1)), ("mcuboot".into(), fact(20))],
        signing_key_file: None,
        s1_variant: fact(false),
    });
    let ids = f.ids(None, &[]);
    assert!(
        ids.contains(&nsib::COUNTER_SLOTS) && ids.contains(&nsib::NO_S1),
        "{ids:?}"
    );
    // A network core's own b0n counts apart.
    f.build
        .nsib
        .as_mut()
        .unwrap()
        .counter_slots
        .push(("b0n".into(), fact(20)));
    f.build.nsib.as_mut().unwrap().counter_slots[1].1.value = 240;
    assert!(!f.ids(None, &[]).contains(&nsib::COUNTER_SLOTS));
    let n = f.build.nsib.as_mut().unwrap();
    n.s1_variant.value = true;
    let ids = f.ids(None, &[]);
    assert!(
        !ids.contains(&nsib::COUNTER_SLOTS) && !ids.contains(&nsib::NO_S1),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&nsib::UPDATE_MISSING),
        "no images in the build: nothing to miss"
    );
    f.build.images.push(BuildImage {
        role: ImageRole::App,
        path: f.path("zephyr.signed.bin"),
        entry: None,
        image_index: None,
    });
    assert!(f.ids(None, &[]).contains(&nsib::UPDATE_MISSING));
    f.build.images.push(BuildImage {
        role: ImageRole::McubootUpdate { nsib_slot: 1 },
        path: f.path("signed_by_mcuboot_and_b0_s1_image.bin"),
        entry: None,
        image_index: None,
    });
    assert!(!f.ids(None, &[]).contains(&nsib::UPDATE_MISSING));
}

#[test]
fn report_text_json_and_verdict() {
    let f = fixture();
    let l = layout(0xf4000, true);
    let r = Report {
        schema: SCHEMA,
        build_dir: f.build.dir.display().to_string(),
        kind: kind_name(f.build.kind),
        findings: f.findings(Some(&l), &[]),
    };
    assert_eq!(r.verdict(), Verdict::Errors);
    let t = r.to_text();
    assert!(t.contains("error[slot-sectors-over-max]"), "{t}");
    assert!(
        t.contains("mcuboot.config:2: CONFIG_BOOT_MAX_IMG_SECTORS=128"),
        "{t}"
    );
    let j: serde_json::Value = serde_json::to_value(&r).unwrap();
    let f0 = &j["findings"][0];
    for k in ["id", "severity", "title", "cause", "evidence", "fix"] {
        assert!(!f0[k].is_null(), "{k} missing in {f0}");
    }
    assert_eq!(f0["severity"], "error");
    assert_eq!(j["kind"], "sysbuild");
    assert_eq!(f0["evidence"][0]["line"], 2);
}

#[test]
fn every_check_id_is_documented_once() {
    let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.0).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate id");
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/build-directories.md"),
    )
    .unwrap();
    let section = doc
        .split("## doctor")
        .nth(1)
        .expect("a `## doctor` section");
    for id in ids {
        assert!(
            section.contains(&format!("`{id}`")),
            "{id} not in docs/build-directories.md"
        );
    }
}

#[test]
fn refused_layouts_named_by_their_defect() {
    let mut f = fixture();
    let ac = f.write(
        "app.config",
        "CONFIG_SOC=\"nRF52832_QFAA\"\nCONFIG_SOC_NRF52832_QFAA=y\nCONFIG_BOOTLOADER_MCUBOOT=y\n",
    );
    f.app().config = ac;
    f.pm(
        "mcuboot_primary:\n  address: 0x9000\n  region: flash_primary\n  size: 0x3a800\n\
         mcuboot_primary_app:\n  address: 0x9200\n  region: flash_primary\n  size: 0x3a600\n\
         user_storage:\n  address: 0x80000\n  region: flash_primary\n  size: 0x2000\n\
         mcuboot_secondary:\n  address: 0x0\n  region: external_flash\n  size: 0x3a800\n",
    );
    let pm = f.build.files["partitions.yml"].clone();
    let all = pm_text::check(&f.build, &pm);
    let ids: Vec<_> = all.iter().map(|x| x.id).collect();
    assert_eq!(ids, [pm_text::UNALIGNED, pm_text::BEYOND_FLASH], "{all:#?}");
    assert_eq!(all[0].evidence[0].line, Some(2));
    assert!(all[1].title.contains("nRF52832 QFAA"), "{}", all[1].title);
    f.pm(
        "mcuboot_primary:\n  address: 0xc000\n  region: flash_primary\n  size: 0x37000\n\
         storage:\n  address: 0x7a000\n  region: flash_primary\n  size: 0x6000\n",
    );
    let pm = f.build.files["partitions.yml"].clone();
    assert!(pm_text::check(&f.build, &pm).is_empty());
}

#[test]
fn sysbuild_pad_against_mcuboot_pad() {
    let mut f = fixture();
    f.pm(PM);
    let sb = f.write(
        "sysbuild.config",
        "SB_CONFIG_BOOTLOADER_MCUBOOT=y\nSB_CONFIG_PM_MCUBOOT_PAD=0x800\n",
    );
    f.build.files.insert("sysbuild.config".into(), sb);
    let all = f.findings(None, &[]);
    let e = all
        .iter()
        .find(|x| x.id == header::SB_PAD_MISMATCH)
        .expect("finding");
    assert_eq!(e.evidence[0].line, Some(2));
    f.write("sysbuild.config", "SB_CONFIG_PM_MCUBOOT_PAD=0x200\n");
    assert!(!f.ids(None, &[]).contains(&header::SB_PAD_MISMATCH));
}

#[test]
fn no_panic_on_absurd_numbers() {
    let mut f = fixture();
    let ac = f.write(
        "app.config",
        "CONFIG_SOC=\"nRF52840_QIAA\"\nCONFIG_BOOTLOADER_MCUBOOT=y\n",
    );
    f.app().config = ac;
    f.pm(
        "mcuboot_primary:\n  address: 0xffffffffffffffff\n  size: 0xffffffffffffffff\n\
          mcuboot_pad:\n  address: 0x0\n  size: 0xfffffffffffffffff\n",
    );
    let pm = f.build.files["partitions.yml"].clone();
    let _ = pm_text::check(&f.build, &pm);
    f.m().max_sectors.value = 0;
    f.app().netbuf_size = Some(fact(u32::MAX));
    f.app().bt_l2cap_tx_mtu = Some(fact(0));
    let mut l = layout(0x70000, true);
    l.flash[0].sector_size = 0;
    l.flash[1].write_size = 0;
    let p = f.path("x.bin");
    let img = loaded(&p, signed(0x200, 0x100, None));
    let _ = f.findings(Some(&l), &[img, loaded(&p, vec![0xff; 7])]);
    for mode in [
        UpgradeMode::SwapMove,
        UpgradeMode::SwapOffset,
        UpgradeMode::SwapScratch,
        UpgradeMode::OverwriteOnly,
        UpgradeMode::DirectXip,
    ] {
        let g = SlotGeometry {
            primary_size: 0,
            primary_sector: 0,
            secondary_size: u32::MAX,
            secondary_sector: 1,
            write_size: 0,
            max_align: 0,
            max_sectors: u32::MAX,
        };
        let _ = max_image_size(mode, &g);
    }
}
