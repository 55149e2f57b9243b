//! The evidence beside a failure (core, image list, trailers before and after, last SMP
//! exchanges, device log) and the diagnosis drawn from it.

use super::Ctx;
use crate::expect;
use crate::scenario::Step;
use dfu_hil_board::CoreState;
use dfu_hil_mcuboot::layout::DeviceKind;
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
            smp: smp_facts(self.client.transcript()),
        };
        crate::diagnosis::diagnose(&facts)
            .or_else(|| crate::evidence::flash_areas::note(&self.device_log, self.layout))
    }

    /// Every slot's trailer as one line each, read through the probe.
    pub(super) fn trailer_lines(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for pair in &self.layout.images {
            for region in [&pair.primary, &pair.secondary] {
                if self.ram_emulated(region) {
                    out.push((region.clone(), RAM_SLOT_LINE.to_string()));
                    continue;
                }
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
        self.collect_log();
        let netcore = involves_netcore(&self.device_log);
        for (region, now) in self.trailer_lines() {
            if !netcore && self.ram_emulated(&region) {
                continue;
            }
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

/// What the evidence says of the network core's RAM-emulated primary slot instead of a trailer.
const RAM_SLOT_LINE: &str = "not readable: RAM-emulated network-core slot (NCS `ram_flash`), \
     written by MCUboot and handed to the network core by PCD, gone at reset; what the network \
     core runs is checked with `expect-boot-chain: { netcore-version: … }`";

impl Ctx<'_> {
    /// Whether `region` lives on RAM-emulated flash (the nRF5340 network core's primary slot).
    fn ram_emulated(&self, region: &str) -> bool {
        self.layout
            .partition(region)
            .is_some_and(|p| self.layout.device_of(p).kind == DeviceKind::RamEmulated)
    }
}

/// The evidence involves the network core when MCUboot worked on it: its PCD hand-over logs
/// "Starting network core update" (sdk-mcuboot v2.1.0-ncs3 `boot/bootutil/src/loader.c`,
/// `BOOT_LOG_INF`, modelled in the simulated loader). Only then does a line about the network core's
/// unreadable slot help the reader.
pub(super) fn involves_netcore(log: &[String]) -> bool {
    log.iter()
        .any(|l| l.to_ascii_lowercase().contains("network core"))
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

/// What the diagnosis needs of each exchange: request group/command/op and the answer's kind.
fn smp_facts(t: &[dfu_hil_smp::Exchange]) -> Vec<crate::diagnosis::SmpFact> {
    t.iter()
        .map(|x| {
            let h = &x.request.header;
            let body = x.response.as_ref().map(|p| &p.body);
            let rc = body
                .and_then(|b| dfu_hil_smp::map_uint(b, "rc"))
                .filter(|&r| r != 0)
                .map(|r| r as u32);
            let group_err = body
                .and_then(|b| dfu_hil_smp::map_get(b, "err"))
                .and_then(|e| {
                    Some((
                        dfu_hil_smp::map_uint(e, "group")? as u16,
                        dfu_hil_smp::map_uint(e, "rc")? as u32,
                    ))
                });
            crate::diagnosis::SmpFact {
                group: h.group,
                command: h.id,
                write: h.op == dfu_hil_smp::Op::Write,
                rc,
                group_err,
                answered: x.response.is_some(),
            }
        })
        .collect()
}

#[cfg(test)]
mod netcore_note_tests {
    use super::involves_netcore;

    #[test]
    fn only_a_network_core_log_involves_it() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(involves_netcore(&l(&["I: Starting network core update"])));
        // Near miss: an nRF5340 boot with nothing for the network core, and img_mgmt's
        // harmless line about its RAM slot.
        assert!(!involves_netcore(&l(&[
            "*** Booting MCUboot ***",
            "I: Jumping to the first image slot",
            "<err> mcumgr_img_grp: Failed to open flash area ID 2: -2",
        ])));
    }
}
