//! SMP over a serial port: `/dev/serial/by-id/…` on a desk or farm, `/dev/pts/N` for
//! native_sim.

use std::time::Duration;

use dfu_hil_smp::{SerialTransport, SmpError};

pub use dfu_hil_smp::port::{SerialPortStream, DEFAULT_BAUD};

/// A serial SMP link.
pub type SerialLink = SerialTransport<SerialPortStream>;

/// Open `path` at `baud` with SMP console framing, discarding whatever the OS had buffered
/// (boot log from before the test would otherwise be reported as noise of the first request).
pub fn open(path: &str, baud: u32) -> Result<SerialLink, SmpError> {
    let mut stream = SerialPortStream::open(path, baud)?;
    // A PTY may refuse the flush; stale bytes are only noise, so that is not fatal.
    let _ = stream.clear();
    Ok(SerialTransport::new(stream))
}

/// [`open`], with a pause between console lines for devices whose two UART line buffers
/// overflow while they write flash (Go mcumgr pauses 20 ms, smp.md §4.2).
pub fn open_paced(path: &str, baud: u32, line_delay: Duration) -> Result<SerialLink, SmpError> {
    let mut link = open(path, baud)?;
    link.set_line_delay(line_delay);
    Ok(link)
}
