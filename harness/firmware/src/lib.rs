//! Firmware fixture formats: what the simulated CPU and bootloaders find in flash, and the
//! builders that write it. Both the simulator (which reads these binaries at boot) and the
//! runner (which builds fixtures from a scenario) use this crate, so neither depends on the
//! other for a format.
//!
//! - [`app`] — a synthetic Zephyr-like app binary: vector table, then a descriptor of what the
//!   app does (name, SMP groups, line buffers, reset delay);
//! - [`mcuboot_build`] — MCUboot's build configuration as the simulated bootloader binary
//!   carries it;
//! - [`fw_info`] — NCS's `fw_info` struct b0 reads from an NSIB-booted image;
//! - [`nsib`] — b0 and the MCUboot variants for `s0`/`s1`, signed for b0;
//! - [`provision`] — NSIB's provisioned key hashes and monotonic counter;
//! - [`release`] — the Zephyr / MCUboot / NCS release the firmware follows (behaviour that
//!   differs between releases is chosen from it).

mod descriptor;

pub mod app;
pub mod fw_info;
pub mod mcuboot_build;
pub mod nsib;
pub mod provision;
pub mod release;

pub use app::{build_app, find_app, read_app, AppDescriptor, RAM_END, RAM_START};
pub use mcuboot_build::{
    build_bootloader, read_bootloader, read_bootloader_code, BootloaderBuild, BOOT_ARCH_SYSTEM_HALT,
};
pub use release::{Release, Ver};
