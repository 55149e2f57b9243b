//! Board selection and the board farm, as libraries under the `dfu-hil` CLI.
//!
//! * [`select`]: which board a command names (`sim`, `native-sim`, an inventory id), what is
//!   known about it before it is opened (capabilities, profile, device link), and opening it
//!   for one scenario.
//! * [`farm`]: scenarios across the boards of one host — a queue, one worker per board,
//!   host-local locks ([`lock`]), reruns and their flaky/failed classification ([`verdict`]),
//!   per-board and merged JUnit ([`report`]).
//!
//! The CLI keeps argument parsing and the mapping of outcomes to exit codes.

pub mod farm;
pub mod lock;
pub mod report;
pub mod select;
pub mod verdict;

pub use farm::{run_farm, FarmBoard, FarmOptions, FarmStatus};
pub use lock::{lock_board, BoardLock};
pub use select::{BoardChoice, BoardFacts, NativeSimArgs};
pub use verdict::{classify, Outcome, Unrunnable, Verdict};
