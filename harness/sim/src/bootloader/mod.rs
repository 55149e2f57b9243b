//! The MCUboot model. [`loader`] makes the boot decision (validation, resume, security counter);
//! each upgrade algorithm sits in the file named after MCUboot's own (`swap_move.c`,
//! `swap_scratch.c`, `swap_offset.c`, overwrite-only and direct-xip in `loader.c`), and
//! [`multi_image`] adds the nRF5340 network core and image dependencies. What the swaps share
//! (MCUboot's `swap_misc.c` and the region helpers of `loader.c`) is in `swap_status` (where a
//! swap stands) and `sectors` (erase, copy and trailer writes, one flash operation each), so no
//! algorithm imports another.

pub mod direct_xip;
pub mod loader;
pub mod multi_image;
pub mod overwrite;
mod sectors;
pub mod swap_move;
pub mod swap_offset;
pub mod swap_scratch;
mod swap_status;

pub use loader::{supported, BootOutcome, Bootloader, HwState, ImageDecision, NetcoreFw};
pub(crate) use loader::{Pair, Stop};
