//! `dfu-hil bench upload`: what upload rate a user will see on a real device (the link
//! arithmetic of `dfu_hil_smp::bench` for the device's receive lines and `buf_size`, plus the
//! chip's flash time from `dfu_hil_sim::device::flash_timing`), then the rate measured against the
//! simulated board on a real PTY, and optionally `smpmgr image upload` against the same board.
//!
//! A benchmark prints figures; it asserts nothing about speed.

use crate::error::CliResult;
use crate::sim_cmd::{self, ServeArgs};
use anyhow::{bail, Context};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::TrailerLayout;
use dfu_hil_runner::exit::Exit;
use dfu_hil_runner::fixtures::{self, AppFixture, Builder, FixtureSpec};
use dfu_hil_runner::scenario::BootloaderSpec;
use dfu_hil_sim::device::flash_timing::{
    self, EraseMode, FlashTiming, UploadFlashTime, IMG_BLOCK_BUF_SIZE,
};
use dfu_hil_smp::bench::{
    go_mcumgr_serial, serial_ceiling, SerialCeiling, DEFAULT_BUF_SIZE, GO_LINE_GAP, GO_MCUMGR_MTU,
};
use dfu_hil_smp::limits::{DEFAULT_LINE_COUNT, DEFAULT_LINE_SIZE};
use dfu_hil_smp::{Client, LineLimits, RequestOptions, Transport, UploadOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The field report of issue #12: Go `mcumgr` at 115200 baud on an nRF52840, in KiB/s.
pub const FIELD_REPORT_KIBPS: f64 = 1.39;
/// Baud rate of the prediction when `--baud` is not given, and of the field report.
const PREDICTION_BAUD: u32 = 115_200;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum BenchCmd {
    /// Predict the upload rate on a real device, then measure an upload to `sim serve`
    /// through a PTY and print bytes/s.
    Upload(UploadArgs),
    /// Time a power-cut sweep over one full-slot swap on the simulated board (every flash
    /// operation a cut point) and print the figure.
    Sweep(sweep::SweepArgs),
}

mod sweep;

#[derive(clap::Args, Debug, Clone)]
pub struct UploadArgs {
    /// Size of the unsigned app binary to upload, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub size: u32,
    /// Pace the simulated UART at this baud rate (8N1); unpaced when not given. The
    /// prediction uses it too (115200 when not given).
    #[arg(long)]
    pub baud: Option<u32>,
    /// Upload window (requests in flight) for the measurement; default: the client's choice.
    #[arg(long)]
    pub window: Option<usize>,
    /// Also time `smpmgr image upload` against the same board (path, or `auto` to look in
    /// PATH and .venv).
    #[arg(long)]
    pub smpmgr: Option<String>,
    #[arg(long, default_value = "nrf52840-internal")]
    pub layout: String,
    /// Device receive line size for the prediction (`CONFIG_UART_MCUMGR_RX_BUF_SIZE`, bytes
    /// including marker and newline).
    #[arg(long, default_value_t = DEFAULT_LINE_SIZE)]
    pub line_size: usize,
    /// Device receive line buffers for the prediction (`CONFIG_UART_MCUMGR_RX_BUF_COUNT`).
    #[arg(long, default_value_t = DEFAULT_LINE_COUNT)]
    pub line_count: usize,
    /// Device SMP buffer for the prediction (`buf_size` from `os params`,
    /// `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`).
    #[arg(long, default_value_t = DEFAULT_BUF_SIZE)]
    pub buf_size: usize,
    /// Chip whose flash timing the prediction uses.
    #[arg(long, default_value = "nrf52840", value_parser = clap::builder::PossibleValuesParser::new(["nrf52840", "nrf5340"]))]
    pub chip: String,
}

/// Run a `bench` subcommand: figures, never a verdict, so success is always exit 0.
pub fn run_bench(cmd: BenchCmd, root: &Path) -> CliResult {
    match cmd {
        BenchCmd::Upload(a) => upload(&a, root)?,
        BenchCmd::Sweep(a) => sweep::sweep(&a, root)?,
    }
    Ok(Exit::Pass)
}

fn bench_image(root: &Path, layout_name: &str, size: u32) -> anyhow::Result<(PathBuf, Vec<u8>)> {
    let layout = sim_cmd::resolve_layout(root, layout_name)?;
    let manifest_dir = root.join("firmware-fixtures");
    let manifest = fixtures::load_manifest(&manifest_dir.join("fixtures.yaml"))?;
    let mut extra = BTreeMap::new();
    extra.insert(
        "bench".to_owned(),
        FixtureSpec::App(AppFixture {
            name: "bench".into(),
            version: "9.0.0".into(),
            size,
            key: "default".into(),
            header_size: 0x200,
            rom_start_offset: 0x200,
            pad_header: false,
            confirm_on_boot: false,
            smp_groups: None,
            netbuf_size: None,
            netbuf_count: None,
            uart_rx_buf_size: None,
            uart_rx_buf_count: None,
            reset_ms: None,
            image: 0,
            dependencies: Vec::new(),
        }),
    );
    let bootloader = BootloaderSpec::default();
    let builder = Builder {
        manifest_dir: manifest_dir.clone(),
        manifest,
        extra: &extra,
        scenario_dir: manifest_dir,
        layout: &layout,
        bootloader: &bootloader,
        build: None,
        release: Default::default(),
        transport: Default::default(),
    };
    let built = builder.build("bench")?;
    let path = std::env::temp_dir().join(format!("dfu-hil-bench-{}.bin", std::process::id()));
    std::fs::write(&path, &built.bytes)?;
    Ok((path, built.bytes))
}

fn find_smpmgr(root: &Path, arg: &str) -> Option<PathBuf> {
    if arg != "auto" {
        return Some(PathBuf::from(arg));
    }
    let venv = root.join(".venv/bin/smpmgr");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("smpmgr"))
            .find(|c| c.is_file())
    })
}

/// Secondary slot of image 0 and its trailer size, as the bench's bootloader build lays it out.
fn upload_slot(layout: &Layout, spec: &BootloaderSpec) -> anyhow::Result<(u32, u32)> {
    let pair = layout.images.first().context("layout has no image pair")?;
    let part = layout
        .partition(&pair.secondary)
        .with_context(|| format!("layout has no partition `{}`", pair.secondary))?;
    let dev = layout.device_of(part);
    let trailer = TrailerLayout {
        slot_size: part.size,
        max_align: spec.max_align,
        write_size: dev.write_size,
        erased: dev.erased,
        max_sectors: spec.max_sectors,
        mode: spec.mode,
    };
    Ok((part.size, trailer.trailer_size()))
}

fn kib(bytes_per_sec: f64) -> f64 {
    bytes_per_sec / 1024.0
}

fn ms(secs: f64) -> f64 {
    secs * 1e3
}

/// The modelled prediction for a real device, printed with its arithmetic.
struct Prediction {
    link: SerialCeiling,
    timing: FlashTiming,
    flash: UploadFlashTime,
    progressive: UploadFlashTime,
    image_len: usize,
    slot_size: u32,
    layout: String,
}

impl Prediction {
    fn new(a: &UploadArgs, image_len: usize, slot_size: u32, trailer: u32) -> anyhow::Result<Self> {
        let limits = LineLimits::new(a.line_size, a.line_count).map_err(anyhow::Error::msg)?;
        let baud = a.baud.unwrap_or(PREDICTION_BAUD);
        let link = serial_ceiling(baud, limits, a.buf_size).with_context(|| {
            format!(
                "buf_size {} with {limits} leaves no room for image data in a request",
                a.buf_size
            )
        })?;
        let timing = flash_timing::for_chip(&a.chip).with_context(|| {
            format!(
                "no flash timing for chip `{}` (have: {})",
                a.chip,
                flash_timing::chip_names().join(", ")
            )
        })?;
        let len = image_len as u32;
        Ok(Prediction {
            link,
            timing,
            flash: UploadFlashTime::new(timing, EraseMode::UpFront, slot_size, 0, len, trailer),
            progressive: UploadFlashTime::new(
                timing,
                EraseMode::Progressively,
                slot_size,
                0,
                len,
                trailer,
            ),
            image_len,
            slot_size,
            layout: a.layout.clone(),
        })
    }

    /// Average flash seconds per request (block writes).
    fn flash_per_request(&self) -> f64 {
        self.flash.per_request(self.link.data)
    }

    fn stop_and_wait(&self) -> f64 {
        self.link.stop_and_wait_with(self.flash_per_request())
    }

    fn windowed(&self) -> f64 {
        self.link.windowed_with(self.flash_per_request())
    }

    /// [`Prediction::overall`] at the better of stop-and-wait and windowed, in KiB/s.
    fn overall_kib(&self) -> f64 {
        kib(self.overall(self.stop_and_wait().max(self.windowed())))
    }

    /// Rate the client will see over this whole image, the up-front erase included.
    fn overall(&self, rate: f64) -> f64 {
        let secs = self.flash.upfront.as_secs_f64() + self.image_len as f64 / rate;
        self.image_len as f64 / secs
    }

    fn print(&self) {
        let c = &self.link;
        let t = &self.timing;
        println!("prediction for a real device (arithmetic, not a measurement):");
        println!("{c}");
        let words = c.data as f64 / t.word_size as f64;
        println!("  flash: {t}");
        println!(
            "  flash per request: img_mgmt writes {IMG_BLOCK_BUF_SIZE} B blocks \
             (CONFIG_IMG_BLOCK_BUF_SIZE), the CPU stalled meanwhile: on average N/{} × t_WRITE = \
             {words:.2} × {} µs = {:.2} ms (a {:.2} ms block write every {:.2} requests)",
            t.word_size,
            t.write_word.as_micros(),
            ms(self.flash_per_request()),
            ms(self.flash.block_write().as_secs_f64()),
            IMG_BLOCK_BUF_SIZE as f64 / c.data as f64
        );
        let saw_secs = c.stop_and_wait_secs(self.flash_per_request());
        println!(
            "  predicted stop-and-wait: N / ({:.2} + {:.2} ms) = {} / {:.2} ms = {:.2} KiB/s",
            ms(c.stop_and_wait_secs(0.0)),
            ms(self.flash_per_request()),
            c.data,
            ms(saw_secs),
            kib(self.stop_and_wait())
        );
        if c.window > 1 {
            println!(
                "  predicted window {}:      N / max(W/Bps, flash, ({:.2} ms)/{}) = {} / {:.2} ms = \
                 {:.2} KiB/s (if the device keeps receiving while it writes)",
                c.window,
                ms(saw_secs),
                c.window,
                c.data,
                ms(c.windowed_secs(self.flash_per_request())),
                kib(self.windowed())
            );
        } else {
            println!("  predicted window 1: the same as stop-and-wait (one request fills the line buffers)");
        }
        let f = &self.flash;
        println!(
            "  slot erase at the first chunk (default; CONFIG_IMG_ERASE_PROGRESSIVELY=n): {} \
             pages × {} ms = {:.2} s before the first answer (the image's {:.1} KiB and the \
             trailer's page, slot of {} KiB in layout {}) — per upload, not per byte",
            f.upfront_pages,
            t.erase_page.as_secs_f64() * 1e3,
            f.upfront.as_secs_f64(),
            self.image_len as f64 / 1024.0,
            self.slot_size / 1024,
            self.layout
        );
        let best = self.stop_and_wait().max(self.windowed());
        let transfer = self.image_len as f64 / best;
        println!(
            "  this image: {:.2} s erase + {} B / {:.2} KiB/s = {:.2} s ({} requests) → {:.2} s, \
             {:.2} KiB/s overall",
            f.upfront.as_secs_f64(),
            self.image_len,
            kib(best),
            transfer,
            c.requests_for(self.image_len),
            f.upfront.as_secs_f64() + transfer,
            kib(self.overall(best))
        );
        let p = &self.progressive;
        let prog_rate = c.stop_and_wait_with(p.per_request(c.data));
        println!(
            "  with CONFIG_IMG_ERASE_PROGRESSIVELY=y instead: no erase up front, + t_ERASEPAGE / \
             {} B per byte = +{:.2} ms per request on average (a stall of {} ms on the request \
             that reaches a new page) → {:.2} KiB/s",
            t.page_size,
            ms(p.per_request(c.data) - self.flash_per_request()),
            t.erase_page.as_secs_f64() * 1e3,
            kib(prog_rate)
        );
    }

    /// The Go client over the same link and chip, and the field report.
    fn print_go_and_field(&self, a: &UploadArgs) {
        let Some(g) = go_mcumgr_serial(self.link.baud, GO_MCUMGR_MTU) else {
            return;
        };
        let t = &self.timing;
        let flash = self.flash.per_request(g.data);
        let per_request = g.secs_per_request(flash);
        let rate = g.rate(flash);
        let slot_pages = self.slot_size.div_ceil(t.page_size);
        let slot_erase = t.erase_page.as_secs_f64() * slot_pages as f64;
        println!(
            "Go mcumgr on the same link (modelled from its source — nmxact serial transport — \
             not run here):"
        );
        println!("  {g}");
        println!(
            "  per request: ({} + {}) B / Bps + {} × {} ms + {:.2} ms flash = {:.2} ms → \
             {:.2} KiB/s; `mcumgr image upload` first sends `image erase` (unless -e), which \
             erases the whole slot when it is not empty: {slot_pages} pages × {} ms = {:.2} s",
            g.wire,
            g.response_wire,
            g.gaps,
            GO_LINE_GAP.as_millis(),
            ms(flash),
            ms(per_request),
            kib(rate),
            t.erase_page.as_secs_f64() * 1e3,
            slot_erase
        );
        let overall = |len: f64| len / (slot_erase + len / rate);
        if a.chip != "nrf52840" || self.link.baud != PREDICTION_BAUD {
            println!(
                "field report (issue #12): {FIELD_REPORT_KIBPS} KiB/s with Go mcumgr at 115200 \
                 baud on an nRF52840 — run with those settings to compare"
            );
            return;
        }
        let field = FIELD_REPORT_KIBPS * 1024.0;
        println!(
            "field report (issue #12): {FIELD_REPORT_KIBPS} KiB/s with Go mcumgr at 115200 baud \
             on an nRF52840. The model gives {:.2} KiB/s for its transfer; with the slot erase \
             {:.2} KiB/s overall for a 128 KiB image, {:.2} KiB/s for 256 KiB.",
            kib(rate),
            kib(overall(128.0 * 1024.0)),
            kib(overall(256.0 * 1024.0))
        );
        if field < rate {
            let size = field * slot_erase / (1.0 - field / rate);
            println!(
                "  {FIELD_REPORT_KIBPS} KiB/s would follow only for an image of about {:.0} KiB. \
                 The rest of the gap is not explained by this model: the device's own decode \
                 time per line and request, host and USB-serial latency, and the field's image \
                 size, mcumgr version and mtu setting are not known here (not verified).",
                size / 1024.0
            );
        }
        println!(
            "  dfu-hil with these settings: {:.2} KiB/s predicted ({:.1}× the field figure).",
            kib(self.stop_and_wait().max(self.windowed())),
            kib(self.stop_and_wait().max(self.windowed())) / FIELD_REPORT_KIBPS
        );
    }
}

fn upload(a: &UploadArgs, root: &Path) -> anyhow::Result<()> {
    let (file, image) = bench_image(root, &a.layout, a.size)?;
    let layout = sim_cmd::resolve_layout(root, &a.layout)?;
    let (slot_size, trailer) = upload_slot(&layout, &BootloaderSpec::default())?;
    let prediction = Prediction::new(a, image.len(), slot_size, trailer);
    let prediction = match prediction {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_file(&file);
            return Err(e);
        }
    };
    prediction.print();
    prediction.print_go_and_field(a);
    println!();
    let mut serve = ServeArgs::new(&a.layout);
    serve.baud = a.baud;
    // The board spends the chip's flash time as the prediction does.
    serve.chip = Some(a.chip.clone());
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
    let result = std::thread::scope(|s| -> anyhow::Result<()> {
        let server = s.spawn(|| {
            sim_cmd::serve_with(&serve, root, &stop, |p| {
                let _ = tx.send(p.to_owned());
            })
        });
        let pty = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                stop.store(true, Ordering::SeqCst);
                return match server.join() {
                    Ok(Err(e)) => Err(e.context("sim serve did not start")),
                    _ => bail!("sim serve did not report its PTY"),
                };
            }
        };
        let r = measure(a, &prediction, &pty, &image, &file, root);
        stop.store(true, Ordering::SeqCst);
        let _ = server.join();
        r
    });
    let _ = std::fs::remove_file(&file);
    result
}

fn measure(
    a: &UploadArgs,
    prediction: &Prediction,
    pty: &Path,
    image: &[u8],
    file: &Path,
    root: &Path,
) -> anyhow::Result<()> {
    let baud = a.baud.unwrap_or(PREDICTION_BAUD);
    let link = dfu_hil_board::transports::serial::open(&pty.to_string_lossy(), baud)
        .with_context(|| format!("open {}", pty.display()))?;
    let mut client =
        Client::with_request_options(link, RequestOptions::timeout(Duration::from_secs(5)));
    let options = UploadOptions {
        timeout: Duration::from_secs(5),
        first_chunk_timeout: Duration::from_secs(60),
        window: a.window,
        ..UploadOptions::default()
    };
    // The board has just started: its SMP transport drains what arrives before it registers
    // (docs/device-model.md), so wait until it answers, as after any reset.
    client
        .wait_ready(&dfu_hil_smp::BootWait::default())
        .context("the simulated board did not answer SMP")?;
    let params = client.params().map_err(|e| e.to_string());
    let described = client.transport_mut().describe();
    let t0 = Instant::now();
    let rep = client
        .upload_with(0, image, &options, &mut |_| {})
        .context("upload to the simulated board")?;
    let secs = t0.elapsed().as_secs_f64();
    let rate = image.len() as f64 / secs;
    println!("measured on the simulated board (`sim serve` on a PTY), link: {described}");
    println!(
        "dfu-hil: {} B in {:.3} s = {:.0} B/s ({:.2} KiB/s), {} requests, window {}, {} retries",
        image.len(),
        secs,
        rate,
        rate / 1024.0,
        rep.chunks,
        rep.window,
        rep.retries
    );
    let buf_size = match &params {
        Ok(p) => p.buf_size as usize,
        Err(e) => {
            println!(
                "  the board did not answer params ({e}): its ceiling below uses --buf-size {}",
                a.buf_size
            );
            a.buf_size
        }
    };
    match a.baud {
        Some(baud) => {
            let limits = prediction.link.limits;
            match serial_ceiling(baud, limits, buf_size) {
                Some(c) => {
                    let (ceiling, which) = if rep.window > 1 {
                        (c.windowed, "windowed")
                    } else {
                        (c.stop_and_wait, "stop-and-wait")
                    };
                    println!(
                        "  link-only {which} ceiling for buf_size {} and {limits}: \
                         {} B requests, {} data bytes → {:.2} KiB/s; at most {} requests for \
                         this image (below 64 KiB a request carries 2 bytes more)",
                        buf_size,
                        c.request,
                        c.data,
                        kib(ceiling),
                        c.requests_for(image.len())
                    );
                    println!(
                        "ratio: {:.0} % of the {which} link ceiling ({:.0} B/s), {:.0} % of the \
                         prediction with flash time ({:.2} KiB/s overall); the simulated board \
                         stalls for the {} flash time of each erase and write",
                        rate / ceiling * 100.0,
                        ceiling,
                        rate / 1024.0 / prediction.overall_kib() * 100.0,
                        prediction.overall_kib(),
                        a.chip
                    );
                    if rate > ceiling {
                        println!(
                            "  above the link ceiling: the measurement is off (a pacer or clock \
                             problem), not the device"
                        );
                    }
                }
                None => println!("buf_size {buf_size} too small for the ceiling model"),
            }
        }
        None => println!("unpaced PTY: no baud-rate ceiling applies"),
    }
    drop(client);
    if let Some(arg) = &a.smpmgr {
        let Some(smpmgr) = find_smpmgr(root, arg) else {
            println!("smpmgr: not found (install with .venv/bin/pip install smpmgr)");
            return Ok(());
        };
        let t0 = Instant::now();
        let out = std::process::Command::new(&smpmgr)
            .arg("--port")
            .arg(pty)
            .args(["--timeout", "10", "image", "upload"])
            .arg(file)
            .output()
            .with_context(|| format!("run {}", smpmgr.display()))?;
        let secs = t0.elapsed().as_secs_f64();
        if !out.status.success() {
            println!(
                "smpmgr: failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
        } else {
            let s_rate = image.len() as f64 / secs;
            println!(
                "smpmgr: {} B in {:.3} s = {:.0} B/s ({:.2} KiB/s) (process start included); dfu-hil/smpmgr = {:.1}x",
                image.len(),
                secs,
                s_rate,
                s_rate / 1024.0,
                rate / s_rate
            );
        }
    }
    Ok(())
}
