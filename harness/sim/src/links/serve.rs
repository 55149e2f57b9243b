//! The simulated board on a real PTY, the way Zephyr's native_sim exposes its UART: open a
//! pseudo-terminal pair, announce the slave's path (`uart connected to pseudotty: /dev/pts/N`),
//! then shuttle bytes between the master and the board's SMP UART until told to stop. Any
//! serial client — the harness's own `SerialTransport`, smpmgr, mcumgr — opens the slave path
//! as it would open `/dev/ttyACM0`.
//!
//! * **Pacing.** With a baud rate, both directions move at most `baud / 10` bytes per second
//!   (8N1), so transfer figures look like a real UART; host bytes beyond that wait in the PTY
//!   (the host's writes block, as on a real wire). Without one, bytes move as fast as they come.
//! * **Reconnects.** The server keeps its own handle on the slave, so a client closing the port
//!   does not hang the PTY up (no `EIO` on the master) and the next client can open it again.
//!   Device output while nobody listens waits in the PTY (as on a USB CDC ACM port).
//! * **Flash file.** One raw file holding every flash device of the layout, concatenated in
//!   the layout's `flash:` order, each exactly its size (for a single-device layout this is the
//!   same file native_sim's `--flash=FILE` keeps). Loaded at start when it exists, written
//!   whole at start, then kept in step after every request that changed flash
//!   ([`FlashFileWriter`]: the changed blocks, at once — native_sim maps the file shared, so a
//!   SIGKILL, the power cut, loses nothing already written), and at exit.
//! * **Bootloader and app as two processes** (as real native_sim builds run): [`boot_once`] is
//!   the bootloader stand-in (`dfu-hil sim boot`: the MCUboot model once on the flash file),
//!   [`start_app_as_left`] starts the app on flash as the bootloader left it, without running
//!   the boot model again, and [`serve_app`] ends serving once an accepted
//!   `os reset` took effect (native_sim exits on `sys_reboot`), with the flash as it was just
//!   before the reboot (the reboot's own boot is the bootloader process's business).

use crate::bootloader::BootOutcome;
use crate::device::board::{CoreState, SimBoard};
use crate::device::flash_map::FlashMap;
use dfu_hil_mcuboot::image::Image;
use dfu_hil_mcuboot::trailer::UpgradeMode;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The line native_sim prints; tools look for it to find the port.
pub const READY_PREFIX: &str = "uart connected to pseudotty: ";

/// Longest single flash stall modelled (a whole-slot erase is a few seconds on nRF52840).
const MAX_STALL: Duration = Duration::from_secs(60);

/// Device output kept while nobody reads it; older bytes are lost, as on an unread UART.
const OUT_CAP: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("flash file {path}: {message}")]
    FlashFile { path: PathBuf, message: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// How to serve.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    /// Pace the UART at this baud rate (8N1: baud/10 bytes per second); `None` = unpaced.
    pub baud: Option<u32>,
    /// Keep flash in this file (see the module docs for the format).
    pub flash_file: Option<PathBuf>,
}

/// What a serve session did, for the caller's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeReport {
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Times the flash file was written.
    pub saves: u32,
    /// Serving ended because of an `os reset` ([`serve_app`]).
    pub reset: bool,
}

/// A pseudo-terminal pair: the master end (the device side) and the path of the slave end.
pub struct Pty {
    master: OwnedFd,
    /// Held open so the PTY never hangs up between clients.
    _slave: OwnedFd,
    path: PathBuf,
}

fn check(r: libc::c_int, what: &str) -> Result<libc::c_int, ServeError> {
    if r < 0 {
        Err(ServeError::Io {
            what: what.to_owned(),
            source: io::Error::last_os_error(),
        })
    } else {
        Ok(r)
    }
}

fn set_cloexec(fd: RawFd) -> Result<(), ServeError> {
    // SAFETY: plain fcntl on a descriptor we own.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) }, "fcntl(F_GETFD)")?;
    check(
        unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) },
        "fcntl(F_SETFD)",
    )?;
    Ok(())
}

impl Pty {
    /// Open a PTY pair in raw mode (no echo, no line editing, no CR/LF translation), master
    /// non-blocking, both ends close-on-exec so child processes do not inherit them.
    pub fn open() -> Result<Pty, ServeError> {
        let mut m: libc::c_int = -1;
        let mut s: libc::c_int = -1;
        // SAFETY: openpty writes two descriptors; name, termios and winsize are optional (null).
        check(
            unsafe {
                libc::openpty(
                    &mut m,
                    &mut s,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    std::ptr::null(),
                )
            },
            "openpty",
        )?;
        // SAFETY: openpty succeeded, so both are fresh descriptors owned by nobody else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        set_cloexec(m)?;
        set_cloexec(s)?;
        // SAFETY: termios is plain data; tcgetattr fills it before cfmakeraw/tcsetattr use it.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            check(libc::tcgetattr(s, &mut t), "tcgetattr")?;
            libc::cfmakeraw(&mut t);
            check(libc::tcsetattr(s, libc::TCSANOW, &t), "tcsetattr")?;
        }
        let flags = check(unsafe { libc::fcntl(m, libc::F_GETFL) }, "fcntl(F_GETFL)")?;
        check(
            unsafe { libc::fcntl(m, libc::F_SETFL, flags | libc::O_NONBLOCK) },
            "fcntl(F_SETFL)",
        )?;
        let mut name = [0 as libc::c_char; 256];
        // SAFETY: the buffer is as long as we say.
        let r = unsafe { libc::ttyname_r(s, name.as_mut_ptr(), name.len()) };
        if r != 0 {
            return Err(ServeError::Io {
                what: "ttyname_r".into(),
                source: io::Error::from_raw_os_error(r),
            });
        }
        // SAFETY: ttyname_r wrote a NUL-terminated string into `name`.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Ok(Pty {
            master,
            _slave: slave,
            path: PathBuf::from(path),
        })
    }

    /// Path of the slave end, what a client opens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written to the client that it has not read yet.
    fn unread_by_client(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int; the slave descriptor is ours and open.
        let r = unsafe { libc::ioctl(self._slave.as_raw_fd(), libc::FIONREAD, &mut n) };
        if r < 0 {
            0
        } else {
            n.max(0) as usize
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::write(self.master.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Wait for the master to become readable (`read`) and/or writable (`write`).
    /// Returns (readable, writable, hung up).
    fn poll(&self, read: bool, write: bool, timeout: Duration) -> (bool, bool, bool) {
        let mut events = 0;
        if read {
            events |= libc::POLLIN;
        }
        if write {
            events |= libc::POLLOUT;
        }
        let mut p = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = timeout.as_millis().clamp(0, i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r <= 0 {
            return (false, false, false);
        }
        (
            p.revents & libc::POLLIN != 0,
            p.revents & libc::POLLOUT != 0,
            p.revents & (libc::POLLHUP | libc::POLLERR) != 0,
        )
    }
}

/// Total size of the flash file for this board's layout.
pub fn flash_file_size(board: &SimBoard) -> u64 {
    board.flash.devices().iter().map(|d| d.size() as u64).sum()
}

/// Load every flash device from `path`. `Ok(false)` when the file does not exist (the flash
/// stays as it is, erased on a new board); an error when it exists but does not fit the layout.
pub fn load_flash(board: &mut SimBoard, path: &Path) -> Result<bool, ServeError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(format!("read {}", path.display()))(e)),
    };
    let want = flash_file_size(board);
    if bytes.len() as u64 != want {
        let devs: Vec<String> = board
            .flash
            .devices()
            .iter()
            .map(|d| format!("{} 0x{:x}", d.name, d.size()))
            .collect();
        return Err(ServeError::FlashFile {
            path: path.to_owned(),
            message: format!(
                "{} bytes, but layout `{}` needs {want} ({}); wrong layout, or delete the file to start erased",
                bytes.len(),
                board.flash.layout.name,
                devs.join(" + ")
            ),
        });
    }
    let names: Vec<(String, usize)> = board
        .flash
        .devices()
        .iter()
        .map(|d| (d.name.clone(), d.size() as usize))
        .collect();
    let mut off = 0;
    for (name, size) in names {
        let dev = board.flash.device_mut(&name).expect("device listed");
        dev.load(&bytes[off..off + size])
            .map_err(|e| ServeError::FlashFile {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        off += size;
    }
    Ok(true)
}

/// Save every flash device to `path` (atomically: `path.tmp`, then rename).
pub fn save_flash(board: &SimBoard, path: &Path) -> Result<(), ServeError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        for d in board.flash.devices() {
            f.write_all(d.contents())?;
        }
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, path)
    };
    write().map_err(io_err(format!("write {}", path.display())))
}

/// Keeps a flash file in step with the board as native_sim does: native_sim maps its flash
/// file shared (`MAP_SHARED`), so every write is in the file at once and survives the process
/// being killed (a power cut is SIGKILL). Only the 4 KiB blocks that changed since the last
/// call are written, without fsync (the page cache outlives the process, as with the map).
pub struct FlashFileWriter {
    path: PathBuf,
    /// What the file holds, per device in layout order.
    last: Vec<Vec<u8>>,
}

impl FlashFileWriter {
    const BLOCK: usize = 4096;

    /// Write the whole file now (atomically) and remember it.
    pub fn new(board: &SimBoard, path: &Path) -> Result<Self, ServeError> {
        save_flash(board, path)?;
        Ok(FlashFileWriter {
            path: path.to_owned(),
            last: board
                .flash
                .devices()
                .iter()
                .map(|d| d.contents().to_vec())
                .collect(),
        })
    }

    /// Write the blocks that differ from the file; returns how many were written.
    pub fn sync(&mut self, board: &SimBoard) -> Result<usize, ServeError> {
        use std::os::unix::fs::FileExt;
        let mut file: Option<std::fs::File> = None;
        let mut written = 0;
        let mut base = 0u64;
        for (i, d) in board.flash.devices().iter().enumerate() {
            let now = d.contents();
            let Some(last) = self.last.get_mut(i).filter(|l| l.len() == now.len()) else {
                // The layout changed under us: write it all again.
                *self = Self::new(board, &self.path)?;
                return Ok(usize::MAX);
            };
            for (k, (a, b)) in now
                .chunks(Self::BLOCK)
                .zip(last.chunks_mut(Self::BLOCK))
                .enumerate()
            {
                if a == b {
                    continue;
                }
                if file.is_none() {
                    file = Some(
                        std::fs::OpenOptions::new()
                            .write(true)
                            .open(&self.path)
                            .map_err(io_err(format!("open {}", self.path.display())))?,
                    );
                }
                let f = file.as_ref().expect("opened above");
                f.write_all_at(a, base + (k * Self::BLOCK) as u64)
                    .map_err(io_err(format!("write {}", self.path.display())))?;
                b.copy_from_slice(a);
                written += 1;
            }
            base += now.len() as u64;
        }
        Ok(written)
    }
}

/// Print the native_sim line announcing the port on stdout (flushed: tools read it from a pipe).
pub fn announce(path: &Path) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{READY_PREFIX}{}", path.display());
    let _ = out.flush();
}

/// Token bucket for one direction of a paced UART.
struct Pacer {
    /// Bytes per second; `None` = unlimited.
    rate: Option<f64>,
    budget: f64,
    last: Instant,
}

impl Pacer {
    fn new(baud: Option<u32>) -> Self {
        Pacer {
            rate: baud.map(|b| (b.max(10) as f64) / 10.0),
            budget: 0.0,
            last: Instant::now(),
        }
    }

    /// Bytes that may move now (at most `want`).
    fn allow(&mut self, want: usize) -> usize {
        let Some(rate) = self.rate else {
            return want;
        };
        let now = Instant::now();
        // At most 10 ms worth of burst (and at least one byte).
        let burst = (rate / 100.0).max(1.0);
        self.budget = (self.budget + now.duration_since(self.last).as_secs_f64() * rate).min(burst);
        self.last = now;
        (self.budget as usize).min(want)
    }

    fn spend(&mut self, n: usize) {
        if self.rate.is_some() {
            self.budget -= n as f64;
        }
    }

    /// Nothing wanted to move: a real UART does not bank the idle time, so the next byte
    /// starts a fresh character time instead of a burst.
    fn idle(&mut self) {
        if self.rate.is_some() {
            self.budget = self.budget.min(1.0);
        }
    }

    /// How long until one more byte may move.
    fn wait(&self) -> Duration {
        match self.rate {
            Some(rate) => Duration::from_secs_f64(((1.0 - self.budget).max(0.0)) / rate)
                .max(Duration::from_millis(1)),
            None => Duration::ZERO,
        }
    }
}

/// Open a PTY, call `on_ready` with the slave path (use [`announce`] to print it like
/// native_sim), then serve `board`'s SMP UART on it until `stop` is set. The board is used as
/// it is: load flash and reset it (power on) before calling. The flash file, if configured, is
/// saved after flash-changing requests and once more before returning.
pub fn serve(
    board: &mut SimBoard,
    cfg: &ServeConfig,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&Path),
) -> Result<ServeReport, ServeError> {
    let pty = Pty::open()?;
    on_ready(pty.path());
    serve_on(board, &pty, cfg, stop)
}

/// [`serve`] on a PTY the caller opened.
pub fn serve_on(
    board: &mut SimBoard,
    pty: &Pty,
    cfg: &ServeConfig,
    stop: &AtomicBool,
) -> Result<ServeReport, ServeError> {
    serve_loop(board, pty, cfg, stop, false)
}

/// [`serve`] for the app of a native_sim pair (started with [`start_app_as_left`]): also
/// stops once an accepted `os reset` took effect (after the app's reset delay), as a
/// native_sim app exits on `sys_reboot`. The answer is delivered first, and the flash is put
/// back as it was just before the reboot (the in-process boot model's writes are dropped: the
/// bootloader process does the next boot) and saved. [`ServeReport::reset`] says which ended
/// it.
pub fn serve_app(
    board: &mut SimBoard,
    cfg: &ServeConfig,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&Path),
) -> Result<ServeReport, ServeError> {
    let pty = Pty::open()?;
    on_ready(pty.path());
    serve_loop(board, &pty, cfg, stop, true)
}

fn serve_loop(
    board: &mut SimBoard,
    pty: &Pty,
    cfg: &ServeConfig,
    stop: &AtomicBool,
    exit_on_reset: bool,
) -> Result<ServeReport, ServeError> {
    let mut report = ServeReport::default();
    let mut rx = Pacer::new(cfg.baud);
    let mut tx = Pacer::new(cfg.baud);
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut saved_ops = board.flash.op_count();
    let idle_tick = Duration::from_millis(10);
    let mut reboot = exit_on_reset.then(|| RebootWatch::new(board));
    let mut writer = match &cfg.flash_file {
        Some(path) => Some(FlashFileWriter::new(board, path)?),
        None => None,
    };

    while !stop.load(Ordering::Relaxed) {
        let mark = out.len();
        if let Some(w) = reboot.as_mut() {
            w.before_call(board);
        }
        take_output(board, &mut out);
        if let Some(w) = reboot.as_mut() {
            if w.after_call(board, &mut out, mark) {
                report.reset = true;
                break;
            }
        }
        let can_in = rx.allow(1) > 0;
        let can_out = !out.is_empty() && tx.allow(1) > 0;
        let mut timeout = idle_tick;
        if !can_in {
            timeout = timeout.min(rx.wait());
        }
        if !out.is_empty() && !can_out {
            timeout = timeout.min(tx.wait());
        }
        let (readable, writable, hangup) = pty.poll(can_in, can_out, timeout);
        if !readable {
            rx.idle();
        }
        if out.is_empty() {
            tx.idle();
        }

        if readable {
            let n = rx.allow(buf.len());
            match pty.read(&mut buf[..n]) {
                Ok(0) => {}
                Ok(n) => {
                    rx.spend(n);
                    report.bytes_in += n as u64;
                    let mark = out.len();
                    if let Some(w) = reboot.as_mut() {
                        w.before_call(board);
                    }
                    board.uart_write(&buf[..n]);
                    if take_output(board, &mut out) {
                        rx.idle();
                        tx.idle();
                    }
                    if let Some(w) = reboot.as_mut() {
                        if w.after_call(board, &mut out, mark) {
                            report.reset = true;
                            break;
                        }
                    }
                }
                // EIO: no slave open (cannot happen while we hold one, tolerated anyway).
                Err(e) if is_transient(&e) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(io_err("read PTY master")(e)),
            }
        } else if hangup && !writable {
            std::thread::sleep(Duration::from_millis(5));
        }

        if writable && !out.is_empty() {
            let n = tx.allow(out.len());
            if n > 0 {
                match pty.write(&out[..n]) {
                    Ok(w) => {
                        tx.spend(w);
                        report.bytes_out += w as u64;
                        out.drain(..w);
                    }
                    Err(e) if is_transient(&e) => {}
                    Err(e) => return Err(io_err("write PTY master")(e)),
                }
            }
        }

        if let Some(w) = writer.as_mut() {
            let ops = board.flash.op_count();
            if ops != saved_ops {
                w.sync(board)?;
                saved_ops = ops;
                report.saves += 1;
            }
        }
    }
    if report.reset {
        deliver(pty, &mut tx, &mut out, &mut report, stop)?;
    }
    if let Some(path) = &cfg.flash_file {
        save_flash(board, path)?;
        report.saves += 1;
    }
    Ok(report)
}

/// How long a rebooting app waits for the client to take its last bytes before it goes.
const DELIVER_MAX: Duration = Duration::from_secs(2);

/// Before going down for a reboot: write what is left for the client and give it the chance
/// to read it (bytes unread when the PTY closes would be lost), at most [`DELIVER_MAX`].
fn deliver(
    pty: &Pty,
    tx: &mut Pacer,
    out: &mut Vec<u8>,
    report: &mut ServeReport,
    stop: &AtomicBool,
) -> Result<(), ServeError> {
    let deadline = Instant::now() + DELIVER_MAX;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        if out.is_empty() {
            if pty.unread_by_client() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let n = tx.allow(out.len());
        if n == 0 {
            std::thread::sleep(tx.wait());
            continue;
        }
        let (_, writable, _) = pty.poll(false, true, Duration::from_millis(10));
        if !writable {
            continue;
        }
        match pty.write(&out[..n]) {
            Ok(w) => {
                tx.spend(w);
                report.bytes_out += w as u64;
                out.drain(..w);
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(io_err("write PTY master")(e)),
        }
    }
    Ok(())
}

/// Notices the app going away for a reboot ([`SimBoard::app_generation`] changes) and
/// keeps a copy of the flash as it was before each board call that might reboot, so the
/// reboot's in-process boot (which a native_sim app does not do: the bootloader process does)
/// can be undone.
struct RebootWatch {
    generation: u64,
    shadow: FlashMap,
    shadow_ops: u64,
}

impl RebootWatch {
    fn new(board: &SimBoard) -> Self {
        RebootWatch {
            generation: board.app_generation(),
            shadow: board.flash.clone(),
            shadow_ops: board.flash.op_count(),
        }
    }

    fn before_call(&mut self, board: &SimBoard) {
        let ops = board.flash.op_count();
        if ops != self.shadow_ops {
            self.shadow = board.flash.clone();
            self.shadow_ops = ops;
        }
    }

    /// After a board call that appended to `out` from `mark` on: `true` when the app went
    /// away in it. Then the flash is put back and what the reboot printed is dropped (the
    /// answer to the reset request, if it came in the same call, is kept).
    fn after_call(&mut self, board: &mut SimBoard, out: &mut Vec<u8>, mark: usize) -> bool {
        if board.app_generation() == self.generation {
            return false;
        }
        take_output(board, out);
        let mark = mark.min(out.len());
        let keep = end_of_last_frame(&out[mark..]).map_or(mark, |e| mark + e);
        out.truncate(keep);
        board.flash = self.shadow.clone();
        true
    }
}

/// Index just past the last SMP serial frame line (`06 09` or `04 14` up to its `\n`) in
/// `bytes`, if there is one.
fn end_of_last_frame(bytes: &[u8]) -> Option<usize> {
    let start = bytes
        .windows(2)
        .rposition(|w| w == [0x06, 0x09] || w == [0x04, 0x14])?;
    bytes[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| start + i + 1)
}

// ---------------------------------------------------------------------------------------------
// Bootloader and app as two processes.

/// What one run of the bootloader stand-in ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootEnd {
    /// MCUboot hands over to the image in `partition` (a native_sim MCUboot exits here and
    /// the app executable starts).
    HandOver { partition: String },
    /// Nothing bootable: real MCUboot stays in its `FIH_PANIC` loop forever.
    Stuck { reason: String },
    /// No MCUboot build in the boot partition: nothing to model.
    NoBootloader,
}

/// The bootloader stand-in: run the MCUboot model once on `board` (flash loaded, not yet
/// reset). Returns how it ended and the lines it printed (up to the app's banner, which is
/// the app's to print).
pub fn boot_once(board: &mut SimBoard) -> (BootEnd, Vec<String>) {
    let seen = board.log().len();
    board.reset();
    let lines: Vec<String> = board.log()[seen.min(board.log().len())..]
        .iter()
        .take_while(|l| !l.starts_with("*** Booting Zephyr OS"))
        .cloned()
        .collect();
    let end = match (&board.last_boot().outcome, board.core_state()) {
        (Some(BootOutcome::Jump { partition, .. }), _) => BootEnd::HandOver {
            partition: partition.clone(),
        },
        (Some(BootOutcome::Halt { reason }), _) => BootEnd::Stuck {
            reason: reason.clone(),
        },
        (Some(BootOutcome::PowerCut { op }), _) => BootEnd::Stuck {
            reason: format!("power cut at flash operation {op}"),
        },
        (_, CoreState::LockedUp) => BootEnd::NoBootloader,
        (_, other) => BootEnd::Stuck {
            reason: format!("the boot chain ended with the core {other:?}"),
        },
    };
    (end, lines)
}

/// The app of a native_sim pair: start the image in the primary slot as the bootloader
/// process left the flash, without running the boot model on it again (a second boot would
/// revert a test swap at once). Works by letting the model boot a copy of the flash on
/// which nothing is pending (secondary slots, scratch and the primary's trailer area
/// erased; direct-xip flash as it is), then putting the flash back as it was; an app that
/// confirms itself at boot does so on the real flash afterwards. Returns the app's banner
/// lines, or why nothing runs.
pub fn start_app_as_left(board: &mut SimBoard) -> Result<Vec<String>, String> {
    let as_left = board.flash.clone();
    let mode = boot_mode(board);
    if mode != Some(UpgradeMode::DirectXip) {
        quiesce(&mut board.flash)
            .map_err(|e| format!("prepare the boot of the primary slot: {e}"))?;
    }
    let seen = board.log().len();
    board.reset();
    let lines: Vec<String> = board.log()[seen.min(board.log().len())..].to_vec();
    // The boot's own output is the bootloader process's; the app prints its banner itself.
    let _ = board.uart_read();
    board.flash = as_left;
    let app = match board.core_state() {
        CoreState::Running { app, .. } => app.clone(),
        other => {
            let tail: Vec<&str> = lines
                .iter()
                .rev()
                .take(6)
                .rev()
                .map(String::as_str)
                .collect();
            return Err(format!(
                "no app runs from the primary slot (core {other:?}): {}",
                tail.join(" | ")
            ));
        }
    };
    let mut banner: Vec<String> = lines
        .into_iter()
        .skip_while(|l| !l.starts_with("*** Booting Zephyr OS"))
        .filter(|l| l != "app: image confirmed")
        .collect();
    if app.confirm_on_boot {
        let confirm = dfu_hil_smp::Packet::request(
            dfu_hil_smp::Version::V2,
            dfu_hil_smp::Op::Write,
            dfu_hil_smp::group::IMAGE,
            dfu_hil_smp::img_cmd::STATE,
            0,
            dfu_hil_smp::map([("confirm", dfu_hil_smp::Value::Bool(true))]),
        );
        let _ = board.smp_request(&confirm.encode());
        let _ = board.uart_read();
        banner.push("app: image confirmed".into());
    }
    Ok(banner)
}

/// The upgrade mode of the MCUboot build in the boot partition, if there is one.
fn boot_mode(board: &SimBoard) -> Option<UpgradeMode> {
    let p = board
        .flash
        .partition(crate::device::board::BOOT_PARTITION)
        .ok()?;
    let bytes = board
        .flash
        .read(crate::device::board::BOOT_PARTITION, 0, p.size)
        .ok()?;
    dfu_hil_firmware::read_bootloader(&bytes).map(|b| b.mode)
}

/// Erase everything that could make MCUboot do more than boot the primary slot: the
/// secondary slots, a scratch partition, and the primary slots past their image.
fn quiesce(flash: &mut FlashMap) -> Result<(), crate::device::flash_map::MapError> {
    let layout = flash.layout.clone();
    for pair in &layout.images {
        if !flash.is_ram_emulated(&pair.secondary) {
            flash.erase_all(&pair.secondary)?;
        }
        if flash.is_ram_emulated(&pair.primary) {
            continue;
        }
        let size = flash.size(&pair.primary)?;
        let sector = flash.sector_size(&pair.primary)?.max(1);
        let bytes = flash.read(&pair.primary, 0, size)?;
        let used = Image::parse(&bytes).map_or(0, |i| i.total_size) as u64;
        let from = (used.div_ceil(u64::from(sector)) * u64::from(sector)).min(u64::from(size));
        let from = from as u32;
        if from < size {
            flash.erase(&pair.primary, from, size - from)?;
        }
    }
    if layout.partitions.iter().any(|p| p.name == "scratch") {
        flash.erase_all("scratch")?;
    }
    Ok(())
}

/// The board runs (decodes, answers, maybe reboots) and its output is collected. With a chip's
/// flash timing set, the flash time this took is spent before anything more happens: on
/// nRF52/nRF53 the CPU stalls while the NVMC erases or writes, so the answer leaves that much
/// later (and a boot that swaps takes its time).
/// Returns whether it stalled: the UART did not become faster meanwhile, so the caller's
/// pacers must not bank the stalled time.
fn take_output(board: &mut SimBoard, out: &mut Vec<u8>) -> bool {
    out.extend(board.uart_read());
    let stall = board.flash.take_busy_time();
    if !stall.is_zero() {
        std::thread::sleep(stall.min(MAX_STALL));
    }
    if out.len() > OUT_CAP {
        let drop = out.len() - OUT_CAP;
        out.drain(..drop);
    }
    !stall.is_zero()
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_limits_rate() {
        let mut p = Pacer::new(Some(9600));
        assert_eq!(p.allow(100), 0);
        std::thread::sleep(Duration::from_millis(20));
        let n = p.allow(1000);
        // 960 B/s, burst capped at 10 ms worth (9.6 bytes).
        assert!((1..=9).contains(&n), "{n}");
        p.spend(n);
        assert!(p.wait() >= Duration::from_millis(1));
        let mut u = Pacer::new(None);
        assert_eq!(u.allow(1000), 1000);
    }

    #[test]
    fn pty_is_raw_and_reopenable() {
        let pty = Pty::open().expect("openpty");
        assert!(pty.path().starts_with("/dev/pts") || pty.path().exists());
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pty.path())
            .expect("open slave");
        f.write_all(b"ab\r\n").unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.len() < 4 && Instant::now() < deadline {
            let (r, _, _) = pty.poll(true, false, Duration::from_millis(50));
            if r {
                let mut b = [0u8; 16];
                if let Ok(n) = pty.read(&mut b) {
                    got.extend_from_slice(&b[..n]);
                }
            }
        }
        // Raw: no CR/LF translation, and no echo back to the master's reader.
        assert_eq!(got, b"ab\r\n");
        drop(f);
        // The client went away; the master neither hangs up nor errors.
        let (_, _, hup) = pty.poll(true, false, Duration::from_millis(20));
        assert!(!hup);
        assert_eq!(pty.write(b"x").unwrap(), 1);
    }
}
