//! Flash busy time on the simulated board: each erase and write on a timed device costs the
//! chip's datasheet figures, and an SMP upload shows img_mgmt's pattern — the image's pages
//! erased at the first chunk, then block writes.

mod common;

use common::*;
use dfu_hil_mcuboot::trailer::TrailerLayout;
use dfu_hil_sim::device::flash_map::FlashMap;
use dfu_hil_sim::device::flash_timing::{upfront_erase_pages, NRF52840, NRF5340_APP};
use dfu_hil_smp::{group, img_cmd, map, uint, Op, Value};
use std::time::Duration;

#[test]
fn untimed_flash_is_never_busy() {
    let mut m = FlashMap::new(layout());
    m.erase("slot1", 0, 0x2000).unwrap();
    m.write("slot1", 0, &[0u8; 64]).unwrap();
    assert_eq!(m.busy_time(), Duration::ZERO);
    assert_eq!(m.timing("internal"), None);
}

#[test]
fn erases_cost_pages_and_writes_cost_words() {
    let mut m = FlashMap::new(layout());
    assert!(m.set_timing("internal", Some(NRF52840)));
    assert!(!m.set_timing("no-such-device", Some(NRF52840)));
    m.erase("slot1", 0, 3 * 4096).unwrap();
    assert_eq!(m.busy_time(), Duration::from_millis(3 * 85));
    m.write("slot1", 0, &[0u8; 512]).unwrap();
    assert_eq!(
        m.busy_time(),
        Duration::from_millis(255) + Duration::from_micros(128 * 41)
    );
    assert_eq!(m.take_busy_time(), Duration::from_micros(255_000 + 5248));
    assert_eq!(m.busy_time(), Duration::ZERO);
    // A failed write (not erased) and a write cut by a power cut cost nothing.
    assert!(m.write("slot1", 0, &[0x5a; 4]).is_err());
    m.arm_power_cut(1);
    assert!(m.write("slot1", 512, &[0u8; 4]).unwrap_err().is_power_cut());
    assert_eq!(m.busy_time(), Duration::ZERO);
    // Timing off again.
    m.set_timing("internal", None);
    m.erase("slot1", 0, 4096).unwrap();
    assert_eq!(m.busy_time(), Duration::ZERO);
}

#[test]
fn internal_timing_skips_ram_emulated_devices() {
    let l =
        dfu_hil_mcuboot::layout::Layout::load(&repo().join("partitions/nrf5340-multi-image.yaml"))
            .unwrap();
    let mut m = FlashMap::new(l);
    assert_eq!(m.set_internal_timing(NRF5340_APP), 1);
    assert_eq!(m.timing("internal"), Some(NRF5340_APP));
    assert_eq!(m.timing("netcore-ram"), None);
    m.erase("slot1", 0, 4096).unwrap();
    assert_eq!(m.busy_time(), Duration::from_micros(87_500));
}

/// The modelled cost of one SMP request: the busy time it added.
fn timed_request(b: &mut dfu_hil_sim::SimBoard, body: Value) -> (Value, Duration) {
    let before = b.flash.busy_time();
    let r = request(b, Op::Write, group::IMAGE, img_cmd::UPLOAD, body);
    (r, b.flash.busy_time() - before)
}

#[test]
fn an_upload_erases_up_front_then_only_writes() {
    let mut b = factory_board("1.0.0");
    assert_eq!(b.flash.set_internal_timing(NRF52840), 1);
    let image = app(&layout(), "2.0.0");
    let sha = dfu_hil_sim::device::smp_server::file_sha(&image);
    let chunk = 157;
    b.flash.take_busy_time();

    let (r, first) = timed_request(
        &mut b,
        map([
            ("off", uint(0)),
            ("len", uint(image.len() as u64)),
            ("sha", Value::Bytes(sha)),
            ("data", Value::Bytes(image[..chunk].to_vec())),
        ]),
    );
    assert_eq!(dfu_hil_smp::map_uint(&r, "off"), Some(chunk as u64));
    // The first answer waits for the erase of the image's pages and the trailer's page.
    let slot = b.flash.size("slot1").unwrap();
    let trailer = TrailerLayout::new(slot, build().mode).trailer_size();
    let (body, tail) = upfront_erase_pages(4096, slot, 0, image.len() as u32, trailer);
    assert_eq!(tail, 1);
    let erase = NRF52840.erase_page * (body + tail);
    assert!(first >= erase, "{first:?} < {erase:?}");
    assert!(first < erase + Duration::from_millis(10), "{first:?}");

    // Then each request costs only the writes it triggers; in total the whole image's words.
    let mut off = chunk;
    let mut writes = Duration::ZERO;
    let mut max = Duration::ZERO;
    while off < image.len() {
        let end = (off + chunk).min(image.len());
        let (r, t) = timed_request(
            &mut b,
            map([
                ("off", uint(off as u64)),
                ("data", Value::Bytes(image[off..end].to_vec())),
            ]),
        );
        off = dfu_hil_smp::map_uint(&r, "off").unwrap() as usize;
        writes += t;
        max = max.max(t);
    }
    let all_writes = NRF52840.write_time(image.len() as u32);
    let first_writes = first - erase;
    assert_eq!(writes + first_writes, all_writes);
    // No request after the first erases anything.
    assert!(max < Duration::from_millis(85), "{max:?}");
}
