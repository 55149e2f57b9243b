//! The fuzz smoke run on stable: every target body over its seeds and a fixed set of
//! deterministic mutants of them. A panic fails the test with the target, the input's index
//! and its bytes written under `target/fuzz-smoke/` for a regression test or `cargo fuzz run`.
//! Debug builds check arithmetic overflow, so an unchecked sum or product fails here too.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

use dfu_hil_fuzzing::mutate::{mutate, Rng};
use dfu_hil_fuzzing::{run, seeds::seeds, Target};

/// Mutants per target: about ten thousand inputs in all, seconds in a debug build. Targets
/// whose seeds are large (whole `.config` files, HEX of whole images) or whose body is heavy
/// (the board restores 1 MiB of flash per input) get fewer.
fn mutants(target: Target) -> usize {
    match target {
        Target::SimSmpServer | Target::Kconfig | Target::Ihex => 300,
        Target::Scenario | Target::Image => 500,
        _ => 1500,
    }
}

fn failure_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-smoke")
}

fn smoke(target: Target) {
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "{}: no seeds", target.name());
    let mut rng = Rng::new(0x5eed ^ target.name().len() as u64);
    let inputs = seeds.iter().cloned().chain((0..mutants(target)).map(|_| {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        mutate(&mut rng, a, b, target.is_text())
    }));
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut count = 0;
    for (i, input) in inputs.enumerate() {
        count += 1;
        if catch_unwind(AssertUnwindSafe(|| run(target, &input))).is_err() {
            let dir = failure_dir();
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{}-{i}", target.name()));
            let _ = std::fs::write(&file, &input);
            failures.push(file.display().to_string());
        }
    }
    eprintln!(
        "{}: {count} inputs ({} seeds) in {:.1?}",
        target.name(),
        seeds.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{}: {} inputs panicked; saved as {failures:?}",
        target.name(),
        failures.len()
    );
}

#[test]
fn serial_framing() {
    smoke(Target::SerialFraming);
}

#[test]
fn smp_packet() {
    smoke(Target::SmpPacket);
}

#[test]
fn image() {
    smoke(Target::Image);
}

#[test]
fn trailer() {
    smoke(Target::Trailer);
}

#[test]
fn scenario() {
    smoke(Target::Scenario);
}

#[test]
fn layout() {
    smoke(Target::Layout);
}

#[test]
fn pm_import() {
    smoke(Target::PmImport);
}

#[test]
fn kconfig() {
    smoke(Target::Kconfig);
}

#[test]
fn ihex() {
    smoke(Target::Ihex);
}

#[test]
fn sim_smp_server() {
    smoke(Target::SimSmpServer);
}

/// The shared data the seeds come from is present where CI promises it
/// (`DFU_HIL_REQUIRE_CORPUS=1`): without it the smoke would quietly test much less.
#[test]
fn seeds_come_from_the_shared_data() {
    if std::env::var("DFU_HIL_REQUIRE_CORPUS").as_deref() != Ok("1") {
        return;
    }
    for target in [Target::Image, Target::PmImport, Target::Kconfig] {
        assert!(
            seeds(target).len() > 5,
            "{}: the shared vectors/corpus were not found",
            target.name()
        );
    }
}

/// The board target is not vacuous: the factory board builds and answers the seed requests
/// (their answers are the packet target's seeds).
#[test]
fn the_simulated_board_answers() {
    let requests = seeds(Target::SimSmpServer).len();
    assert!(seeds(Target::SmpPacket).len() > requests + 5);
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let manifest = std::fs::read_to_string(dfu_hil_fuzzing::seeds::repo().join("fuzz/Cargo.toml"))
        .expect("fuzz/Cargo.toml");
    for target in Target::ALL {
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name())),
            "fuzz/Cargo.toml has no [[bin]] for {}",
            target.name()
        );
        assert_eq!(Target::from_name(target.name()), Some(target));
    }
}
