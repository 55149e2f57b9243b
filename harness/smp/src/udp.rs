//! SMP over UDP (Zephyr `subsys/mgmt/mcumgr/transport/src/smp_udp.c`): one datagram is one SMP
//! packet, no framing, port 1337 (`CONFIG_MCUMGR_TRANSPORT_UDP_PORT` default, `Kconfig.udp`).
//!
//! The socket is `connect`ed to the device so the kernel filters datagrams from anyone else
//! and an ICMP "port unreachable" surfaces as an error instead of a silent timeout.

use std::io::ErrorKind;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::errors::SmpError;
use crate::transport::Transport;

/// Zephyr's `CONFIG_MCUMGR_TRANSPORT_UDP_PORT`.
pub const DEFAULT_UDP_PORT: u16 = 1337;
/// Zephyr's `CONFIG_MCUMGR_TRANSPORT_UDP_MTU` (an Ethernet MTU).
pub const DEFAULT_UDP_MTU: usize = 1500;
/// IPv4 (20) + UDP (8) header bytes inside the MTU.
pub const IPV4_OVERHEAD: usize = 28;
/// IPv6 (40) + UDP (8) header bytes inside the MTU.
pub const IPV6_OVERHEAD: usize = 48;

/// Parse `HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address, defaulting the port to 1337,
/// and resolve it (first address wins).
pub fn resolve_udp_target(target: &str) -> Result<SocketAddr, SmpError> {
    let bad = |why: String| SmpError::Transport(format!("UDP target `{target}`: {why}"));
    // A bare IPv6 address has several colons and no brackets: it carries no port.
    let has_port = if target.starts_with('[') {
        !target.ends_with(']')
    } else {
        target
            .rsplit_once(':')
            .is_some_and(|(h, _)| !h.contains(':'))
    };
    let with_port = if target.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{target}]:{DEFAULT_UDP_PORT}")
    } else if has_port {
        target.to_string()
    } else {
        format!("{target}:{DEFAULT_UDP_PORT}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))
}

/// An SMP link over a connected UDP socket.
pub struct UdpTransport {
    socket: UdpSocket,
    peer: SocketAddr,
    mtu: usize,
}

impl UdpTransport {
    /// Bind an ephemeral local port of the peer's family and connect it to `peer`.
    pub fn connect(peer: SocketAddr) -> Result<Self, SmpError> {
        let local: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(peer)?;
        Ok(UdpTransport {
            socket,
            peer,
            mtu: DEFAULT_UDP_MTU,
        })
    }

    /// [`resolve_udp_target`] then [`UdpTransport::connect`].
    pub fn open(target: &str) -> Result<Self, SmpError> {
        Self::connect(resolve_udp_target(target)?)
    }

    /// Link MTU (IP packet size) the device's stack is configured for; default 1500.
    pub fn set_mtu(&mut self, mtu: usize) {
        self.mtu = mtu;
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl Transport for UdpTransport {
    fn describe(&self) -> String {
        format!("UDP to {}, datagrams of up to {} B", self.peer, self.mtu)
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        self.socket
            .send(packet)
            .map_err(|e| link_error(e, self.peer))?;
        Ok(())
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        // A zero read timeout means "block forever" to the OS.
        self.socket
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        let mut buf = vec![0u8; 65536];
        match self.socket.recv(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(SmpError::Timeout)
            }
            Err(e) => Err(link_error(e, self.peer)),
        }
    }

    /// MTU minus the IP and UDP headers: a larger datagram would be fragmented, which
    /// embedded IP stacks commonly do not reassemble.
    fn max_packet(&self) -> usize {
        let overhead = if self.peer.is_ipv4() {
            IPV4_OVERHEAD
        } else {
            IPV6_OVERHEAD
        };
        self.mtu.saturating_sub(overhead)
    }

    /// The datagram lands in the net_buf as is.
    fn device_buffer_overhead(&self) -> usize {
        0
    }
}

fn link_error(e: std::io::Error, peer: SocketAddr) -> SmpError {
    if e.kind() == ErrorKind::ConnectionRefused {
        SmpError::Transport(format!(
            "nothing listens on UDP {peer} (ICMP port unreachable): is the SMP UDP transport enabled and the device up?"
        ))
    } else {
        SmpError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            resolve_udp_target("127.0.0.1").unwrap(),
            "127.0.0.1:1337".parse().unwrap()
        );
        assert_eq!(
            resolve_udp_target("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(
            resolve_udp_target("::1").unwrap(),
            "[::1]:1337".parse().unwrap()
        );
        assert_eq!(
            resolve_udp_target("[::1]:5").unwrap(),
            "[::1]:5".parse().unwrap()
        );
        assert!(resolve_udp_target("127.0.0.1:notaport").is_err());
    }

    #[test]
    fn packet_limits() {
        let mut t = UdpTransport::connect("127.0.0.1:9".parse().unwrap()).unwrap();
        assert_eq!(t.max_packet(), 1472);
        t.set_mtu(1280);
        assert_eq!(t.max_packet(), 1252);
        assert_eq!(t.device_buffer_overhead(), 0);
    }
}
