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

/// When a power cut happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerCutAt {
    /// Before the Nth flash erase/write from now (1 = the next one).
    FlashOp(u64),
    /// Immediately.
    Now,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    /// Reset and let the CPU run (MCUboot, then the app).
    Run,
    /// Reset and halt at the reset vector.
    Halt,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("no region `{0}` on this board")]
    NoRegion(String),
    #[error("region `{region}`: {message}")]
    Flash { region: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("probe: {0}")]
    Probe(String),
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
}

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

    // The five methods below are kept for the runner until it migrates to the abilities
    // above (`run.rs` calls them for `power-cut` and sweeps). They only delegate: a backend
    // implements the abilities, never these.

    /// Cut power at `at` through [`flash_op_cuts`](Probe::flash_op_cuts) or
    /// [`power_control`](Probe::power_control). Kept for the runner until it migrates.
    fn power_cut(&mut self, at: PowerCutAt) -> Result<(), BoardError> {
        match at {
            PowerCutAt::FlashOp(n) => match self.flash_op_cuts() {
                Some(c) => c.cut_before_flash_op(n),
                None => Err(BoardError::Unsupported(
                    "this board cannot cut power at an exact flash operation; use the sim board for sweeps"
                        .into(),
                )),
            },
            PowerCutAt::Now => match self.power_control() {
                Some(p) => p.cut_power_now(),
                None => Err(BoardError::Unsupported(
                    "this board has no power-cut capability".into(),
                )),
            },
        }
    }
    /// [`FlashOpCuts::flash_op_count`], `None` without that ability. Kept for the runner until
    /// it migrates.
    fn flash_op_count(&mut self) -> Option<u64> {
        self.flash_op_cuts().map(|c| c.flash_op_count())
    }
    /// [`FlashOpCuts::last_flash_op`]. Kept for the runner until it migrates.
    fn last_flash_op(&mut self) -> Option<String> {
        self.flash_op_cuts().and_then(|c| c.last_flash_op())
    }
    /// [`Snapshots::snapshot`]. Kept for the runner until it migrates.
    fn snapshot(&mut self) -> Result<Snapshot, BoardError> {
        match self.snapshots() {
            Some(s) => s.snapshot(),
            None => Err(BoardError::Unsupported(
                "this board cannot save and restore its state (sweeps need the simulated board)"
                    .into(),
            )),
        }
    }
    /// [`Snapshots::restore`]. Kept for the runner until it migrates.
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), BoardError> {
        match self.snapshots() {
            Some(s) => s.restore(snapshot),
            None => Err(BoardError::Unsupported(
                "this board cannot restore a state".into(),
            )),
        }
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
