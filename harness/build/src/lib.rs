//! A user's build, as it is: an nRF Connect SDK or Zephyr build directory (sysbuild, the older
//! parent/child images, or plain Zephyr with devicetree partitions) read into the facts the
//! harness needs — the flash layout, what MCUboot was built to do, what the application can
//! answer over SMP, NSIB's counters, and the signed images — each fact with the file:line it
//! came from, so a finding can point at the line to change.
//!
//! Module owners during the #13 work: `chip`, `pm`, `dts` (layout); `kconfig`, `discover`,
//! `facts`, `images`, `build` (build directory); `doctor` (checks).

pub mod build;
pub mod chip;
pub mod discover;
pub mod doctor;
pub mod dts;
pub mod facts;
pub mod images;
pub mod kconfig;
pub mod pm;
pub mod versions;

pub use build::{Build, BuildError};
