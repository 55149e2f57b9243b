//! The `native-sim` backend: firmware built for Zephyr's `native_sim` board runs as host
//! processes — an optional bootloader executable (MCUboot built for native_sim), then the app —
//! sharing one flash file (`--flash=FILE`). The app announces its UART as
//! `uart connected to pseudotty: /dev/pts/N` on stdout; SMP goes over that PTY.
//!
//! The backend is generic over the command lines it runs (`{flash}` in an argument is replaced
//! by the flash file's path, `{layout}` by the layout's name), so the harness's own
//! `dfu-hil sim boot` (bootloader) and `dfu-hil sim serve --app-only` (app) stand in for real
//! native_sim executables in tests.
//!
//! How the probe operations map onto processes and a file:
//! * nothing runs after [`open`]: the board is off until the first reset (the runner resets
//!   after a `flash` step, as `west flash` does).
//! * flash/erase stop the processes first (SIGTERM, so a process that keeps flash in memory
//!   saves it), edit the file, and leave the board stopped; the runner resets afterwards, as
//!   it does on hardware.
//! * read works while running: native_sim maps the file shared, so it is always current; a
//!   process that saves on idle (the stand-in: 100 ms after the last request) is given
//!   [`NativeSimConfig::settle`] of link silence first.
//! * reset(Run) = stop; if the flash file is absent or its boot region (the partition at
//!   offset 0 of the first flash device: MCUboot, or b0) is erased, nothing is started and the
//!   core reads as locked up, like a CPU whose vector table is erased. Otherwise run the
//!   bootloader to completion (it does the swap on the flash file), then start the app and
//!   wait for its PTY line. A bootloader still running after
//!   [`NativeSimConfig::bootloader_timeout`] is killed with SIGKILL (MCUboot spins forever,
//!   ignoring SIGTERM, when it finds nothing to boot) and the reset fails with "bootloader did
//!   not hand over"; the flash file stays as the bootloader left it.
//! * a firmware reboot: native_sim exits on `sys_reboot`. An exit within
//!   [`NativeSimConfig::reboot_window`] of an `os reset` request the link sent is the reboot
//!   whatever its status (builds differ: 0 or 1); an exit with status 0 is one too. After such
//!   a request the link and the probe wait for the app to go down (Zephyr answers and keeps
//!   running `CONFIG_MCUMGR_GRP_OS_RESET_MS` first), then boot again: bootloader, app. Any
//!   other exit is a crash: the board stays off until reset.
//! * reset(Halt) = stop and stay stopped (reported `Halted`).
//! * power_cut(Now) = SIGKILL: no chance to save, like pulling the plug.
//!
//! Every process runs in a process group of its own, and stopping or killing it signals the
//! whole group, so a wrapper script leaves nothing behind.
//!
//! Flash file format: every flash device of the layout, in `flash:` order, each exactly its
//! size, raw (a one-device layout gives native_sim's own `flash.bin`). Same as `sim serve`.

use crate::hw::Capability;
use crate::probe::{BoardError, CoreState, PowerControl, Probe, ResetKind, Snapshot, Snapshots};
use crate::transports::serial;
use crate::{Board, BoardKind, Link};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_smp::{LineLimits, SmpError, Transport};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The line native_sim prints when its UART is a PTY.
pub const READY_PREFIX: &str = "uart connected to pseudotty: ";

/// Placeholder in command arguments for the flash file path.
pub const FLASH_PLACEHOLDER: &str = "{flash}";

/// Placeholder in command arguments for the layout's name (for stand-ins that serve several
/// layouts; a real native_sim executable has its flash layout built in).
pub const LAYOUT_PLACEHOLDER: &str = "{layout}";

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub program: PathBuf,
    /// `{flash}` anywhere in an argument becomes the flash file path
    /// (`--flash={flash}` for real native_sim executables).
    pub args: Vec<String>,
}

impl CommandSpec {
    /// A native_sim executable: `PROGRAM --flash=FILE`.
    pub fn native_sim(program: impl Into<PathBuf>) -> Self {
        CommandSpec {
            program: program.into(),
            args: vec![format!("--flash={FLASH_PLACEHOLDER}")],
        }
    }

    /// Arguments with the placeholders filled in.
    pub fn args_for(&self, flash: &Path, layout: &str) -> Vec<String> {
        let f = flash.to_string_lossy();
        self.args
            .iter()
            .map(|a| {
                a.replace(FLASH_PLACEHOLDER, &f)
                    .replace(LAYOUT_PLACEHOLDER, layout)
            })
            .collect()
    }

    /// The command, in a process group of its own (so the whole group can be signalled).
    fn command(&self, flash: &Path, layout: &str) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(self.args_for(flash, layout))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        c
    }
}

/// What to run and how patiently.
#[derive(Debug, Clone)]
pub struct NativeSimConfig {
    pub layout: Layout,
    pub flash_file: PathBuf,
    /// Runs to completion before each app start (it does the swap on the flash file).
    pub bootloader: Option<CommandSpec>,
    pub app: CommandSpec,
    /// How long the app may take to print its PTY line.
    pub ready_timeout: Duration,
    /// How long the bootloader may run before it is killed (SIGKILL) as stuck.
    pub bootloader_timeout: Duration,
    /// An app exit within this long of an `os reset` request is the reboot whatever its exit
    /// status; also how long the link waits for the app to go down after such a request.
    pub reboot_window: Duration,
    /// How long a stopping process gets after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
    /// Link silence required before reading the flash file of a running process.
    pub settle: Duration,
    pub baud: u32,
    /// Delete the flash file when the board is dropped (a temporary file of one run).
    pub remove_flash_on_drop: bool,
}

impl NativeSimConfig {
    pub fn new(layout: Layout, flash_file: PathBuf, app: CommandSpec) -> Self {
        NativeSimConfig {
            layout,
            flash_file,
            bootloader: None,
            app,
            ready_timeout: Duration::from_secs(15),
            bootloader_timeout: Duration::from_secs(60),
            reboot_window: Duration::from_secs(5),
            stop_timeout: Duration::from_secs(5),
            settle: Duration::from_millis(300),
            baud: serial::DEFAULT_BAUD,
            remove_flash_on_drop: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NativeSimError {
    #[error("start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` exited ({status}) before printing `{READY_PREFIX}…`")]
    ExitedEarly { program: String, status: ExitStatus },
    #[error("`{program}` printed no `{READY_PREFIX}…` line within {timeout:?}")]
    NoPty { program: String, timeout: Duration },
    #[error("bootloader `{program}` {what}")]
    Bootloader { program: String, what: String },
    #[error(
        "bootloader did not hand over: `{program}` still running after {timeout:?}, killed with \
         SIGKILL (MCUboot spins forever when it finds nothing to boot); flash file {} left as \
         the bootloader left it",
        flash.display()
    )]
    NoHandover {
        program: String,
        timeout: Duration,
        flash: PathBuf,
    },
    #[error("flash file {path}: {message}")]
    File { path: PathBuf, message: String },
    /// A probe-side error, already worded.
    #[error("{0}")]
    Board(String),
}

/// The native-sim process stands in for the probe: its errors are probe errors, kept as the
/// source; an executable that cannot start makes the board unavailable, one that never
/// announces its PTY is a timeout.
impl From<NativeSimError> for BoardError {
    fn from(e: NativeSimError) -> Self {
        match e {
            NativeSimError::Spawn { .. } => BoardError::unavailable("probe", e),
            NativeSimError::NoPty { .. } => BoardError::Timeout {
                context: String::new(),
                source: e.into(),
            },
            other => BoardError::probe("", other),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The flash file: pure file logic, testable on its own.

/// A layout's flash devices laid end to end in one file.
#[derive(Debug, Clone)]
pub struct FlashFile {
    pub path: PathBuf,
    pub layout: Layout,
}

/// Where a region range lives in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    pub offset: u64,
    pub len: u32,
    pub sector_size: u32,
    pub erased: u8,
}

impl FlashFile {
    pub fn new(path: PathBuf, layout: Layout) -> Self {
        FlashFile { path, layout }
    }

    /// Size the file must have.
    pub fn total_size(&self) -> u64 {
        self.layout.flash.iter().map(|d| u64::from(d.size)).sum()
    }

    /// File range of `offset..offset+len` inside `region`.
    pub fn range(&self, region: &str, offset: u32, len: u32) -> Result<FileRange, BoardError> {
        let p = self
            .layout
            .partition(region)
            .ok_or_else(|| BoardError::NoRegion(region.to_owned()))?;
        if u64::from(offset) + u64::from(len) > u64::from(p.size) {
            return Err(BoardError::Flash {
                region: region.to_owned(),
                message: format!(
                    "0x{offset:x}+0x{len:x} is outside the region's 0x{:x} bytes",
                    p.size
                ),
            });
        }
        let mut dev_start = 0u64;
        for d in &self.layout.flash {
            if d.name == p.device {
                return Ok(FileRange {
                    offset: dev_start + u64::from(p.offset) + u64::from(offset),
                    len,
                    sector_size: d.sector_size,
                    erased: d.erased,
                });
            }
            dev_start += u64::from(d.size);
        }
        Err(BoardError::NoRegion(region.to_owned()))
    }

    fn io(&self, e: impl Into<crate::probe::Cause>) -> BoardError {
        BoardError::probe(format!("flash file {}", self.path.display()), e)
    }

    /// Create the file erased (each device filled with its erased value) if it does not exist.
    pub fn ensure(&self) -> Result<(), BoardError> {
        if self.path.exists() {
            return self.check_size();
        }
        let mut f = std::fs::File::create(&self.path).map_err(|e| self.io(e))?;
        for d in &self.layout.flash {
            f.write_all(&vec![d.erased; d.size as usize])
                .map_err(|e| self.io(e))?;
        }
        f.sync_data().map_err(|e| self.io(e))
    }

    fn check_size(&self) -> Result<(), BoardError> {
        let len = std::fs::metadata(&self.path).map_err(|e| self.io(e))?.len();
        if len != self.total_size() {
            return Err(self.io(format!(
                "{len} bytes, but layout `{}` needs {}: wrong layout, or delete the file",
                self.layout.name,
                self.total_size()
            )));
        }
        Ok(())
    }

    pub fn read(&self, region: &str, offset: u32, len: u32) -> Result<Vec<u8>, BoardError> {
        let r = self.range(region, offset, len)?;
        if !self.path.exists() {
            return Err(self.io("does not exist yet (nothing has run or been flashed)"));
        }
        self.check_size()?;
        let mut f = std::fs::File::open(&self.path).map_err(|e| self.io(e))?;
        f.seek(SeekFrom::Start(r.offset)).map_err(|e| self.io(e))?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf).map_err(|e| self.io(e))?;
        Ok(buf)
    }

    /// The region a CPU boots from: the partition at offset 0 of the first flash device
    /// (MCUboot, or b0 on NSIB layouts), else the whole first device.
    pub fn boot_region(&self) -> Option<(String, FileRange)> {
        let dev = self.layout.flash.first()?;
        let by_partition = self
            .layout
            .partitions
            .iter()
            .find(|p| p.device == dev.name && p.offset == 0)
            .and_then(|p| Some((p.name.clone(), self.range(&p.name, 0, p.size).ok()?)));
        by_partition.or_else(|| {
            Some((
                format!("flash device `{}`", dev.name),
                FileRange {
                    offset: 0,
                    len: dev.size,
                    sector_size: dev.sector_size,
                    erased: dev.erased,
                },
            ))
        })
    }

    /// Why a reset would find nothing to boot: the file does not exist, or the boot region
    /// ([`boot_region`](Self::boot_region)) holds only the erased value. `None` = something
    /// is there. A file of the wrong size is an error.
    pub fn nothing_to_boot(&self) -> Result<Option<String>, BoardError> {
        if !self.path.exists() {
            return Ok(Some(format!(
                "flash file {} does not exist (nothing flashed yet)",
                self.path.display()
            )));
        }
        self.check_size()?;
        let Some((name, r)) = self.boot_region() else {
            return Ok(Some(format!(
                "layout `{}` has no flash device",
                self.layout.name
            )));
        };
        let mut f = std::fs::File::open(&self.path).map_err(|e| self.io(e))?;
        f.seek(SeekFrom::Start(r.offset)).map_err(|e| self.io(e))?;
        let mut left = u64::from(r.len);
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = buf.len().min(left as usize);
            f.read_exact(&mut buf[..n]).map_err(|e| self.io(e))?;
            if buf[..n].iter().any(|&b| b != r.erased) {
                return Ok(None);
            }
            left -= n as u64;
        }
        Ok(Some(format!(
            "boot region `{name}` of flash file {} is erased (0x{:02x}): no bootloader flashed",
            self.path.display(),
            r.erased
        )))
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), BoardError> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| self.io(e))?;
        f.write_all(bytes).map_err(|e| self.io(e))?;
        f.sync_data().map_err(|e| self.io(e))
    }

    /// Erase whole sectors: `offset` and `len` must be sector-aligned (as on flash).
    pub fn erase(&self, region: &str, offset: u32, len: u32) -> Result<(), BoardError> {
        let r = self.range(region, offset, len)?;
        if offset % r.sector_size != 0 || len % r.sector_size != 0 {
            return Err(BoardError::Flash {
                region: region.to_owned(),
                message: format!(
                    "erase 0x{offset:x}+0x{len:x} is not aligned to the 0x{:x}-byte sector",
                    r.sector_size
                ),
            });
        }
        self.ensure()?;
        self.write_at(r.offset, &vec![r.erased; len as usize])
    }

    /// Program `bytes` at the start of `region`, erasing the sectors they cover first (the
    /// rest of the last sector reads erased afterwards, as after a probe's sector erase).
    pub fn program(&self, region: &str, bytes: &[u8]) -> Result<(), BoardError> {
        self.program_with_progress(region, bytes, &mut |_, _| {})
    }

    /// [`program`](Self::program), writing the file a sector at a time and reporting
    /// `(bytes of the image written, image length)` after each; synced once at the end.
    pub fn program_with_progress(
        &self,
        region: &str,
        bytes: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BoardError> {
        let len = u32::try_from(bytes.len()).map_err(|_| BoardError::Flash {
            region: region.to_owned(),
            message: "image larger than 4 GiB".into(),
        })?;
        let r = self.range(region, 0, len)?;
        let covered = len.div_ceil(r.sector_size) * r.sector_size;
        let size = self
            .layout
            .partition(region)
            .map(|p| p.size)
            .unwrap_or(covered);
        let covered = covered.min(size);
        self.ensure()?;
        let mut data = vec![r.erased; covered as usize];
        data[..bytes.len()].copy_from_slice(bytes);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        f.seek(SeekFrom::Start(r.offset)).map_err(|e| self.io(e))?;
        let total = bytes.len() as u64;
        let mut written = 0u64;
        for chunk in data.chunks(r.sector_size as usize) {
            f.write_all(chunk).map_err(|e| self.io(e))?;
            written += chunk.len() as u64;
            progress(written.min(total), total);
        }
        if total == 0 {
            progress(0, 0);
        }
        f.sync_data().map_err(|e| self.io(e))
    }
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// Why the app is not running.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stopped {
    /// Opened and never reset: nothing has run yet.
    NotStarted,
    /// The harness stopped it (flash, erase, reset-halt).
    ByHarness { halt: bool },
    /// It exited by itself: a firmware reboot (`reboot`: right after an `os reset` request, or
    /// status 0), or a crash.
    Exited { status: ExitStatus, reboot: bool },
    /// Pulled the plug.
    PowerCut,
    /// A reset found nothing to boot (the message says why); nothing was started.
    NothingToBoot(String),
    /// The bootloader failed or did not hand over (the message says how).
    BootFailed(String),
}

struct Inner {
    cfg: NativeSimConfig,
    child: Option<Child>,
    /// PTY of the running app.
    pty: Option<PathBuf>,
    /// Bumped on every app start, so the link knows to reopen.
    generation: u64,
    stopped: Option<Stopped>,
    log: Arc<Mutex<Vec<String>>>,
    last_io: Instant,
    boots: u64,
    /// When the link sent an `os reset` request to the running app.
    reset_requested: Option<Instant>,
    /// When the running app's stdout closed: its exit, as near as the harness can tell.
    app_eof: Arc<Mutex<Option<Instant>>>,
    bootloader_pid: Option<u32>,
    bootloader_runs: u64,
    /// A boot failure of a reboot the link started, for the next core-state query to report.
    unreported: Option<String>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn program_name(spec: &CommandSpec) -> String {
    spec.program.display().to_string()
}

/// Copy a pipe's lines into the log; report the PTY line on `ready`, the end of the pipe on
/// `eof`.
fn pump(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
    ready: Option<mpsc::Sender<PathBuf>>,
    eof: Option<Arc<Mutex<Option<Instant>>>>,
) -> mpsc::Receiver<()> {
    // Dropped (disconnecting the receiver) when the pipe reached its end and every line is in
    // the log.
    let (done, drained) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _done = done;
        let mut ready = ready;
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            // Logged before it is announced, so whoever waits for the PTY finds the line in
            // the log too.
            let pty = line
                .strip_prefix(READY_PREFIX)
                .map(|p| PathBuf::from(p.trim()));
            lock_log(&log).push(line);
            if let Some(path) = pty {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(path);
                }
            }
        }
        if let Some(eof) = eof {
            *eof.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
    });
    drained
}

/// Signal a child's whole process group (it was started as the leader of its own group).
/// Only for a child not reaped yet (no successful `try_wait`/`wait`): until then its pid, the
/// group id, cannot have been reused.
fn signal_group(child: &Child, sig: libc::c_int) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on the process group of a child we have not reaped yet.
        unsafe {
            libc::kill(-pid, sig);
        }
    }
}

/// SIGKILL a child's group and reap the child (which must not have been reaped yet).
fn kill_hard(child: &mut Child) {
    signal_group(child, libc::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Is `header` an `os reset` request (group 0, command 5, op write)?
fn is_reset_request(packet: &[u8]) -> bool {
    dfu_hil_smp::Header::decode(packet).is_ok_and(|h| {
        h.group == dfu_hil_smp::group::OS
            && h.id == dfu_hil_smp::os_cmd::RESET
            && h.op == dfu_hil_smp::Op::Write
    })
}

/// Is `packet` the answer to an `os reset` request saying no (an `rc` or `err` in the body)?
fn is_refused_reset(packet: &[u8]) -> bool {
    let Ok(p) = dfu_hil_smp::Packet::decode(packet) else {
        return false;
    };
    p.header.group == dfu_hil_smp::group::OS
        && p.header.id == dfu_hil_smp::os_cmd::RESET
        && p.header.op == dfu_hil_smp::Op::WriteRsp
        && (dfu_hil_smp::map_int(&p.body, "rc").is_some_and(|rc| rc != 0)
            || dfu_hil_smp::map_get(&p.body, "err").is_some())
}

impl Inner {
    fn flash_file(&self) -> FlashFile {
        FlashFile::new(self.cfg.flash_file.clone(), self.cfg.layout.clone())
    }

    /// Is the app running? Notices (and classifies) an exit.
    fn running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.child = None;
                self.exited(status);
                false
            }
            Err(_) => false,
        }
    }

    /// The app exited by itself: a reboot when it came right after an `os reset` request
    /// (whatever the status) or with status 0; otherwise a crash.
    fn exited(&mut self, status: ExitStatus) {
        self.pty = None;
        let requested = self.reset_requested.take();
        // The pump sees the end of stdout as the process dies; give it a moment.
        let wait_until = Instant::now() + Duration::from_millis(200);
        let eof = loop {
            let eof = *self.app_eof.lock().unwrap_or_else(|p| p.into_inner());
            if eof.is_some() || Instant::now() >= wait_until {
                break eof;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let exit_at = eof
            .filter(|e| requested.is_none_or(|t| *e >= t))
            .unwrap_or_else(Instant::now);
        let after_reset = requested
            .is_some_and(|t| exit_at.saturating_duration_since(t) <= self.cfg.reboot_window);
        let reboot = after_reset || status.success();
        let why = match (after_reset, reboot) {
            (true, _) => format!(
                "after an `os reset` request ({} ms before): a reboot",
                exit_at
                    .saturating_duration_since(requested.unwrap_or(exit_at))
                    .as_millis()
            ),
            (false, true) => "with status 0: a reboot".to_owned(),
            (false, false) => "with no `os reset` request before it: a crash".to_owned(),
        };
        self.note(format!("[native-sim] app exited ({status}) {why}"));
        self.stopped = Some(Stopped::Exited { status, reboot });
    }

    fn note(&self, line: String) {
        lock_log(&self.log).push(line);
    }

    /// Stop the app: SIGTERM to its group (a process that keeps flash in memory saves it),
    /// SIGKILL after the timeout, or SIGKILL at once for a power cut.
    fn stop(&mut self, why: Stopped) {
        if let Some(mut child) = self.child.take() {
            let mut reaped = false;
            if why != Stopped::PowerCut {
                signal_group(&child, libc::SIGTERM);
                let deadline = Instant::now() + self.cfg.stop_timeout;
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        reaped = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            if !reaped {
                kill_hard(&mut child);
            }
        }
        self.pty = None;
        self.reset_requested = None;
        self.stopped = Some(why);
    }

    /// Run the bootloader (if any) to completion; SIGKILL it when it does not exit in time.
    fn run_bootloader(&mut self) -> Result<(), NativeSimError> {
        let Some(spec) = self.cfg.bootloader.clone() else {
            return Ok(());
        };
        let program = program_name(&spec);
        let mut child = spec
            .command(&self.cfg.flash_file, &self.cfg.layout.name)
            .spawn()
            .map_err(|source| NativeSimError::Spawn {
                program: program.clone(),
                source,
            })?;
        self.bootloader_pid = Some(child.id());
        self.bootloader_runs += 1;
        let mut drained = Vec::new();
        if let Some(o) = child.stdout.take() {
            drained.push(pump(o, self.log.clone(), None, None));
        }
        if let Some(e) = child.stderr.take() {
            drained.push(pump(e, self.log.clone(), None, None));
        }
        // The bootloader's last lines ("handing over …") belong in the log before the app's
        // first: wait briefly for its pipes to drain (a grandchild holding them open does
        // not hold the boot up for long).
        let flush = |drained: &[mpsc::Receiver<()>]| {
            for d in drained {
                let _ = d.recv_timeout(Duration::from_millis(500));
            }
        };
        let deadline = Instant::now() + self.cfg.bootloader_timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {
                    flush(&drained);
                    return Ok(());
                }
                Ok(Some(status)) => {
                    flush(&drained);
                    return Err(NativeSimError::Bootloader {
                        program,
                        what: format!("exited with {status} (no app is started)"),
                    });
                }
                Ok(None) if Instant::now() >= deadline => {
                    kill_hard(&mut child);
                    let e = NativeSimError::NoHandover {
                        program,
                        timeout: self.cfg.bootloader_timeout,
                        flash: self.cfg.flash_file.clone(),
                    };
                    self.note(format!("[native-sim] {e}"));
                    return Err(e);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    kill_hard(&mut child);
                    return Err(NativeSimError::Bootloader {
                        program,
                        what: format!("cannot be waited for: {e}"),
                    });
                }
            }
        }
    }

    /// Power-on reset: stop what runs; unless there is nothing to boot, the bootloader (if
    /// any) runs to completion, then the app starts and announces its PTY.
    fn reset_run(&mut self) -> Result<(), NativeSimError> {
        self.stop(Stopped::ByHarness { halt: false });
        self.unreported = None;
        let nothing = self
            .flash_file()
            .nothing_to_boot()
            .map_err(|e| NativeSimError::Board(e.to_string()))?;
        if let Some(why) = nothing {
            self.note(format!(
                "[native-sim] reset: {why}; nothing is started (core locked up)"
            ));
            self.stopped = Some(Stopped::NothingToBoot(why));
            return Ok(());
        }
        if let Err(e) = self.run_bootloader() {
            self.stopped = Some(Stopped::BootFailed(e.to_string()));
            return Err(e);
        }
        self.start_app()
    }

    /// Start the app and wait for its PTY line.
    fn start_app(&mut self) -> Result<(), NativeSimError> {
        let spec = self.cfg.app.clone();
        let program = program_name(&spec);
        let mut child = spec
            .command(&self.cfg.flash_file, &self.cfg.layout.name)
            .spawn()
            .map_err(|source| NativeSimError::Spawn {
                program: program.clone(),
                source,
            })?;
        let (tx, rx) = mpsc::channel();
        self.app_eof = Arc::new(Mutex::new(None));
        if let Some(o) = child.stdout.take() {
            pump(o, self.log.clone(), Some(tx), Some(self.app_eof.clone()));
        }
        if let Some(e) = child.stderr.take() {
            pump(e, self.log.clone(), None, None);
        }
        let deadline = Instant::now() + self.cfg.ready_timeout;
        let pty = loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(p) => break p,
                Err(mpsc::RecvTimeoutError::Disconnected)
                | Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        // Never a reboot: restarting it would loop.
                        self.stopped = Some(Stopped::Exited {
                            status,
                            reboot: false,
                        });
                        return Err(NativeSimError::ExitedEarly { program, status });
                    }
                    if Instant::now() >= deadline {
                        kill_hard(&mut child);
                        self.stopped = Some(Stopped::BootFailed(format!(
                            "`{program}` printed no PTY line"
                        )));
                        return Err(NativeSimError::NoPty {
                            program,
                            timeout: self.cfg.ready_timeout,
                        });
                    }
                }
            }
        };
        self.child = Some(child);
        self.pty = Some(pty);
        self.generation += 1;
        self.stopped = None;
        self.reset_requested = None;
        self.boots += 1;
        self.last_io = Instant::now();
        Ok(())
    }

    /// Follow the firmware: after an `os reset` request wait (up to the reboot window) for
    /// the app to go down, and after a reboot exit boot again (bootloader, app).
    fn settle(&mut self) -> Result<(), NativeSimError> {
        if let Some(t) = self.reset_requested {
            let deadline = t + self.cfg.reboot_window;
            while self.running() {
                if Instant::now() >= deadline {
                    self.note(format!(
                        "[native-sim] app still running {:?} after an `os reset` request: it did not reboot",
                        self.cfg.reboot_window
                    ));
                    self.reset_requested = None;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        } else {
            self.running();
        }
        if let Some(Stopped::Exited { reboot: true, .. }) = self.stopped {
            self.reset_run()?;
        }
        Ok(())
    }

    /// Make sure the app runs (rebooting it when it rebooted itself); after a harness stop,
    /// a crash or a power cut the board stays down until reset.
    fn ensure_running(&mut self) -> Result<(), SmpError> {
        if let Some(e) = self.unreported.take() {
            return Err(SmpError::Transport(format!("native-sim reboot: {e}")));
        }
        self.settle()
            .map_err(|e| SmpError::Transport(format!("native-sim reboot: {e}")))?;
        if self.running() && self.pty.is_some() {
            return Ok(());
        }
        Err(SmpError::Transport(match &self.stopped {
            Some(Stopped::NotStarted) => "native-sim board not started: nothing runs before the \
                first reset (the runner resets after a `flash` step)"
                .to_owned(),
            Some(Stopped::Exited { status, .. }) => format!(
                "native-sim app crashed: exited ({status}) with no `os reset` request before it; \
                 reset the board"
            ),
            Some(Stopped::NothingToBoot(why)) => format!("native-sim board: {why}"),
            Some(Stopped::BootFailed(why)) => format!("native-sim board did not boot: {why}"),
            _ => "native-sim board is stopped (flashed, halted or powered off); reset it".into(),
        }))
    }

    fn core_state(&mut self) -> Result<CoreState, BoardError> {
        if let Some(e) = self.unreported.take() {
            return Err(BoardError::probe("native-sim reboot", e));
        }
        self.settle()?;
        if self.running() && self.pty.is_some() {
            return Ok(CoreState::Running);
        }
        Ok(match &self.stopped {
            Some(Stopped::ByHarness { halt: true }) => CoreState::Halted,
            // Like a CPU whose vector table is erased (what the sim board reports too).
            Some(Stopped::NothingToBoot(_)) => CoreState::LockedUp,
            _ => CoreState::Off,
        })
    }
}

fn lock_log(log: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop(Stopped::ByHarness { halt: true });
        if self.cfg.remove_flash_on_drop {
            let _ = std::fs::remove_file(&self.cfg.flash_file);
        }
    }
}

/// A handle on the backend beyond the Probe trait (tests, evidence).
#[derive(Clone)]
pub struct Handle(Arc<Mutex<Inner>>);

impl Handle {
    /// PTY of the running app.
    pub fn pty(&self) -> Option<PathBuf> {
        lock(&self.0).pty.clone()
    }
    /// App starts so far.
    pub fn boots(&self) -> u64 {
        lock(&self.0).boots
    }
    /// Process id of the running app.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.0).child.as_ref().map(Child::id)
    }
    /// Process id of the last bootloader run (it has exited or been killed by now).
    pub fn bootloader_pid(&self) -> Option<u32> {
        lock(&self.0).bootloader_pid
    }
    /// Bootloader runs so far.
    pub fn bootloader_runs(&self) -> u64 {
        lock(&self.0).bootloader_runs
    }
}

/// What a native_sim pair can do, known before it is started: SMP over its serial PTY; the
/// harness reads its flash file directly (external flash included); killing the process is a
/// power cut "now". It cannot cut at an exact flash operation (the harness does not see them)
/// and its app is a host executable, not the image in the slot (no `executes-image`).
/// Declared here, once, for `run`, `lint` and the farm.
pub fn capabilities() -> BTreeSet<Capability> {
    [
        Capability::Serial,
        Capability::ReadExternalFlash,
        Capability::PowerCut,
    ]
    .into()
}

/// The board, off: nothing is started until the first reset.
pub fn open(cfg: NativeSimConfig, name: &str) -> Result<(Board, Handle), BoardError> {
    let inner = Arc::new(Mutex::new(Inner {
        cfg,
        child: None,
        pty: None,
        generation: 0,
        stopped: Some(Stopped::NotStarted),
        log: Arc::new(Mutex::new(Vec::new())),
        last_io: Instant::now(),
        boots: 0,
        reset_requested: None,
        app_eof: Arc::new(Mutex::new(None)),
        bootloader_pid: None,
        bootloader_runs: 0,
        unreported: None,
    }));
    let board = Board {
        kind: BoardKind::NativeSim,
        name: name.to_owned(),
        probe: Box::new(NativeSimProbe {
            inner: inner.clone(),
        }),
        link: Link(Box::new(NativeSimLink {
            inner: inner.clone(),
            link: None,
            limits: None,
            heard_before: 0,
        })),
    };
    Ok((board, Handle(inner)))
}

/// The probe side: the flash file and the processes.
pub struct NativeSimProbe {
    inner: Arc<Mutex<Inner>>,
}

impl NativeSimProbe {
    fn file(&self) -> FlashFile {
        lock(&self.inner).flash_file()
    }
}

impl Probe for NativeSimProbe {
    fn flash(&mut self, region: &str, bytes: &[u8]) -> Result<(), BoardError> {
        self.flash_with_progress(region, bytes, &mut |_, _| {})
    }

    fn flash_with_progress(
        &mut self,
        region: &str,
        bytes: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BoardError> {
        let file = self.file();
        let len = u32::try_from(bytes.len()).map_err(|_| BoardError::Flash {
            region: region.to_owned(),
            message: "image larger than 4 GiB".into(),
        })?;
        file.range(region, 0, len)?;
        lock(&self.inner).stop(Stopped::ByHarness { halt: false });
        file.program_with_progress(region, bytes, progress)
    }

    fn read(&mut self, region: &str, offset: u32, len: u32) -> Result<Vec<u8>, BoardError> {
        let file = self.file();
        file.range(region, offset, len)?;
        lock(&self.inner).settle()?;
        // Let a save-on-idle process write its flash out first.
        loop {
            let wait = {
                let mut g = lock(&self.inner);
                if g.running() {
                    g.cfg.settle.saturating_sub(g.last_io.elapsed())
                } else {
                    Duration::ZERO
                }
            };
            if wait.is_zero() {
                break;
            }
            std::thread::sleep(wait);
        }
        file.read(region, offset, len)
    }

    fn erase(&mut self, region: &str, offset: u32, len: u32) -> Result<(), BoardError> {
        let file = self.file();
        file.range(region, offset, len)?;
        lock(&self.inner).stop(Stopped::ByHarness { halt: false });
        file.erase(region, offset, len)
    }

    fn region_size(&self, region: &str) -> Result<u32, BoardError> {
        lock(&self.inner)
            .cfg
            .layout
            .partition(region)
            .map(|p| p.size)
            .ok_or_else(|| BoardError::NoRegion(region.to_owned()))
    }

    fn reset(&mut self, kind: ResetKind) -> Result<(), BoardError> {
        let mut g = lock(&self.inner);
        match kind {
            ResetKind::Run => g.reset_run().map_err(BoardError::from),
            ResetKind::Halt => {
                g.stop(Stopped::ByHarness { halt: true });
                Ok(())
            }
        }
    }

    fn core_state(&mut self) -> Result<CoreState, BoardError> {
        lock(&self.inner).core_state()
    }

    fn snapshots(&mut self) -> Option<&mut dyn Snapshots> {
        Some(self)
    }

    fn power_control(&mut self) -> Option<&mut dyn PowerControl> {
        Some(self)
    }

    fn take_log(&mut self) -> Vec<String> {
        let g = lock(&self.inner);
        let mut log = lock_log(&g.log);
        std::mem::take(&mut *log)
    }
}

impl Snapshots for NativeSimProbe {
    /// The flash file is the board's whole persistent state.
    fn snapshot(&mut self) -> Result<Snapshot, BoardError> {
        let file = self.file();
        let bytes = std::fs::read(&file.path).map_err(|e| file.io(e))?;
        Ok(Snapshot(Box::new(bytes)))
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), BoardError> {
        let bytes = snapshot
            .0
            .downcast_ref::<Vec<u8>>()
            .ok_or_else(|| BoardError::Unsupported("not a native-sim snapshot".into()))?;
        let mut g = lock(&self.inner);
        g.stop(Stopped::ByHarness { halt: false });
        let path = g.cfg.flash_file.clone();
        std::fs::write(&path, bytes)
            .map_err(|e| BoardError::probe(format!("flash file {}", path.display()), e))?;
        g.reset_run().map_err(BoardError::from)
    }
}

impl PowerControl for NativeSimProbe {
    /// The running executable is killed: what it wrote to the flash file stays.
    fn cut_power_now(&mut self) -> Result<(), BoardError> {
        lock(&self.inner).stop(Stopped::PowerCut);
        Ok(())
    }
}

/// SMP over the app's PTY, reopened whenever the app was restarted.
pub struct NativeSimLink {
    inner: Arc<Mutex<Inner>>,
    link: Option<(u64, serial::SerialLink)>,
    /// The device's receive lines requests are sized for (and where that comes from); kept
    /// across reopens.
    limits: Option<(LineLimits, String)>,
    /// Bytes heard on the PTYs of earlier app processes, so [`Transport::bytes_heard`] only
    /// grows across a reopen (a restarted app must not look like a talking device).
    heard_before: u64,
}

impl NativeSimLink {
    fn current(&mut self) -> Result<&mut serial::SerialLink, SmpError> {
        let (generation, path, baud) = {
            let mut g = lock(&self.inner);
            g.ensure_running()?;
            g.last_io = Instant::now();
            let path = g
                .pty
                .clone()
                .ok_or_else(|| SmpError::Transport("native-sim app has no PTY".into()))?;
            (g.generation, path, g.cfg.baud)
        };
        let stale = self.link.as_ref().is_none_or(|(gen, _)| *gen != generation);
        if stale {
            if let Some((_, old)) = self.link.take() {
                self.heard_before += old.bytes_heard().unwrap_or(0);
            }
            let mut l = serial::open(&path.to_string_lossy(), baud)?;
            if let Some((limits, source)) = &self.limits {
                l.set_line_limits(*limits, source);
            }
            self.link = Some((generation, l));
        }
        match self.link.as_mut() {
            Some((_, l)) => Ok(l),
            None => Err(SmpError::Transport("native-sim link not open".into())),
        }
    }

    fn touch(&self) {
        lock(&self.inner).last_io = Instant::now();
    }

    fn limits(&self) -> LineLimits {
        match (&self.link, &self.limits) {
            (Some((_, l)), _) => l.limits(),
            (None, Some((limits, _))) => *limits,
            (None, None) => LineLimits::default(),
        }
    }
}

impl Transport for NativeSimLink {
    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        let r = self.current()?.send(packet);
        if r.is_ok() && is_reset_request(packet) {
            lock(&self.inner).reset_requested = Some(Instant::now());
        }
        self.touch();
        r
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        // The answer comes from the app the request went to, even when it is about to reboot:
        // no restart here.
        let r = match self.link.as_mut() {
            Some((_, l)) => l.recv(timeout),
            None => self.current()?.recv(timeout),
        };
        if let Ok(p) = &r {
            if is_refused_reset(p) {
                let g = &mut lock(&self.inner);
                g.reset_requested = None;
                g.note("[native-sim] `os reset` refused by the app: no reboot expected".into());
            }
        }
        self.touch();
        r
    }

    fn max_packet(&self) -> usize {
        match &self.link {
            Some((_, l)) => l.max_packet(),
            None => dfu_hil_smp::transport::SERIAL_MAX_PACKET.min(self.limits().max_packet()),
        }
    }

    fn take_noise(&mut self) -> Vec<u8> {
        match self.link.as_mut() {
            Some((_, l)) => l.take_noise(),
            None => Vec::new(),
        }
    }

    fn describe(&self) -> String {
        let pty = lock(&self.inner)
            .pty
            .as_ref()
            .map_or("no PTY".to_owned(), |p| p.display().to_string());
        match &self.link {
            Some((_, l)) => format!("native_sim UART PTY {pty}: {}", l.describe()),
            None => format!("native_sim UART PTY {pty} (not opened)"),
        }
    }

    fn line_limits(&self) -> Option<LineLimits> {
        Some(self.limits())
    }

    /// What the app's PTYs delivered so far (log text included), so a lost answer on a talking
    /// device is told from a dead link as on a real serial port.
    fn bytes_heard(&self) -> Option<u64> {
        let now = self
            .link
            .as_ref()
            .map_or(Some(0), |(_, l)| l.bytes_heard())?;
        Some(self.heard_before + now)
    }

    fn set_line_limits(&mut self, limits: LineLimits, source: &str) -> bool {
        if let Some((_, l)) = self.link.as_mut() {
            l.set_line_limits(limits, source);
        }
        self.limits = Some((limits, source.to_owned()));
        true
    }

    fn max_in_flight(&self, packet: usize) -> usize {
        self.limits().window_for(packet)
    }

    /// Changes with every app start. An app that has gone down for a reboot is booted again
    /// here (bootloader, app), as the device would by itself.
    fn link_generation(&mut self) -> Option<u64> {
        let mut g = lock(&self.inner);
        if !g.running() {
            if let Some(Stopped::Exited { reboot: true, .. }) = g.stopped {
                if let Err(e) = g.reset_run() {
                    g.unreported = Some(e.to_string());
                }
            }
        }
        Some(g.generation)
    }

    fn wait_activity(&mut self, timeout: Duration) -> Result<(), SmpError> {
        let generation = {
            let mut g = lock(&self.inner);
            if !g.running() {
                // The app went away: that is the activity.
                return Ok(());
            }
            g.generation
        };
        match self.link.as_mut() {
            Some((gen, l)) if *gen == generation => match l.wait_activity(timeout) {
                // The PTY closing under the reader: the app is exiting.
                Err(SmpError::Transport(_)) | Err(SmpError::Io(_)) => Ok(()),
                other => other,
            },
            _ => {
                std::thread::sleep(timeout.min(Duration::from_millis(20)));
                Ok(())
            }
        }
    }
}
