//! Shared fixtures for the simulated-board tests: the nRF52840 layout, signed synthetic apps,
//! a bootloader build, and small SMP helpers that speak to the board packet by packet.
#![allow(dead_code)]

use dfu_hil_firmware::{build_app, build_bootloader, AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::image::Version;
use dfu_hil_mcuboot::keys::SigningKey;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use dfu_hil_mcuboot::trailer::{Flag, MagicState, Trailer, TrailerLayout};
use dfu_hil_sim::{CoreState, SimBoard};
use dfu_hil_smp::{
    group, img_cmd, map, parse_image_state, response_error, uint, DeviceError, Op, Packet,
    SlotState, Value, Version as SmpVersion,
};
use std::path::{Path, PathBuf};

/// Small images keep the power-cut sweeps fast: 20 KiB = 5 sectors of 4 KiB.
pub const APP_SIZE: u32 = 20 * 1024;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn layout() -> Layout {
    Layout::load(&repo().join("partitions/nrf52840-internal.yaml")).expect("layout loads")
}

pub fn key() -> SigningKey {
    SigningKey::load(&repo().join("firmware-fixtures/keys/ec-p256.pem")).expect("key")
}

pub fn other_key() -> SigningKey {
    SigningKey::load(&repo().join("firmware-fixtures/keys/other-p256.pem")).expect("key")
}

pub fn build() -> BootloaderBuild {
    BootloaderBuild {
        key_pem: Some(key().public().to_pem()),
        ..BootloaderBuild::default()
    }
}

pub fn version(s: &str) -> Version {
    s.parse().expect("version")
}

/// A Zephyr-like app for slot0 of `layout`, signed like `west build` does (header 0x200).
pub fn app_with(
    layout: &Layout,
    desc: &AppDescriptor,
    size: u32,
    key: Option<&SigningKey>,
    header_size: u16,
) -> Vec<u8> {
    let slot0 = layout.partition("slot0").expect("slot0");
    let bin = build_app(desc, layout.address(slot0), 0x200, size);
    sign(
        &bin,
        key,
        &SignOptions {
            header_size,
            version: version(&desc.version),
            slot_size: slot0.size,
            ..Default::default()
        },
    )
    .expect("signs")
}

pub fn app(layout: &Layout, ver: &str) -> Vec<u8> {
    app_with(
        layout,
        &AppDescriptor::new("app", ver),
        APP_SIZE,
        Some(&key()),
        0x200,
    )
}

/// A board with the bootloader and `primary` programmed, reset once (factory boot).
pub fn board_with(layout: Layout, build: &BootloaderBuild, primary: &[u8]) -> SimBoard {
    let mut b = SimBoard::new(layout);
    b.probe_program("mcuboot", &build_bootloader(build, 0))
        .expect("program mcuboot");
    b.probe_program("slot0", primary).expect("program slot0");
    b.reset();
    b
}

pub fn factory_board(ver: &str) -> SimBoard {
    let l = layout();
    let img = app(&l, ver);
    board_with(l, &build(), &img)
}

/// Version string of the running app, or a description of the core state.
pub fn running(b: &SimBoard) -> String {
    match b.core_state() {
        CoreState::Running { app, .. } => app.version.clone(),
        other => format!("{other:?}"),
    }
}

/// One v2 request, the decoded body of its (single) response.
pub fn request(b: &mut SimBoard, op: Op, grp: u16, id: u8, body: Value) -> Value {
    request_v(b, SmpVersion::V2, op, grp, id, body)
}

pub fn request_v(b: &mut SimBoard, v: SmpVersion, op: Op, grp: u16, id: u8, body: Value) -> Value {
    let out = b.smp_request(&Packet::request(v, op, grp, id, 7, body).encode());
    assert_eq!(out.len(), 1, "one response expected");
    let p = Packet::decode(&out[0]).expect("response decodes");
    assert_eq!(p.header.seq, 7);
    p.body
}

pub fn list(b: &mut SimBoard) -> Vec<SlotState> {
    let body = request(b, Op::Read, group::IMAGE, img_cmd::STATE, map([]));
    parse_image_state(&body).expect("image list")
}

pub fn slot(b: &mut SimBoard, n: u32) -> Option<SlotState> {
    list(b).into_iter().find(|s| s.slot == n)
}

pub fn state_write(
    b: &mut SimBoard,
    hash: Option<&[u8]>,
    confirm: bool,
) -> Result<Value, DeviceError> {
    let mut e = Vec::new();
    if let Some(h) = hash {
        e.push(("hash", Value::Bytes(h.to_vec())));
    }
    e.push(("confirm", Value::Bool(confirm)));
    let body = request(b, Op::Write, group::IMAGE, img_cmd::STATE, map(e));
    match response_error(&body) {
        Some(err) => Err(err),
        None => Ok(body),
    }
}

pub fn test_image(b: &mut SimBoard, hash: &[u8]) {
    state_write(b, Some(hash), false).expect("image test");
}

pub fn group_rc(e: Result<Value, DeviceError>) -> u32 {
    match e {
        Err(DeviceError::Group { group: 1, rc }) => rc,
        other => panic!("expected an image group error, got {other:?}"),
    }
}

/// Upload in `chunk`-byte pieces the way a client does: first chunk with len + sha, then
/// continue from whatever offset the device answers. Returns the device error if any.
pub fn upload(b: &mut SimBoard, data: &[u8], chunk: usize) -> Result<(), DeviceError> {
    upload_image(b, None, data, chunk)
}

/// [`upload`] with an `image` number in the first chunk (`mcumgr image upload -n N`).
pub fn upload_image(
    b: &mut SimBoard,
    image: Option<u32>,
    data: &[u8],
    chunk: usize,
) -> Result<(), DeviceError> {
    let sha = dfu_hil_sim::device::smp_server::file_sha(data);
    let mut off = 0usize;
    let mut rounds = 0;
    while off < data.len() {
        rounds += 1;
        assert!(rounds < 100_000, "upload does not progress");
        let end = (off + chunk).min(data.len());
        let mut e = vec![
            ("off", uint(off as u64)),
            ("data", Value::Bytes(data[off..end].to_vec())),
        ];
        if off == 0 {
            e.push(("len", uint(data.len() as u64)));
            e.push(("sha", Value::Bytes(sha.clone())));
            if let Some(n) = image {
                e.push(("image", uint(n as u64)));
            }
        }
        let body = request(b, Op::Write, group::IMAGE, img_cmd::UPLOAD, map(e));
        if let Some(err) = response_error(&body) {
            return Err(err);
        }
        off = dfu_hil_smp::map_uint(&body, "off").expect("off in upload response") as usize;
    }
    Ok(())
}

/// The bootloader's view of a slot trailer.
pub fn trailer(b: &SimBoard, part: &str) -> Trailer {
    let p = b.flash.partition(part).expect("partition").clone();
    let dev = b.flash.layout.device_of(&p).clone();
    let bl = build();
    let l = TrailerLayout {
        slot_size: p.size,
        max_align: bl.max_align,
        write_size: dev.write_size,
        erased: dev.erased,
        max_sectors: bl.max_sectors,
        mode: bl.mode,
    };
    let tail = b
        .flash
        .read(part, p.size - l.trailer_size(), l.trailer_size())
        .expect("read trailer");
    l.decode(&tail).expect("decode")
}

/// (magic, image_ok, copy_done): what MCUboot's own simulator asserts.
pub fn triple(t: &Trailer) -> (MagicState, Flag, Flag) {
    (t.magic, t.image_ok, t.copy_done)
}

pub const ERASED: (MagicState, Flag, Flag) = (MagicState::Unset, Flag::Unset, Flag::Unset);

/// The TLV hash mcumgr reports for a signed image file.
pub fn tlv_hash(img: &[u8]) -> Vec<u8> {
    dfu_hil_mcuboot::image::Image::parse(img)
        .expect("parses")
        .hash_tlv()
        .expect("hash tlv")
        .to_vec()
}

/// Has any log line (across boots) containing `needle`.
pub fn logged(b: &SimBoard, needle: &str) -> bool {
    b.log().iter().any(|l| l.contains(needle))
}
