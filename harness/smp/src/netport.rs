//! A serial port reached over the network, as a [`ByteStream`]: `rfc2217://host:port` (Telnet
//! with the Com Port Control Option, RFC 2217, as ser2net serves it in `telnet(rfc2217)` mode)
//! or `tcp://host:port` (ser2net's raw mode). This is how a labgrid exporter publishes a board's
//! UART (`NetworkSerialPort`, labgrid docs "Resources": host, port, speed, protocol `rfc2217` or
//! `raw`), and the SMP console framing, line limits and timeouts of [`crate::SerialTransport`]
//! apply on top exactly as over a local tty.
//!
//! With RFC 2217 the baud rate and 8N1 / no flow control are sent to the server, which sets them
//! on the real UART; with raw TCP the exporter's configured settings apply. A closed connection
//! (ser2net or the exporter host gone) is an I/O error, never a quiet timeout, so a run tells
//! infrastructure from a silent board.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::errors::SmpError;
use crate::telnet::{self, Decoded, TelnetDecoder};
use crate::transport::ByteStream;

/// How a network serial port is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetProtocol {
    /// Telnet + RFC 2217 Com Port Control.
    Rfc2217,
    /// Bytes as they are.
    Raw,
}

/// A parsed `rfc2217://host:port` or `tcp://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPortAddr {
    pub protocol: NetProtocol,
    /// `host:port` as given (a name, IPv4, or `[v6]`).
    pub host_port: String,
}

impl NetPortAddr {
    /// `Some` when `port` names a network port; `None` for a device path. A URL with a missing
    /// or non-numeric port is an error, not a path.
    pub fn parse(port: &str) -> Result<Option<Self>, SmpError> {
        let (protocol, rest) = if let Some(r) = port.strip_prefix("rfc2217://") {
            (NetProtocol::Rfc2217, r)
        } else if let Some(r) = port.strip_prefix("tcp://") {
            (NetProtocol::Raw, r)
        } else if let Some(r) = port.strip_prefix("raw://") {
            (NetProtocol::Raw, r)
        } else {
            return Ok(None);
        };
        let rest = rest.trim_end_matches('/');
        let ok = rest
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !ok {
            return Err(SmpError::Transport(format!(
                "network serial port {port}: expected host:port after the scheme"
            )));
        }
        Ok(Some(NetPortAddr {
            protocol,
            host_port: rest.to_owned(),
        }))
    }

    /// The URL form, as accepted by `--port`.
    pub fn url(&self) -> String {
        match self.protocol {
            NetProtocol::Rfc2217 => format!("rfc2217://{}", self.host_port),
            NetProtocol::Raw => format!("tcp://{}", self.host_port),
        }
    }
}

/// How long to wait for the TCP connection and for the server's RFC 2217 answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const NEGOTIATE_TIMEOUT: Duration = Duration::from_secs(2);

/// An open network serial port.
pub struct NetSerialStream {
    sock: TcpStream,
    addr: NetPortAddr,
    telnet: Option<TelnetDecoder>,
    /// Data decoded but not yet handed out.
    pending: Vec<u8>,
    /// RFC 2217 answers seen (command + 100, value), for [`Self::describe_settings`].
    answers: Vec<Vec<u8>>,
    timeout: Option<Duration>,
}

impl NetSerialStream {
    /// Connect to `addr`; with RFC 2217, negotiate COM-PORT-OPTION and send `baud` 8N1.
    pub fn open(addr: &NetPortAddr, baud: u32) -> Result<Self, SmpError> {
        let err = |what: String| SmpError::Transport(format!("{}: {what}", addr.url()));
        let sockaddrs: Vec<_> = addr
            .host_port
            .to_socket_addrs()
            .map_err(|e| err(format!("cannot resolve: {e}")))?
            .collect();
        let mut last = None;
        let mut sock = None;
        for sa in sockaddrs {
            match TcpStream::connect_timeout(&sa, CONNECT_TIMEOUT) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let sock = sock.ok_or_else(|| {
            err(match last {
                Some(e) => format!("cannot connect ({e}): is ser2net running on the exporter?"),
                None => "resolves to no address".into(),
            })
        })?;
        // SMP frames are short lines; Nagle would hold each for an ACK.
        let _ = sock.set_nodelay(true);
        let mut s = NetSerialStream {
            sock,
            addr: addr.clone(),
            telnet: None,
            pending: Vec::new(),
            answers: Vec::new(),
            timeout: None,
        };
        if addr.protocol == NetProtocol::Rfc2217 {
            s.negotiate(baud).map_err(|e| err(e.to_string()))?;
        }
        Ok(s)
    }

    /// RFC 2217 section 2: offer COM-PORT-OPTION, wait for the server's DO, then send the
    /// settings (the RFC has the client wait for agreement before any subnegotiation).
    fn negotiate(&mut self, baud: u32) -> std::io::Result<()> {
        self.telnet = Some(TelnetDecoder::new());
        self.sock.write_all(&telnet::client_greeting())?;
        let deadline = Instant::now() + NEGOTIATE_TIMEOUT;
        loop {
            match self.telnet.as_ref().and_then(|t| t.com_port_accepted) {
                Some(true) => break,
                Some(false) => return Err(std::io::Error::other(
                    "the server refuses RFC 2217 (DONT COM-PORT-OPTION): use tcp:// for a raw port",
                )),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::other(
                    "no RFC 2217 answer within 2 s: is it a raw port (tcp://)?",
                ));
            }
            self.fill(left)?;
        }
        self.sock.write_all(&telnet::serial_settings(baud))
    }

    /// Read once from the socket (waiting at most `timeout`), decoding Telnet; `Ok(false)` on
    /// timeout.
    fn fill(&mut self, timeout: Duration) -> std::io::Result<bool> {
        let t = timeout.max(Duration::from_millis(1));
        if self.timeout != Some(t) {
            self.sock.set_read_timeout(Some(t))?;
            self.timeout = Some(t);
        }
        let mut buf = [0u8; 4096];
        let n = match self.sock.read(&mut buf) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("{}: connection closed by the server", self.addr.url()),
                ))
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(false)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        };
        match self.telnet.as_mut() {
            None => self.pending.extend_from_slice(&buf[..n]),
            Some(t) => {
                let mut d = Decoded::default();
                t.push(&buf[..n], &mut d);
                if !d.reply.is_empty() {
                    self.sock.write_all(&d.reply)?;
                }
                self.pending.extend(d.data);
                for sn in d.subnegotiations {
                    if sn.option == telnet::OPT_COM_PORT && self.answers.len() < 16 {
                        self.answers.push(sn.data);
                    }
                }
            }
        }
        Ok(true)
    }

    pub fn addr(&self) -> &NetPortAddr {
        &self.addr
    }

    /// The server's RFC 2217 answers so far, e.g. `baud 115200` (empty for raw TCP).
    pub fn describe_settings(&self) -> String {
        let mut parts = Vec::new();
        for a in &self.answers {
            if let [c, b0, b1, b2, b3] = a.as_slice() {
                if *c == telnet::SET_BAUDRATE + telnet::SERVER_OFFSET {
                    parts.push(format!("baud {}", u32::from_be_bytes([*b0, *b1, *b2, *b3])));
                }
            }
        }
        parts.join(", ")
    }

    /// Drop what was already received (stale boot log), without waiting.
    pub fn clear(&mut self) -> Result<(), SmpError> {
        while self.fill(Duration::from_millis(1))? {}
        self.pending.clear();
        Ok(())
    }
}

impl Drop for NetSerialStream {
    fn drop(&mut self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

impl ByteStream for NetSerialStream {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        if self.telnet.is_some() {
            self.sock.write_all(&telnet::escape(b))
        } else {
            self.sock.write_all(b)
        }
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        let deadline = Instant::now() + timeout;
        // Telnet commands alone produce no data: read on until data or the deadline.
        let mut first = true;
        while self.pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() && !first {
                return Ok(0);
            }
            first = false;
            self.fill(left)?;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telnet::*;
    use std::net::TcpListener;

    #[test]
    fn urls_parse() {
        assert_eq!(NetPortAddr::parse("/dev/ttyACM0").unwrap(), None);
        let a = NetPortAddr::parse("rfc2217://exp1.lab:5000")
            .unwrap()
            .unwrap();
        assert_eq!(a.protocol, NetProtocol::Rfc2217);
        assert_eq!(a.host_port, "exp1.lab:5000");
        let b = NetPortAddr::parse("tcp://[::1]:7/").unwrap().unwrap();
        assert_eq!(
            (b.protocol, b.url()),
            (NetProtocol::Raw, "tcp://[::1]:7".into())
        );
        assert!(NetPortAddr::parse("rfc2217://host").is_err());
        assert!(NetPortAddr::parse("tcp://:5000").is_err());
        assert!(NetPortAddr::parse("tcp://h:99999").is_err());
    }

    /// A scripted RFC 2217 server: agrees to COM-PORT-OPTION, records what the client sends,
    /// answers the baud rate, then sends `to_client` (already escaped by the test) and closes.
    fn scripted_server(to_client: Vec<u8>) -> (String, std::thread::JoinHandle<Decoded>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("rfc2217://{}", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            // Also ask for ECHO, which the client must refuse.
            s.write_all(&[IAC, DO, OPT_COM_PORT, IAC, WILL, 1]).unwrap();
            let mut seen = TelnetDecoder::new();
            let mut got = Decoded::default();
            let mut buf = [0u8; 512];
            let mut answered = false;
            let mut sent = false;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => seen.push(&buf[..n], &mut got),
                    Err(_) => {
                        if sent {
                            break;
                        }
                    }
                }
                if !answered
                    && got
                        .subnegotiations
                        .iter()
                        .any(|s| s.data[0] == SET_BAUDRATE)
                {
                    s.write_all(&com_port_command(101, &115_200u32.to_be_bytes()))
                        .unwrap();
                    answered = true;
                }
                if answered && !sent {
                    s.write_all(&to_client).unwrap();
                    sent = true;
                }
            }
            got
        });
        (addr, h)
    }

    #[test]
    fn rfc2217_client_negotiates_and_escapes_both_ways() {
        let from_board = [b'a', 0xFF, b'b', 0xFF, 0xFF, b'\n'];
        let (url, server) = scripted_server(escape(&from_board));
        let addr = NetPortAddr::parse(&url).unwrap().unwrap();
        let mut s = NetSerialStream::open(&addr, 115_200).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < from_board.len() && Instant::now() < deadline {
            let mut buf = [0u8; 3];
            let n = s.read(&mut buf, Duration::from_millis(50)).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, from_board);
        assert_eq!(s.describe_settings(), "baud 115200");
        s.write_all(&[b'x', 0xFF, b'y']).unwrap();
        drop(s);
        let seen = server.join().unwrap();
        // 0xFF sent as IAC IAC arrives as one data byte; ECHO refused.
        assert_eq!(seen.data, [b'x', 0xFF, b'y']);
        assert!(seen.reply.is_empty() || seen.reply.len() % 3 == 0);
        let cmds: Vec<u8> = seen.subnegotiations.iter().map(|s| s.data[0]).collect();
        assert_eq!(
            cmds,
            [
                SET_BAUDRATE,
                SET_DATASIZE,
                SET_PARITY,
                SET_STOPSIZE,
                SET_CONTROL
            ]
        );
    }

    #[test]
    fn closed_connection_is_an_error_not_a_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = NetPortAddr::parse(&format!("tcp://{}", l.local_addr().unwrap()))
            .unwrap()
            .unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(&[0xFF, 1]).unwrap();
        });
        let mut s = NetSerialStream::open(&addr, 115_200).unwrap();
        h.join().unwrap();
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        let err = loop {
            match s.read(&mut buf, Duration::from_millis(100)) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        // Raw TCP: 0xFF is plain data.
        assert_eq!(got, [0xFF, 1]);
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_raw_port_given_as_rfc2217_is_reported() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = NetPortAddr::parse(&format!("rfc2217://{}", l.local_addr().unwrap()))
            .unwrap()
            .unwrap();
        let h = std::thread::spawn(move || {
            let (_s, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(2500));
        });
        let err = NetSerialStream::open(&addr, 115_200)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("tcp://"), "{err}");
        h.join().unwrap();
    }

    #[test]
    fn nothing_listening_says_so() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        let addr = NetPortAddr::parse(&format!("tcp://{a}")).unwrap().unwrap();
        let err = NetSerialStream::open(&addr, 115_200)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("ser2net"), "{err}");
    }
}
