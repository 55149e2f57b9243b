//! `cargo run -p dfu-hil-fuzzing --bin fuzz-seeds [DIR]`: write every target's seeds to
//! `DIR/<target>/` (default `fuzz/corpus`), where `cargo fuzz run <target>` reads its corpus.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| dfu_hil_fuzzing::seeds::repo().join("fuzz/corpus"));
    for target in dfu_hil_fuzzing::Target::ALL {
        let dir = root.join(target.name());
        std::fs::create_dir_all(&dir)?;
        let seeds = dfu_hil_fuzzing::seeds::seeds(target);
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), seed)?;
        }
        println!(
            "{}: {} seeds in {}",
            target.name(),
            seeds.len(),
            dir.display()
        );
    }
    Ok(())
}
