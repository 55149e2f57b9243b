//! One function per step kind: what each step asks of the board and the device, and how its
//! outcome is judged.

use super::evidence_text::{short_hash, slots_line};
use super::smp_errors::error_matches;
use super::Ctx;
use crate::event::{Event, EventSink, Progress};
use crate::expect::{self, Mismatch};
use crate::result::{BoardFailureKind, Failure};
use crate::scenario::{ResetHow, Step};
use dfu_hil_board::{CoreState, ResetKind};
use dfu_hil_smp::{BootWait, SmpError, UploadOptions, UploadProgress};
use std::time::{Duration, Instant};

impl Ctx<'_> {
    pub(super) fn step(
        &mut self,
        step: &Step,
        events: &mut dyn EventSink,
    ) -> Result<String, Failure> {
        match step {
            Step::Flash(map) => {
                for (region, fixture) in map {
                    let bytes = self.fixture(fixture).bytes.clone();
                    self.probe
                        .flash_with_progress(region, &bytes, &mut |done, total| {
                            events.event(&Event::Progress(Progress::Flash {
                                region,
                                done,
                                total,
                            }))
                        })?;
                }
                // Like `west flash`, the target is reset and runs after programming.
                self.probe.reset(ResetKind::Run)?;
                let boot = self.after_reset(false)?;
                Ok(format!(
                    "{} region(s) programmed, board reset; {boot}",
                    map.len()
                ))
            }
            Step::Upload(u) if self.cut_upload_at.is_some() => {
                let pct = self.cut_upload_at.take().unwrap_or(0) as usize;
                self.upload_with_cut(&u.image, u.image_number, pct, events)
            }
            Step::Upload(u) => {
                let data = self.fixture(&u.image).bytes.clone();
                // This upload's own options: the step's window and buffer size end with it.
                let options = UploadOptions {
                    timeout: self.request.timeout,
                    window: u.window,
                    buf_size: u.buf_size,
                    ..UploadOptions::default()
                };
                let first = self.client.transcript().len();
                let rep = match self.client.upload_with(
                    u.image_number,
                    &data,
                    &options,
                    &mut |p: &UploadProgress| {
                        events.event(&Event::Progress(Progress::Upload {
                            sent: p.sent as u64,
                            total: p.total as u64,
                        }))
                    },
                ) {
                    Ok(r) => r,
                    Err(e @ (SmpError::Timeout | SmpError::Deadline(_))) => {
                        return Err(self.silent_upload(first, e))
                    }
                    Err(e) => return Err(e.into()),
                };
                let secs = rep.elapsed.as_secs_f64().max(1e-6);
                Ok(format!(
                    "{} B in {} requests, {:.2} s ({:.1} KiB/s), {} retries",
                    rep.bytes,
                    rep.chunks,
                    secs,
                    rep.bytes as f64 / 1024.0 / secs,
                    rep.retries
                ))
            }
            Step::Test(f) => {
                let hash = self.image_hash(f)?;
                self.smp().image_test(&hash)?;
                Ok(format!("marked {f} ({}) for test", short_hash(&hash)))
            }
            Step::Confirm(c) => match &c.image {
                None => {
                    self.smp().image_confirm(None)?;
                    Ok("confirmed the running image".into())
                }
                Some(f) => {
                    let hash = self.image_hash(f)?;
                    self.smp().image_confirm(Some(&hash))?;
                    Ok(format!("confirmed {f} ({})", short_hash(&hash)))
                }
            },
            Step::Reset(r) => {
                let smp = match r.how {
                    ResetHow::Smp => {
                        self.smp().reset(false)?;
                        true
                    }
                    ResetHow::Probe => {
                        self.probe.reset(ResetKind::Run)?;
                        false
                    }
                };
                let boot = self.after_reset(smp)?;
                Ok(format!("after reset: {boot}"))
            }
            Step::Expect(e) => self.expect(e),
            Step::ExpectTrailer(m) => {
                let mut mismatches = Vec::new();
                let mut seen = Vec::new();
                for (region, want) in m {
                    let t = expect::read_trailer(
                        self.probe.as_mut(),
                        self.layout,
                        &self.scenario.scenario.bootloader,
                        region,
                    )?;
                    seen.push(format!("{region}: {t}"));
                    mismatches.extend(expect::trailer(region, want, &t));
                }
                if mismatches.is_empty() {
                    Ok(seen.join("; "))
                } else {
                    Err(Failure::Mismatch(Mismatch::from_fields(&mismatches)))
                }
            }
            Step::ExpectFault(f) => {
                let state = self.probe.core_state()?;
                match (&state, &f.symbol) {
                    (CoreState::FaultLoop { symbol: got, .. }, Some(want))
                        if got.as_deref() != Some(want.as_str()) =>
                    {
                        Err(Failure::Mismatch(Mismatch::from_fields(&[
                            expect::Field {
                                what: "core".into(),
                                expected: format!("fault loop in {want}"),
                                actual: state.to_string(),
                            },
                        ])))
                    }
                    (CoreState::FaultLoop { .. }, _) | (CoreState::LockedUp, None) => {
                        Ok(format!("core {state}"))
                    }
                    _ => Err(Failure::Mismatch(Mismatch::from_fields(&[
                        expect::Field {
                            what: "core".into(),
                            expected: match &f.symbol {
                                Some(s) => format!("fault loop in {s}"),
                                None => "fault loop".into(),
                            },
                            actual: state.to_string(),
                        },
                    ]))),
                }
            }
            Step::ExpectError(e) => match self.step(&e.action, events) {
                Err(Failure::Device(d)) if error_matches(&e.error, &d) => {
                    self.last_device_error = Some(d.name());
                    Ok(format!("device answered {} as expected", d.name()))
                }
                Err(Failure::Device(d)) => Err(Failure::Mismatch(Mismatch::from_fields(&[
                    expect::Field {
                        what: "error".into(),
                        expected: e.error.clone(),
                        actual: format!("{} — {}", d.name(), d.explain()),
                    },
                ]))),
                Ok(msg) => Err(Failure::Mismatch(Mismatch::from_fields(&[
                    expect::Field {
                        what: "error".into(),
                        expected: e.error.clone(),
                        actual: format!("no error ({msg})"),
                    },
                ]))),
                Err(other) => Err(other),
            },
            Step::Erase(e) => match &e.region {
                Some(region) => {
                    let size = self.probe.region_size(region)?;
                    self.probe.erase(region, 0, size)?;
                    Ok(format!(
                        "erased {region} (0x{size:x} bytes) through the probe"
                    ))
                }
                None => {
                    self.smp().image_erase(e.slot)?;
                    Ok("img_mgmt erase done".into())
                }
            },
            Step::PowerCut(p) => match (p.at_flash_op, p.at_upload_percent) {
                (Some(n), _) => {
                    self.flash_op_cuts()?.cut_before_flash_op(n)?;
                    Ok(format!(
                        "armed: power goes before flash operation {n} from now"
                    ))
                }
                (None, Some(pct)) => {
                    self.cut_upload_at = Some(pct.min(100));
                    Ok(format!("armed: power goes at {pct}% of the next upload"))
                }
                (None, None) => {
                    self.power_control()?.cut_power_now()?;
                    Ok("power cut".into())
                }
            },
            Step::WaitBoot(w) => {
                let deadline = self.clip(Instant::now() + Duration::from_millis(w.timeout_ms));
                loop {
                    let state = self.probe.core_state()?;
                    if state == CoreState::Running {
                        let wait = BootWait {
                            boot_timeout: deadline.saturating_duration_since(Instant::now()),
                            ..self.boot
                        };
                        if let Ok(r) = self.client.wait_ready(&wait) {
                            return Ok(format!("running ({state}); {r}"));
                        }
                    }
                    if Instant::now() >= deadline {
                        return Err(Failure::Mismatch(Mismatch::from_fields(&[
                            expect::Field {
                                what: "boot".into(),
                                expected: "running and answering SMP".into(),
                                actual: format!("core {state} after {} ms", w.timeout_ms),
                            },
                        ])));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Step::Sweep(w) if w.is_param() => self.sweep_values(w, events),
            Step::Sweep(w) => self.sweep(w, events),
            Step::ExpectBootChain(want) => {
                let got = self.probe.boot_chain()?;
                let mut fields = Vec::new();
                let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
                if let Some(w) = &want.nsib_slot {
                    if got.nsib_slot.as_deref() != Some(w.as_str()) {
                        fields.push(expect::Field {
                            what: "nsib-slot".into(),
                            expected: w.clone(),
                            actual: show(got.nsib_slot.clone()),
                        });
                    }
                }
                if let Some(w) = want.nsib_version {
                    if got.nsib_version != Some(w) {
                        fields.push(expect::Field {
                            what: "nsib-version".into(),
                            expected: w.to_string(),
                            actual: show(got.nsib_version.map(|v| v.to_string())),
                        });
                    }
                }
                if let Some(w) = want.nsib_counter_used {
                    if got.nsib_counter.map(|c| c.0) != Some(w) {
                        fields.push(expect::Field {
                            what: "nsib-counter-used".into(),
                            expected: w.to_string(),
                            actual: show(got.nsib_counter.map(|(u, t)| format!("{u} of {t}"))),
                        });
                    }
                }
                if let Some(w) = &want.netcore_version {
                    if got.netcore_version.as_deref() != Some(w.as_str()) {
                        fields.push(expect::Field {
                            what: "netcore-version".into(),
                            expected: w.clone(),
                            actual: show(got.netcore_version.clone()),
                        });
                    }
                }
                if fields.is_empty() {
                    // Only the facts this board has (no NSIB on an nRF5340 layout, …).
                    let mut facts = Vec::new();
                    if let Some(slot) = &got.nsib_slot {
                        facts.push(format!("nsib {slot}"));
                    }
                    if let Some(v) = got.nsib_version {
                        facts.push(format!("nsib version {v}"));
                    }
                    if let Some((u, t)) = got.nsib_counter {
                        facts.push(format!("counter {u}/{t} used"));
                    }
                    if let Some(v) = &got.netcore_version {
                        facts.push(format!("netcore {v}"));
                    }
                    Ok(facts.join(", "))
                } else {
                    Err(Failure::Mismatch(Mismatch::from_fields(&fields)))
                }
            }
            // Top-level includes are expanded at load time; nested blocks cannot include.
            Step::Include(f) => Err(Failure::board(
                BoardFailureKind::Scenario,
                format!(
                    "include `{f}` inside a block: includes are only expanded at the top level of `steps`"
                ),
            )),
            Step::ExpectDiagnosis(d) => {
                let text = self.diagnosis(None, step).unwrap_or_default();
                if text.to_lowercase().contains(&d.contains.to_lowercase()) {
                    Ok(text)
                } else {
                    Err(Failure::Mismatch(Mismatch::from_fields(&[
                        expect::Field {
                            what: "diagnosis".into(),
                            expected: format!("contains \"{}\"", d.contains),
                            actual: if text.is_empty() {
                                "no diagnosis from this evidence".into()
                            } else {
                                text
                            },
                        },
                    ])))
                }
            }
            Step::Sleep(s) => {
                let until = Instant::now() + Duration::from_millis(s.ms);
                std::thread::sleep(self.clip(until).saturating_duration_since(Instant::now()));
                self.past_deadline()?;
                Ok(format!("slept {} ms", s.ms))
            }
            Step::Smp(r) => self.raw_smp(r),
            Step::DeviceManager(d) => self.device_manager(d, events),
        }
    }

    /// A raw SMP request; its answer (error answers included) is checked against `expect` or
    /// only recorded (the transcript holds the exchange either way).
    pub(super) fn raw_smp(&mut self, r: &crate::raw_smp::SmpStep) -> Result<String, Failure> {
        use crate::raw_smp::{check, error_body, to_cbor, to_json};
        let version = match r.version {
            None => None,
            Some(1) => Some(dfu_hil_smp::Version::V1),
            Some(2) => Some(dfu_hil_smp::Version::V2),
            Some(v) => {
                return Err(Failure::board(
                    BoardFailureKind::Scenario,
                    format!("smp: version {v} does not exist (1 or 2)"),
                ))
            }
        };
        let body = r
            .body
            .as_ref()
            .map(to_cbor)
            .unwrap_or_else(|| dfu_hil_smp::Value::Map(vec![]));
        let mut smp = self.smp();
        let saved = smp.version();
        if let Some(v) = version {
            smp.set_version(v);
        }
        let answer = smp.request(r.op.op(), r.group, r.command, body);
        smp.set_version(saved);
        drop(smp);
        let answer = match answer {
            Ok(v) => v,
            Err(dfu_hil_smp::SmpError::Device(d)) => {
                self.last_device_error = Some(d.name());
                error_body(&d)
            }
            Err(e) => return Err(e.into()),
        };
        let json = to_json(&answer);
        let label = crate::raw_smp::summary(r.group, r.command, r.op, r.version);
        if let Some(e) = &r.expect {
            let diffs = check(&json, e);
            if !diffs.is_empty() {
                let fields: Vec<expect::Field> = diffs
                    .into_iter()
                    .map(|(what, expected, actual)| expect::Field {
                        what,
                        expected,
                        actual,
                    })
                    .collect();
                return Err(Failure::Mismatch(Mismatch::from_fields(&fields)));
            }
        }
        Ok(format!("{label} → {json}"))
    }

    fn expect(&mut self, e: &crate::scenario::ExpectStep) -> Result<String, Failure> {
        let mut fields = Vec::new();
        let core = self.probe.core_state()?;
        if e.running.is_some() && core != CoreState::Running {
            fields.push(expect::Field {
                what: "core".into(),
                expected: "running".into(),
                actual: core.to_string(),
            });
            return Err(Failure::Mismatch(Mismatch::from_fields(&fields)));
        }
        let slots = self.smp().image_state()?;
        self.image_list_before = Some(slots_line(&slots, |h| self.name_of_hash(h)));
        if let Some(want) = &e.running {
            let want_hash = self.image_hash(want)?;
            let active = slots.iter().find(|s| s.active);
            let actual = match active {
                Some(s) => format!(
                    "{} (slot {}, v{})",
                    self.name_of_hash(&s.hash),
                    s.slot,
                    s.version
                ),
                None => "no active slot reported".into(),
            };
            if active.map(|s| &s.hash) != Some(&want_hash) {
                fields.push(expect::Field {
                    what: "running".into(),
                    expected: want.clone(),
                    actual,
                });
            }
        }
        for (n, want) in [(0u32, &e.slot0), (1u32, &e.slot1)] {
            let Some(want) = want else { continue };
            let got = slots
                .iter()
                .find(|s| s.slot == n && s.image == e.image_number);
            let want_hash = match &want.image {
                Some(f) => Some((f.clone(), self.image_hash(f)?)),
                None => None,
            };
            fields.extend(expect::slot(
                n,
                want,
                got,
                want_hash.as_ref().map(|(f, h)| (f.as_str(), h.as_slice())),
                |h| self.name_of_hash(h),
            ));
        }
        if fields.is_empty() {
            Ok(slots_line(&slots, |h| self.name_of_hash(h)))
        } else {
            Err(Failure::Mismatch(Mismatch::from_fields(&fields)))
        }
    }
}
