//! SMP (mcumgr) protocol support for the dfu-hil harness: header and CBOR packet codec,
//! error tables, serial ("SMP over console") framing, transports (serial port, UDP, BLE over a
//! [`GattLink`], in-memory) and a synchronous client with windowed uploads.
//!
//! Both directions live here because the simulated board (crate `dfu-hil-sim`) must speak to
//! the client byte-for-byte like a Zephyr device: the device-side encoders
//! ([`Packet::encode_zephyr`], [`serial::encode_zephyr`]) and decoder
//! ([`serial::DeviceLineDecoder`]) are the simulator's, the rest is the host's.
//! Comments cite where each protocol fact comes from upstream (mostly Zephyr's
//! `subsys/mgmt/mcumgr`, by file and function); facts that are not one upstream line are in
//! `docs/protocol-facts.md`.

pub mod bench;
pub mod ble;
pub mod client;
pub mod errors;
pub mod faulty;
pub mod header;
pub mod limits;
pub mod mem;
pub mod netport;
pub mod packet;
pub mod port;
pub mod serial;
pub mod telnet;
pub mod transport;
pub mod udp;

pub use ble::{BleTransport, GattLink};
pub use client::{
    format_exchange, format_packet, parse_image_state, parse_slot_info, parse_taskstat, BootWait,
    BootloaderMode, Client, Exchange, ImageSlots, LineDiscovery, Params, ReadyReport, RebootSign,
    RequestOptions, SlotInfo, SlotState, TaskStat, UploadOptions, UploadProgress, UploadReport,
    Using,
};
pub use errors::{
    group_err_name, img_err_to_v1, mgmt_err_name, response_error, DeviceError, SmpError,
};
pub use header::{group, img_cmd, os_cmd, zephyr_cmd, Header, Op, RawHeader, Version, HEADER_LEN};
pub use limits::{LineLimits, LineSetting};
pub use netport::{NetPortAddr, NetProtocol, NetSerialStream};
pub use packet::{map, map_bool, map_bytes, map_get, map_int, map_text, map_uint, uint, Packet};
pub use port::{open_serial, SerialPortStream};
pub use serial::{DeviceLineDecoder, LineDecoder, SerialEvent};
pub use transport::{ByteStream, SerialTransport, Transport};
pub use udp::{resolve_udp_target, UdpTransport};

/// Re-exported so users build bodies with the same `Value` type.
pub use ciborium::value::Value;
