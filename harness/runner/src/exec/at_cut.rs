//! The flash a failing recovery boot started from, in a power-cut sweep. The evidence folder
//! is written when the scenario ends, after that boot changed the flash (a resumed swap writes
//! on); the state before it is what explains the failure and what `dfu-hil replay --at-cut`
//! boots to reproduce it. So while a sweep's `then` block runs, the probe is wrapped: its first
//! power-on (`reset`) saves the board's state first. Nothing else of the probe changes.

use super::Ctx;
use crate::evidence::AtCut;
use dfu_hil_board::{
    BoardError, BootChainFacts, CoreState, FlashOpCuts, PowerControl, Probe, ResetKind, Snapshot,
    Snapshots,
};
use std::sync::{Arc, Mutex};

/// The board's state after a cut, replaced by its state just before the first power-on.
pub(super) struct Armed {
    /// Saved right after the cut (kept when the block never powers the board on).
    after_cut: Option<Snapshot>,
    returned: Returned,
}

/// Where a dropped [`BeforeBoot`] leaves the real probe and what it saved.
type Returned = Arc<Mutex<Option<(Box<dyn Probe>, Option<Snapshot>)>>>;

/// Hands every call to the real probe; the first `reset` saves the state before it happens.
/// Dropped, it gives the real probe back through `returned`.
struct BeforeBoot {
    inner: Box<dyn Probe>,
    before_boot: Option<Snapshot>,
    returned: Returned,
}

impl Drop for BeforeBoot {
    fn drop(&mut self) {
        let inner = std::mem::replace(&mut self.inner, Box::new(Moved));
        let saved = self.before_boot.take();
        let mut slot = self.returned.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some((inner, saved));
    }
}

impl Probe for BeforeBoot {
    fn flash(&mut self, region: &str, bytes: &[u8]) -> Result<(), BoardError> {
        self.inner.flash(region, bytes)
    }
    fn flash_with_progress(
        &mut self,
        region: &str,
        bytes: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), BoardError> {
        self.inner.flash_with_progress(region, bytes, progress)
    }
    fn read(&mut self, region: &str, offset: u32, len: u32) -> Result<Vec<u8>, BoardError> {
        self.inner.read(region, offset, len)
    }
    fn erase(&mut self, region: &str, offset: u32, len: u32) -> Result<(), BoardError> {
        self.inner.erase(region, offset, len)
    }
    fn region_size(&self, region: &str) -> Result<u32, BoardError> {
        self.inner.region_size(region)
    }
    fn reset(&mut self, kind: ResetKind) -> Result<(), BoardError> {
        if kind == ResetKind::Run && self.before_boot.is_none() {
            self.before_boot = snapshot_of(self.inner.as_mut());
        }
        self.inner.reset(kind)
    }
    fn core_state(&mut self) -> Result<CoreState, BoardError> {
        self.inner.core_state()
    }
    fn snapshots(&mut self) -> Option<&mut dyn Snapshots> {
        self.inner.snapshots()
    }
    fn flash_op_cuts(&mut self) -> Option<&mut dyn FlashOpCuts> {
        self.inner.flash_op_cuts()
    }
    fn power_control(&mut self) -> Option<&mut dyn PowerControl> {
        self.inner.power_control()
    }
    fn boot_chain(&mut self) -> Result<BootChainFacts, BoardError> {
        self.inner.boot_chain()
    }
    fn take_log(&mut self) -> Vec<String> {
        self.inner.take_log()
    }
    fn load_elfs(&mut self, elfs: &[(String, Vec<u8>)]) -> Result<(), BoardError> {
        self.inner.load_elfs(elfs)
    }
}

/// A probe that stands in while the real one is moved into the wrapper (never called).
struct Moved;

impl Probe for Moved {
    fn flash(&mut self, _: &str, _: &[u8]) -> Result<(), BoardError> {
        Err(moved())
    }
    fn read(&mut self, _: &str, _: u32, _: u32) -> Result<Vec<u8>, BoardError> {
        Err(moved())
    }
    fn erase(&mut self, _: &str, _: u32, _: u32) -> Result<(), BoardError> {
        Err(moved())
    }
    fn region_size(&self, _: &str) -> Result<u32, BoardError> {
        Err(moved())
    }
    fn reset(&mut self, _: ResetKind) -> Result<(), BoardError> {
        Err(moved())
    }
    fn core_state(&mut self) -> Result<CoreState, BoardError> {
        Err(moved())
    }
}

/// The board's state, if it can save one (see [`Snapshots`]).
fn snapshot_of(p: &mut dyn Probe) -> Option<Snapshot> {
    p.snapshots()?.snapshot().ok()
}

/// Back to `s`; whether that worked.
fn restore_on(p: &mut dyn Probe, s: &Snapshot) -> bool {
    p.snapshots().is_some_and(|x| x.restore(s).is_ok())
}

fn moved() -> BoardError {
    BoardError::Probe("internal: probe used while being wrapped".into())
}

impl Ctx<'_> {
    /// Right after the power cut, before the `then` block: start watching for its power-on.
    pub(super) fn arm_at_cut(&mut self) -> Armed {
        let after_cut = snapshot_of(self.probe.as_mut());
        let inner = std::mem::replace(&mut self.probe, Box::new(Moved));
        let returned = Returned::default();
        self.probe = Box::new(BeforeBoot {
            inner,
            before_boot: None,
            returned: returned.clone(),
        });
        Armed {
            after_cut,
            returned,
        }
    }

    /// After the `then` block: the real probe back, and the states kept for a failure.
    pub(super) fn disarm_at_cut(&mut self, armed: Armed) -> CutStates {
        // Dropping the wrapper hands the real probe back through `armed.returned`.
        self.probe = Box::new(Moved);
        let back = armed
            .returned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match back {
            Some((inner, before_boot)) => {
                self.probe = inner;
                CutStates {
                    before_boot,
                    after_cut: armed.after_cut,
                }
            }
            None => CutStates {
                before_boot: None,
                after_cut: None,
            },
        }
    }

    /// The recovery failed: read the board as the recovery boot found it (and right after the
    /// cut, when steps between changed the flash) for the evidence folder, then put it back as
    /// the failure left it.
    pub(super) fn keep_at_cut(&mut self, states: CutStates, cut: String) {
        let Some(failed) = snapshot_of(self.probe.as_mut()) else {
            return;
        };
        let boot = &self.scenario.scenario.bootloader;
        let read = |ctx: &mut Self, s: &Snapshot, what: String| {
            restore_on(ctx.probe.as_mut(), s)
                .then(|| AtCut::capture(ctx.probe.as_mut(), ctx.layout, boot, what))
        };
        let after_cut = match &states.after_cut {
            Some(s) => read(self, s, cut.clone()),
            None => None,
        };
        let at_boot = match &states.before_boot {
            Some(s) => read(self, s, cut),
            None => None,
        };
        self.at_cut = match (at_boot, after_cut) {
            (Some(mut b), Some(a)) => {
                if b.images.concatenated() != a.images.concatenated() {
                    b.after_cut = Some(Box::new(a));
                }
                Some(b)
            }
            (b, a) => b.or(a),
        };
        restore_on(self.probe.as_mut(), &failed);
    }
}

/// The board's states around a cut point, for [`Ctx::keep_at_cut`].
pub(super) struct CutStates {
    /// Just before the `then` block's first power-on.
    before_boot: Option<Snapshot>,
    /// Right after the cut.
    after_cut: Option<Snapshot>,
}
