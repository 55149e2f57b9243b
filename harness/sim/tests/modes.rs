//! The other upgrade modes end to end (MCUboot `swap_scratch.c`, `swap_offset.c`, `loader.c`
//! `boot_copy_image`, `docs/design.md` "Equal slots (direct-xip)"): swap-using-scratch,
//! overwrite-only, swap-using-offset and direct-xip — happy-path flows checked against the trailers
//! MCUboot leaves after each kind of swap (what its simulator checks, `sim/src/image.rs`
//! `verify_trailers`), power-cut sweeps as in `power_cut.rs` (every cut point must resume to the
//! clean outcome), and swap-move/scratch on max-align 16/32 and erased-0x00 flash.

mod common;

use common::*;
use dfu_hil_firmware::{build_app, AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use dfu_hil_mcuboot::trailer::{Flag, MagicState, Trailer, TrailerLayout, UpgradeMode};
use dfu_hil_sim::bootloader::BootOutcome;
use dfu_hil_sim::device::flash_map::FlashMap;
use dfu_hil_sim::SimBoard;
use std::path::Path;
use std::time::Instant;

/// 16 KiB apps: the sweeps stay fast and the images fit the small test slots.
const SIZE: u32 = 16 * 1024;

/// Geometry of a test layout (one internal flash device, 4 KiB sectors unless told).
#[derive(Clone, Copy)]
struct Geo {
    slot0: u32,
    slot1: u32,
    scratch: u32,
    write: u32,
    erased: u8,
}

impl Geo {
    fn new(slot0: u32, slot1: u32, scratch: u32) -> Self {
        Geo {
            slot0,
            slot1,
            scratch,
            write: 4,
            erased: 0xff,
        }
    }
}

fn layout_for(g: Geo) -> Layout {
    let boot = 0x8000;
    let s1 = boot + g.slot0;
    let sc = s1 + g.slot1;
    let size = (sc + g.scratch).next_multiple_of(0x1000);
    let mut text = format!(
        "name: test\nflash:\n  - {{ name: internal, kind: internal, base: 0x0, size: 0x{size:x}, \
         sector-size: 0x1000, write-size: {}, erased: 0x{:x} }}\npartitions:\n  \
         - {{ name: mcuboot, device: internal, offset: 0x0, size: 0x{boot:x} }}\n  \
         - {{ name: slot0, device: internal, offset: 0x{boot:x}, size: 0x{:x} }}\n  \
         - {{ name: slot1, device: internal, offset: 0x{s1:x}, size: 0x{:x} }}\n",
        g.write, g.erased, g.slot0, g.slot1
    );
    if g.scratch > 0 {
        text.push_str(&format!(
            "  - {{ name: scratch, device: internal, offset: 0x{sc:x}, size: 0x{:x} }}\n",
            g.scratch
        ));
    }
    Layout::parse(&text, Path::new("test.yaml")).expect("test layout parses")
}

fn mode_build(mode: UpgradeMode, max_align: u32) -> BootloaderBuild {
    BootloaderBuild {
        mode,
        max_align,
        ..build()
    }
}

/// A signed app linked for `part` of `lay`, built with the bootloader's max-align.
fn image(lay: &Layout, part: &str, ver: &str, max_align: u32) -> Vec<u8> {
    let p = lay.partition(part).expect("partition");
    let mut desc = AppDescriptor::new("app", ver);
    desc.max_align = max_align;
    let bin = build_app(&desc, lay.address(p), 0x200, SIZE);
    sign(
        &bin,
        Some(&key()),
        &SignOptions {
            header_size: 0x200,
            version: version(ver),
            slot_size: p.size,
            ..Default::default()
        },
    )
    .expect("signs")
}

/// The bootloader's view of a slot trailer for `bl`.
fn mtrailer(b: &SimBoard, part: &str, bl: &BootloaderBuild) -> Trailer {
    let p = b.flash.partition(part).expect("partition").clone();
    let dev = b.flash.layout.device_of(&p).clone();
    let l = TrailerLayout {
        slot_size: p.size,
        max_align: bl.max_align,
        write_size: dev.write_size,
        erased: dev.erased,
        max_sectors: bl.max_sectors,
        mode: bl.mode,
    };
    let n = l.trailer_size().min(p.size);
    l.decode(&b.flash.read(part, p.size - n, n).expect("read"))
        .expect("decode")
}

fn mtriple(b: &SimBoard, part: &str, bl: &BootloaderBuild) -> (MagicState, Flag, Flag) {
    triple(&mtrailer(b, part, bl))
}

const GOOD_SET_SET: (MagicState, Flag, Flag) = (MagicState::Good, Flag::Set, Flag::Set);
const GOOD_UNSET_SET: (MagicState, Flag, Flag) = (MagicState::Good, Flag::Unset, Flag::Set);

/// Board with v1 running and v2 uploaded over SMP.
fn staged(g: Geo, bl: &BootloaderBuild) -> (SimBoard, Vec<u8>, Vec<u8>) {
    let lay = layout_for(g);
    let v1 = image(&lay, "slot0", "1.0.0", bl.max_align);
    let v2 = image(&lay, "slot0", "2.0.0", bl.max_align);
    let mut b = board_with(lay, bl, &v1);
    assert_eq!(running(&b), "1.0.0", "{:?}", b.log());
    upload(&mut b, &v2, 512).expect("upload");
    (b, v1, v2)
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    running: String,
    primary: (MagicState, Flag, Flag),
    secondary: (MagicState, Flag, Flag),
    slot0: String,
    slot1: String,
}

fn digest(b: &SimBoard, part: &str) -> String {
    use sha2::{Digest, Sha256};
    let size = b.flash.size(part).unwrap();
    hex::encode(&Sha256::digest(b.flash.read(part, 0, size).unwrap())[..8])
}

fn outcome(b: &SimBoard, bl: &BootloaderBuild) -> Outcome {
    Outcome {
        running: running(b),
        primary: mtriple(b, "slot0", bl),
        secondary: mtriple(b, "slot1", bl),
        slot0: digest(b, "slot0"),
        slot1: digest(b, "slot1"),
    }
}

/// Every cut point of the next boot, resumed; each must equal the clean outcome (whole slots
/// compared, trailers included). Returns the clean outcome.
fn sweep(b: &mut SimBoard, bl: &BootloaderBuild, what: &str) -> Outcome {
    let pre: FlashMap = b.flash.clone();
    let start = b.flash.op_count();
    b.reset();
    let total = b.flash.op_count() - start;
    let clean = outcome(b, bl);
    assert!(total > 0, "{what}: the clean boot wrote nothing");
    let t0 = Instant::now();
    let mut resumed = 0;
    for k in 1..=total {
        b.flash = pre.clone();
        b.flash.arm_power_cut(k);
        b.reset();
        assert!(
            matches!(b.last_boot().outcome, Some(BootOutcome::PowerCut { .. })),
            "{what}: cut {k}/{total} did not interrupt the boot"
        );
        b.flash.disarm_power_cut();
        b.reset();
        resumed += b.last_boot().decisions.iter().any(|d| d.resumed) as u32;
        let got = outcome(b, bl);
        assert_eq!(
            got,
            clean,
            "{what}: cut before op {k}/{total} ({:?})\n{}",
            b.flash.last_op(),
            b.last_boot().log.join("\n")
        );
    }
    println!(
        "{what}: {total} cut points swept in {:.2?} ({resumed} resumed from status records)",
        t0.elapsed()
    );
    b.flash = pre;
    clean
}

// ---------------------------------------------------------------------------------------------
// swap-using-scratch

/// Small slots: the top region holds the primary trailer, so the scratch trailer is used.
const SCRATCH_SMALL: Geo = Geo {
    slot0: 0x5000,
    slot1: 0x5000,
    scratch: 0x2000,
    write: 4,
    erased: 0xff,
};

#[test]
fn scratch_test_revert_confirm_flow() {
    let bl = mode_build(UpgradeMode::SwapScratch, 8);
    for g in [SCRATCH_SMALL, Geo::new(0x10000, 0x10000, 0x3000)] {
        let (mut b, _, v2) = staged(g, &bl);
        test_image(&mut b, &tlv_hash(&v2));
        b.reset();
        assert_eq!(running(&b), "2.0.0");
        assert!(logged(&b, "Starting swap using scratch algorithm."));
        let p = mtrailer(&b, "slot0", &bl);
        assert_eq!(triple(&p), GOOD_UNSET_SET);
        assert_eq!(p.swap_info, Some(0x02));
        assert!(p.swap_size.is_some());
        assert_eq!(mtriple(&b, "slot1", &bl), ERASED);
        assert_eq!(mtriple(&b, "scratch", &scratch_view(&bl)), ERASED);
        // Revert.
        b.reset();
        assert_eq!(running(&b), "1.0.0");
        assert!(logged(&b, "Swap type: revert"));
        let p = mtrailer(&b, "slot0", &bl);
        assert_eq!(triple(&p), GOOD_SET_SET);
        assert_eq!(p.swap_info, Some(0x04));
        assert_eq!(mtriple(&b, "slot1", &bl), ERASED);
        // The reverted test image is in the secondary, not pending.
        let s1 = slot(&mut b, 1).expect("old test image listed");
        assert!(!s1.pending && !s1.confirmed && s1.version == "2.0.0");
        // Test it again, confirm this time: stays.
        test_image(&mut b, &tlv_hash(&v2));
        b.reset();
        assert_eq!(running(&b), "2.0.0");
        state_write(&mut b, None, true).expect("confirm");
        b.reset();
        assert_eq!(running(&b), "2.0.0");
        assert_eq!(mtriple(&b, "slot0", &bl), GOOD_SET_SET);
    }
}

/// The scratch area's own trailer geometry (one region of status).
fn scratch_view(bl: &BootloaderBuild) -> BootloaderBuild {
    BootloaderBuild {
        max_sectors: 1,
        ..bl.clone()
    }
}

#[test]
fn scratch_perm_flow() {
    let bl = mode_build(UpgradeMode::SwapScratch, 8);
    let (mut b, _, v2) = staged(SCRATCH_SMALL, &bl);
    state_write(&mut b, Some(&tlv_hash(&v2)), true).expect("permanent");
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    let p = mtrailer(&b, "slot0", &bl);
    assert_eq!(triple(&p), GOOD_SET_SET);
    assert_eq!(p.swap_info, Some(0x03));
    b.reset();
    assert_eq!(running(&b), "2.0.0");
}

#[test]
fn scratch_power_cut_sweeps() {
    let bl = mode_build(UpgradeMode::SwapScratch, 8);
    for (g, name) in [
        (SCRATCH_SMALL, "scratch (trailer region)"),
        (Geo::new(0x10000, 0x10000, 0x3000), "scratch (large slots)"),
    ] {
        let (mut b, _, v2) = staged(g, &bl);
        test_image(&mut b, &tlv_hash(&v2));
        let clean = sweep(&mut b, &bl, &format!("{name} TEST"));
        assert_eq!(clean.running, "2.0.0");
        assert_eq!(clean.primary, GOOD_UNSET_SET);
        assert_eq!(clean.secondary, ERASED);
        b.reset();
        let clean = sweep(&mut b, &bl, &format!("{name} REVERT"));
        assert_eq!(clean.running, "1.0.0");
        assert_eq!(clean.primary, GOOD_SET_SET);
        assert_eq!(clean.secondary, ERASED);
    }
}

// ---------------------------------------------------------------------------------------------
// overwrite-only

const SMALL: Geo = Geo {
    slot0: 0x6000,
    slot1: 0x6000,
    scratch: 0,
    write: 4,
    erased: 0xff,
};

#[test]
fn overwrite_test_acts_as_permanent() {
    let bl = mode_build(UpgradeMode::OverwriteOnly, 8);
    let (mut b, _, v2) = staged(SMALL, &bl);
    test_image(&mut b, &tlv_hash(&v2));
    let requested = mtrailer(&b, "slot1", &bl);
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert!(logged(&b, "Image 0 upgrade secondary slot -> primary slot"));
    // The primary trailer is a copy of the secondary's request; no flag was written.
    let p = mtrailer(&b, "slot0", &bl);
    assert_eq!(p, requested);
    assert_eq!(triple(&p), (MagicState::Good, Flag::Unset, Flag::Unset));
    assert_eq!(mtriple(&b, "slot1", &bl), ERASED);
    // Secondary header scrubbed: nothing listed there.
    assert!(slot(&mut b, 1).is_none());
    // No revert, ever.
    for _ in 0..2 {
        b.reset();
        assert_eq!(running(&b), "2.0.0");
        assert!(!logged(&b, "Swap type: revert"));
    }
    let s0 = slot(&mut b, 0).unwrap();
    assert!(s0.active && s0.confirmed);
}

#[test]
fn overwrite_downgrade_is_refused() {
    let bl = BootloaderBuild {
        downgrade_prevention: true,
        ..mode_build(UpgradeMode::OverwriteOnly, 8)
    };
    let lay = layout_for(SMALL);
    let v2 = image(&lay, "slot0", "2.0.0", 8);
    let v1 = image(&lay, "slot0", "1.0.0", 8);
    let mut b = board_with(lay, &bl, &v2);
    upload(&mut b, &v1, 512).expect("upload");
    test_image(&mut b, &tlv_hash(&v1));
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert!(logged(&b, "Insufficient version in secondary slot"));
    assert!(slot(&mut b, 1).is_none());
}

#[test]
fn overwrite_power_cut_sweep() {
    let bl = mode_build(UpgradeMode::OverwriteOnly, 8);
    let (mut b, _, v2) = staged(SMALL, &bl);
    test_image(&mut b, &tlv_hash(&v2));
    let clean = sweep(&mut b, &bl, "overwrite-only TEST");
    assert_eq!(clean.running, "2.0.0");
    assert_eq!(clean.primary, (MagicState::Good, Flag::Unset, Flag::Unset));
    assert_eq!(clean.secondary, ERASED);
}

// ---------------------------------------------------------------------------------------------
// swap-using-offset

/// Secondary one sector larger than the primary (the optimal offset layout).
const OFFSET: Geo = Geo {
    slot0: 0x6000,
    slot1: 0x7000,
    scratch: 0,
    write: 4,
    erased: 0xff,
};

fn header_at(b: &SimBoard, part: &str, off: u32) -> bool {
    let h = b.flash.read(part, off, 4).unwrap();
    u32::from_le_bytes([h[0], h[1], h[2], h[3]]) == dfu_hil_mcuboot::image::IMAGE_MAGIC
}

#[test]
fn offset_upload_test_revert_confirm_flow() {
    let bl = mode_build(UpgradeMode::SwapOffset, 8);
    for g in [OFFSET, Geo::new(0x7000, 0x7000, 0)] {
        let (mut b, _, v2) = staged(g, &bl);
        // The upload went one sector in; the app lists it from there.
        assert!(header_at(&b, "slot1", 0x1000) && !header_at(&b, "slot1", 0));
        let s1 = slot(&mut b, 1).expect("slot1 listed");
        assert_eq!(s1.version, "2.0.0");
        test_image(&mut b, &tlv_hash(&v2));
        b.reset();
        assert_eq!(running(&b), "2.0.0", "{}", b.log().join("\n"));
        assert!(logged(&b, "Starting swap using offset algorithm."));
        let p = mtrailer(&b, "slot0", &bl);
        assert_eq!(triple(&p), GOOD_UNSET_SET);
        assert_eq!(p.swap_info, Some(0x02));
        assert_eq!(mtriple(&b, "slot1", &bl), ERASED);
        // REVERT pending: the old image is read at the slot start and listed confirmed.
        assert!(header_at(&b, "slot1", 0));
        let s1 = slot(&mut b, 1).expect("old image listed");
        assert!(s1.confirmed && s1.version == "1.0.0");
        // Revert.
        b.reset();
        assert_eq!(running(&b), "1.0.0");
        assert_eq!(mtriple(&b, "slot0", &bl), GOOD_SET_SET);
        assert_eq!(mtriple(&b, "slot1", &bl), ERASED);
        // The test image is back one sector in, the first sector scrubbed.
        assert!(header_at(&b, "slot1", 0x1000) && !header_at(&b, "slot1", 0));
        let s1 = slot(&mut b, 1).expect("test image listed again");
        assert!(!s1.pending && s1.version == "2.0.0");
        // Test again, confirm: stays; a new upload after that is accepted by MCUboot.
        test_image(&mut b, &tlv_hash(&v2));
        b.reset();
        assert_eq!(running(&b), "2.0.0");
        state_write(&mut b, None, true).expect("confirm");
        let lay = b.flash.layout.clone();
        let v3 = image(&lay, "slot0", "3.0.0", 8);
        upload(&mut b, &v3, 512).expect("upload v3");
        test_image(&mut b, &tlv_hash(&v3));
        b.reset();
        assert_eq!(running(&b), "3.0.0", "{}", b.log().join("\n"));
    }
}

#[test]
fn offset_wrong_upload_address_is_refused() {
    let bl = mode_build(UpgradeMode::SwapOffset, 8);
    let lay = layout_for(OFFSET);
    let v1 = image(&lay, "slot0", "1.0.0", 8);
    let v2 = image(&lay, "slot0", "2.0.0", 8);
    let mut b = board_with(lay.clone(), &bl, &v1);
    // A probe programs the update at the slot start, then marks it as the app would.
    b.probe_program("slot1", &v2).unwrap();
    let l = TrailerLayout {
        slot_size: 0x7000,
        ..TrailerLayout::new(0x7000, UpgradeMode::SwapOffset)
    };
    for w in [
        l.magic_write(),
        l.swap_info_write(0, dfu_hil_mcuboot::trailer::SwapType::Test),
    ] {
        b.flash.write("slot1", w.offset, &w.data).unwrap();
    }
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert!(logged(
        &b,
        "Secondary header magic detected in first sector, wrong upload address?"
    ));
}

#[test]
fn offset_row_i_after_fixup_means_revert() {
    // Row I: secondary GOOD, image_ok unset, copy_done set → REVERT (offset only).
    use dfu_hil_mcuboot::swap::{swap_type, SlotSwapState};
    let sec = SlotSwapState {
        magic: MagicState::Good,
        image_ok: Flag::Unset,
        copy_done: Flag::Set,
    };
    assert_eq!(
        swap_type(SlotSwapState::ERASED, Some(sec), UpgradeMode::SwapOffset),
        dfu_hil_mcuboot::trailer::SwapType::Revert
    );
    assert_eq!(
        swap_type(SlotSwapState::ERASED, Some(sec), UpgradeMode::SwapMove),
        dfu_hil_mcuboot::trailer::SwapType::Test
    );
}

#[test]
fn offset_power_cut_sweeps() {
    let bl = mode_build(UpgradeMode::SwapOffset, 8);
    let (mut b, _, v2) = staged(OFFSET, &bl);
    test_image(&mut b, &tlv_hash(&v2));
    let clean = sweep(&mut b, &bl, "offset TEST");
    assert_eq!(clean.running, "2.0.0");
    assert_eq!(clean.primary, GOOD_UNSET_SET);
    assert_eq!(clean.secondary, ERASED);
    b.reset();
    let clean = sweep(&mut b, &bl, "offset REVERT");
    assert_eq!(clean.running, "1.0.0");
    assert_eq!(clean.primary, GOOD_SET_SET);
    assert_eq!(clean.secondary, ERASED);
}

// ---------------------------------------------------------------------------------------------
// direct-xip

#[test]
fn direct_xip_boots_highest_version_in_place() {
    let bl = mode_build(UpgradeMode::DirectXip, 8);
    let lay = layout_for(SMALL);
    let v1 = image(&lay, "slot0", "1.0.0", 8);
    let mut b = board_with(lay.clone(), &bl, &v1);
    assert_eq!(running(&b), "1.0.0");
    // test/confirm have no handler in direct-xip.
    match state_write(&mut b, None, true) {
        Err(dfu_hil_smp::DeviceError::Mgmt { rc: 8 }) => {}
        other => panic!("expected rc 8 (ENOTSUP), got {other:?}"),
    }
    // The update goes to the slot not running, linked for that slot.
    let v2 = image(&lay, "slot1", "2.0.0", 8);
    upload(&mut b, &v2, 512).expect("upload");
    assert!(header_at(&b, "slot1", 0));
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert!(matches!(
        b.core_state(),
        dfu_hil_sim::CoreState::Running { partition, .. } if partition == "slot1"
    ));
    let l = list(&mut b);
    let active: Vec<_> = l.iter().filter(|s| s.active).map(|s| s.slot).collect();
    assert_eq!(active, vec![1]);
    // Next update lands in slot0 (now inactive).
    let v3 = image(&lay, "slot0", "3.0.0", 8);
    upload(&mut b, &v3, 512).expect("upload v3");
    b.reset();
    assert!(matches!(
        b.core_state(),
        dfu_hil_sim::CoreState::Running { partition, .. } if partition == "slot0"
    ));
    assert_eq!(running(&b), "3.0.0");
    // An image linked for the wrong slot boots and faults (no ROM_FIXED check possible).
    let bad = image(&lay, "slot0", "4.0.0", 8);
    upload(&mut b, &bad, 512).expect("upload v4 into slot1");
    b.reset();
    assert!(matches!(
        b.core_state(),
        dfu_hil_sim::CoreState::FaultLoop { .. }
    ));
}

#[test]
fn direct_xip_invalid_image_is_erased_and_other_slot_boots() {
    let bl = mode_build(UpgradeMode::DirectXip, 8);
    let lay = layout_for(SMALL);
    let v1 = image(&lay, "slot0", "1.0.0", 8);
    let mut b = board_with(lay.clone(), &bl, &v1);
    let mut v2 = image(&lay, "slot1", "2.0.0", 8);
    v2[0x400] ^= 0xff; // corrupt the body: hash mismatch
    b.probe_program("slot1", &v2).unwrap();
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert!(logged(&b, "Image in the secondary slot is not valid!"));
    assert!(!header_at(&b, "slot1", 0));
}

// ---------------------------------------------------------------------------------------------
// max-align 16/32 and erased-value 0x00

#[test]
fn move_and_scratch_on_max_align_and_erased_zero() {
    for mode in [UpgradeMode::SwapMove, UpgradeMode::SwapScratch] {
        for (ma, w, erased) in [(16, 16, 0xff), (32, 32, 0xff), (8, 4, 0x00), (32, 16, 0x00)] {
            let g = Geo {
                write: w,
                erased,
                ..Geo::new(0x10000, 0x10000, 0x2000)
            };
            let bl = mode_build(mode, ma);
            let what = format!("{mode} ma={ma} w={w} erased=0x{erased:02x}");
            let (mut b, _, v2) = staged(g, &bl);
            test_image(&mut b, &tlv_hash(&v2));
            assert_eq!(mtrailer(&b, "slot1", &bl).magic, MagicState::Good, "{what}");
            b.reset();
            assert_eq!(running(&b), "2.0.0", "{what}: {}", b.log().join("\n"));
            let p = mtrailer(&b, "slot0", &bl);
            assert_eq!(triple(&p), GOOD_UNSET_SET, "{what}");
            assert_eq!(p.swap_info, Some(0x02), "{what}");
            assert_eq!(mtriple(&b, "slot1", &bl), ERASED, "{what}");
            b.reset();
            assert_eq!(running(&b), "1.0.0", "{what}");
            assert_eq!(mtriple(&b, "slot0", &bl), GOOD_SET_SET, "{what}");
            state_write(&mut b, Some(&tlv_hash(&v2)), true).expect("permanent");
            b.reset();
            assert_eq!(running(&b), "2.0.0", "{what}");
            assert_eq!(mtriple(&b, "slot0", &bl), GOOD_SET_SET, "{what}");
        }
    }
}
