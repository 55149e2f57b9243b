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

/// Flash, memory, reset and core state through a debug probe. Regions are partition names.
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
    /// Cut power (simulated board: exactly before a flash operation; hardware: a power hook).
    fn power_cut(&mut self, at: PowerCutAt) -> Result<(), BoardError> {
        let _ = at;
        Err(BoardError::Unsupported(
            "this board has no power-cut capability".into(),
        ))
    }
    /// Flash erase/write operations counted so far (simulated board only): the unit of
    /// power-cut points.
    fn flash_op_count(&mut self) -> Option<u64> {
        None
    }
    /// Describe the last counted flash operation (where a cut landed).
    fn last_flash_op(&mut self) -> Option<String> {
        None
    }
    /// Save the board's persistent state to run a block again from the same point (sweeps).
    fn snapshot(&mut self) -> Result<Snapshot, BoardError> {
        Err(BoardError::Unsupported(
            "this board cannot save and restore its state (sweeps need the simulated board)".into(),
        ))
    }
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), BoardError> {
        let _ = snapshot;
        Err(BoardError::Unsupported(
            "this board cannot restore a state".into(),
        ))
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
