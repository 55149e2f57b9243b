//! A record of every flash operation of one uncut run, with checkpoints of the whole flash at
//! intervals, so a power-cut sweep can rebuild the flash a cut before operation k leaves
//! without running the block again from the start.
//!
//! A cut lands *before* an operation (see [`crate::device::flash`]), and the simulated board is
//! deterministic, so the flash after a cut before operation k is exactly the flash of the uncut
//! run after its first k - 1 operations. Rebuilding it costs one checkpoint copy plus at most
//! `interval` operations instead of the k operations (and the SMP traffic, hashing and boot
//! logic) of a replay — which is what made a full-slot sweep grow with the square of the image.

use crate::device::flash::NorFlash;
use crate::device::flash_map::FlashOp;

/// Operations between two checkpoints when the caller does not choose: a checkpoint of a 1 MiB
/// flash every 128 operations keeps a full-slot swap-move's record near 50 MiB while a rebuild
/// replays at most 128 sector-sized operations.
pub const DEFAULT_INTERVAL: u64 = 128;

/// What one counted operation changed (nothing when the device refused it).
#[derive(Debug, Clone)]
enum Change {
    Erase { offset: u32, len: u32 },
    Write { offset: u32, data: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Entry {
    op: FlashOp,
    change: Option<(usize, Change)>,
}

/// The operations of one run and the flash every `interval` operations.
#[derive(Debug, Clone)]
pub struct FlashJournal {
    interval: u64,
    /// The flash map's operation counter when recording began.
    start_ops: u64,
    /// `entries[i]` is operation `start_ops + i + 1`.
    entries: Vec<Entry>,
    /// `checkpoints[c]`: every device after the first `c * interval` recorded operations.
    checkpoints: Vec<Vec<NorFlash>>,
}

impl FlashJournal {
    pub(crate) fn new(start_ops: u64, interval: u64) -> Self {
        FlashJournal {
            interval: interval.max(1),
            start_ops,
            entries: Vec::new(),
            checkpoints: Vec::new(),
        }
    }

    /// Operations recorded (the cut points of the run).
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The flash map's operation counter when recording began.
    pub fn start_ops(&self) -> u64 {
        self.start_ops
    }

    /// Operation `op` is about to change `devices`: checkpoint them when due, then note it.
    pub(crate) fn before_op(&mut self, devices: &[NorFlash], op: FlashOp) {
        if self.len() % self.interval == 0 {
            self.checkpoints.push(devices.to_vec());
        }
        self.entries.push(Entry { op, change: None });
    }

    pub(crate) fn erased(&mut self, device: usize, offset: u32, len: u32) {
        if let Some(e) = self.entries.last_mut() {
            e.change = Some((device, Change::Erase { offset, len }));
        }
    }

    pub(crate) fn wrote(&mut self, device: usize, offset: u32, data: &[u8]) {
        if let Some(e) = self.entries.last_mut() {
            e.change = Some((
                device,
                Change::Write {
                    offset,
                    data: data.to_vec(),
                },
            ));
        }
    }

    /// The devices as a cut before recorded operation `k` (1-based) leaves them, and that
    /// operation; `None` when `k` is not a recorded operation or the devices do not match.
    pub(crate) fn rebuild(&self, k: u64, devices: &mut [NorFlash]) -> Option<FlashOp> {
        if k == 0 || k > self.len() {
            return None;
        }
        let done = k - 1;
        let c = done / self.interval;
        let base = self.checkpoints.get(usize::try_from(c).ok()?)?;
        if base.len() != devices.len() {
            return None;
        }
        for (d, b) in devices.iter_mut().zip(base) {
            d.clone_from(b);
        }
        let from = usize::try_from(c * self.interval).ok()?;
        let to = usize::try_from(done).ok()?;
        for e in &self.entries[from..to] {
            // Each change succeeded on these very bytes in the recorded run; it succeeds again.
            let applied = match &e.change {
                None => Ok(()),
                Some((d, Change::Erase { offset, len })) => devices[*d].erase(*offset, *len),
                Some((d, Change::Write { offset, data })) => devices[*d].write(*offset, data),
            };
            applied.ok()?;
        }
        Some(self.entries[to].op.clone())
    }
}
