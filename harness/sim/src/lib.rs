//! The simulated board: NOR flash, a model of MCUboot's boot decision and swap algorithms, and a
//! Zephyr-like SMP server — the default target, so every scenario runs with no hardware.
//!
//! Laid out the way an MCUboot engineer looks for things:
//! - [`bootloader`] — the MCUboot model: the boot decision (`loader.c`), each upgrade algorithm
//!   in the file named like MCUboot's, and the helpers they share;
//! - [`device`] — the simulated device: flash, the CPU after MCUboot, its clock, the SMP server,
//!   and NSIB's b0 stage in front of MCUboot;
//! - [`links`] — how a host reaches the device: a real PTY, a BLE peer, a UDP peer.
//!
//! The firmware formats the simulated CPU and bootloaders read (app descriptor, MCUboot build,
//! NSIB's `fw_info` and provisioning) live in `dfu-hil-firmware`, so the runner can build
//! fixtures without the simulator.

pub mod bootloader;
pub mod device;
pub mod links;

/// The firmware formats (re-exported so a test that builds a simulated app needs no second
/// dependency).
pub use dfu_hil_firmware as firmware;

pub use device::board::{CoreState, SimBoard, UartFaults};
pub use links::ble_peer::{BlePeer, SimGatt};
pub use links::udp_peer::SimUdp;
