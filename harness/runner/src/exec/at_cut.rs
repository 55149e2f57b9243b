//! The flash at the cut point of a power-cut sweep whose recovery failed. The evidence folder
//! is written when the scenario ends, after the failing recovery boot changed the flash; the
//! state that boot started from is what explains it (and what `dfu-hil replay --at-cut` boots),
//! so the sweep keeps a snapshot of every cut point until the recovery passed.

use super::Ctx;
use crate::evidence::AtCut;
use dfu_hil_board::Snapshot;

impl Ctx<'_> {
    /// Right after the power cut: the board's state, in case the recovery fails.
    pub(super) fn state_at_cut(&mut self) -> Option<Snapshot> {
        self.probe.snapshot().ok()
    }

    /// The recovery from the cut `cut` failed: read the flash as it was at the cut (from
    /// `at_cut`), for the evidence folder, and put the board back as the failure left it.
    pub(super) fn keep_at_cut(&mut self, at_cut: Option<Snapshot>, cut: String) {
        let Some(at_cut) = at_cut else {
            return;
        };
        let Ok(failed) = self.probe.snapshot() else {
            return;
        };
        if self.probe.restore(&at_cut).is_ok() {
            self.at_cut = Some(AtCut::capture(
                self.probe.as_mut(),
                self.layout,
                &self.scenario.scenario.bootloader,
                cut,
            ));
        }
        let _ = self.probe.restore(&failed);
    }
}
