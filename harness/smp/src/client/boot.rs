//! Waiting for a device to boot: a reset is confirmed, not assumed.
//!
//! Two facts of real Zephyr devices make "send the next request at once" wrong:
//!
//! * **`os reset` is answered before the reset.** os_mgmt answers, then schedules the reboot
//!   `CONFIG_MCUMGR_GRP_OS_RESET_MS` later (default 250 ms; `os_mgmt_reset` in
//!   `subsys/mgmt/mcumgr/grp/os_mgmt/src/os_mgmt.c` submits a delayed work item). Until then the
//!   old image keeps answering, so a query sent at once reports the state *before* the swap.
//! * **The first request after a boot can be lost.** The SMP UART transport registers after
//!   the app has started (and announced itself): `uart_mcumgr_register` in
//!   `drivers/console/uart_mcumgr.c` drains the UART FIFO as it sets up its interrupt handler,
//!   so bytes that arrived earlier are gone. Observed on native_sim: a request sent 0–5 ms after
//!   the announcement is never answered, at 10 ms it is. Real boards have the same class of
//!   race (a USB CDC ACM port re-enumerates after every reset).
//!
//! So after a reset the client first waits for a sign that the *new* boot happened — the link
//! dropped and came back ([`crate::Transport::link_generation`]), a boot banner on the device's
//! log, or, with neither, the reset delay plus a margin — and then for readiness: a short
//! quiet time, then short-timeout echo probes until one is answered.

use std::time::{Duration, Instant};

use ciborium::value::Value;

use super::Client;
use crate::errors::SmpError;
use crate::header::{group, os_cmd, Op};
use crate::packet::map;
use crate::transport::Transport;

/// Zephyr's default `CONFIG_MCUMGR_GRP_OS_RESET_MS`.
pub const DEFAULT_RESET_DELAY: Duration = Duration::from_millis(250);

/// Log text that only a booting device prints: Zephyr's banner (`*** Booting Zephyr OS …`,
/// also MCUboot's and NSIB's `*** Booting …` lines) and MCUboot's first log line.
pub const BOOT_BANNERS: &[&str] = &["*** Booting ", "Starting bootloader"];

/// How patiently to wait for a boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootWait {
    /// How long the app keeps running after it accepted `os reset`
    /// (`CONFIG_MCUMGR_GRP_OS_RESET_MS`).
    pub reset_delay: Duration,
    /// Extra time after `reset_delay` before the reboot is assumed when no sign of it was
    /// seen (no banner, the link did not drop).
    pub reset_margin: Duration,
    /// Quiet time after the reboot was seen before the first readiness probe, so the probe
    /// does not land before the SMP transport registered.
    pub settle: Duration,
    /// Timeout of one readiness probe: short, a lost one is simply sent again.
    pub probe_timeout: Duration,
    /// How long the device may take to answer at all after the reset (MCUboot may be swapping
    /// a large image first).
    pub boot_timeout: Duration,
}

impl Default for BootWait {
    fn default() -> Self {
        BootWait {
            reset_delay: DEFAULT_RESET_DELAY,
            reset_margin: Duration::from_millis(250),
            // Observed: 0–5 ms after the announcement lost, 10 ms answered.
            settle: Duration::from_millis(10),
            probe_timeout: Duration::from_millis(250),
            boot_timeout: Duration::from_secs(60),
        }
    }
}

/// What showed that the device rebooted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebootSign {
    /// The link dropped and came back (port reopened, BLE reconnect, new process).
    LinkDropped,
    /// A boot banner on the device's log.
    Banner(String),
    /// Nothing was seen; the reset delay and margin passed.
    Delay(Duration),
}

impl std::fmt::Display for RebootSign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RebootSign::LinkDropped => write!(f, "link dropped and came back"),
            RebootSign::Banner(b) => write!(f, "boot banner `{b}`"),
            RebootSign::Delay(d) => write!(
                f,
                "no sign of the reboot; assumed after {:.3} s",
                d.as_secs_f64()
            ),
        }
    }
}

/// How a wait for readiness went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyReport {
    /// From the start of the wait to the answered probe.
    pub elapsed: Duration,
    /// Probes sent (the last one was answered).
    pub probes: u32,
}

impl std::fmt::Display for ReadyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SMP ready after {:.3} s", self.elapsed.as_secs_f64())?;
        if self.probes > 1 {
            write!(f, " ({} probes unanswered)", self.probes - 1)?;
        }
        Ok(())
    }
}

/// `start + d`, or a year on when that would overflow (a user's huge timeout means "wait").
fn after(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(start)
}

fn banner_in(text: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .find(|l| BOOT_BANNERS.iter().any(|b| l.contains(b)))
        .map(|l| l.trim().to_owned())
}

impl<T: Transport> Client<T> {
    /// After an `os reset` was answered: wait until the device has really gone down, i.e. the
    /// old image no longer answers. Returns what showed it. Device text read meanwhile stays
    /// available through [`Client::take_noise`]; answers that arrive meanwhile (late answers
    /// of the old image) are dropped.
    pub fn await_reboot(&mut self, w: &BootWait) -> Result<RebootSign, SmpError> {
        let start = Instant::now();
        let gen0 = self.transport.link_generation();
        let assume_at = after(after(start, w.reset_delay), w.reset_margin);
        let seen_from = self.noise.len();
        loop {
            let generation = self.transport.link_generation();
            if generation.is_some() && generation != gen0 {
                return Ok(RebootSign::LinkDropped);
            }
            let fresh = self.transport.take_noise();
            self.noise.extend(fresh);
            if let Some(b) = banner_in(&self.noise[seen_from..]) {
                return Ok(RebootSign::Banner(b));
            }
            let now = Instant::now();
            if now >= assume_at {
                return Ok(RebootSign::Delay(now - start));
            }
            let step = self.clip(assume_at - now)?;
            match self.transport.wait_activity(step) {
                Ok(()) | Err(SmpError::Timeout) => {}
                // A port that vanished (USB CDC re-enumerating) is the reboot itself.
                Err(SmpError::Transport(_)) | Err(SmpError::Io(_)) => {
                    return Ok(RebootSign::LinkDropped)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait until the device answers SMP: `settle` of quiet, then echo probes of
    /// `probe_timeout` each until one is answered (any answer, an error code too: echo may be
    /// compiled out) or `boot_timeout` has passed. A link that is briefly unusable (a port
    /// being re-created) counts as an unanswered probe.
    pub fn wait_ready(&mut self, w: &BootWait) -> Result<ReadyReport, SmpError> {
        let start = Instant::now();
        let give_up = after(start, w.boot_timeout);
        let settle_until = after(start, w.settle);
        while Instant::now() < settle_until {
            let step = self.clip(settle_until.saturating_duration_since(Instant::now()))?;
            match self.transport.recv(step) {
                Ok(_) | Err(SmpError::Timeout) => {}
                Err(SmpError::Transport(_)) | Err(SmpError::Io(_)) => {
                    std::thread::sleep(step.min(Duration::from_millis(20)));
                }
                Err(e) => return Err(e),
            }
        }
        let mut probes = 0u32;
        loop {
            probes += 1;
            let body = map([("d", Value::Text("dfu-hil ready?".into()))]);
            let outcome = self.request_with_timeout(
                Op::Write,
                group::OS,
                os_cmd::ECHO,
                body,
                w.probe_timeout,
            );
            let last = match outcome {
                Ok(_) | Err(SmpError::Device(_)) => {
                    let fresh = self.transport.take_noise();
                    self.noise.extend(fresh);
                    return Ok(ReadyReport {
                        elapsed: start.elapsed(),
                        probes,
                    });
                }
                Err(e @ SmpError::Timeout) => e.to_string(),
                Err(e @ (SmpError::Transport(_) | SmpError::Io(_))) => {
                    std::thread::sleep(w.probe_timeout.min(Duration::from_millis(100)));
                    e.to_string()
                }
                Err(e) => return Err(e),
            };
            let fresh = self.transport.take_noise();
            self.noise.extend(fresh);
            if Instant::now() >= give_up {
                return Err(SmpError::NotReady {
                    waited: start.elapsed(),
                    probes,
                    last,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_are_recognised() {
        assert_eq!(
            banner_in(b"junk\r\n*** Booting Zephyr OS build v3.4.99 ***\r\n").as_deref(),
            Some("*** Booting Zephyr OS build v3.4.99 ***")
        );
        assert!(banner_in(b"I: Starting bootloader\n").is_some());
        assert!(banner_in(b"<inf> smp_sample: heartbeat\n").is_none());
    }
}
