//! The simulated application's SMP server: os_mgmt and img_mgmt answering as Zephyr's do (Zephyr
//! `subsys/mgmt/mcumgr/smp/src/smp.c`, `grp/os_mgmt/src/os_mgmt.c`, `grp/img_mgmt/src/img_mgmt.c`,
//! `img_mgmt_state.c`, `zephyr_img_mgmt.c`), byte for byte where documented — indefinite-length
//! maps, key order, v1 translation of group errors.
//!
//! The server keeps only what Zephyr keeps in RAM (the upload session); everything else is read
//! from flash on each request, as img_mgmt does, so what it reports is always what MCUboot will
//! see at the next reset — unless the two are built differently, which is the point of modelling
//! the app's own `max_align` and drivers.

use crate::device::flash_map::FlashMap;
use ciborium::value::Value;
use dfu_hil_firmware::{AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::image::{Image, IMAGE_MAGIC};
use dfu_hil_mcuboot::swap::{img_mgmt_flags, swap_type};
use dfu_hil_mcuboot::trailer::{Field, Flag, MagicState, SwapType, TrailerLayout, UpgradeMode};
use dfu_hil_smp::errors::group_err_to_v1;
use dfu_hil_smp::header::{group, img_cmd, os_cmd, Header, Op, RawHeader, Version};
use dfu_hil_smp::packet::Packet;
use sha2::{Digest, Sha256};

mod basic;
pub mod versions;

/// `MGMT_ERR_*` codes the server itself produces.
mod mgmt {
    pub const EUNKNOWN: u32 = 1;
    pub const EINVAL: u32 = 3;
    pub const EBADSTATE: u32 = 6;
    pub const ENOTSUP: u32 = 8;
    pub const ECORRUPT: u32 = 9;
    pub const UNSUPPORTED_TOO_NEW: u32 = 13;
}

/// `IMG_MGMT_ERR_*` (Zephyr `include/zephyr/mgmt/mcumgr/grp/img_mgmt/img_mgmt.h`).
pub mod img_err {
    pub const UNKNOWN: u32 = 1;
    pub const HASH_NOT_FOUND: u32 = 8;
    pub const NO_FREE_SLOT: u32 = 9;
    pub const FLASH_WRITE_FAILED: u32 = 12;
    pub const FLASH_ERASE_FAILED: u32 = 13;
    pub const INVALID_SLOT: u32 = 14;
    pub const INVALID_OFFSET: u32 = 20;
    pub const INVALID_LENGTH: u32 = 21;
    pub const INVALID_IMAGE_HEADER: u32 = 22;
    pub const INVALID_IMAGE_HEADER_MAGIC: u32 = 23;
    pub const INVALID_HASH: u32 = 24;
    pub const CURRENT_VERSION_IS_NEWER: u32 = 27;
    pub const IMAGE_ALREADY_PENDING: u32 = 28;
    pub const INVALID_IMAGE_VECTOR_TABLE: u32 = 29;
    pub const INVALID_IMAGE_TOO_LARGE: u32 = 30;
    pub const INVALID_IMAGE_DATA_OVERRUN: u32 = 31;
    pub const IMAGE_SETTING_TEST_TO_ACTIVE_DENIED: u32 = 33;
}

/// What the board must do after a request.
#[derive(Debug, Default)]
pub struct Reply {
    /// Encoded response packets (header + CBOR), in order.
    pub packets: Vec<Vec<u8>>,
    /// `os reset` was accepted: reboot after sending.
    pub reset: bool,
    /// Lines the app logged while answering (`crate::device::img_flash_areas`).
    pub log: Vec<String>,
}

/// An upload in progress (`struct img_mgmt_upload_state`, RAM only: lost on reset).
#[derive(Debug, Clone)]
struct Upload {
    image: usize,
    partition: String,
    off: u32,
    len: u32,
    sha: Vec<u8>,
    /// Bytes waiting for a full write block (stream_flash buffers the same way).
    pending: Vec<u8>,
    written: u32,
    /// Where in the partition the image starts (one sector in for swap-using-offset,
    /// `boot_get_image_start_offset`).
    base: u32,
}

/// Everything the app can see of the device when it answers.
pub struct AppView<'a> {
    pub flash: &'a mut FlashMap,
    pub app: &'a AppDescriptor,
    pub boot: &'a BootloaderBuild,
    /// Image number and slot the app runs from.
    pub active_image: usize,
}

/// Outcome of a handler: a response body or a group/MGMT error.
enum Answer {
    Body(Vec<(Value, Value)>),
    Mgmt(u32),
    Img(u32),
    /// Another group's error (`smp_add_cmd_err`).
    Group(u16, u32),
}

#[derive(Debug, Default)]
pub struct SmpServer {
    upload: Option<Upload>,
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn get<'v>(body: &'v Value, key: &str) -> Option<&'v Value> {
    match body {
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Typed field access with zcbor_bulk semantics: absent is fine, a wrong type is EINVAL.
fn uint(body: &Value, key: &str) -> Result<Option<u64>, u32> {
    match get(body, key) {
        None => Ok(None),
        Some(Value::Integer(i)) => u64::try_from(*i).map(Some).map_err(|_| mgmt::EINVAL),
        Some(_) => Err(mgmt::EINVAL),
    }
}

fn bytes<'v>(body: &'v Value, key: &str) -> Result<Option<&'v [u8]>, u32> {
    match get(body, key) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b)),
        Some(_) => Err(mgmt::EINVAL),
    }
}

fn boolean(body: &Value, key: &str) -> Result<Option<bool>, u32> {
    match get(body, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(mgmt::EINVAL),
    }
}

/// A handler that decodes input needs a map (an empty payload is not one).
fn require_map(body: &Value) -> Result<(), u32> {
    match body {
        Value::Map(_) => Ok(()),
        _ => Err(mgmt::EINVAL),
    }
}

/// One slot as img_mgmt sees it.
struct SlotInfo {
    slot: u32,
    image: Image,
    hash: Vec<u8>,
}

impl SmpServer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget RAM state (a reset).
    pub fn reset(&mut self) {
        self.upload = None;
    }

    /// Handle one transport packet (which may hold several requests, processed in order; Zephyr
    /// stops at the first that fails to parse).
    pub fn handle(&mut self, view: &mut AppView<'_>, mut data: &[u8]) -> Reply {
        let mut reply = Reply::default();
        while data.len() >= 8 {
            let Ok(raw) = RawHeader::decode(data) else {
                return reply;
            };
            let hdr = match raw.to_header() {
                Ok(h) => h,
                Err(_) => {
                    // Reserved version bits: answered (version clamped to v2) with TOO_NEW;
                    // an undefined op has nothing to answer with.
                    let Some(op) = Op::from_bits(raw.op_bits) else {
                        return reply;
                    };
                    let hdr = Header {
                        op,
                        version: Version::V2,
                        flags: raw.flags,
                        len: raw.len,
                        group: raw.group,
                        seq: raw.seq,
                        id: raw.id,
                    };
                    reply
                        .packets
                        .push(error_packet(&hdr, mgmt::UNSUPPORTED_TOO_NEW));
                    return reply;
                }
            };
            let total = 8 + hdr.len as usize;
            if data.len() < total {
                reply.packets.push(error_packet(&hdr, mgmt::ECORRUPT));
                return reply;
            }
            let body = match dfu_hil_smp::packet::decode_cbor(&data[8..total]) {
                Ok(v) => v,
                Err(_) => {
                    reply.packets.push(error_packet(&hdr, mgmt::EINVAL));
                    return reply;
                }
            };
            data = &data[total..];
            reply
                .log
                .extend(crate::device::img_flash_areas::request_log(
                    &view.flash.layout,
                    crate::device::img_flash_areas::AppFlashDrivers::NCS_APP,
                    hdr.group,
                    hdr.id,
                    hdr.op == Op::Write,
                    &body,
                ));
            let answer = self.dispatch(view, &hdr, &body, &mut reply.reset);
            // smp_process_request_packet stops at the first request whose handler failed at the
            // SMP level; group errors are normal responses and processing goes on.
            let stop = matches!(answer, Answer::Mgmt(_));
            reply.packets.push(match answer {
                Answer::Body(m) => Packet::response_to(&hdr, Value::Map(m)).encode_zephyr(),
                Answer::Mgmt(rc) => error_packet(&hdr, rc),
                Answer::Img(rc) => group_error_packet(&hdr, group::IMAGE, rc),
                Answer::Group(g, rc) => group_error_packet(&hdr, g, rc),
            });
            if stop {
                return reply;
            }
        }
        reply
    }

    fn dispatch(
        &mut self,
        view: &mut AppView<'_>,
        hdr: &Header,
        body: &Value,
        reset: &mut bool,
    ) -> Answer {
        if !view.app.smp_groups.contains(&hdr.group) || hdr.op.is_response() {
            return Answer::Mgmt(mgmt::ENOTSUP);
        }
        let write = hdr.op == Op::Write;
        let r = match (hdr.group, hdr.id, write) {
            (group::OS, os_cmd::ECHO, _) => os_echo(body),
            (group::OS, os_cmd::RESET, true) => {
                *reset = true;
                Ok(Answer::Body(vec![]))
            }
            (group::OS, os_cmd::PARAMS, false) => Ok(Answer::Body(vec![
                (text("buf_size"), Value::from(view.app.buf_size)),
                (text("buf_count"), Value::from(view.app.buf_count)),
            ])),
            (group::OS, os_cmd::BOOTLOADER_INFO, false) => bootloader_info(view, body),
            (group::IMAGE, img_cmd::STATE, false) => Ok(self.state_read(view)),
            (group::IMAGE, img_cmd::STATE, true) => self.state_write(view, body),
            (group::IMAGE, img_cmd::UPLOAD, true) => self.upload(view, body),
            (group::IMAGE, img_cmd::ERASE, true) => self.erase(view, body),
            (group::ZEPHYR_BASIC, basic::ERASE_STORAGE, true) => Ok(basic::erase_storage(view)),
            _ => Err(mgmt::ENOTSUP),
        };
        r.unwrap_or_else(Answer::Mgmt)
    }

    /// The trailer geometry the *app's* bootutil uses (its own max-align).
    fn app_layout(view: &AppView<'_>, part: &str) -> TrailerLayout {
        let p = view.flash.partition(part).expect("pair partitions exist");
        let dev = view.flash.layout.device_of(p);
        TrailerLayout {
            slot_size: p.size,
            max_align: view.app.max_align,
            write_size: dev.write_size,
            erased: dev.erased,
            max_sectors: view.boot.max_sectors,
            mode: view.boot.mode,
        }
    }

    fn pair_parts(view: &AppView<'_>, image: usize) -> Option<(String, String)> {
        view.flash
            .layout
            .images
            .get(image)
            .map(|p| (p.primary.clone(), p.secondary.clone()))
    }

    /// NSIB + upgradable MCUboot: the MCUboot image (the image number after the app's) has no
    /// slots of its own; its update shares the app's secondary slot (NCS sdk-mcuboot: "image 0
    /// and image 1 share the same secondary slot").
    fn upload_image(view: &AppView<'_>, image: usize) -> usize {
        let images = view.flash.layout.images.len();
        let nsib = view.boot.nsib_slot.is_some()
            && view
                .flash
                .partition(dfu_hil_firmware::nsib::SLOTS[0])
                .is_ok()
            && view
                .flash
                .partition(dfu_hil_firmware::nsib::SLOTS[1])
                .is_ok();
        if nsib && image == images {
            0
        } else {
            image
        }
    }

    /// `boot_get_image_start_offset`: swap-using-offset keeps the secondary image one sector in,
    /// except while a revert is pending (the old image is then at the slot start).
    fn image_start(view: &AppView<'_>, image: usize, part: &str) -> u32 {
        let secondary = Self::pair_parts(view, image).is_some_and(|(_, s)| s == part);
        if view.boot.mode != UpgradeMode::SwapOffset
            || !secondary
            || Self::swap_type(view, image) == SwapType::Revert
        {
            return 0;
        }
        view.flash.sector_size(part).unwrap_or(0)
    }

    /// The slot the app runs from. Always the primary in swap modes; in direct-xip the slot
    /// whose code is this app (the running image's vector table points into its own slot),
    /// the primary winning a tie as MCUboot's equal-version rule does.
    fn active_slot(view: &AppView<'_>, image: usize) -> u32 {
        if view.boot.mode != UpgradeMode::DirectXip {
            return 0;
        }
        let Some((pri, sec)) = Self::pair_parts(view, image) else {
            return 0;
        };
        for (slot, part) in [(0u32, pri), (1u32, sec)] {
            if Self::runs_this_app(view, &part) {
                return slot;
            }
        }
        0
    }

    /// The image in `part` is linked for `part` and carries the running app's descriptor.
    fn runs_this_app(view: &AppView<'_>, part: &str) -> bool {
        let Ok(p) = view.flash.partition(part) else {
            return false;
        };
        let base = view.flash.layout.address(p);
        let size = p.size;
        let Ok(h) = view.flash.read(part, 0, 32) else {
            return false;
        };
        let Ok(hdr) = dfu_hil_mcuboot::image::ImageHeader::parse(&h) else {
            return false;
        };
        let Ok(vt) = view.flash.read(part, hdr.hdr_size as u32, 8) else {
            return false;
        };
        let target = u32::from_le_bytes([vt[4], vt[5], vt[6], vt[7]]) & !1;
        if target < base || target >= base + size {
            return false;
        }
        let off = target - base;
        view.flash
            .read(part, off, (size - off).min(4096))
            .ok()
            .and_then(|code| dfu_hil_firmware::read_app(&code))
            .is_some_and(|a| &a == view.app)
    }

    /// `mcuboot_swap_type_multi` as the app computes it.
    fn swap_type(view: &AppView<'_>, image: usize) -> SwapType {
        if view.boot.mode == UpgradeMode::DirectXip {
            // No swap: the trailers carry no request in direct-xip without revert.
            return SwapType::None;
        }
        let (pri, sec) = Self::pair_parts(view, image).expect("image exists");
        let read = |part: &str| read_trailer(view.flash, part, &Self::app_layout(view, part));
        // The netcore's RAM-emulated primary is blank as far as the app can tell.
        let pri_t = read(&pri).or_else(|| {
            view.flash.is_ram_emulated(&pri).then(|| {
                let l = Self::app_layout(view, &pri);
                l.decode(&vec![l.erased; l.tail().1 as usize]).ok()
            })?
        });
        match (pri_t, read(&sec)) {
            (Some(p), s) => swap_type(p.state(), s.map(|t| t.state()), view.boot.mode),
            (None, _) => SwapType::Panic,
        }
    }

    fn slots(view: &AppView<'_>, image: usize) -> Vec<SlotInfo> {
        let Some((pri, sec)) = Self::pair_parts(view, image) else {
            return vec![];
        };
        let mut out = Vec::new();
        for (slot, part) in [(0u32, pri), (1u32, sec)] {
            let Ok(size) = view.flash.size(&part) else {
                continue;
            };
            let start = Self::image_start(view, image, &part);
            let Ok(bytes) = view.flash.read(&part, start, size - start) else {
                continue;
            };
            // img_mgmt skips slots whose header or TLVs do not parse.
            if let Ok(image) = Image::parse(&bytes) {
                if let Some(h) = image.hash_tlv() {
                    let hash = h.to_vec();
                    out.push(SlotInfo { slot, image, hash });
                }
            }
        }
        out
    }

    fn state_read(&self, view: &AppView<'_>) -> Answer {
        let mut images = Vec::new();
        let multi = view.flash.layout.images.len() > 1;
        for image in 0..view.flash.layout.images.len() {
            let st = Self::swap_type(view, image);
            let active_slot = if image == view.active_image {
                Self::active_slot(view, image)
            } else {
                u32::MAX
            };
            for s in Self::slots(view, image) {
                let f = img_mgmt_flags(st, s.slot, active_slot);
                let mut m = Vec::new();
                if multi {
                    m.push((text("image"), Value::from(image as u64)));
                }
                m.push((text("slot"), Value::from(s.slot)));
                m.push((text("version"), text(&s.image.header.version.smp_string())));
                m.push((text("hash"), Value::Bytes(s.hash.clone())));
                m.push((text("bootable"), Value::Bool(s.image.is_bootable())));
                m.push((text("pending"), Value::Bool(f.pending)));
                m.push((text("confirmed"), Value::Bool(f.confirmed)));
                m.push((text("active"), Value::Bool(f.active)));
                m.push((text("permanent"), Value::Bool(f.permanent)));
                images.push(Value::Map(m));
            }
        }
        Answer::Body(vec![
            (text("images"), Value::Array(images)),
            (text("splitStatus"), Value::from(0u64)),
        ])
    }

    /// `img_mgmt_state_write` + `img_mgmt_set_next_boot_slot`.
    fn state_write(&mut self, view: &mut AppView<'_>, body: &Value) -> Result<Answer, u32> {
        if view.boot.mode == UpgradeMode::DirectXip {
            // CONFIG_MCUBOOT_BOOTLOADER_MODE_DIRECT_XIP: no state-write handler.
            return Err(mgmt::ENOTSUP);
        }
        require_map(body)?;
        if versions::state_write_sets_pending_directly(&view.app.release) {
            return self.state_write_before_3_4_99(view, body);
        }
        let hash = bytes(body, "hash")?;
        let confirm = boolean(body, "confirm")?.unwrap_or(false);
        let image = view.active_image;
        let (slot_image, slot) = match hash.filter(|h| !h.is_empty()) {
            None if confirm => (image, 0u32),
            None => return Ok(Answer::Img(img_err::INVALID_HASH)),
            Some(h) if h.len() != 32 => return Ok(Answer::Img(img_err::INVALID_HASH)),
            Some(h) => {
                let mut found = None;
                for i in 0..view.flash.layout.images.len() {
                    if let Some(s) = Self::slots(view, i).into_iter().find(|s| s.hash == h) {
                        found = Some((i, s.slot));
                        break;
                    }
                }
                match found {
                    Some(f) => f,
                    None => return Ok(Answer::Img(img_err::HASH_NOT_FOUND)),
                }
            }
        };
        let active_slot = 0;
        if !confirm && slot_image == image && slot == active_slot {
            return Ok(Answer::Img(img_err::IMAGE_SETTING_TEST_TO_ACTIVE_DENIED));
        }
        // img_mgmt_set_next_boot_slot: what the next boot will do decides what is allowed.
        let st = Self::swap_type(view, slot_image);
        let other = 1 - active_slot;
        match st {
            SwapType::Test => {
                // Re-testing the slot already set for test is a no-op; anything else (even
                // confirming the running image) is refused until the reset.
                if !confirm && slot == other {
                    return Ok(self.state_read(view));
                }
                return Ok(Answer::Img(img_err::IMAGE_ALREADY_PENDING));
            }
            SwapType::Perm => {
                if confirm && slot == other {
                    return Ok(self.state_read(view));
                }
                return Ok(Answer::Img(img_err::IMAGE_ALREADY_PENDING));
            }
            SwapType::Revert => {
                if confirm && slot == other {
                    // "Already confirmed in this mode": success, nothing written.
                    return Ok(self.state_read(view));
                }
                if !confirm {
                    return Ok(Answer::Img(img_err::IMAGE_ALREADY_PENDING));
                }
            }
            SwapType::None | SwapType::Fail | SwapType::Panic => {
                // NORMAL boot to the active slot: confirming it is a no-op (nothing written,
                // even for a padded image whose image_ok is unset).
                if confirm && slot == active_slot {
                    return Ok(self.state_read(view));
                }
            }
        }
        let (pri, sec) = Self::pair_parts(view, slot_image).expect("image exists");
        let rc = if slot == active_slot {
            self.set_confirmed(view, &pri)
        } else {
            self.set_pending(view, &sec, slot_image, confirm)
        };
        match rc {
            Ok(()) => Ok(self.state_read(view)),
            Err(code) => Ok(Answer::Img(code)),
        }
    }

    /// `img_mgmt_state_write` as Zephyr had it up to 3.4.0 (NCS <= 2.4, sdk-zephyr 3.3.99):
    /// a slot other than the running one goes through `img_mgmt_state_set_pending` →
    /// `boot_request_upgrade_multi` → MCUboot `boot_set_pending_multi`, which writes nothing
    /// when the secondary's magic is already good ("swap already scheduled") and returns 0, so
    /// the answer is the image list with the slot still pending (and not permanent). Errors
    /// are the legacy `MGMT_ERR_*` (EINVAL for a bad or unknown hash, EBADSTATE for a
    /// confirmed slot other than 0 or a confirm of the running image while a test is pending).
    fn state_write_before_3_4_99(
        &mut self,
        view: &mut AppView<'_>,
        body: &Value,
    ) -> Result<Answer, u32> {
        let hash = bytes(body, "hash")?;
        let confirm = boolean(body, "confirm")?.unwrap_or(false);
        let image = view.active_image;
        let (slot_image, slot) = match hash.filter(|h| !h.is_empty()) {
            None if confirm => (image, 0u32),
            None => return Err(mgmt::EINVAL),
            Some(h) => {
                let mut found = None;
                for i in 0..view.flash.layout.images.len() {
                    if let Some(s) = Self::slots(view, i).into_iter().find(|s| s.hash == h) {
                        found = Some((i, s.slot));
                        break;
                    }
                }
                found.ok_or(mgmt::EINVAL)?
            }
        };
        let st = Self::swap_type(view, slot_image);
        if slot == 0 && confirm {
            // img_mgmt_state_confirm: refused while a test (or a permanent swap) is pending.
            if matches!(st, SwapType::Test | SwapType::Perm) {
                return Err(mgmt::EBADSTATE);
            }
            let (pri, _) = Self::pair_parts(view, slot_image).expect("image exists");
            return match self.set_confirmed(view, &pri) {
                Ok(()) => Ok(self.state_read(view)),
                Err(_) => Err(mgmt::EUNKNOWN),
            };
        }
        let active = if slot_image == image { 0 } else { u32::MAX };
        if img_mgmt_flags(st, slot, active).confirmed && slot != 0 {
            return Err(mgmt::EBADSTATE);
        }
        if slot == 0 {
            // Test of the running slot: nothing to schedule (not modelled further).
            return Ok(self.state_read(view));
        }
        let (_, sec) = Self::pair_parts(view, slot_image).expect("image exists");
        match self.set_pending(view, &sec, slot_image, confirm) {
            Ok(()) => Ok(self.state_read(view)),
            Err(_) => Err(mgmt::EUNKNOWN),
        }
    }

    /// `boot_set_confirmed`: write image_ok in the running slot.
    fn set_confirmed(&self, view: &mut AppView<'_>, part: &str) -> Result<(), u32> {
        let l = Self::app_layout(view, part);
        let t = read_trailer(view.flash, part, &l).ok_or(img_err::UNKNOWN)?;
        match t.magic {
            MagicState::Unset => Ok(()),
            MagicState::Bad => Err(img_err::INVALID_IMAGE_VECTOR_TABLE),
            MagicState::Good if t.image_ok == Flag::Unset => {
                let w = l.flag_write(Field::ImageOk, 1);
                view.flash
                    .write(part, w.offset, &w.data)
                    .map_err(|_| img_err::FLASH_WRITE_FAILED)
            }
            MagicState::Good => Ok(()),
        }
    }

    /// `boot_set_pending`: magic, (image_ok), swap_info in the secondary.
    fn set_pending(
        &self,
        view: &mut AppView<'_>,
        part: &str,
        image: usize,
        permanent: bool,
    ) -> Result<(), u32> {
        let l = Self::app_layout(view, part);
        let t = read_trailer(view.flash, part, &l).ok_or(img_err::UNKNOWN)?;
        match t.magic {
            MagicState::Good => Ok(()),
            // BOOT_EBADIMAGE, translated by img_mgmt_set_next_boot_slot_common.
            MagicState::Bad => Err(img_err::INVALID_IMAGE_HEADER_MAGIC),
            MagicState::Unset => {
                let mut writes = vec![l.magic_write()];
                if permanent {
                    writes.push(l.flag_write(Field::ImageOk, 1));
                }
                let st = if permanent {
                    SwapType::Perm
                } else {
                    SwapType::Test
                };
                writes.push(l.swap_info_write(image as u8, st));
                for w in writes {
                    view.flash
                        .write(part, w.offset, &w.data)
                        .map_err(|_| img_err::FLASH_WRITE_FAILED)?;
                }
                Ok(())
            }
        }
    }

    /// Which slot an upload goes to, or NO_FREE_SLOT.
    fn upload_target(view: &AppView<'_>, image: usize) -> Result<String, u32> {
        let (pri, sec) = Self::pair_parts(view, image).ok_or(img_err::NO_FREE_SLOT)?;
        if view.boot.mode == UpgradeMode::DirectXip && image == view.active_image {
            // The slot the app does not run from.
            return Ok(if Self::active_slot(view, image) == 0 {
                sec
            } else {
                pri
            });
        }
        if image == view.active_image {
            match Self::swap_type(view, image) {
                // Pending, or holding the image a revert will restore: in use.
                SwapType::Test | SwapType::Perm | SwapType::Revert => {
                    return Err(img_err::NO_FREE_SLOT)
                }
                _ => {}
            }
        }
        Ok(sec)
    }

    /// `img_mgmt_upload` with the first-chunk inspection of `img_mgmt_upload_inspect`.
    fn upload(&mut self, view: &mut AppView<'_>, body: &Value) -> Result<Answer, u32> {
        require_map(body)?;
        let off = uint(body, "off")?;
        let data = bytes(body, "data")?.unwrap_or(&[]);
        let len = uint(body, "len")?;
        let sha = bytes(body, "sha")?;
        let image = Self::upload_image(view, uint(body, "image")?.unwrap_or(0) as usize);
        let upgrade = boolean(body, "upgrade")?.unwrap_or(false);
        let Some(off) = off.map(|o| o as u32) else {
            return Ok(Answer::Img(img_err::INVALID_OFFSET));
        };
        if off == 0 {
            if data.len() < 32 {
                return Ok(Answer::Img(img_err::INVALID_IMAGE_HEADER));
            }
            let Some(len) = len.map(|l| l as u32) else {
                return Ok(Answer::Img(img_err::INVALID_LENGTH));
            };
            if u32::from_le_bytes(data[..4].try_into().expect("4 bytes")) != IMAGE_MAGIC {
                return Ok(Answer::Img(img_err::INVALID_IMAGE_HEADER_MAGIC));
            }
            let sha = sha.unwrap_or(&[]);
            if sha.len() > 32 {
                return Ok(Answer::Img(img_err::INVALID_HASH));
            }
            if let Some(u) = &self.upload {
                if !sha.is_empty() && u.sha == sha && u.image == image {
                    return Ok(off_answer(u.off));
                }
            }
            let part = match Self::upload_target(view, image) {
                Ok(p) => p,
                Err(code) => return Ok(Answer::Img(code)),
            };
            let size = view.flash.size(&part).map_err(|_| img_err::UNKNOWN)?;
            if len > size - Self::image_start(view, image, &part) {
                return Ok(Answer::Img(img_err::INVALID_IMAGE_TOO_LARGE));
            }
            if upgrade {
                if let Ok(new) = dfu_hil_mcuboot::image::ImageHeader::parse(data) {
                    let (pri, _) = Self::pair_parts(view, image).expect("image exists");
                    let running = view
                        .flash
                        .read(&pri, 0, 32)
                        .ok()
                        .and_then(|h| dfu_hil_mcuboot::image::ImageHeader::parse(&h).ok());
                    if let Some(run) = running {
                        if run.version.cmp_without_build(&new.version) != std::cmp::Ordering::Less {
                            return Ok(Answer::Img(img_err::CURRENT_VERSION_IS_NEWER));
                        }
                    }
                }
            }
            // Erase what the image needs plus the trailer sectors before the first reply.
            self.upload = None;
            let sector = view
                .flash
                .sector_size(&part)
                .map_err(|_| img_err::UNKNOWN)?;
            let l = Self::app_layout(view, &part);
            // Swap-using-offset: the image goes one sector in; the erase still starts at the
            // slot start (img_mgmt_erase_image_data erases from 0), so the first sector holds
            // no stale header that MCUboot would take for an upload at the wrong address.
            let start = Self::image_start(view, image, &part);
            let body_end = (start + len).div_ceil(sector) * sector;
            let trailer_start = (size - l.trailer_size()) / sector * sector;
            let erase_to = body_end.min(size);
            if erase_to > 0 {
                view.flash
                    .erase(&part, 0, erase_to)
                    .map_err(|_| img_err::UNKNOWN)?;
            }
            if trailer_start >= erase_to {
                view.flash
                    .erase(&part, trailer_start, size - trailer_start)
                    .map_err(|_| img_err::UNKNOWN)?;
            }
            self.upload = Some(Upload {
                image,
                partition: part,
                off: 0,
                len,
                sha: sha.to_vec(),
                pending: Vec::new(),
                written: 0,
                base: start,
            });
        }
        let Some(u) = self.upload.as_mut() else {
            return Ok(off_answer(0));
        };
        if off != u.off {
            return Ok(off_answer(u.off));
        }
        if off as u64 + data.len() as u64 > u.len as u64 {
            return Ok(Answer::Img(img_err::INVALID_IMAGE_DATA_OVERRUN));
        }
        u.pending.extend_from_slice(data);
        u.off += data.len() as u32;
        let w = view.flash.write_size(&u.partition).unwrap_or(1) as usize;
        let last = u.off == u.len;
        let mut take = u.pending.len() / w * w;
        if last && take < u.pending.len() {
            let erased = view.flash.erased_value(&u.partition).unwrap_or(0xff);
            u.pending.resize(u.pending.len().div_ceil(w) * w, erased);
            take = u.pending.len();
        }
        if take > 0 {
            let chunk: Vec<u8> = u.pending.drain(..take).collect();
            if view
                .flash
                .write(&u.partition, u.base + u.written, &chunk)
                .is_err()
            {
                self.upload = None;
                return Ok(Answer::Img(img_err::FLASH_WRITE_FAILED));
            }
            u.written += take as u32;
        }
        let new_off = u.off;
        if last {
            self.upload = None;
        }
        Ok(off_answer(new_off))
    }

    fn erase(&mut self, view: &mut AppView<'_>, body: &Value) -> Result<Answer, u32> {
        let slot = if matches!(body, Value::Map(_)) {
            uint(body, "slot")?.unwrap_or(1) as u32
        } else {
            1
        };
        let (pri, sec) = Self::pair_parts(view, view.active_image).ok_or(mgmt::EINVAL)?;
        let part = match slot {
            0 => pri,
            1 => sec,
            _ => return Ok(Answer::Img(img_err::INVALID_SLOT)),
        };
        let st = Self::swap_type(view, view.active_image);
        let has_image = Self::slots(view, view.active_image)
            .iter()
            .any(|s| s.slot == slot);
        let in_use = slot == Self::active_slot(view, view.active_image)
            || matches!(st, SwapType::Test | SwapType::Perm | SwapType::Revert);
        if has_image && in_use {
            return Ok(Answer::Img(img_err::NO_FREE_SLOT));
        }
        self.upload = None;
        if view.flash.erase_all(&part).is_err() {
            return Ok(Answer::Img(img_err::FLASH_ERASE_FAILED));
        }
        Ok(Answer::Body(vec![]))
    }
}

fn read_trailer(
    flash: &FlashMap,
    part: &str,
    l: &TrailerLayout,
) -> Option<dfu_hil_mcuboot::trailer::Trailer> {
    let (off, len) = l.tail();
    let tail = flash.read(part, off, len).ok()?;
    l.decode(&tail).ok()
}

fn off_answer(off: u32) -> Answer {
    Answer::Body(vec![(text("off"), Value::from(off))])
}

fn os_echo(body: &Value) -> Result<Answer, u32> {
    require_map(body)?;
    match get(body, "d") {
        Some(Value::Text(t)) => Ok(Answer::Body(vec![(text("r"), text(t))])),
        _ => Err(mgmt::EINVAL),
    }
}

fn bootloader_info(view: &AppView<'_>, body: &Value) -> Result<Answer, u32> {
    use dfu_hil_mcuboot::trailer::UpgradeMode::*;
    match get(body, "query") {
        None => Ok(Answer::Body(vec![(text("bootloader"), text("MCUboot"))])),
        Some(Value::Text(q)) if q == "mode" => {
            let mode: i64 = match view.boot.mode {
                SwapScratch => 1,
                OverwriteOnly => 2,
                SwapMove => 3,
                DirectXip => 4,
                SwapOffset => 5,
            };
            let mut m = vec![(text("mode"), Value::from(mode))];
            if view.boot.downgrade_prevention {
                m.push((text("no-downgrade"), Value::Bool(true)));
            }
            Ok(Answer::Body(m))
        }
        // OS_MGMT_ERR_QUERY_YIELDS_NO_ANSWER
        Some(_) => Err(mgmt::EINVAL),
    }
}

/// `{"rc": n}`: SMP-level errors are always in the v1 form, even for v2 requests.
fn error_packet(hdr: &Header, rc: u32) -> Vec<u8> {
    Packet::response_to(hdr, Value::Map(vec![(text("rc"), Value::from(rc))])).encode_zephyr()
}

/// A group error: `err {group, rc}` for v2 requests, the translated `rc` for v1.
fn group_error_packet(hdr: &Header, grp: u16, rc: u32) -> Vec<u8> {
    if hdr.version == Version::V1 {
        return error_packet(hdr, group_err_to_v1(grp, rc));
    }
    let err = Value::Map(vec![
        (text("group"), Value::from(grp)),
        (text("rc"), Value::from(rc)),
    ]);
    Packet::response_to(hdr, Value::Map(vec![(text("err"), err)])).encode_zephyr()
}

/// SHA-256 of a whole file, as clients send in `sha`.
pub fn file_sha(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}
