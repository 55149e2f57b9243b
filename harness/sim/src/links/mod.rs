//! The links a host reaches the simulated device by: the UART on a real PTY (`sim serve`), a
//! BLE GATT peer and a UDP peer (both in memory, for the board backend).

pub mod ble_peer;
pub mod serve;
pub mod udp_peer;
