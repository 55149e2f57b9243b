//! A board = a probe (flash, read memory, reset, core state) + a link (SMP) + what the board can
//! do. The runner drives every backend through these traits and never knows which one it has.

pub mod device_link;
pub mod hw;
pub mod native_sim;
pub mod probe;
pub mod sim;
pub mod transports;

pub use device_link::DeviceLinkFacts;
pub use probe::{
    BoardError, BootChainFacts, CoreState, CutRecord, FlashOpCuts, PowerControl, Probe, ResetKind,
    Snapshot, Snapshots,
};

use dfu_hil_smp::{SmpError, Transport};
use std::time::Duration;

/// SMP link to the board: the `dfu_hil_smp::Transport` of whichever backend (serial, BLE, UDP,
/// in-memory). Boxed so the runner can hold any of them.
pub struct Link(pub Box<dyn Transport>);

impl Transport for Link {
    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        self.0.send(packet)
    }
    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        self.0.recv(timeout)
    }
    fn max_packet(&self) -> usize {
        self.0.max_packet()
    }
    fn take_noise(&mut self) -> Vec<u8> {
        self.0.take_noise()
    }
    fn device_buffer_overhead(&self) -> usize {
        self.0.device_buffer_overhead()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn line_limits(&self) -> Option<dfu_hil_smp::LineLimits> {
        self.0.line_limits()
    }
    fn set_line_limits(&mut self, limits: dfu_hil_smp::LineLimits, source: &str) -> bool {
        self.0.set_line_limits(limits, source)
    }
    fn max_in_flight(&self, packet: usize) -> usize {
        self.0.max_in_flight(packet)
    }
    fn link_generation(&mut self) -> Option<u64> {
        self.0.link_generation()
    }
    fn wait_activity(&mut self, timeout: Duration) -> Result<(), SmpError> {
        self.0.wait_activity(timeout)
    }
    fn bytes_heard(&self) -> Option<u64> {
        self.0.bytes_heard()
    }
    fn forget_partial(&mut self) {
        self.0.forget_partial()
    }
}

/// Which backend a board is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardKind {
    Sim,
    Hw,
    NativeSim,
}

/// A connected board.
pub struct Board {
    pub kind: BoardKind,
    pub name: String,
    pub probe: Box<dyn Probe>,
    /// Factory for a fresh SMP link (a reset may drop a USB CDC port; a new link per use is
    /// the robust default).
    pub link: Link,
}
