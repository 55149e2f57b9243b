//! `cargo run -p dfu-hil-fuzzing --bin fuzz-replay -- TARGET FILE...`: run one target's body on
//! saved inputs (a libFuzzer crash under `fuzz/artifacts/`, a smoke failure) on stable, in a
//! debug build with overflow checks and a plain backtrace: the first step of turning a crash
//! into a regression test.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(target) = args.next() else {
        eprintln!("usage: fuzz-replay TARGET FILE...");
        return ExitCode::from(2);
    };
    let Some(target) = dfu_hil_fuzzing::Target::from_name(&target) else {
        let names: Vec<_> = dfu_hil_fuzzing::Target::ALL.map(|t| t.name()).to_vec();
        eprintln!("unknown target `{target}`; targets: {}", names.join(", "));
        return ExitCode::from(2);
    };
    for file in args {
        match std::fs::read(&file) {
            Ok(data) => {
                dfu_hil_fuzzing::run(target, &data);
                println!("{file}: no panic");
            }
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}
