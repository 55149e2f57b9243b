//! The simulated board: NOR flash, a model of MCUboot's boot decision and swap algorithms, and a
//! Zephyr-like SMP server — the default target, so every scenario runs with no hardware.

pub mod ble_peer;
pub mod board;
pub mod bootloader;
pub mod direct_xip;
pub mod firmware;
pub mod flash;
pub mod flash_map;
pub mod flash_timing;
pub mod multi_image;
pub mod nsib;
pub mod overwrite;
pub mod serve;
pub mod smp_server;
pub mod swap_move;
pub mod swap_offset;
pub mod swap_scratch;
pub mod udp_peer;

pub use ble_peer::{BlePeer, SimGatt};
pub use board::{CoreState, SimBoard, UartFaults};
pub use udp_peer::SimUdp;
