//! The `native-sim` backend: firmware built for Zephyr's `native_sim` board runs as host
//! processes — an optional bootloader executable (MCUboot built for native_sim), then the app —
//! sharing one flash file (`--flash=FILE`). The app announces its UART as
//! `uart connected to pseudotty: /dev/pts/N` on stdout; SMP goes over that PTY.
//!
//! The backend is generic over the command lines it runs (`{flash}` in an argument is replaced
//! by the flash file's path), so the harness's own `dfu-hil sim serve --flash FILE` stands in
//! for real native_sim executables in tests.
//!
//! How the probe operations map onto processes and a file:
//! * flash/erase stop the processes first (SIGTERM, so a process that keeps flash in memory
//!   saves it), edit the file, and leave the board stopped; the runner resets afterwards, as
//!   it does on hardware.
//! * read works while running: native_sim maps the file shared, so it is always current; a
//!   process that saves on idle (the stand-in: 100 ms after the last request) is given
//!   [`NativeSimConfig::settle`] of link silence first.
//! * reset(Run) = stop, run the bootloader to completion (if any), start the app, wait for the
//!   PTY line. The link notices the new PTY and reopens it. A process that exits on its own is
//!   a firmware reboot (native_sim exits on `sys_reboot`): the next link use starts it again.
//! * reset(Halt) = stop and stay stopped (reported `Halted`).
//! * power_cut(Now) = SIGKILL: no chance to save, like pulling the plug.
//!
//! Flash file format: every flash device of the layout, in `flash:` order, each exactly its
//! size, raw (a one-device layout gives native_sim's own `flash.bin`). Same as `sim serve`.

use crate::probe::{BoardError, CoreState, PowerCutAt, Probe, ResetKind, Snapshot};
use crate::transports::serial;
use crate::{Board, BoardKind, Link};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_smp::{SmpError, Transport};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The line native_sim prints when its UART is a PTY.
pub const READY_PREFIX: &str = "uart connected to pseudotty: ";

/// Placeholder in command arguments for the flash file path.
pub const FLASH_PLACEHOLDER: &str = "{flash}";

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

    /// Arguments with the placeholder filled in.
    pub fn args_for(&self, flash: &Path) -> Vec<String> {
        let f = flash.to_string_lossy();
        self.args
            .iter()
            .map(|a| a.replace(FLASH_PLACEHOLDER, &f))
            .collect()
    }

    fn command(&self, flash: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(self.args_for(flash));
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
    pub bootloader_timeout: Duration,
    /// How long a stopping process gets after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
    /// Link silence required before reading the flash file of a running process.
    pub settle: Duration,
    pub baud: u32,
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
            stop_timeout: Duration::from_secs(5),
            settle: Duration::from_millis(300),
            baud: serial::DEFAULT_BAUD,
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
    #[error("flash file {path}: {message}")]
    File { path: PathBuf, message: String },
}

impl From<NativeSimError> for BoardError {
    fn from(e: NativeSimError) -> Self {
        BoardError::Probe(e.to_string())
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

    fn io(&self, e: impl std::fmt::Display) -> BoardError {
        BoardError::Probe(format!("flash file {}: {e}", self.path.display()))
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// The harness stopped it (flash, erase, reset-halt).
    ByHarness { halt: bool },
    /// It exited by itself: a reboot (status 0) or a crash.
    Exited(ExitStatus),
    /// Pulled the plug.
    PowerCut,
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
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn program_name(spec: &CommandSpec) -> String {
    spec.program.display().to_string()
}

/// Copy a pipe's lines into the log; report the PTY line on `ready`.
fn pump(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
    ready: Option<mpsc::Sender<PathBuf>>,
) {
    std::thread::spawn(move || {
        let mut ready = ready;
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(path) = line.strip_prefix(READY_PREFIX) {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(PathBuf::from(path.trim()));
                }
            }
            log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
}

impl Inner {
    fn running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.child = None;
                self.pty = None;
                self.stopped = Some(Stopped::Exited(status));
                self.note(format!("[native-sim] app exited ({status})"));
                false
            }
            Err(_) => false,
        }
    }

    fn note(&self, line: String) {
        lock_log(&self.log).push(line);
    }

    /// Stop the app: SIGTERM (a process that keeps flash in memory saves it), SIGKILL after
    /// the timeout, or SIGKILL at once for a power cut.
    fn stop(&mut self, why: Stopped) {
        if let Some(mut child) = self.child.take() {
            let hard = why == Stopped::PowerCut;
            if !hard {
                if let Ok(pid) = i32::try_from(child.id()) {
                    // SAFETY: kill(2) on the pid of a child we have not reaped yet.
                    unsafe {
                        libc::kill(pid, libc::SIGTERM);
                    }
                }
                let deadline = Instant::now() + self.cfg.stop_timeout;
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.pty = None;
        self.stopped = Some(why);
    }

    fn run_bootloader(&mut self) -> Result<(), NativeSimError> {
        let Some(spec) = self.cfg.bootloader.clone() else {
            return Ok(());
        };
        let program = program_name(&spec);
        let mut child = spec
            .command(&self.cfg.flash_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NativeSimError::Spawn {
                program: program.clone(),
                source,
            })?;
        if let Some(o) = child.stdout.take() {
            pump(o, self.log.clone(), None);
        }
        if let Some(e) = child.stderr.take() {
            pump(e, self.log.clone(), None);
        }
        let deadline = Instant::now() + self.cfg.bootloader_timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(NativeSimError::Bootloader {
                        program,
                        what: format!("exited with {status} (no app is started)"),
                    })
                }
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(NativeSimError::Bootloader {
                        program,
                        what: format!(
                            "still running after {:?}: stuck (a fault loop in MCUboot?)",
                            self.cfg.bootloader_timeout
                        ),
                    });
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Bootloader (if any), then the app up to its PTY line.
    fn start(&mut self) -> Result<(), NativeSimError> {
        self.stop(Stopped::ByHarness { halt: false });
        self.run_bootloader()?;
        let spec = self.cfg.app.clone();
        let program = program_name(&spec);
        let mut child = spec
            .command(&self.cfg.flash_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NativeSimError::Spawn {
                program: program.clone(),
                source,
            })?;
        let (tx, rx) = mpsc::channel();
        if let Some(o) = child.stdout.take() {
            pump(o, self.log.clone(), Some(tx));
        }
        if let Some(e) = child.stderr.take() {
            pump(e, self.log.clone(), None);
        }
        let deadline = Instant::now() + self.cfg.ready_timeout;
        let pty = loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(p) => break p,
                Err(mpsc::RecvTimeoutError::Disconnected)
                | Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        self.stopped = Some(Stopped::Exited(status));
                        return Err(NativeSimError::ExitedEarly { program, status });
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
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
        self.boots += 1;
        self.last_io = Instant::now();
        Ok(())
    }

    /// Make sure the app runs, restarting it after a reboot (clean exit). After a harness stop
    /// or a power cut the board stays down until reset.
    fn ensure_running(&mut self) -> Result<(), SmpError> {
        if self.running() {
            return Ok(());
        }
        match self.stopped {
            Some(Stopped::Exited(s)) if s.success() => {
                self.start().map_err(|e| SmpError::Transport(e.to_string()))
            }
            Some(Stopped::Exited(s)) => Err(SmpError::Transport(format!(
                "native-sim app exited ({s}); reset the board"
            ))),
            _ => Err(SmpError::Transport(
                "native-sim board is stopped (flashed, halted or powered off); reset it".into(),
            )),
        }
    }
}

fn lock_log(log: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop(Stopped::ByHarness { halt: true });
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
}

/// Start the board (bootloader, then the app) and return it with a handle.
pub fn open(cfg: NativeSimConfig, name: &str) -> Result<(Board, Handle), BoardError> {
    let inner = Arc::new(Mutex::new(Inner {
        cfg,
        child: None,
        pty: None,
        generation: 0,
        stopped: None,
        log: Arc::new(Mutex::new(Vec::new())),
        last_io: Instant::now(),
        boots: 0,
    }));
    lock(&inner).start()?;
    let board = Board {
        kind: BoardKind::NativeSim,
        name: name.to_owned(),
        probe: Box::new(NativeSimProbe {
            inner: inner.clone(),
        }),
        link: Link(Box::new(NativeSimLink {
            inner: inner.clone(),
            link: None,
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
        let g = lock(&self.inner);
        FlashFile::new(g.cfg.flash_file.clone(), g.cfg.layout.clone())
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
        file.range(region, 0, bytes.len() as u32)?;
        lock(&self.inner).stop(Stopped::ByHarness { halt: false });
        file.program_with_progress(region, bytes, progress)
    }

    fn read(&mut self, region: &str, offset: u32, len: u32) -> Result<Vec<u8>, BoardError> {
        let file = self.file();
        file.range(region, offset, len)?;
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
            ResetKind::Run => g.start().map_err(BoardError::from),
            ResetKind::Halt => {
                g.stop(Stopped::ByHarness { halt: true });
                Ok(())
            }
        }
    }

    fn core_state(&mut self) -> Result<CoreState, BoardError> {
        let mut g = lock(&self.inner);
        if g.running() && g.pty.is_some() {
            return Ok(CoreState::Running);
        }
        Ok(match g.stopped {
            Some(Stopped::ByHarness { halt: true }) => CoreState::Halted,
            // Exited cleanly = rebooting: it comes back on the next link use.
            Some(Stopped::Exited(s)) if s.success() => CoreState::Running,
            _ => CoreState::Off,
        })
    }

    fn power_cut(&mut self, at: PowerCutAt) -> Result<(), BoardError> {
        match at {
            PowerCutAt::Now => {
                lock(&self.inner).stop(Stopped::PowerCut);
                Ok(())
            }
            PowerCutAt::FlashOp(_) => Err(BoardError::Unsupported(
                "native-sim cannot cut power at a flash operation (only now); use the sim board"
                    .into(),
            )),
        }
    }

    fn snapshot(&mut self) -> Result<Snapshot, BoardError> {
        let g = lock(&self.inner);
        let file = FlashFile::new(g.cfg.flash_file.clone(), g.cfg.layout.clone());
        drop(g);
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
            .map_err(|e| BoardError::Probe(format!("flash file {}: {e}", path.display())))?;
        g.start().map_err(BoardError::from)
    }

    fn take_log(&mut self) -> Vec<String> {
        let g = lock(&self.inner);
        let mut log = lock_log(&g.log);
        std::mem::take(&mut *log)
    }
}

/// SMP over the app's PTY, reopened whenever the app was restarted.
pub struct NativeSimLink {
    inner: Arc<Mutex<Inner>>,
    link: Option<(u64, serial::SerialLink)>,
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
            let l = serial::open(&path.to_string_lossy(), baud)?;
            self.link = Some((generation, l));
        }
        Ok(&mut self.link.as_mut().expect("just set").1)
    }

    fn touch(&self) {
        lock(&self.inner).last_io = Instant::now();
    }
}

impl Transport for NativeSimLink {
    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        let r = self.current()?.send(packet);
        self.touch();
        r
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        let r = self.current()?.recv(timeout);
        self.touch();
        r
    }

    fn max_packet(&self) -> usize {
        dfu_hil_smp::transport::SERIAL_MAX_PACKET
    }

    fn take_noise(&mut self) -> Vec<u8> {
        match self.link.as_mut() {
            Some((_, l)) => l.take_noise(),
            None => Vec::new(),
        }
    }
}
