//! The bodies. Each takes the fuzzer's bytes, drives one decoder or loader (and whatever a
//! caller does next with its result), and returns nothing: the only failure is a panic, a hang
//! or an unbounded allocation. Errors are the expected outcome for most inputs.

use std::path::{Path, PathBuf};

use dfu_hil_build::facts::{AppFacts, McubootFacts, SysbuildFacts};
use dfu_hil_build::images::ihex as hex;
use dfu_hil_build::kconfig::{parse_number, Kconfig, Value as KValue};
use dfu_hil_build::pm;
use dfu_hil_mcuboot::image::Image;
use dfu_hil_mcuboot::inspect::{inspect, max_image_size, ElfInfo, InspectOptions};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::swap::{swap_type, SlotSwapState};
use dfu_hil_mcuboot::trailer::{Field, SwapType, TrailerLayout, UpgradeMode};
use dfu_hil_smp::packet::{decode_cbor, render_value};
use dfu_hil_smp::serial::{DeviceLineDecoder, LineDecoder};
use dfu_hil_smp::{
    parse_image_state, parse_slot_info, parse_taskstat, response_error, Header, Packet, RawHeader,
};

/// Where loaders believe their text came from. Scenarios sit beside the bundled ones so a seed's
/// `include: common/…` resolves; nothing is ever written there.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Text loaders get text: invalid UTF-8 is rejected by the file readers before parsing.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Serial framing, both directions: the host's tolerant decoder fed in uneven bursts, and the
/// device-side decoder with Zephyr's line buffers (default and a tight setting).
pub fn serial_framing(data: &[u8]) {
    let mut host = LineDecoder::new();
    let split = data.first().map_or(1, |&b| usize::from(b % 7) + 1);
    for chunk in data.chunks(split) {
        for event in host.push(chunk) {
            let _ = format!("{event:?}");
        }
    }
    let _ = host.in_frame();

    let mut device = DeviceLineDecoder::new();
    for packet in device.push(data) {
        let _ = Packet::decode(&packet);
    }
    let mut tight = DeviceLineDecoder::with_max_line(split * 16);
    tight.set_line_count(Some(split % 3));
    tight.set_netbuf_size(Some(split * 40));
    for chunk in data.chunks(split * 5) {
        tight.receive(chunk);
        let _ = tight.process();
    }
    let _ = tight.stats().total();
}

/// SMP packet header and CBOR body, then what the client does with a response body.
pub fn smp_packet(data: &[u8]) {
    if let Ok(raw) = RawHeader::decode(data) {
        let _ = raw.to_header();
    }
    if let Ok(h) = Header::decode(data) {
        let _ = h.response_header().encode();
        let _ = dfu_hil_smp::header::command_name(h.group, h.id);
    }
    let _ = Packet::decode(data);
    let mut rest = data;
    while let Ok((p, used)) = Packet::decode_prefix(rest) {
        body_consumers(&p.body);
        let _ = p.encode_zephyr();
        if used == 0 || used > rest.len() {
            break;
        }
        rest = &rest[used..];
    }
    if let Ok(v) = decode_cbor(data) {
        body_consumers(&v);
    }
}

fn body_consumers(v: &dfu_hil_smp::Value) {
    let _ = render_value(v);
    let _ = response_error(v);
    let _ = parse_image_state(v);
    let _ = parse_slot_info(v);
    let _ = parse_taskstat(v);
    let _ = dfu_hil_smp::packet::encode_cbor_zephyr(v);
}

/// Image parse, verification without a key, and inspection with the options the bytes pick.
pub fn image(data: &[u8]) {
    if let Ok(img) = Image::parse(data) {
        let _ = img.verify(data, None);
        let _ = img.boot_record();
        let _ = img.dependencies();
        let _ = img.security_counter();
        let _ = img.unknown_tlvs().count();
        let _ = img.is_bootable();
    }
    let _ = inspect(data, &InspectOptions::default());
    // A slot size and mode taken from the tail, as a user's flags might give them.
    if let Some(tail) = data.len().checked_sub(6).and_then(|at| data.get(at..)) {
        let opts = InspectOptions {
            slot_size: Some(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]])),
            slot_base: Some(u32::from(tail[4]) << 12),
            mode: Some(mode(tail[5])),
            max_sectors: Some(u32::from(tail[4]) * 8),
            write_size: Some(u32::from(tail[5] & 0x3f)),
            erased: Some(tail[5]),
            ..InspectOptions::default()
        };
        let _ = inspect(data, &opts);
    }
    let _ = ElfInfo::parse(data, "fuzz.elf");
}

fn mode(b: u8) -> UpgradeMode {
    match b % 5 {
        0 => UpgradeMode::SwapMove,
        1 => UpgradeMode::SwapScratch,
        2 => UpgradeMode::SwapOffset,
        3 => UpgradeMode::OverwriteOnly,
        _ => UpgradeMode::DirectXip,
    }
}

/// Trailer layout arithmetic and decode. The first 12 bytes are the layout (slot size, max
/// sectors as full 32-bit numbers, as a user or a device gives them; max-align, write size,
/// erased value and mode one byte each), the rest is the slot tail to decode.
pub fn trailer(data: &[u8]) {
    let Some((head, tail)) = data.split_first_chunk::<12>() else {
        return;
    };
    let layout = TrailerLayout {
        slot_size: u32::from_le_bytes([head[0], head[1], head[2], head[3]]),
        max_sectors: u32::from_le_bytes([head[4], head[5], head[6], head[7]]),
        max_align: u32::from(head[8]),
        write_size: u32::from(head[9]),
        erased: head[10],
        mode: mode(head[11]),
    };
    // Every helper must answer (saturating) whatever check says.
    for field in [
        Field::Magic,
        Field::ImageOk,
        Field::CopyDone,
        Field::SwapInfo,
        Field::SwapSize,
    ] {
        let _ = layout.field_off(field);
    }
    let _ = (layout.tlv_sizes_off(), layout.magic_cell(), layout.tail());
    let _ = (
        layout.status_off(),
        layout.trailer_size(),
        layout.info_size(),
    );
    let _ = max_image_size(&layout);
    let _ = layout.status_record_off(u32::from(head[10]) << 8);
    if layout.check().is_ok() {
        let _ = layout.magic_write();
        let _ = layout.flag_write(Field::ImageOk, 1);
        let _ = layout.swap_info_write(head[10], SwapType::from_swap_info(head[11]));
        let _ = layout.swap_size_write(layout.slot_size);
        let _ = layout.status_record_write(u32::from(head[11]), head[10]);
    }
    if let Ok(t) = layout.decode(tail) {
        let state = SlotSwapState {
            magic: t.magic,
            image_ok: t.image_ok,
            copy_done: t.copy_done,
        };
        let _ = swap_type(state, Some(state), layout.mode);
        let _ = swap_type(state, None, layout.mode);
        let _ = format!("{t:?}");
    }
}

/// Scenario loader (YAML text, includes, sweeps), expansion of variants, and the suggestion the
/// CLI derives from an error message.
pub fn scenario(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let path = repo().join("scenarios/fuzz-input.yaml");
    match dfu_hil_runner::scenario::parse(text, &path) {
        Ok(loaded) => {
            for variant in dfu_hil_runner::scenario::expand(loaded) {
                for step in &variant.scenario.steps {
                    let _ = step.value.summary();
                }
            }
        }
        Err(e) => {
            let _ = dfu_hil_runner::scenario::suggestion(&e.to_string());
        }
    }
}

/// Layout loader and checks, then what users of a layout do: look partitions up, write it back.
pub fn layout(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let path = Path::new("fuzz-layout.yaml");
    let Ok(layout) = Layout::parse(text, path) else {
        return;
    };
    if layout.check(path).is_err() {
        return;
    }
    for name in layout.partition_names() {
        if let Some(p) = layout.partition(name) {
            let _ = layout.address(p);
            let _ = layout.device_of(p);
            let _ = layout.erased_by_sector(name);
        }
    }
    let _ = Layout::parse(&layout.to_yaml(), path);
}

/// Partition Manager import (`partitions.yml`, `pm_static.yml`), and the files read beside it:
/// `regions.yml`, `pm.config`; plus the devicetree reader of plain Zephyr builds.
pub fn pm_import(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let path = Path::new("partitions.yml");
    let _ = pm::sniff::sniff(text);
    if let Ok(i) = pm::import_text(text, path, &pm::ImportOptions::default()) {
        let _ = i.layout.check(path);
        let _ = i.layout.to_yaml();
    }
    let regions = pm::regions::read_regions(text, Path::new("regions.yml")).ok();
    let pm_config = pm::config::read_pm_config(text, Path::new("pm.config")).ok();
    if regions.is_some() || pm_config.is_some() {
        let opts = pm::ImportOptions {
            soc: Some("nrf5340_cpuapp".into()),
            regions,
            pm_config,
            ..pm::ImportOptions::default()
        };
        let _ = pm::import_text(text, path, &opts);
    }
    let _ = dfu_hil_build::dts::layout_from_dts_text(text, Path::new("zephyr.dts"));
}

/// `.config` reader and the facts read from it (MCUboot, app, sysbuild).
pub fn kconfig(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(k) = Kconfig::parse(Path::new(".config"), text) else {
        return;
    };
    let names: Vec<String> = k.entries().map(|(n, _)| n.to_owned()).collect();
    for name in &names {
        let _ = k.int(name);
        let _ = k.u32(name);
        let _ = k.bool(name);
        let _ = k.string(name);
        if let Some(e) = k.get(name) {
            if let KValue::Word(w) = &e.value {
                let _ = parse_number(w);
            }
        }
    }
    let _ = McubootFacts::from_kconfig(&k);
    let _ = AppFacts::from_kconfig(&k);
    let _ = SysbuildFacts::from_kconfig(&k);
}

/// Intel HEX reader and the image extraction `Build::open` does with it.
pub fn ihex(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(h) = hex::parse(Path::new("zephyr.signed.hex"), text) else {
        return;
    };
    let images = h.images();
    for (addr, bytes) in &images {
        let _ = hex::image_len(bytes);
        let _ = h.image_at(*addr);
    }
    let _ = h.mcuboot_image(None);
    let _ = h.mcuboot_image(h.start_address);
}

pub use crate::sim_target::sim_smp_server;
