//! The evidence beside a failure (core, image list, trailers before and after, last SMP
//! exchanges, device log) and the diagnosis drawn from it.

use super::Ctx;
use crate::expect;
use crate::scenario::Step;
use dfu_hil_board::CoreState;
use dfu_hil_smp::SlotState;

impl Ctx<'_> {
    /// A known cause the evidence points at, if any.
    pub(super) fn diagnosis(
        &mut self,
        device_error: Option<String>,
        step: &Step,
    ) -> Option<String> {
        let device_error = device_error.or_else(|| self.last_device_error.clone());
        let core = self.probe.core_state().ok();
        let mut trailers = Vec::new();
        for pair in &self.layout.images {
            for region in [&pair.primary, &pair.secondary] {
                if let Ok(t) = expect::read_trailer(
                    self.probe.as_mut(),
                    self.layout,
                    &self.scenario.scenario.bootloader,
                    region,
                ) {
                    trailers.push((region.clone(), t));
                }
            }
        }
        let primary_head = self
            .layout
            .images
            .first()
            .and_then(|p| self.probe.read(&p.primary, 0, 0x1000).ok());
        // The fixture the primary slot holds (same first bytes): where its app was linked.
        let link_offset = primary_head.as_deref().and_then(|head| {
            self.fixtures.values().find_map(|b| {
                let n = head.len().min(b.bytes.len());
                (n >= 64 && b.bytes[..n] == head[..n])
                    .then_some(b.link_offset)
                    .flatten()
                    .map(|o| (o, format!("fixture `{}`", b.name)))
            })
        });
        self.collect_log();
        let facts = crate::diagnosis::Facts {
            link_offset,
            core,
            log: &self.device_log,
            trailers,
            primary_head,
            device_error,
            during_upload: matches!(step, Step::Upload(_)),
        };
        crate::diagnosis::diagnose(&facts)
    }

    /// Every slot's trailer as one line each, read through the probe.
    pub(super) fn trailer_lines(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for pair in &self.layout.images {
            for region in [&pair.primary, &pair.secondary] {
                let line = match expect::read_trailer(
                    self.probe.as_mut(),
                    self.layout,
                    &self.scenario.scenario.bootloader,
                    region,
                ) {
                    Ok(t) => t.to_string(),
                    Err(e) => format!("unreadable ({e})"),
                };
                out.push((region.clone(), line));
            }
        }
        out
    }

    /// The state a DFU engineer wants beside any failure: core, image list and every trailer
    /// before and after the step, the last SMP exchanges and device log lines.
    pub(super) fn evidence_snapshot(&mut self) -> String {
        let mut out = String::from("evidence:\n");
        let core = self.probe.core_state();
        match &core {
            Ok(c) => out.push_str(&format!("  core:       {c}\n")),
            Err(e) => out.push_str(&format!("  core:       unknown ({e})\n")),
        }
        if let Some(before) = &self.image_list_before {
            out.push_str(&format!("  image list at the last expect: {before}\n"));
        }
        if matches!(core, Ok(CoreState::Running)) {
            let state = self.smp().image_state();
            match state {
                Ok(slots) => out.push_str(&format!(
                    "  image list: {}\n",
                    slots_line(&slots, |h| self.name_of_hash(h))
                )),
                Err(e) => out.push_str(&format!("  image list: unavailable ({e})\n")),
            }
        }
        let before = std::mem::take(&mut self.trailers_before);
        for (region, now) in self.trailer_lines() {
            match before.iter().find(|(r, _)| *r == region) {
                Some((_, was)) if *was != now => {
                    out.push_str(&format!("  trailer {region} before: {was}\n"));
                    out.push_str(&format!("  trailer {region} after:  {now}\n"));
                }
                _ => out.push_str(&format!("  trailer {region}: {now}\n")),
            }
        }
        let exchanges = self.client.transcript();
        if !exchanges.is_empty() {
            out.push_str("  last SMP exchanges:\n");
            for e in &exchanges[exchanges.len().saturating_sub(3)..] {
                for l in dfu_hil_smp::format_exchange(e).lines() {
                    out.push_str(&format!("    {l}\n"));
                }
            }
        }
        self.collect_log();
        let tail: Vec<&String> = self.device_log.iter().rev().take(8).collect();
        if !tail.is_empty() {
            out.push_str("  device log (last lines):\n");
            for l in tail.into_iter().rev() {
                out.push_str(&format!("    {l}\n"));
            }
        }
        out
    }
}

pub fn short_hash(h: &[u8]) -> String {
    hex::encode(&h[..h.len().min(4)])
}

pub(super) fn slots_line(slots: &[SlotState], name: impl Fn(&[u8]) -> String) -> String {
    if slots.is_empty() {
        return "(no slots)".into();
    }
    slots
        .iter()
        .map(|s| {
            let mut flags = vec![];
            for (on, f) in [
                (s.active, "active"),
                (s.confirmed, "confirmed"),
                (s.pending, "pending"),
                (s.permanent, "permanent"),
            ] {
                if on {
                    flags.push(f);
                }
            }
            let image = match s.image {
                0 => String::new(),
                n => format!("image {n} "),
            };
            format!(
                "{image}slot{} {} v{} [{}]",
                s.slot,
                name(&s.hash),
                s.version,
                flags.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
