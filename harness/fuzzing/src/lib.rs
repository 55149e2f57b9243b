//! Fuzz target bodies: one function per decoder or loader that takes arbitrary bytes and must
//! never panic, hang or allocate without bound.
//!
//! The bodies live here, in a stable-Rust workspace crate, so that the same code runs in two
//! places: under libFuzzer (`fuzz/`, nightly, each target a one-line wrapper around
//! [`run`]) and in this crate's smoke test on stable (`tests/smoke.rs`: every body over its
//! seeds plus deterministic mutations, part of `cargo test --workspace`). Seeds come from
//! [`seeds`]; `fuzz-seeds` writes them where cargo-fuzz looks for a corpus.

pub mod mutate;
pub mod seeds;
mod sim_target;
mod targets;

pub use targets::{
    ihex, image, kconfig, layout, pm_import, scenario, serial_framing, sim_smp_server, smp_packet,
    trailer,
};

/// Every fuzz target, by the name its cargo-fuzz binary and corpus folder carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    SerialFraming,
    SmpPacket,
    Image,
    Trailer,
    Scenario,
    Layout,
    PmImport,
    Kconfig,
    Ihex,
    SimSmpServer,
}

impl Target {
    pub const ALL: [Target; 10] = [
        Target::SerialFraming,
        Target::SmpPacket,
        Target::Image,
        Target::Trailer,
        Target::Scenario,
        Target::Layout,
        Target::PmImport,
        Target::Kconfig,
        Target::Ihex,
        Target::SimSmpServer,
    ];

    /// The cargo-fuzz target name (`cargo +nightly fuzz run NAME`) and corpus folder.
    pub fn name(self) -> &'static str {
        match self {
            Target::SerialFraming => "serial_framing",
            Target::SmpPacket => "smp_packet",
            Target::Image => "image",
            Target::Trailer => "trailer",
            Target::Scenario => "scenario",
            Target::Layout => "layout",
            Target::PmImport => "pm_import",
            Target::Kconfig => "kconfig",
            Target::Ihex => "ihex",
            Target::SimSmpServer => "sim_smp_server",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether inputs are text: the mutator then also splices in tokens (huge numbers, YAML
    /// punctuation) that byte flips rarely produce.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Target::Scenario | Target::Layout | Target::PmImport | Target::Kconfig | Target::Ihex
        )
    }
}

/// Run one target's body on one input.
pub fn run(target: Target, data: &[u8]) {
    match target {
        Target::SerialFraming => serial_framing(data),
        Target::SmpPacket => smp_packet(data),
        Target::Image => image(data),
        Target::Trailer => trailer(data),
        Target::Scenario => scenario(data),
        Target::Layout => layout(data),
        Target::PmImport => pm_import(data),
        Target::Kconfig => kconfig(data),
        Target::Ihex => ihex(data),
        Target::SimSmpServer => sim_smp_server(data),
    }
}
