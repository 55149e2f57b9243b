//! `dfu-hil smp …`: talk SMP to a board on the desk — list, upload, test, confirm, erase,
//! echo, reset, params, info — over a serial port, UDP or (with the `ble` feature) BLE.
//!
//! Exit codes (`dfu_hil_runner::exit::Exit`): 0 ok, 100 the device reported an error, 98 the
//! port or link is unavailable (including no answer), 96 bad input. Device errors are printed with their name and
//! explanation, never as a bare number (the most common complaint about mcumgr tools).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use dfu_hil_runner::exit::Exit;
use dfu_hil_smp::{
    Client, DeviceError, RequestOptions, SlotState, SmpError, Transport, UploadOptions,
    UploadProgress, Version,
};

use crate::error::{CliError, CliResult};

/// Where the device is and how to talk to it.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("link").required(true).args(["port", "udp", "ble"])))]
pub struct SmpArgs {
    /// Serial port or PTY, e.g. /dev/serial/by-id/usb-SEGGER_J-Link_000683…-if00, or a port behind ser2net: rfc2217://host:port, tcp://host:port.
    #[arg(long, value_name = "PATH")]
    pub port: Option<String>,
    /// UDP target (port 1337 when omitted).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub udp: Option<String>,
    /// BLE device name or address (builds with the `ble` feature only).
    #[arg(long, value_name = "NAME")]
    pub ble: Option<String>,
    /// Serial baud rate (ignored by USB CDC ACM and PTYs).
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 2.5, value_name = "SECONDS")]
    pub timeout: f64,
    /// Send SMP v1 headers (old firmware, MCUboot serial recovery).
    #[arg(long)]
    pub smp_v1: bool,
    /// The device's serial receive lines, COUNTxSIZE (CONFIG_UART_MCUMGR_RX_BUF_COUNT x
    /// CONFIG_UART_MCUMGR_RX_BUF_SIZE), or `auto` to find the count before an upload; every
    /// request is sized to fit [default: Zephyr's 2x128].
    #[arg(long, value_name = "COUNTxSIZE|auto")]
    pub serial_lines: Option<dfu_hil_smp::LineSetting>,
    #[command(subcommand)]
    pub cmd: SmpCmd,
}

#[derive(Subcommand, Debug)]
pub enum SmpCmd {
    /// Image management (group 1).
    #[command(subcommand)]
    Image(ImageCmd),
    /// OS management (group 0).
    #[command(subcommand)]
    Os(OsCmd),
    /// Any request by number: `raw --group 63 --command 0 --op write` (Zephyr basic "erase
    /// storage"). Prints the decoded answer as JSON (byte strings as `hex:…`); an error answer
    /// is printed too and exits 100.
    Raw(RawArgs),
}

#[derive(Args, Debug)]
pub struct RawArgs {
    /// Group ID (0 OS, 1 image, 63 Zephyr basic, 64+ application).
    #[arg(long)]
    pub group: u16,
    /// Command ID within the group.
    #[arg(long)]
    pub command: u8,
    /// `read` or `write`.
    #[arg(long, default_value = "read", value_parser = ["read", "write"])]
    pub op: String,
    /// Request body as JSON (a map; `"hex:…"` text is sent as a byte string) [default: {}].
    #[arg(long, value_name = "JSON")]
    pub body: Option<String>,
    /// SMP header version of this request (overrides --smp-v1).
    #[arg(long, value_name = "1|2", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub smp_version: Option<u8>,
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Show the slots: version, hash, flags.
    List,
    /// Upload a signed MCUboot image file.
    Upload {
        file: PathBuf,
        /// Image number (multi-image builds).
        #[arg(long, default_value_t = 0)]
        image: u32,
        /// Requests in flight (default: the device's buf_count − 1; 1 = stop-and-wait).
        #[arg(long)]
        window: Option<usize>,
    },
    /// Boot the image with this hash once, then revert unless it confirms itself.
    Test {
        /// The image's SHA-256 TLV as shown by `image list` (64 hex digits).
        hash: String,
    },
    /// Make an image permanent (default: the running one).
    Confirm { hash: Option<String> },
    /// Erase a slot (default: the one opposite the running image).
    Erase {
        #[arg(long)]
        slot: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OsCmd {
    /// Echo text back.
    Echo { text: String },
    /// Reboot the device.
    Reset {
        /// Reset even if the application's reset hook refused (EBUSY).
        #[arg(long)]
        force: bool,
        /// Wait until the device has rebooted (the old app answers for
        /// CONFIG_MCUMGR_GRP_OS_RESET_MS after the request) and answers SMP again.
        #[arg(long)]
        wait: bool,
    },
    /// Show the device's SMP buffer size and count.
    Params,
    /// Show OS/application info.
    Info {
        /// uname-style selector, e.g. `a` for everything.
        #[arg(long)]
        format: Option<String>,
    },
}

/// Run one `smp` command against a device, printing to stdout/stderr.
pub fn run_smp(args: SmpArgs) -> CliResult {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let fancy = err.is_terminal();
    run_smp_to(args, &mut out, &mut err, fancy)
}

/// [`run_smp`] with explicit output streams; `fancy` draws a progress bar on the terminal,
/// otherwise progress is plain lines on `err`. Failures are returned, for
/// [`crate::error::finish`] to print.
pub fn run_smp_to(
    args: SmpArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    fancy: bool,
) -> CliResult {
    // Input first, so a typo costs no connection.
    let input = Input::check(&args.cmd).map_err(CliError::invalid)?;
    if !(args.timeout > 0.0 && args.timeout <= dfu_hil_runner::limits::MAX_TIMEOUT_S as f64) {
        return Err(CliError::invalid(format!(
            "--timeout must be a positive number of seconds, at most {}",
            dfu_hil_runner::limits::MAX_TIMEOUT_S
        )));
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let link = open_link(&args, timeout)
        .map_err(|e| CliError::infrastructure(format!("cannot open the link: {e}")))?;
    let mut client = Client::with_request_options(link, RequestOptions::timeout(timeout));
    if args.smp_v1 {
        client.set_version(Version::V1);
    }
    if let Some(lines) = args.serial_lines {
        client
            .transport_mut()
            .set_line_limits(lines.limits(), &format!("--serial-lines {lines}"));
        client.set_discover_lines(matches!(lines, dfu_hil_smp::LineSetting::Discover(_)));
    }
    if args.port.is_some() {
        // A device that has just booted (or a port just opened on one) can lose the first
        // request: its SMP transport drains what arrived before it registered. Probe with
        // short echoes until one is answered, so that loss costs 250 ms, not a failed command.
        let ready = dfu_hil_smp::BootWait {
            settle: Duration::ZERO,
            probe_timeout: timeout.min(Duration::from_millis(250)),
            boot_timeout: timeout,
            ..dfu_hil_smp::BootWait::default()
        };
        client
            .wait_ready(&ready)
            .map_err(|e| describe(&e, &args.cmd, timeout, false))?;
    }
    execute(&mut client, &args.cmd, input, out, err, fancy)
        .map_err(|e| describe(&e, &args.cmd, timeout, client.has_answered()))?;
    Ok(Exit::Pass)
}

/// Parsed arguments that need checking before any I/O.
enum Input {
    None,
    Body(dfu_hil_smp::Value),
    Hash(Option<Vec<u8>>),
    File(Vec<u8>),
}

impl Input {
    fn check(cmd: &SmpCmd) -> Result<Input, String> {
        match cmd {
            SmpCmd::Image(ImageCmd::Upload { file, .. }) => {
                let data = std::fs::read(file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                if data.is_empty() {
                    return Err(format!("{} is empty", file.display()));
                }
                if data.len() < 4 || data[..4] != [0x3d, 0xb8, 0xf3, 0x96] {
                    return Err(format!(
                        "{} is not a signed MCUboot image (no 0x96f3b83d magic); sign it with imgtool first",
                        file.display()
                    ));
                }
                Ok(Input::File(data))
            }
            SmpCmd::Image(ImageCmd::Test { hash }) => Ok(Input::Hash(Some(parse_hash(hash)?))),
            SmpCmd::Image(ImageCmd::Confirm { hash }) => Ok(Input::Hash(match hash {
                Some(h) => Some(parse_hash(h)?),
                None => None,
            })),
            SmpCmd::Raw(r) => {
                let json: serde_json::Value = match &r.body {
                    None => serde_json::Value::Object(Default::default()),
                    Some(t) => {
                        serde_json::from_str(t).map_err(|e| format!("--body is not JSON: {e}"))?
                    }
                };
                if !json.is_object() {
                    return Err("--body must be a JSON map, e.g. '{\"d\": \"hi\"}'".into());
                }
                Ok(Input::Body(dfu_hil_runner::raw_smp::to_cbor(&json)))
            }
            _ => Ok(Input::None),
        }
    }
}

fn parse_hash(s: &str) -> Result<Vec<u8>, String> {
    let b = hex::decode(s.trim()).map_err(|e| format!("hash `{s}` is not hex: {e}"))?;
    if b.len() != 32 {
        return Err(format!(
            "hash must be 32 bytes (64 hex digits), got {} bytes; copy it from `image list`",
            b.len()
        ));
    }
    Ok(b)
}

fn open_link(args: &SmpArgs, timeout: Duration) -> Result<Box<dyn Transport>, SmpError> {
    if let Some(path) = &args.port {
        return Ok(Box::new(dfu_hil_board::transports::serial::open(
            path, args.baud,
        )?));
    }
    if let Some(target) = &args.udp {
        return Ok(Box::new(dfu_hil_board::transports::UdpTransport::open(
            target,
        )?));
    }
    if let Some(name) = &args.ble {
        return open_ble(name, timeout);
    }
    Err(SmpError::Transport(
        "no link given: use --port, --udp or --ble".into(),
    ))
}

#[cfg(feature = "ble")]
fn open_ble(name: &str, timeout: Duration) -> Result<Box<dyn Transport>, SmpError> {
    // Scanning needs longer than one answer; advertising intervals go up to seconds.
    let scan = timeout.max(Duration::from_secs(10));
    Ok(Box::new(dfu_hil_board::transports::ble::open(name, scan)?))
}

#[cfg(not(feature = "ble"))]
fn open_ble(_name: &str, _timeout: Duration) -> Result<Box<dyn Transport>, SmpError> {
    Err(SmpError::Transport(
        "this build has no BLE support; rebuild with `--features ble` (needs libdbus-1-dev and pkg-config on Linux)"
            .into(),
    ))
}

fn execute(
    c: &mut Client<Box<dyn Transport>>,
    cmd: &SmpCmd,
    input: Input,
    out: &mut dyn Write,
    err: &mut dyn Write,
    fancy: bool,
) -> Result<(), SmpError> {
    match cmd {
        SmpCmd::Raw(r) => {
            let Input::Body(body) = input else {
                unreachable!("checked")
            };
            let op = if r.op == "write" {
                dfu_hil_smp::Op::Write
            } else {
                dfu_hil_smp::Op::Read
            };
            let saved = c.version();
            match r.smp_version {
                Some(1) => c.set_version(Version::V1),
                Some(_) => c.set_version(Version::V2),
                None => {}
            }
            let answer = c.request(op, r.group, r.command, body);
            c.set_version(saved);
            let (value, result) = match answer {
                Ok(v) => (v, Ok(())),
                Err(SmpError::Device(d)) => (
                    dfu_hil_runner::raw_smp::error_body(&d),
                    Err(SmpError::Device(d)),
                ),
                Err(e) => return Err(e),
            };
            writeln!(out, "{}", dfu_hil_runner::raw_smp::to_json(&value))?;
            return result;
        }
        SmpCmd::Image(ImageCmd::List) => print_slots(out, &c.image_state()?)?,
        SmpCmd::Image(ImageCmd::Upload { image, window, .. }) => {
            let Input::File(data) = input else {
                unreachable!("checked")
            };
            // `--timeout` is every request's wait; the first chunk waits for the slot erase
            // only while the device is known to be there (a dead link fails within it).
            let options = UploadOptions {
                timeout: c.request_options().timeout,
                window: *window,
                ..UploadOptions::default()
            };
            let report = upload_with_bar(c, *image, &data, &options, err, fancy)?;
            let secs = report.elapsed.as_secs_f64().max(1e-6);
            writeln!(
                out,
                "uploaded {} B in {:.2} s ({:.1} KiB/s), {} requests, window {}, {} retries{}",
                report.bytes,
                secs,
                report.bytes as f64 / 1024.0 / secs,
                report.chunks,
                report.window,
                report.retries,
                match report.matched {
                    Some(true) => ", device hash check: match",
                    _ => "",
                }
            )?;
        }
        SmpCmd::Image(ImageCmd::Test { .. }) => {
            let Input::Hash(h) = input else {
                unreachable!("checked")
            };
            let slots = c.image_test(h.as_deref().expect("test needs a hash"))?;
            print_slots(out, &slots)?;
        }
        SmpCmd::Image(ImageCmd::Confirm { .. }) => {
            let Input::Hash(h) = input else {
                unreachable!("checked")
            };
            print_slots(out, &c.image_confirm(h.as_deref())?)?;
        }
        SmpCmd::Image(ImageCmd::Erase { slot }) => {
            c.image_erase(*slot)?;
            match slot {
                Some(s) => writeln!(out, "slot {s} erased")?,
                None => writeln!(out, "secondary slot erased")?,
            }
        }
        SmpCmd::Os(OsCmd::Echo { text }) => writeln!(out, "{}", c.echo(text)?)?,
        SmpCmd::Os(OsCmd::Reset { force, wait }) => {
            c.reset(*force)?;
            writeln!(out, "reset requested")?;
            if *wait {
                let w = dfu_hil_smp::BootWait::default();
                let sign = c.await_reboot(&w)?;
                writeln!(out, "reboot seen: {sign}")?;
                writeln!(out, "{}", c.wait_ready(&w)?)?;
            }
        }
        SmpCmd::Os(OsCmd::Params) => {
            let p = c.params()?;
            writeln!(out, "buf_size {}  buf_count {}", p.buf_size, p.buf_count)?;
        }
        SmpCmd::Os(OsCmd::Info { format }) => writeln!(out, "{}", c.os_info(format.as_deref())?)?,
    }
    Ok(())
}

fn print_slots(out: &mut dyn Write, slots: &[SlotState]) -> std::io::Result<()> {
    if slots.is_empty() {
        return writeln!(out, "no valid image in any slot");
    }
    for s in slots {
        let flags: Vec<&str> = [
            (s.active, "active"),
            (s.confirmed, "confirmed"),
            (s.pending, "pending"),
            (s.permanent, "permanent"),
            (s.bootable, "bootable"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        writeln!(
            out,
            "image {} slot {}  version {}  hash {}  [{}]",
            s.image,
            s.slot,
            if s.version.is_empty() {
                "?"
            } else {
                &s.version
            },
            hex::encode(&s.hash),
            flags.join(" ")
        )?;
    }
    Ok(())
}

fn upload_with_bar(
    c: &mut Client<Box<dyn Transport>>,
    image: u32,
    data: &[u8],
    options: &UploadOptions,
    err: &mut dyn Write,
    fancy: bool,
) -> Result<dfu_hil_smp::UploadReport, SmpError> {
    if fancy {
        let bar = indicatif::ProgressBar::new(data.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("valid template"),
        );
        let r = c.upload_with(image, data, options, &mut |p| {
            bar.set_position(p.sent as u64)
        });
        bar.finish_and_clear();
        return r;
    }
    // Not a terminal (CI log, pipe): a line per 10 %.
    let mut next_decile = 1;
    c.upload_with(image, data, options, &mut |p: &UploadProgress| {
        let pct = (p.fraction() * 100.0) as usize;
        if pct >= next_decile * 10 {
            next_decile = pct / 10 + 1;
            let rate = p
                .rate()
                .map_or(String::new(), |r| format!(" {:.1} KiB/s", r / 1024.0));
            let eta = p
                .eta()
                .map_or(String::new(), |e| format!(" ETA {:.0}s", e.as_secs_f64()));
            let _ = writeln!(err, "upload {pct:3}% {}/{} B{rate}{eta}", p.sent, p.total);
        }
    })
}

/// A failure as readable text with its exit code: the device's own error is a verdict (100),
/// silence or a broken link is infrastructure (98). Once the device has answered on this link
/// (`answered`), silence is not blamed on the port, baud rate or configuration.
fn describe(e: &SmpError, cmd: &SmpCmd, timeout: Duration, answered: bool) -> CliError {
    let secs = timeout.as_secs_f64();
    match e {
        SmpError::Device(d) => CliError::failed(device_text(d, cmd)),
        SmpError::Timeout | SmpError::NotReady { .. } if !answered => {
            CliError::infrastructure(format!(
                "no answer within {secs:.1} s: wrong port or baud, SMP not enabled on this link, \
                 a console/log sharing the UART, or a request larger than the device buffer"
            ))
        }
        SmpError::Timeout => CliError::infrastructure(format!(
            "no answer within {secs:.1} s, although the device answered earlier on this link: \
             it may have reset or hung, or its answers are being lost (a console sharing the \
             UART)"
        )),
        SmpError::UploadStopped { cause, .. }
            if matches!(
                **cause,
                SmpError::Timeout | SmpError::Transport(_) | SmpError::Io(_)
            ) =>
        {
            CliError::infrastructure(format!(
                "{e}; the device answered this upload, so the link settings are right: it may \
                 have reset or hung, or its answers are being lost"
            ))
        }
        SmpError::Transport(_) | SmpError::Io(_) => CliError::infrastructure(format!("link: {e}")),
        other => CliError::failed(other),
    }
}

fn device_text(d: &DeviceError, cmd: &SmpCmd) -> String {
    let base = format!("device error {}: {}", d.name(), d.explain());
    match (d, cmd) {
        (DeviceError::Mgmt { rc: 8 }, SmpCmd::Image(ImageCmd::Upload { .. })) => format!(
            "{base}\n  upload is NOT_SUPPORTED here: the image management group is not compiled \
             into the running firmware (CONFIG_MCUMGR_GRP_IMG), or the device sits in MCUboot \
             serial recovery, which offers fewer commands"
        ),
        _ => base,
    }
}
