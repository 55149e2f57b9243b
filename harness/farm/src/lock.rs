//! Host-local board locks: two farm jobs on one host never share a board.
//!
//! `flock(2)` rather than a lock file that exists or not: the kernel releases it when the
//! holder dies, so a killed CI job never leaves a board locked. The holder writes who it is
//! into the file, which a waiting job reports when it gives up.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An exclusive `flock(2)` on `<dir>/<board>.lock`, released when dropped (and by the kernel
/// when the process dies, so a killed CI job never leaves a board locked).
#[derive(Debug)]
pub struct BoardLock {
    _file: File,
    pub path: PathBuf,
    /// How long it took to get.
    pub waited: Duration,
}

/// Take the lock of `board`, waiting up to `timeout`. The error names the holder when it wrote
/// itself into the file.
pub fn lock_board(dir: &Path, board: &str, timeout: Duration) -> Result<BoardLock, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("lock dir {}: {e}", dir.display()))?;
    let path = dir.join(format!("{board}.lock"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let started = Instant::now();
    let mut announced = false;
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.raw_os_error() != Some(libc::EINTR)
        {
            return Err(format!("{}: flock: {err}", path.display()));
        }
        let holder = read_holder(&path);
        if started.elapsed() >= timeout {
            return Err(format!(
                "board `{board}` is locked by another job ({}) — gave up after {}s waiting for {}",
                holder.as_deref().unwrap_or("holder unknown"),
                timeout.as_secs(),
                path.display()
            ));
        }
        if !announced {
            eprintln!(
                "farm: board `{board}` is busy ({}), waiting up to {}s",
                holder.as_deref().unwrap_or("holder unknown"),
                timeout.as_secs()
            );
            announced = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Say who holds it, for whoever waits next.
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let who = format!(
        "pid {} on {} ({}), since unix {}",
        std::process::id(),
        host.trim(),
        std::env::var("CI_JOB_URL")
            .or_else(|_| std::env::var("GITHUB_RUN_ID").map(|id| format!("github run {id}")))
            .unwrap_or_else(|_| "dfu-hil farm".into()),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(who.as_bytes());
    let _ = file.flush();
    Ok(BoardLock {
        _file: file,
        path,
        waited: started.elapsed(),
    })
}

fn read_holder(path: &Path) -> Option<String> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
}
