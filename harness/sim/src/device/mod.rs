//! The simulated device: what runs on and around the chip once power is applied.

pub mod board;
pub mod flash;
pub mod flash_journal;
pub mod flash_map;
pub mod flash_timing;
pub mod img_flash_areas;
pub mod nsib;
pub mod smp_server;
