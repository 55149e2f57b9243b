//! Sweeps: a block run once per parameter value, or once per flash operation with the power
//! cut there (MCUboot's own power-fail test idea, on the board), and uploads cut at a percentage.

use super::Ctx;
use crate::event::{Event, EventSink, Progress};
use crate::expect::Mismatch;
use crate::result::{BoardFailureKind, Failure};
use crate::scenario::Step;
use dfu_hil_smp::{RequestOptions, UploadOptions, UploadProgress};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Ctx<'_> {
    fn run_block(&mut self, steps: &[Step], events: &mut dyn EventSink) -> Result<(), Failure> {
        for s in steps {
            self.step(s, events)?;
        }
        Ok(())
    }

    /// Run the sweep's block once per parameter value, in order; the first value whose block
    /// fails stops the sweep and names the value.
    pub(super) fn sweep_values(
        &mut self,
        w: &crate::scenario::SweepStep,
        events: &mut dyn EventSink,
    ) -> Result<String, Failure> {
        let t0 = Instant::now();
        let mut done = Vec::new();
        for (label, block) in &w.instances {
            if self.interrupt.load(Ordering::SeqCst) {
                return Err(Failure::Interrupted {
                    message: format!(
                        "interrupted during the sweep before {label} (passed: {})",
                        done.join(", ")
                    ),
                });
            }
            self.past_deadline()?;
            if let Err(e) = self.run_block(block, events) {
                let passed = if done.is_empty() {
                    String::new()
                } else {
                    format!(" (passed before it: {})", done.join(", "))
                };
                return Err(e.context(&format!("with {label}: "), &passed));
            }
            done.push(label.clone());
        }
        Ok(format!(
            "{} values passed in {:.2} s: {}",
            done.len(),
            t0.elapsed().as_secs_f64(),
            done.join(", ")
        ))
    }

    /// Count the block's flash operations, then for every cut point: put the board in the
    /// state the cut leaves, power on through `then` and require it to pass. Every cut point
    /// is checked; the step fails naming how many failed ("N of M") and which, with the
    /// evidence of the first.
    ///
    /// The state after a cut is rebuilt from a record of the uncut run when the board can
    /// (checkpoints, [`dfu_hil_board::FlashOpCuts::record_flash_ops`]): a cut before operation
    /// k leaves exactly the flash of the uncut run after k - 1 operations, so running the
    /// block again only to die in it is wasted work — and then the cut points are shared out
    /// over twins of the board, one per core. Otherwise (or with `replay: true`) the block
    /// runs again from the start with the cut armed, one cut after another.
    pub(super) fn sweep(
        &mut self,
        w: &crate::scenario::SweepStep,
        events: &mut dyn EventSink,
    ) -> Result<String, Failure> {
        let t0 = Instant::now();
        let start = self.snapshots()?.snapshot()?;
        let before = self.flash_op_cuts()?.flash_op_count();
        let recording = !w.replay && self.flash_op_cuts()?.record_flash_ops();
        let ran = self.run_block(&w.cut_during, events);
        let record = if recording {
            self.flash_op_cuts()?.take_flash_record()
        } else {
            None
        };
        ran?;
        let total = self
            .flash_op_cuts()?
            .flash_op_count()
            .saturating_sub(before);
        let clean = self.snapshots()?.snapshot()?;
        let points: Vec<u64> = (1..=total)
            .step_by(usize::try_from(w.every.max(1)).unwrap_or(usize::MAX))
            .collect();
        let (outcomes, how) = match &record {
            Some(r) => {
                let (o, workers) = self.cuts_rebuilt(w, &start, r, &points, events)?;
                (
                    o,
                    format!("rebuilt from checkpoints, {workers} board(s) in parallel"),
                )
            }
            None => (
                self.cuts_replayed(w, &start, &points, total, events)?,
                "replayed".to_owned(),
            ),
        };
        let checked = outcomes.checked;
        let failed = outcomes.failed;
        if let (Some(r), Some(f)) = (&record, failed.first()) {
            // The evidence folder shows the first failing cut, as a replayed sweep keeps it.
            self.flash_op_cuts()?.restore_cut(&start, r, f.k)?;
            let armed = self.arm_at_cut();
            let _ = self.run_block(&w.then, events);
            let states = self.disarm_at_cut(armed);
            self.keep_at_cut(
                states,
                format!("flash operation {}/{total} ({})", f.k, f.op),
            );
        }
        // Later steps continue from the uninterrupted outcome; after a failure the board stays
        // as the first failing cut left it, for the evidence folder (core state, slots).
        match (failed.is_empty(), &outcomes.failed_state) {
            (true, _) => self.snapshots()?.restore(&clean)?,
            (false, Some(state)) => self.snapshots()?.restore(state)?,
            (false, None) => {} // the rebuilt first failure above left the board so
        }
        self.collect_log();
        if let Some(why) = outcomes.stopped {
            let message = format!(
                "{why} during the sweep after {checked} of {} cut points{}",
                points.len(),
                failed_so_far(&failed)
            );
            return Err(if self.interrupt.load(Ordering::SeqCst) {
                Failure::Interrupted { message }
            } else {
                Failure::Timeout { message }
            });
        }
        if let Some(f) = failed.first() {
            return Err(Failure::Mismatch(Mismatch::new(
                format!(
                    "{} of {checked} cut points failed; first: after a power cut at flash operation {}/{total} ({}): {}",
                    failed.len(),
                    f.k,
                    f.op,
                    f.what
                ),
                failure_table(&failed, checked, total),
            )));
        }
        let how = match w.recovery_cuts {
            true => format!("{how}; each cut again at every recovery operation"),
            false => how,
        };
        Ok(format!(
            "{checked} cut points of {total} flash operations checked in {:.2} s ({how}), all recovered",
            t0.elapsed().as_secs_f64()
        ))
    }

    /// Each cut point by running the block again from `start` with the cut armed (the board
    /// cannot rebuild the state after a cut). Keeps the evidence of the first failure.
    fn cuts_replayed(
        &mut self,
        w: &crate::scenario::SweepStep,
        start: &dfu_hil_board::Snapshot,
        points: &[u64],
        total: u64,
        events: &mut dyn EventSink,
    ) -> Result<Outcomes, Failure> {
        // Nothing answers once the power is gone: do not wait long for it.
        let power_off = RequestOptions::timeout(Duration::from_millis(300));
        let mut out = Outcomes::default();
        for &k in points {
            if let Some(why) = self.must_stop() {
                out.stopped = Some(why);
                break;
            }
            self.snapshots()?.restore(start)?;
            self.flash_op_cuts()?.cut_before_flash_op(k)?;
            let _ = self.with_request(power_off, |c| c.run_block(&w.cut_during, events));
            let cut_op = self.flash_op_cuts()?.last_flash_op().unwrap_or_default();
            let after_cut = match w.recovery_cuts {
                true => Some(self.snapshots()?.snapshot()?),
                false => None,
            };
            // Evidence hook (at_cut.rs): keep the flash the recovery boot starts from.
            let armed = self.arm_at_cut();
            let mut recovered = self.run_block(&w.then, events);
            let cut_states = self.disarm_at_cut(armed);
            if let (Ok(()), Some(s)) = (&recovered, &after_cut) {
                self.snapshots()?.restore(s)?;
                recovered = self.second_cuts(w, events)?;
            }
            if let Err(e) = recovered {
                if out.failed.is_empty() {
                    self.keep_at_cut(
                        cut_states,
                        format!("flash operation {k}/{total} ({cut_op})"),
                    );
                    out.failed_state = self.snapshots()?.snapshot().ok();
                }
                if let Some(why) = self.deadline_passed() {
                    out.stopped = Some(why);
                    break;
                }
                out.failed.push(FailedCut {
                    k,
                    op: cut_op,
                    what: e.summary(),
                });
            }
            out.checked += 1;
        }
        Ok(out)
    }

    /// Each cut point by rebuilding its state from `record`, shared out over this board and
    /// twins of it (one per core the machine has, when the board has twins). Returns the
    /// outcomes in cut-point order and how many boards ran.
    fn cuts_rebuilt(
        &mut self,
        w: &crate::scenario::SweepStep,
        start: &dfu_hil_board::Snapshot,
        record: &dfu_hil_board::CutRecord,
        points: &[u64],
        events: &mut dyn EventSink,
    ) -> Result<(Outcomes, usize), Failure> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let wanted = cores.min(points.len() / MIN_CUTS_PER_BOARD).max(1);
        let mut twins = Vec::new();
        if wanted > 1 {
            self.snapshots()?.restore(start)?;
            while twins.len() + 1 < wanted {
                let Some(mut t) = self.twin() else { break };
                let Ok(own_start) = t.snapshots().and_then(|s| Ok(s.snapshot()?)) else {
                    break;
                };
                twins.push((t, own_start));
            }
        }
        let boards = twins.len() + 1;
        let share = |i: usize| {
            points
                .iter()
                .copied()
                .skip(i)
                .step_by(boards)
                .collect::<Vec<_>>()
        };
        let mine = share(0);
        let mut all = std::thread::scope(|s| -> Result<Outcomes, Failure> {
            let handles: Vec<_> = twins
                .into_iter()
                .enumerate()
                .map(|(i, (mut t, own_start))| {
                    let ks = share(i + 1);
                    s.spawn(move || {
                        t.cuts_from_record(w, &own_start, record, &ks, &mut crate::event::Silent)
                    })
                })
                .collect();
            let mut all = self.cuts_from_record(w, start, record, &mine, events)?;
            for h in handles {
                let part = h.join().map_err(|_| {
                    Failure::board(BoardFailureKind::Probe, "a sweep worker panicked")
                })??;
                all.merge(part);
            }
            Ok(all)
        })?;
        all.failed.sort_by_key(|f| f.k);
        Ok((all, boards))
    }

    /// The cut points `ks` on this board, each rebuilt from `record` over `start`.
    fn cuts_from_record(
        &mut self,
        w: &crate::scenario::SweepStep,
        start: &dfu_hil_board::Snapshot,
        record: &dfu_hil_board::CutRecord,
        ks: &[u64],
        events: &mut dyn EventSink,
    ) -> Result<Outcomes, Failure> {
        // Only a simulated board rebuilds cut states, and its clock jumps over the time its
        // SMP transport takes to register after a boot while the host waits for an answer.
        // What costs real time is the host's own waiting: 10 ms of quiet before the first
        // echo probe at every cut point. Probing at once and re-probing after a short wait
        // reaches the same "answers SMP" verdict (a lost probe is sent again until the boot
        // timeout) without sleeping through the quiet time thousands of times.
        let boot = self.boot;
        self.boot.settle = Duration::ZERO;
        self.boot.probe_timeout = boot.probe_timeout.min(SIM_PROBE_TIMEOUT);
        let mut out = Outcomes::default();
        let r = self.cuts_from_record_at(w, start, record, ks, events, &mut out);
        self.boot = boot;
        r.map(|()| out)
    }

    fn cuts_from_record_at(
        &mut self,
        w: &crate::scenario::SweepStep,
        start: &dfu_hil_board::Snapshot,
        record: &dfu_hil_board::CutRecord,
        ks: &[u64],
        events: &mut dyn EventSink,
        out: &mut Outcomes,
    ) -> Result<(), Failure> {
        for &k in ks {
            if let Some(why) = self.must_stop() {
                out.stopped = Some(why);
                break;
            }
            self.flash_op_cuts()?.restore_cut(start, record, k)?;
            let cut_op = self.flash_op_cuts()?.last_flash_op().unwrap_or_default();
            let mut recovered = self.run_block(&w.then, events);
            if recovered.is_ok() && w.recovery_cuts {
                self.flash_op_cuts()?.restore_cut(start, record, k)?;
                recovered = self.second_cuts(w, events)?;
            }
            if let Err(e) = recovered {
                if let Some(why) = self.deadline_passed() {
                    out.stopped = Some(why);
                    break;
                }
                out.failed.push(FailedCut {
                    k,
                    op: cut_op,
                    what: e.summary(),
                });
            }
            out.checked += 1;
        }
        Ok(())
    }

    /// `recovery-cuts`: from the board's state right after a cut, cut the power again before
    /// every flash operation of the recovery (`then`: MCUboot resuming), power on again through
    /// `then`, and require it to pass — a second power loss while MCUboot resumes, as MCUboot's
    /// simulator checks. `Err` names the first second cut that did not recover; the outer
    /// error is a board that cannot be cut.
    fn second_cuts(
        &mut self,
        w: &crate::scenario::SweepStep,
        events: &mut dyn EventSink,
    ) -> Result<Result<(), Failure>, Failure> {
        let after_cut = self.snapshots()?.snapshot()?;
        let before = self.flash_op_cuts()?.flash_op_count();
        let _ = self.run_block(&w.then, events);
        let m = self
            .flash_op_cuts()?
            .flash_op_count()
            .saturating_sub(before);
        let power_off = RequestOptions::timeout(Duration::from_millis(300));
        for j in 1..=m {
            if self.must_stop().is_some() {
                break;
            }
            self.snapshots()?.restore(&after_cut)?;
            self.flash_op_cuts()?.cut_before_flash_op(j)?;
            // Power on into the second cut; once the core is off, the rest of `then` would
            // only wait for a dead board.
            for st in &w.then {
                let _ = self.with_request(power_off, |c| c.step(st, events));
                if matches!(self.probe.core_state(), Ok(dfu_hil_board::CoreState::Off)) {
                    break;
                }
            }
            let op = self.flash_op_cuts()?.last_flash_op().unwrap_or_default();
            if let Err(e) = self.run_block(&w.then, events) {
                let what = e.summary();
                return Ok(Err(Failure::Mismatch(Mismatch::new(
                    format!("cut again at recovery operation {j}/{m} ({op}): {what}"),
                    String::new(),
                ))));
            }
        }
        Ok(Ok(()))
    }

    /// Upload until `pct` percent is acknowledged, then cut power: the rest of the upload
    /// goes unanswered. Passing means the cut happened; the device's state is for later steps.
    pub(super) fn upload_with_cut(
        &mut self,
        fixture: &str,
        image: u32,
        pct: usize,
        events: &mut dyn EventSink,
    ) -> Result<String, Failure> {
        let data = self.fixture(fixture).bytes.clone();
        let threshold = data.len() * pct / 100;
        let mut cut_at = None;
        self.power_control()?;
        // Nothing answers after the cut: this upload does not wait the normal timeouts for it.
        // The options are this call's own; the run's come back with the next call.
        let options = UploadOptions {
            timeout: Duration::from_millis(200),
            tries: 1,
            ..UploadOptions::default()
        };
        let probe = &mut self.probe;
        let r = self
            .client
            .upload_with(image, &data, &options, &mut |p: &UploadProgress| {
                events.event(&Event::Progress(Progress::Upload {
                    sent: p.sent as u64,
                    total: p.total as u64,
                }));
                if cut_at.is_none() && p.sent >= threshold {
                    cut_at = Some(p.sent);
                    if let Some(power) = probe.power_control() {
                        let _ = power.cut_power_now();
                    }
                }
            });
        match (cut_at, r) {
            (Some(at), Err(_)) => Ok(format!(
                "power cut after {at}/{} bytes were acknowledged; upload interrupted",
                data.len()
            )),
            (Some(at), Ok(_)) => Ok(format!(
                "power cut after the last chunk ({at}/{} bytes)",
                data.len()
            )),
            (None, r) => {
                r?;
                Ok("upload finished before the cut point".into())
            }
        }
    }
}

/// Most failing cut points a sweep's failure lists; the count is always complete.
pub const MAX_LISTED_CUTS: usize = 20;

/// How long a sweep on rebuilt cut states waits for each echo probe before sending another.
const SIM_PROBE_TIMEOUT: Duration = Duration::from_millis(2);

/// Fewer cut points than this per board are not worth a twin board.
const MIN_CUTS_PER_BOARD: usize = 16;

/// What checking a set of cut points found.
#[derive(Default)]
struct Outcomes {
    /// Cut points whose `then` ran to a verdict.
    checked: u64,
    failed: Vec<FailedCut>,
    /// Why checking stopped early (interrupt, deadline).
    stopped: Option<String>,
    /// The board as the first failing cut's recovery left it (replayed sweeps).
    failed_state: Option<dfu_hil_board::Snapshot>,
}

impl Outcomes {
    fn merge(&mut self, other: Outcomes) {
        self.checked += other.checked;
        self.failed.extend(other.failed);
        self.stopped = self.stopped.take().or(other.stopped);
        self.failed_state = self.failed_state.take().or(other.failed_state);
    }
}

/// One cut point whose recovery failed.
struct FailedCut {
    /// 1-based flash operation of the block the power was cut before.
    k: u64,
    /// The operation, as the board describes it.
    op: String,
    /// Why `then` failed.
    what: String,
}

/// The failing cut points under a sweep's failure: how many of how many, then each (bounded).
fn failure_table(failed: &[FailedCut], checked: u64, total: u64) -> String {
    let mut t = format!(
        "  {} of {checked} cut points failed ({total} flash operations in the block):\n",
        failed.len()
    );
    for f in failed.iter().take(MAX_LISTED_CUTS) {
        t.push_str(&format!(
            "  cut at {}/{total} ({}): {}\n",
            f.k, f.op, f.what
        ));
    }
    if failed.len() > MAX_LISTED_CUTS {
        t.push_str(&format!(
            "  … and {} more\n",
            failed.len() - MAX_LISTED_CUTS
        ));
    }
    t
}

/// For a sweep stopped early: the failures it had found.
fn failed_so_far(failed: &[FailedCut]) -> String {
    match failed.len() {
        0 => String::new(),
        n => format!(
            " ({n} failed so far, first at flash operation {})",
            failed[0].k
        ),
    }
}
