//! The `hw` backend: real boards through a debug probe (probe-rs), described by board profiles
//! (`boards/*.yaml`) and a lab inventory (`ci/*.yaml`).
//!
//! Only [`probe_rs`] talks to hardware, and it is kept thin; the decisions live in the other
//! modules, which are tested without hardware: [`fault`] (fault registers, fault-loop
//! classification), [`symbols`] (PC → function from the ELFs), [`profile`] (what a board is and
//! where each region is for the probe), [`inventory`] (which board is where, discovery diff),
//! [`rtt`] (SEGGER RTT control block and ring → log lines).

pub mod fault;
pub mod inventory;
pub mod probe_rs;
pub mod profile;
pub mod rtt;
pub mod symbols;

pub use inventory::{Inventory, ProbeSelector};
pub use profile::{BoardProfile, Capability};
