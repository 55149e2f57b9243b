//! SMP over a serial port: `/dev/serial/by-id/…` on a desk or farm, `/dev/pts/N` for
//! native_sim.

use std::time::Duration;

use dfu_hil_smp::{SerialTransport, SmpError, Transport};

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

/// [`open`], with a pause between console lines for devices whose two UART line buffers overflow
/// while they write flash (Go mcumgr pauses 20 ms: docs/protocol-facts.md, "Serial line pacing").
pub fn open_paced(path: &str, baud: u32, line_delay: Duration) -> Result<SerialLink, SmpError> {
    let mut link = open(path, baud)?;
    link.set_line_delay(line_delay);
    Ok(link)
}

/// A serial SMP link that survives its port going away: a USB CDC ACM port of the app itself
/// (Thingy:53, dongles) disappears at every reset and comes back, under the same
/// `/dev/serial/by-id/…` name, once the new boot has enumerated. A failed read or write drops
/// the port; the next use opens it again (when it is back), and [`Transport::link_generation`]
/// counts each reopening, which is how the reboot wait sees the device go and come back. The
/// line limits set on the link carry over to every reopened port.
pub struct ReopeningSerial {
    path: String,
    baud: u32,
    link: Option<SerialLink>,
    limits: Option<(dfu_hil_smp::LineLimits, String)>,
    /// Ports opened so far (the first is generation 1).
    generation: u64,
    /// Device text read from ports already dropped.
    noise: Vec<u8>,
    /// Why the port was last dropped, for the error of a use that finds it still gone.
    last_error: Option<String>,
}

impl ReopeningSerial {
    /// Open `path` now (an error if it is not there: the board is not connected).
    pub fn open(path: &str, baud: u32) -> Result<Self, SmpError> {
        let mut s = ReopeningSerial {
            path: path.to_owned(),
            baud,
            link: None,
            limits: None,
            generation: 0,
            noise: Vec::new(),
            last_error: None,
        };
        s.current()?;
        Ok(s)
    }

    /// The open port, opening it again if it was dropped.
    fn current(&mut self) -> Result<&mut SerialLink, SmpError> {
        if self.link.is_none() {
            let mut l = open(&self.path, self.baud).map_err(|e| {
                SmpError::Transport(match &self.last_error {
                    Some(why) => format!(
                        "{} is gone ({why}) and cannot be reopened yet: {e}",
                        self.path
                    ),
                    None => e.to_string(),
                })
            })?;
            if let Some((limits, source)) = &self.limits {
                l.set_line_limits(*limits, source);
            }
            self.generation += 1;
            self.link = Some(l);
        }
        Ok(self.link.as_mut().expect("opened above"))
    }

    /// A port error: forget the port (keeping what it read), so the next use reopens it.
    fn dropped(&mut self, e: SmpError) -> SmpError {
        if matches!(e, SmpError::Io(_) | SmpError::Transport(_)) {
            if let Some(mut l) = self.link.take() {
                self.noise.extend(l.take_noise());
            }
            self.last_error = Some(e.to_string());
        }
        e
    }
}

impl Transport for ReopeningSerial {
    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        let r = self.current()?.send(packet);
        r.map_err(|e| self.dropped(e))
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        let r = self.current()?.recv(timeout);
        r.map_err(|e| self.dropped(e))
    }

    fn max_packet(&self) -> usize {
        match (&self.link, &self.limits) {
            (Some(l), _) => l.max_packet(),
            (None, Some((limits, _))) => limits.max_packet(),
            (None, None) => dfu_hil_smp::LineLimits::default().max_packet(),
        }
    }

    fn take_noise(&mut self) -> Vec<u8> {
        let mut n = std::mem::take(&mut self.noise);
        if let Some(l) = self.link.as_mut() {
            n.extend(l.take_noise());
        }
        n
    }

    fn describe(&self) -> String {
        let base = match &self.link {
            Some(l) => l.describe(),
            None => format!("serial {} (gone at the moment)", self.path),
        };
        format!("{base}; port opened {} time(s)", self.generation)
    }

    fn line_limits(&self) -> Option<dfu_hil_smp::LineLimits> {
        self.limits
            .as_ref()
            .map(|(l, _)| *l)
            .or_else(|| self.link.as_ref().and_then(|l| l.line_limits()))
    }

    fn set_line_limits(&mut self, limits: dfu_hil_smp::LineLimits, source: &str) -> bool {
        self.limits = Some((limits, source.to_owned()));
        if let Some(l) = self.link.as_mut() {
            l.set_line_limits(limits, source);
        }
        true
    }

    fn max_in_flight(&self, packet: usize) -> usize {
        self.line_limits().map_or(1, |l| l.window_for(packet))
    }

    fn bytes_heard(&self) -> Option<u64> {
        // A reopened port starts counting again; any change still means the device spoke.
        self.link.as_ref().and_then(|l| l.bytes_heard())
    }

    fn wait_activity(&mut self, timeout: Duration) -> Result<(), SmpError> {
        match self.current() {
            Ok(l) => {
                let r = l.wait_activity(timeout);
                r.map_err(|e| self.dropped(e))
            }
            // Still gone: that is the reboot in progress, not an error of the wait.
            Err(_) => {
                std::thread::sleep(timeout.min(Duration::from_millis(50)));
                Ok(())
            }
        }
    }

    fn link_generation(&mut self) -> Option<u64> {
        Some(self.generation)
    }
}
