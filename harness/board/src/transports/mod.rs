//! Hardware links for SMP: a serial port (or PTY) by path, UDP, and — with the `ble` feature —
//! BLE through btleplug. Framing and reassembly live in `dfu-hil-smp`; these adapters only
//! open the OS resource.

#[cfg(feature = "ble")]
pub mod ble;
pub mod serial;

pub use dfu_hil_smp::udp::{resolve_udp_target, UdpTransport, DEFAULT_UDP_PORT};
