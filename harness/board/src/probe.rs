//! The debug-probe side of a board.

/// What the CPU is doing, as a probe classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreState {
    Running,
    Halted,
    /// No power, or the board is held in reset.
    Off,
    LockedUp,
    /// The PC stays in one place (sampled several times): a fault handler's or panic's spin
    /// loop. `symbol` comes from the ELF files the scenario names.
    FaultLoop {
        pc: u32,
        symbol: Option<String>,
    },
}

impl std::fmt::Display for CoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoreState::Running => f.write_str("running"),
            CoreState::Halted => f.write_str("halted"),
            CoreState::Off => f.write_str("off"),
            CoreState::LockedUp => f.write_str("locked up"),
            CoreState::FaultLoop { pc, symbol } => match symbol {
                Some(s) => write!(f, "fault loop in {s} (pc 0x{pc:08x})"),
                None => write!(f, "fault loop at pc 0x{pc:08x}"),
            },
        }
    }
}

/// What the boot chain says about itself beyond the MCUboot slots: NSIB's active slot and
/// monotonic counter, the network core's firmware, hardware security counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootChainFacts {
    pub nsib_slot: Option<String>,
    pub nsib_version: Option<u32>,
    /// (slots used, slots provisioned)
    pub nsib_counter: Option<(u32, u32)>,
    pub netcore_version: Option<String>,
    /// (image number, security counter value)
    pub security_counters: Vec<(u32, u32)>,
}

/// A saved board state, opaque to the runner.
pub struct Snapshot(pub Box<dyn std::any::Any + Send>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    /// Reset and let the CPU run (MCUboot, then the app).
    Run,
    /// Reset and halt at the reset vector.
    Halt,
}

/// A cause kept under a board error: probe-rs's error, an io error, a process's error.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a board operation failed. Variants that wrap another error keep it as their `source()`
/// (probe-rs's error, the io error of a port or file), so a report can say what broke and a
/// caller can inspect it; [`BoardError::kind`] sorts them for reports.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("no region `{0}` on this board")]
    NoRegion(String),
    #[error("region `{region}`: {message}")]
    Flash { region: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    /// A probe failure already put into words (no underlying error to keep).
    #[error("probe: {0}")]
    Probe(String),
    /// A probe failure with its cause: probe-rs's error, a hook's process error, the
    /// native-sim flash file's io error. `context` says what was being done.
    #[error("probe: {}{source}", prefix(context))]
    ProbeFailed {
        context: String,
        #[source]
        source: Cause,
    },
    /// A programming or reading error of `region` with its cause (probe-rs's flash error).
    #[error("region `{region}`: {}{source}", prefix(context))]
    FlashFailed {
        region: String,
        context: String,
        #[source]
        source: Cause,
    },
    /// The board cannot be used at all: probe not attached or not openable, port missing.
    #[error("{}{source}", prefix(context))]
    Unavailable {
        context: String,
        #[source]
        source: Cause,
    },
    /// The SMP link failed below SMP: the serial port, UDP socket or BLE connection.
    #[error("{}{source}", prefix(context))]
    Link {
        context: String,
        #[source]
        source: Cause,
    },
    /// The probe or the board did not answer in time.
    #[error("probe: {}{source}", prefix(context))]
    Timeout {
        context: String,
        #[source]
        source: Cause,
    },
}

/// `"context: "`, or nothing for an empty context (the cause speaks for itself).
fn prefix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    }
}

/// Which part of the board failed, for reports ("probe", "link", "timeout", …) instead of one
/// "infrastructure" for everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BoardErrorKind {
    /// The debug probe (or what stands in for it: a native-sim process, a flash file).
    Probe,
    /// Flash programming, erasing or reading.
    Flash,
    /// The SMP link below SMP: port, socket, BLE.
    Link,
    /// No answer in time.
    Timeout,
    /// The board could not be used at all (not attached, not openable).
    Unavailable,
    /// The board cannot do this (an ability or hook it lacks).
    Unsupported,
    /// A region the layout does not have.
    Region,
}

impl BoardErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BoardErrorKind::Probe => "probe",
            BoardErrorKind::Flash => "flash",
            BoardErrorKind::Link => "link",
            BoardErrorKind::Timeout => "timeout",
            BoardErrorKind::Unavailable => "unavailable",
            BoardErrorKind::Unsupported => "unsupported",
            BoardErrorKind::Region => "region",
        }
    }
}

impl std::fmt::Display for BoardErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BoardError {
    /// Which part of the board failed.
    pub fn kind(&self) -> BoardErrorKind {
        match self {
            BoardError::NoRegion(_) => BoardErrorKind::Region,
            BoardError::Flash { .. } | BoardError::FlashFailed { .. } => BoardErrorKind::Flash,
            BoardError::Unsupported(_) => BoardErrorKind::Unsupported,
            BoardError::Probe(_) | BoardError::ProbeFailed { .. } => BoardErrorKind::Probe,
            BoardError::Unavailable { .. } => BoardErrorKind::Unavailable,
            BoardError::Link { .. } => BoardErrorKind::Link,
            BoardError::Timeout { .. } => BoardErrorKind::Timeout,
        }
    }

    /// A probe failure doing `context`, keeping `source`.
    pub fn probe(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        BoardError::ProbeFailed {
            context: context.into(),
            source: source.into(),
        }
    }

    /// A board that cannot be used at all, keeping why.
    pub fn unavailable(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        BoardError::Unavailable {
            context: context.into(),
            source: source.into(),
        }
    }

    /// A link failure below SMP, keeping why.
    pub fn link(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        BoardError::Link {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Saving the board's persistent state and going back to it, to run a block again from the same
/// point (power-cut sweeps). The simulated board saves its flash and core; native-sim its flash
/// file; a real board cannot.
pub trait Snapshots {
    fn snapshot(&mut self) -> Result<Snapshot, BoardError>;
    /// Go back to `snapshot` (taken on this board), with no power cut armed.
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), BoardError>;
}

/// Power cuts placed exactly before a flash erase or write: the unit of a sweep's cut points.
/// Only a board that sees every flash operation MCUboot does (the simulated board) has it.
pub trait FlashOpCuts {
    /// Cut power before the `n`th flash erase/write from now (1 = the next one).
    fn cut_before_flash_op(&mut self, n: u64) -> Result<(), BoardError>;
    /// Flash erase/write operations counted so far.
    fn flash_op_count(&mut self) -> u64;
    /// The last counted flash operation, for reports (where a cut landed).
    fn last_flash_op(&mut self) -> Option<String>;
    /// Start recording the flash operations from now on, so the state after any of them can
    /// be rebuilt ([`restore_cut`](Self::restore_cut)) instead of replayed. False when the
    /// board cannot (then a sweep replays every cut point).
    fn record_flash_ops(&mut self) -> bool {
        false
    }
    /// Stop recording; the record, when every cut point of the run can be rebuilt from it
    /// (`None` when the run changed state the record does not hold).
    fn take_flash_record(&mut self) -> Option<CutRecord> {
        None
    }
    /// The board as a power cut before operation `k` (1-based) of `record` leaves it — `start`
    /// (the state recording began in) plus the flash of the first k - 1 operations, power off
    /// — as if the recorded block had run again with the cut armed there.
    fn restore_cut(
        &mut self,
        start: &Snapshot,
        record: &CutRecord,
        k: u64,
    ) -> Result<(), BoardError> {
        let _ = (start, record, k);
        Err(BoardError::Unsupported(
            "rebuilding a power-cut state from a record".into(),
        ))
    }
    /// A second, independent board of the same kind in this board's state (its own probe and
    /// SMP link), so a sweep can check cut points on several cores at once. `None` when the
    /// board is one of a kind (hardware, native-sim).
    fn twin(&mut self) -> Option<crate::Board> {
        None
    }
}

/// The flash operations of one run, opaque to the runner ([`FlashOpCuts::take_flash_record`]).
pub struct CutRecord(pub Box<dyn std::any::Any + Send + Sync>);

/// Cutting the power now: the simulated board's supply, a native-sim process killed, a real
/// board's inventory power hooks.
pub trait PowerControl {
    fn cut_power_now(&mut self) -> Result<(), BoardError>;
}

/// Flash, memory, reset and core state through a debug probe. Regions are partition names.
///
/// What not every board can do is an optional ability, discovered by asking for it
/// ([`snapshots`](Probe::snapshots), [`flash_op_cuts`](Probe::flash_op_cuts),
/// [`power_control`](Probe::power_control)): `None` says the board lacks it, so a caller
/// never has to try an operation to find out.
pub trait Probe: Send {
    /// Program `bytes` at the start of a region (erasing the sectors it covers).
    fn flash(&mut self, region: &str, bytes: &[u8]) -> Result<(), BoardError>;
    /// [`flash`](Probe::flash), reporting `(bytes done, bytes total)` as it goes: monotonic,
    /// `total` = `bytes.len()`, the last report `(total, total)`. Programming a slot on real
    /// hardware takes tens of seconds, and a console that shows nothing meanwhile looks hung.
    /// The default reports only the end.
    fn flash_with_progress(
        &mut self,
        region: &str,
        bytes: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BoardError> {
        self.flash(region, bytes)?;
        let len = bytes.len() as u64;
        progress(len, len);
        Ok(())
    }
    fn read(&mut self, region: &str, offset: u32, len: u32) -> Result<Vec<u8>, BoardError>;
    fn erase(&mut self, region: &str, offset: u32, len: u32) -> Result<(), BoardError>;
    fn region_size(&self, region: &str) -> Result<u32, BoardError>;
    fn reset(&mut self, kind: ResetKind) -> Result<(), BoardError>;
    fn core_state(&mut self) -> Result<CoreState, BoardError>;
    /// Saving and restoring the board's state, if the board can (see [`Snapshots`]).
    fn snapshots(&mut self) -> Option<&mut dyn Snapshots> {
        None
    }
    /// Power cuts at an exact flash operation, if the board counts them (see [`FlashOpCuts`]).
    fn flash_op_cuts(&mut self) -> Option<&mut dyn FlashOpCuts> {
        None
    }
    /// Cutting the power now, if the board can (see [`PowerControl`]).
    fn power_control(&mut self) -> Option<&mut dyn PowerControl> {
        None
    }

    /// NSIB slot and counter, network-core version, security counters (see BootChainFacts).
    fn boot_chain(&mut self) -> Result<BootChainFacts, BoardError> {
        Err(BoardError::Unsupported(
            "this board cannot report its boot chain (NSIB, network core) yet".into(),
        ))
    }
    /// Device log text captured since the last call (UART lines not part of SMP, RTT).
    fn take_log(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// The firmware's ELF files, as (label, bytes): `mcuboot`, `app`, or a partition name.
    /// A real board names fault-loop PCs with their symbols and finds the RTT control block
    /// (`_SEGGER_RTT`) in them. The simulated boards know their firmware already: ignored.
    fn load_elfs(&mut self, elfs: &[(String, Vec<u8>)]) -> Result<(), BoardError> {
        let _ = elfs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn errors_keep_their_cause_and_say_which_part_failed() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such device");
        let e = BoardError::probe("attach to nRF52840_xxAA", io);
        assert_eq!(
            e.to_string(),
            "probe: attach to nRF52840_xxAA: no such device"
        );
        assert_eq!(e.kind(), BoardErrorKind::Probe);
        let cause = e.source().expect("the io error is kept");
        assert!(cause.downcast_ref::<std::io::Error>().is_some());

        let e = BoardError::link("/dev/ttyACM0", "port busy");
        assert_eq!(e.to_string(), "/dev/ttyACM0: port busy");
        assert_eq!(e.kind(), BoardErrorKind::Link);
        assert_eq!(e.kind().as_str(), "link");

        let e = BoardError::unavailable("", "gone");
        assert_eq!(e.to_string(), "gone", "no empty context");
        assert_eq!(e.kind(), BoardErrorKind::Unavailable);

        // The worded variants keep their texts.
        assert_eq!(BoardError::Probe("x".into()).to_string(), "probe: x");
        assert_eq!(
            BoardError::NoRegion("s".into()).kind(),
            BoardErrorKind::Region
        );
        assert_eq!(
            BoardError::Unsupported("u".into()).kind(),
            BoardErrorKind::Unsupported
        );
    }
}
