//! What a scenario needs from its board, worked out before any board is touched.
//!
//! Why before: a sweep on a board that cannot cut power at a flash operation, or an
//! `expect-trailer` on QSPI flash the probe cannot read, would otherwise fail half-way through
//! a run as an "infrastructure error" and look like a broken lab. Knowing the needs up front
//! lets `lint --board` point at the step (file:line:col), `run` skip the scenario with the
//! reason, and the farm send it only to boards that can run it.
//!
//! The rules are deliberately few and each names the step that causes it.

use crate::scenario::{LoadedScenario, PowerCutStep, Step, TransportKind};
use dfu_hil_board::hw::Capability;
use dfu_hil_mcuboot::layout::{DeviceKind, Layout};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

/// One capability a scenario needs, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub capability: Capability,
    /// The file of the step (or of the scenario, for a header field).
    pub file: PathBuf,
    /// 1-based source position of the step; `None` for a scenario header field.
    pub at: Option<(u64, u64)>,
    /// What asks for it, in the scenario's words ("`sweep`", "`transport: ble`").
    pub why: String,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((l, c)) => write!(f, "{}:{l}:{c}: ", self.file.display())?,
            None => write!(f, "{}: ", self.file.display())?,
        }
        write!(f, "{} needs capability `{}`", self.why, self.capability)
    }
}

/// Every capability the scenario needs, in step order (duplicates kept: each names its step).
pub fn needs(s: &LoadedScenario, layout: &Layout) -> Vec<Need> {
    let mut out = Vec::new();
    let transport = match s.scenario.transport {
        TransportKind::Serial => Capability::Serial,
        TransportKind::Ble => Capability::Ble,
        TransportKind::Udp => Capability::Udp,
    };
    out.push(Need {
        capability: transport,
        file: s.path.clone(),
        at: None,
        why: format!("`transport: {}`", transport.as_str()),
    });
    if !s.scenario.geometry.is_default() {
        out.push(Need {
            capability: Capability::FlashGeometry,
            file: s.path.clone(),
            at: None,
            why: "a flash geometry chosen by `matrix:` or a variant".into(),
        });
    }
    for (i, st) in s.scenario.steps.iter().enumerate() {
        let mut caps = Vec::new();
        walk(&st.value, layout, &mut caps);
        for (capability, why) in caps {
            out.push(Need {
                capability,
                file: s.step_file(i).to_owned(),
                at: Some((st.referenced.line(), st.referenced.column())),
                why,
            });
        }
    }
    out
}

/// The set of capabilities, for matching boards.
pub fn capability_set(needs: &[Need]) -> BTreeSet<Capability> {
    needs.iter().map(|n| n.capability).collect()
}

/// The needs a board with `have` cannot meet.
pub fn unmet<'a>(needs: &'a [Need], have: &BTreeSet<Capability>) -> Vec<&'a Need> {
    needs
        .iter()
        .filter(|n| !have.contains(&n.capability))
        .collect()
}

/// Why a board of profile `profile` is not one the scenario is written for (its `boards:`
/// list), or `None`. Simulated boards (`profile` `None`) stand in for every board.
pub fn wrong_board(boards: &[String], profile: Option<&str>) -> Option<String> {
    let p = profile?;
    if boards.is_empty() || boards.iter().any(|b| b == p) {
        return None;
    }
    Some(format!(
        "scenario is written for {}, not `{p}`",
        boards.join(", ")
    ))
}

/// One line for reports: "board `x` lacks flash-op-cut (`sweep` at a.yaml:12:5), …".
pub fn explain(board: &str, unmet: &[&Need]) -> String {
    let mut seen = BTreeSet::new();
    let parts: Vec<String> = unmet
        .iter()
        .filter(|n| seen.insert(n.capability))
        .map(|n| {
            let at = match n.at {
                Some((l, c)) => format!(" at {}:{l}:{c}", n.file.display()),
                None => String::new(),
            };
            format!("{} ({}{at})", n.capability, n.why)
        })
        .collect();
    format!("board `{board}` lacks {}", parts.join(", "))
}

fn walk(step: &Step, layout: &Layout, out: &mut Vec<(Capability, String)>) {
    let kind_of = |region: &str| layout.partition(region).map(|p| layout.device_of(p).kind);
    match step {
        Step::PowerCut(PowerCutStep {
            at_flash_op: Some(n),
            ..
        }) => out.push((
            Capability::FlashOpCut,
            format!("`power-cut` at flash operation {n}"),
        )),
        Step::PowerCut(_) => out.push((Capability::PowerCut, "`power-cut`".into())),
        Step::Sweep(w) => {
            if !w.is_param() {
                out.push((
                    Capability::FlashOpCut,
                    "`sweep` (a power cut before every flash operation)".into(),
                ));
            }
            for s in w.all_steps() {
                walk(s, layout, out);
            }
        }
        Step::ExpectTrailer(m) => {
            for region in m.keys() {
                if kind_of(region) == Some(DeviceKind::External) {
                    out.push((
                        Capability::ReadExternalFlash,
                        format!("`expect-trailer` on `{region}` (external flash)"),
                    ));
                }
            }
        }
        Step::ExpectBootChain(b) => {
            if b.netcore_version.is_some() {
                out.push((
                    Capability::NetCore,
                    "`expect-boot-chain` netcore-version".into(),
                ));
            }
            out.push((Capability::BootChain, "`expect-boot-chain`".into()));
        }
        Step::ExpectFault(_) => out.push((
            Capability::ExecutesImage,
            "`expect-fault` (the CPU must run the slot's image)".into(),
        )),
        Step::Upload(u) if u.image_number > 0 => {
            let primary = layout
                .images
                .get(u.image_number as usize)
                .map(|p| p.primary.as_str());
            if primary.and_then(kind_of) == Some(DeviceKind::RamEmulated) {
                out.push((
                    Capability::NetCore,
                    format!("`upload` of image {} (network core)", u.image_number),
                ));
            }
        }
        Step::Flash(m) => {
            for region in m.keys() {
                if kind_of(region) == Some(DeviceKind::RamEmulated) {
                    out.push((
                        Capability::NetCore,
                        format!("`flash` of `{region}` (network core)"),
                    ));
                }
            }
        }
        Step::ExpectError(e) => walk(&e.action, layout, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;
    use std::path::Path;

    fn layout(name: &str) -> Layout {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        Layout::load(&root.join("partitions").join(format!("{name}.yaml"))).expect("layout")
    }

    fn load(yaml: &str) -> LoadedScenario {
        scenario::parse(yaml, Path::new("t.yaml")).expect("parses")
    }

    #[test]
    fn sweep_needs_flash_op_cut_and_names_its_line() {
        let s = load(
            "name: t\nlayout: nrf52840-internal\nsteps:\n  - reset: {}\n  - sweep:\n      cut-during: [ { reset: {} } ]\n      then: [ { expect: { running: app-v1 } } ]\n",
        );
        let n = needs(&s, &layout("nrf52840-internal"));
        let have: BTreeSet<_> = [Capability::Serial, Capability::PowerCut].into();
        let u = unmet(&n, &have);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].capability, Capability::FlashOpCut);
        assert_eq!(u[0].at, Some((5, 5)));
        assert!(u[0].to_string().starts_with("t.yaml:5:5: `sweep`"));
        let e = explain("dk-1", &u);
        assert!(e.contains("board `dk-1` lacks flash-op-cut"), "{e}");
    }

    #[test]
    fn power_cut_now_needs_only_a_power_hook() {
        let s = load(
            "name: t\nlayout: nrf52840-internal\nsteps:\n  - power-cut: {}\n  - power-cut: { at-upload-percent: 40 }\n",
        );
        let caps = capability_set(&needs(&s, &layout("nrf52840-internal")));
        assert!(caps.contains(&Capability::PowerCut));
        assert!(!caps.contains(&Capability::FlashOpCut));
    }

    #[test]
    fn external_trailer_ble_and_netcore() {
        let s = load(
            "name: t\nlayout: nrf52840-external-qspi\ntransport: ble\nsteps:\n  - expect-trailer: { slot0: { magic: good }, slot1: { magic: good } }\n",
        );
        let caps = capability_set(&needs(&s, &layout("nrf52840-external-qspi")));
        assert_eq!(
            caps,
            [Capability::Ble, Capability::ReadExternalFlash].into()
        );
        let s = load(
            "name: t\nlayout: nrf5340-multi-image\nsteps:\n  - flash: { mcuboot_primary_1: net-v1 }\n  - upload: { image: net-v2, image-number: 1 }\n  - expect-boot-chain: { netcore-version: 2.0.0 }\n",
        );
        let n = needs(&s, &layout("nrf5340-multi-image"));
        let net: Vec<_> = n
            .iter()
            .filter(|n| n.capability == Capability::NetCore)
            .collect();
        assert_eq!(net.len(), 3, "{n:?}");
        assert!(capability_set(&n).contains(&Capability::BootChain));
    }

    #[test]
    fn bundled_scenarios_against_the_nrf52840dk_profile() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dk = dfu_hil_board::hw::BoardProfile::find(&root.join("boards"), "nrf52840dk")
            .expect("profile");
        let unmet_of = |name: &str| -> BTreeSet<Capability> {
            let p = root.join("scenarios").join(format!("{name}.yaml"));
            let s = scenario::expand(scenario::load(&p).expect("loads")).remove(0);
            let l = crate::run::resolve_layout(&root, &s).expect("layout");
            let n = needs(&s, &l);
            unmet(&n, &dk.capabilities)
                .into_iter()
                .map(|n| n.capability)
                .collect()
        };
        assert!(unmet_of("internal-swap-revert").is_empty());
        assert_eq!(
            unmet_of("power-cut-during-swap"),
            [Capability::FlashOpCut].into()
        );
        assert_eq!(
            unmet_of("external-flash-swap"),
            [Capability::ReadExternalFlash].into()
        );
    }
}
