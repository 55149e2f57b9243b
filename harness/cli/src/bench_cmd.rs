//! `dfu-hil bench upload`: upload throughput against the simulated board on a real PTY, beside
//! the theoretical ceiling for the same baud rate and chunking (reference/smp.md §6.3), and
//! optionally `smpmgr image upload` against the same board in the same run.
//!
//! A benchmark prints figures; it asserts nothing about speed.

use crate::sim_cmd::{self, ServeArgs};
use anyhow::{bail, Context};
use dfu_hil_runner::fixtures::{self, AppFixture, Builder, FixtureSpec};
use dfu_hil_runner::scenario::BootloaderSpec;
use dfu_hil_smp::bench::serial_ceiling;
use dfu_hil_smp::Client;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Subcommand, Debug, Clone)]
pub enum BenchCmd {
    /// Upload an image of a given size to `sim serve` through a PTY and print bytes/s.
    Upload(UploadArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct UploadArgs {
    /// Size of the unsigned app binary to upload, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub size: u32,
    /// Pace the simulated UART at this baud rate (8N1); unpaced when not given.
    #[arg(long)]
    pub baud: Option<u32>,
    /// Upload window (requests in flight); default: from the device's buf_count.
    #[arg(long)]
    pub window: Option<usize>,
    /// Also time `smpmgr image upload` against the same board (path, or `auto` to look in
    /// PATH and .venv).
    #[arg(long)]
    pub smpmgr: Option<String>,
    #[arg(long, default_value = "nrf52840-internal")]
    pub layout: String,
}

pub fn run_bench(cmd: BenchCmd, root: &Path) -> anyhow::Result<i32> {
    match cmd {
        BenchCmd::Upload(a) => upload(&a, root),
    }
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

fn upload(a: &UploadArgs, root: &Path) -> anyhow::Result<i32> {
    let (file, image) = bench_image(root, &a.layout, a.size)?;
    let mut serve = ServeArgs::new(&a.layout);
    serve.baud = a.baud;
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
    let result = std::thread::scope(|s| -> anyhow::Result<i32> {
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
        let r = measure(a, &pty, &image, &file, root);
        stop.store(true, Ordering::SeqCst);
        let _ = server.join();
        r
    });
    let _ = std::fs::remove_file(&file);
    result
}

fn measure(
    a: &UploadArgs,
    pty: &Path,
    image: &[u8],
    file: &Path,
    root: &Path,
) -> anyhow::Result<i32> {
    let baud = a.baud.unwrap_or(115_200);
    let link = dfu_hil_board::transports::serial::open(&pty.to_string_lossy(), baud)
        .with_context(|| format!("open {}", pty.display()))?;
    let mut client = Client::new(link);
    client.set_first_chunk_timeout(Duration::from_secs(60));
    client.set_timeout(Duration::from_secs(5));
    client.set_upload_window(a.window);
    let params = client.params().ok();
    let t0 = Instant::now();
    let rep = client
        .upload(0, image, &mut |_, _| {})
        .context("upload to the simulated board")?;
    let secs = t0.elapsed().as_secs_f64();
    let rate = image.len() as f64 / secs;
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
    match (a.baud, params) {
        (Some(baud), Some(p)) => match serial_ceiling(baud, p.buf_size as usize) {
            Some(c) => {
                println!("{c}");
                let ceiling = if rep.window > 1 {
                    c.pipelined
                } else {
                    c.stop_and_wait
                };
                println!(
                    "ratio: {:.0} % of the {} ceiling ({:.0} B/s)",
                    rate / ceiling * 100.0,
                    if rep.window > 1 {
                        "pipelined"
                    } else {
                        "stop-and-wait"
                    },
                    ceiling
                );
            }
            None => println!("buf_size {} too small for the ceiling model", p.buf_size),
        },
        (None, _) => println!("unpaced PTY: no baud-rate ceiling applies"),
        (Some(_), None) => println!("the device did not answer params: no ceiling computed"),
    }
    drop(client);
    if let Some(arg) = &a.smpmgr {
        let Some(smpmgr) = find_smpmgr(root, arg) else {
            println!("smpmgr: not found (install with .venv/bin/pip install smpmgr)");
            return Ok(0);
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
    Ok(0)
}
