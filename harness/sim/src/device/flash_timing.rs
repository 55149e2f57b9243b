//! How long a chip's internal flash takes to erase and write, and what Zephyr's img_mgmt makes
//! it do during an SMP upload — the device half of the upload throughput model (the link half
//! is `dfu_hil_smp::bench`).
//!
//! # Figures (Nordic product specifications, NVMC chapter, "Electrical specification" table)
//!
//! | chip | page | t_ERASEPAGE | t_WRITE (one 32-bit word) |
//! |---|---|---|---|
//! | nRF52840 | 4 KiB | 85 ms | 41 µs |
//! | nRF5340 application core | 4 KiB | 87.5 ms | 43 µs |
//!
//! Both are the figures Nordic gives as the bound for the operation (the "Max." column as far
//! as could be checked; see below); a real part is usually somewhat faster, so predictions
//! made with them are conservative.
//!
//! Sources, and how far they were checked:
//! * nRF5340: *nRF5340 Product Specification*, NVMC → Electrical specification
//!   (docs.nordicsemi.com, `ps_nrf5340`, page `nvmc.html`): t_WRITE "Time to write one 32-bit
//!   word" 43 µs, t_ERASEPAGE "Time to erase one page" 87.5 ms, t_ERASEALL 173 ms, with the
//!   note that they apply when the HFXO runs (they vary with HFINT accuracy otherwise). The
//!   copy that could be read had lost the table's column alignment, so which column (Typ. or
//!   Max.) holds them was not visible there.
//! * nRF52840: *nRF52840 Product Specification* (v1.x), NVMC → Electrical specification:
//!   t_WRITE 41 µs, t_ERASEPAGE 85 ms. The specification page itself was not available to
//!   check; these two values are as quoted from it by third parties (the nrf-hal partial-erase
//!   pull request #385: "Erasing a single page takes 85 ms on nRF52840"; driver code citing
//!   "nRF52840 Product Specification v1.11, NVMC electrical specification: tWRITE 41us,
//!   tERASEPAGE 85ms"). Zephyr's own nRF52 `soc.h` uses a larger family-wide bound,
//!   `FLASH_PAGE_ERASE_MAX_TIME_US` = 89 700 µs, for its radio-sync slots.
//!
//! The CPU cannot run from flash while the NVMC erases or writes it (the product
//! specifications: "The CPU is halted while the NVMC is writing to the flash"; on the nRF5340
//! "stalled if the CPU executes code from the flash"), and Zephyr runs from flash, so every
//! erase and write adds to the time the device takes to answer the request that caused it.
//! The nRF5340's network core has its own flash and NVMC; its figures are not in this table.
//!
//! # What img_mgmt makes the flash do during an upload (Zephyr)
//!
//! * `subsys/mgmt/mcumgr/grp/img_mgmt/src/img_mgmt.c`, `img_mgmt_upload()`: on the first chunk
//!   (off 0), unless `CONFIG_IMG_ERASE_PROGRESSIVELY`, it calls
//!   `img_mgmt_erase_image_data(0, len)` before answering — when the slot is not already empty
//!   (`img_mgmt_upload_inspect` sets `action.erase` from `img_mgmt_flash_check_empty`).
//! * `subsys/mgmt/mcumgr/grp/img_mgmt/src/zephyr_img_mgmt.c`, `img_mgmt_erase_image_data()`:
//!   erases from the slot start through the page holding the image's last byte (the image start
//!   offset included), then, if the trailer's status area starts beyond that, from its page to
//!   the slot end. Not the whole slot: that is `img_mgmt_erase_slot()`, the `image erase`
//!   command, which erases all of it (if not empty).
//! * `img_mgmt_write_image_data()` → `subsys/dfu/img_util/flash_img.c`,
//!   `flash_img_buffered_write()` → `subsys/storage/stream/stream_flash.c`,
//!   `stream_flash_buffered_write()`: data collects in a buffer of `CONFIG_IMG_BLOCK_BUF_SIZE`
//!   bytes (default 512, `subsys/dfu/Kconfig`) and is written when the buffer fills (and at the
//!   last chunk, padded to the write block). With `CONFIG_IMG_ERASE_PROGRESSIVELY` (which
//!   selects `CONFIG_STREAM_FLASH_ERASE`) `flash_sync()` first erases the page the buffer lands
//!   in if that page was not erased yet (`stream_flash_erase_page()`), and the trailer's page
//!   is erased after the last chunk.
//!
//! So with the defaults a request's device time is the block writes it triggers (on average
//! its data bytes / 4 × t_WRITE), and the first request also carries the erase of the image's
//! pages: per upload, not per byte.

use std::fmt;
use std::time::Duration;

/// Erase and write times of one chip's internal flash (its NVMC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlashTiming {
    /// Chip name as printed (`nRF52840`).
    pub chip: &'static str,
    /// Erase unit (page) in bytes.
    pub page_size: u32,
    /// Write unit in bytes (one 32-bit word).
    pub word_size: u32,
    /// t_ERASEPAGE: erase one page.
    pub erase_page: Duration,
    /// t_WRITE: write one word.
    pub write_word: Duration,
    /// Which figure the values are and where they come from (for output and evidence).
    pub source: &'static str,
}

/// nRF52840 (see the module docs for the source).
pub const NRF52840: FlashTiming = FlashTiming {
    chip: "nRF52840",
    page_size: 4096,
    word_size: 4,
    erase_page: Duration::from_micros(85_000),
    write_word: Duration::from_micros(41),
    source: "nRF52840 Product Specification, NVMC electrical specification, max. (as quoted \
             by third parties; the PS page itself was not checked)",
};

/// nRF5340 application core (see the module docs for the source).
pub const NRF5340_APP: FlashTiming = FlashTiming {
    chip: "nRF5340 (application core)",
    page_size: 4096,
    word_size: 4,
    erase_page: Duration::from_micros(87_500),
    write_word: Duration::from_micros(43),
    source: "nRF5340 Product Specification, NVMC electrical specification, with the HFXO \
             running",
};

/// Every chip in the table, with the short names [`for_chip`] takes.
pub const CHIPS: &[(&str, FlashTiming)] = &[("nrf52840", NRF52840), ("nrf5340", NRF5340_APP)];

/// The timing of a chip by short name (`nrf52840`, `nrf5340`) or probe-rs target name
/// (`nRF52840_xxAA`, `nRF5340_xxAA`), case-insensitively. `None` for chips not in the table.
pub fn for_chip(name: &str) -> Option<FlashTiming> {
    let n = name.to_ascii_lowercase();
    let stem = n.split(['_', '-', '/']).next().unwrap_or("");
    CHIPS.iter().find(|(k, _)| *k == stem).map(|(_, t)| *t)
}

/// Short names of the chips in the table, for messages.
pub fn chip_names() -> Vec<&'static str> {
    CHIPS.iter().map(|(k, _)| *k).collect()
}

impl FlashTiming {
    /// Time to erase `len` bytes (whole pages: a partial page costs a page).
    pub fn erase_time(&self, len: u32) -> Duration {
        self.erase_page * len.div_ceil(self.page_size)
    }

    /// Time to write `len` bytes (whole words).
    pub fn write_time(&self, len: u32) -> Duration {
        self.write_word * len.div_ceil(self.word_size)
    }

    /// Average write time per byte, in seconds (for throughput arithmetic).
    pub fn write_secs_per_byte(&self) -> f64 {
        self.write_word.as_secs_f64() / self.word_size as f64
    }

    /// Average erase time per byte when pages are erased as data reaches them, in seconds.
    pub fn erase_secs_per_byte(&self) -> f64 {
        self.erase_page.as_secs_f64() / self.page_size as f64
    }
}

impl fmt::Display for FlashTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: page {} B, t_ERASEPAGE {} ms, t_WRITE {} µs per {}-byte word — {}",
            self.chip,
            self.page_size,
            self.erase_page.as_secs_f64() * 1e3,
            self.write_word.as_micros(),
            self.word_size,
            self.source
        )
    }
}

/// Zephyr's default `CONFIG_IMG_BLOCK_BUF_SIZE`: img_mgmt writes image data in blocks of this
/// many bytes.
pub const IMG_BLOCK_BUF_SIZE: u32 = 512;

/// When img_mgmt erases the slot during an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraseMode {
    /// Default: the image's pages (and the trailer's) all at the first chunk.
    UpFront,
    /// `CONFIG_IMG_ERASE_PROGRESSIVELY=y`: each page just before the first block written to
    /// it, the trailer's page after the last chunk.
    Progressively,
}

/// Pages `img_mgmt_erase_image_data()` erases for an image of `image_len` bytes that starts
/// `image_start` bytes into a slot of `slot_size` bytes whose MCUboot trailer is
/// `trailer_size` bytes: `(image pages, trailer pages)`. The trailer pages are 0 when the
/// image's pages already reach the trailer.
pub fn upfront_erase_pages(
    page_size: u32,
    slot_size: u32,
    image_start: u32,
    image_len: u32,
    trailer_size: u32,
) -> (u32, u32) {
    let end = (image_start + image_len.max(1)).min(slot_size);
    let body = end.div_ceil(page_size);
    let trailer_start = slot_size.saturating_sub(trailer_size) / page_size;
    let trailer = if trailer_start >= body {
        slot_size.div_ceil(page_size) - trailer_start
    } else {
        0
    };
    (body, trailer)
}

/// The flash time of one upload as img_mgmt does it, split as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UploadFlashTime {
    pub timing: FlashTiming,
    pub mode: EraseMode,
    /// Pages erased before the first chunk is answered (0 when erasing progressively).
    pub upfront_pages: u32,
    /// Time of that erase.
    pub upfront: Duration,
    /// Flash seconds per image byte once data flows (block writes, and page erases when
    /// erasing progressively): multiply by a request's data bytes for its average.
    pub secs_per_byte: f64,
    /// Pages erased at the end (the trailer's page when erasing progressively).
    pub final_pages: u32,
}

impl UploadFlashTime {
    /// Model an upload of `image_len` bytes (see [`upfront_erase_pages`] for the geometry).
    pub fn new(
        timing: FlashTiming,
        mode: EraseMode,
        slot_size: u32,
        image_start: u32,
        image_len: u32,
        trailer_size: u32,
    ) -> Self {
        let (body, trailer) = upfront_erase_pages(
            timing.page_size,
            slot_size,
            image_start,
            image_len,
            trailer_size,
        );
        let write = timing.write_secs_per_byte();
        match mode {
            EraseMode::UpFront => UploadFlashTime {
                timing,
                mode,
                upfront_pages: body + trailer,
                upfront: timing.erase_page * (body + trailer),
                secs_per_byte: write,
                final_pages: 0,
            },
            EraseMode::Progressively => UploadFlashTime {
                timing,
                mode,
                upfront_pages: 0,
                upfront: Duration::ZERO,
                secs_per_byte: write + timing.erase_secs_per_byte(),
                final_pages: trailer,
            },
        }
    }

    /// Average flash seconds of a request carrying `data` image bytes.
    pub fn per_request(&self, data: usize) -> f64 {
        self.secs_per_byte * data as f64
    }

    /// Flash time of one `IMG_BLOCK_BUF_SIZE` block write (what the request that fills the
    /// block waits for).
    pub fn block_write(&self) -> Duration {
        self.timing.write_time(IMG_BLOCK_BUF_SIZE)
    }

    /// Time of the erases at the end of the upload.
    pub fn at_end(&self) -> Duration {
        self.timing.erase_page * self.final_pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_values() {
        assert_eq!(NRF52840.erase_page, Duration::from_millis(85));
        assert_eq!(NRF52840.write_word, Duration::from_micros(41));
        assert_eq!(NRF5340_APP.erase_page, Duration::from_micros(87_500));
        assert_eq!(NRF5340_APP.write_word, Duration::from_micros(43));
        for (_, t) in CHIPS {
            assert_eq!((t.page_size, t.word_size), (4096, 4));
        }
    }

    #[test]
    fn lookup_by_short_and_probe_rs_names() {
        assert_eq!(for_chip("nrf52840"), Some(NRF52840));
        assert_eq!(for_chip("nRF52840_xxAA"), Some(NRF52840));
        assert_eq!(for_chip("nRF5340_xxAA"), Some(NRF5340_APP));
        assert_eq!(for_chip("NRF5340"), Some(NRF5340_APP));
        assert_eq!(for_chip("nrf52832"), None);
        assert_eq!(for_chip(""), None);
        assert_eq!(chip_names(), ["nrf52840", "nrf5340"]);
    }

    #[test]
    fn erase_and_write_round_up() {
        let t = NRF52840;
        assert_eq!(t.erase_time(1), Duration::from_millis(85));
        assert_eq!(t.erase_time(4096), Duration::from_millis(85));
        assert_eq!(t.erase_time(4097), Duration::from_millis(170));
        assert_eq!(t.write_time(512), Duration::from_micros(128 * 41));
        assert_eq!(t.write_time(5), Duration::from_micros(82));
        assert_eq!(t.write_time(0), Duration::ZERO);
    }

    #[test]
    fn upfront_erase_covers_image_and_trailer() {
        // 0x7a000 slot, 1.6 KiB trailer: a 64 KiB + 1 image takes 17 pages + the last page.
        assert_eq!(upfront_erase_pages(4096, 0x7a000, 0, 65_537, 1600), (17, 1));
        // An image reaching into the trailer's page: no separate trailer erase.
        assert_eq!(
            upfront_erase_pages(4096, 0x7a000, 0, 0x7a000 - 100, 1600),
            (122, 0)
        );
        // Swap-using-offset's one-sector start counts.
        assert_eq!(upfront_erase_pages(4096, 0x7a000, 4096, 4096, 1600), (2, 1));
    }

    #[test]
    fn upload_flash_time_by_mode() {
        let up = UploadFlashTime::new(NRF52840, EraseMode::UpFront, 0x7a000, 0, 65_536, 1600);
        assert_eq!(up.upfront_pages, 17);
        assert_eq!(up.upfront, Duration::from_millis(17 * 85));
        assert!((up.per_request(4) - 41e-6).abs() < 1e-12);
        assert_eq!(up.block_write(), Duration::from_micros(5248));
        assert_eq!(up.at_end(), Duration::ZERO);
        let pr = UploadFlashTime::new(NRF52840, EraseMode::Progressively, 0x7a000, 0, 65_536, 1600);
        assert_eq!(pr.upfront, Duration::ZERO);
        assert_eq!(pr.final_pages, 1);
        let per_page = pr.per_request(4096);
        assert!(
            (per_page - (0.085 + 1024.0 * 41e-6)).abs() < 1e-9,
            "{per_page}"
        );
    }
}
