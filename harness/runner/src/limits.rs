//! Upper bounds on numbers a scenario may hold, checked while the YAML is read so that an
//! out-of-range value is an error at its own file:line:column rather than an overflow when the
//! runner later adds it to a clock or a flash-operation counter.
//!
//! The bounds are far above anything a DFU test needs; they exist only so that arithmetic on
//! them cannot overflow.

use serde::{Deserialize, Deserializer};

/// Longest timeout a scenario or the command line may ask for: 30 days. Longer values would
/// overflow `Instant` arithmetic on some platforms and never mean anything in a lab.
pub const MAX_TIMEOUT_S: u64 = 30 * 24 * 3600;

/// [`MAX_TIMEOUT_S`] in milliseconds, for `wait-boot` and `sleep`.
pub const MAX_TIMEOUT_MS: u64 = MAX_TIMEOUT_S * 1000;

/// Highest `power-cut: at-flash-op` index: one full 32-bit count of flash operations, far more
/// than any swap performs, and small enough that counting towards it cannot overflow.
pub const MAX_FLASH_OP: u64 = u32::MAX as u64;

/// Most steps a scenario may hold once parameter sweeps and includes are expanded at load.
/// Expansion is multiplicative (a sweep of 10 values inside a sweep of 10 values …), so without
/// a bound a file of a few hundred bytes can ask for more steps than memory holds.
pub const MAX_EXPANDED_STEPS: usize = 100_000;

/// Deepest nesting of parameter sweeps inside one another.
pub const MAX_SWEEP_DEPTH: usize = 4;

/// Highest `bootloader: max-sectors` (`BOOT_MAX_IMG_SECTORS`): a 64 MiB slot of 1 KiB
/// sectors; the status area it sizes (sectors x 3 states x write size) must stay a `u32`.
pub const MAX_IMG_SECTORS: u32 = 65_536;

/// Largest file a scenario may include. Shared step files are a few kilobytes; the bound (with
/// the regular-file check in [`read_include`]) keeps `include: /dev/zero` from filling memory
/// and `include: /dev/stdin` from waiting forever.
pub const MAX_INCLUDE_BYTES: u64 = 1024 * 1024;

/// Read an included file: a regular file of at most [`MAX_INCLUDE_BYTES`].
pub fn read_include(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, Read};
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::other("not a regular file"));
    }
    if meta.len() > MAX_INCLUDE_BYTES {
        return Err(Error::other(format!(
            "{} bytes is too large for a step file (at most {MAX_INCLUDE_BYTES})",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    // The size may change between the check and the read; the bound holds anyway.
    file.take(MAX_INCLUDE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INCLUDE_BYTES {
        return Err(Error::other(
            "grew past the step-file size limit while read",
        ));
    }
    Ok(bytes)
}

fn at_most<'de, D: Deserializer<'de>>(d: D, max: u64, unit: &str) -> Result<Option<u64>, D::Error> {
    let v = Option::<u64>::deserialize(d)?;
    match v {
        Some(n) if n > max => Err(serde::de::Error::custom(format!(
            "{n} {unit} is out of range (at most {max})"
        ))),
        other => Ok(other),
    }
}

/// An optional timeout in seconds, at most [`MAX_TIMEOUT_S`].
pub fn opt_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    at_most(d, MAX_TIMEOUT_S, "s")
}

/// A duration in milliseconds, at most [`MAX_TIMEOUT_MS`].
pub fn ms<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n > MAX_TIMEOUT_MS {
        return Err(serde::de::Error::custom(format!(
            "{n} ms is out of range (at most {MAX_TIMEOUT_MS})"
        )));
    }
    Ok(n)
}

/// `at-flash-op`: 1 ..= [`MAX_FLASH_OP`].
pub fn opt_flash_op<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    at_most(d, MAX_FLASH_OP, "flash operations")
}

/// `at-upload-percent`: 0 ..= 100 (a larger value would arm a cut that never fires).
pub fn opt_percent<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    Ok(at_most(d, 100, "%")?.map(|n| n as u8))
}

/// `bootloader: max-align`: `BOOT_MAX_ALIGN` is 8, 16 or 32.
pub fn max_align<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if ![8, 16, 32].contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "max-align {n} is out of range: BOOT_MAX_ALIGN is 8, 16 or 32"
        )));
    }
    Ok(n)
}

/// `bootloader: max-sectors`: 1 ..= [`MAX_IMG_SECTORS`].
pub fn max_sectors<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if !(1..=MAX_IMG_SECTORS).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "max-sectors {n} is out of range (1 to {MAX_IMG_SECTORS})"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod include_tests {
    /// Found while fuzzing the scenario loader (harness/fuzzing): an include was read with
    /// `fs::read`, so a device file filled memory (`/dev/zero`) or blocked (`/dev/stdin`).
    #[cfg(unix)]
    #[test]
    fn a_device_file_is_not_an_include() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.yaml");
        for dev in ["/dev/zero", "/dev/stdin", "/dev/null"] {
            let text = format!("name: t\nlayout: l\nsteps:\n  - include: {dev}\n");
            let err = crate::scenario::parse(&text, &main)
                .unwrap_err()
                .to_string();
            assert!(err.contains("not a regular file"), "{dev}: {err}");
            assert!(err.contains(":4:"), "{dev}: no line in {err}");
        }
    }

    #[test]
    fn an_oversized_include_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(super::MAX_INCLUDE_BYTES + 1).unwrap();
        let main = dir.path().join("main.yaml");
        let text = "name: t\nlayout: l\nsteps:\n  - include: big.yaml\n";
        let err = crate::scenario::parse(text, &main).unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
    }
}
