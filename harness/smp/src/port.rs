//! A real serial port (or any tty, e.g. a PTY from Zephyr native_sim) as a [`ByteStream`], or a
//! serial port on another host named `rfc2217://host:port` / `tcp://host:port`
//! ([`crate::netport`]: ser2net, a labgrid `NetworkSerialPort`), so every `--port`, inventory
//! entry and reopening link accepts both.
//!
//! Ports are opened by path — `/dev/serial/by-id/usb-SEGGER_J-Link_…-if00` on a board farm,
//! because those names are stable and carry the probe serial — never by enumeration, so the
//! `serialport` crate is built without libudev.

use std::io::{ErrorKind, Read, Write};

use std::time::Duration;

use crate::errors::SmpError;
use crate::netport::{NetPortAddr, NetSerialStream};
use crate::transport::{ByteStream, SerialTransport};

/// Common default of Zephyr boards' console UART.
pub const DEFAULT_BAUD: u32 = 115_200;

enum Inner {
    Tty(Box<dyn serialport::SerialPort>),
    Net(Box<NetSerialStream>),
}

/// An open serial port.
pub struct SerialPortStream {
    port: Inner,
    path: String,
    /// The timeout currently configured on the port, to avoid a syscall per read.
    timeout: Duration,
}

impl SerialPortStream {
    /// Open `path` at `baud`, 8N1, no flow control. The baud rate is ignored by USB CDC ACM
    /// and PTYs but must still be settable.
    pub fn open(path: &str, baud: u32) -> Result<Self, SmpError> {
        let timeout = Duration::from_millis(100);
        if let Some(addr) = NetPortAddr::parse(path)? {
            return Ok(SerialPortStream {
                port: Inner::Net(Box::new(NetSerialStream::open(&addr, baud)?)),
                path: path.to_string(),
                timeout,
            });
        }
        let port = serialport::new(path, baud)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(timeout)
            .open()
            .map_err(|e| port_error(path, e))?;
        Ok(SerialPortStream {
            port: Inner::Tty(port),
            path: path.to_string(),
            timeout,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Drop whatever the OS has buffered in both directions (stale log lines from before the
    /// test, half-sent frames).
    pub fn clear(&mut self) -> Result<(), SmpError> {
        match &mut self.port {
            Inner::Tty(p) => p
                .clear(serialport::ClearBuffer::All)
                .map_err(|e| port_error(&self.path, e)),
            Inner::Net(n) => n.clear(),
        }
    }

    /// The network port under this stream, if it is one.
    pub fn network(&self) -> Option<&NetSerialStream> {
        match &self.port {
            Inner::Net(n) => Some(n),
            Inner::Tty(_) => None,
        }
    }
}

impl ByteStream for SerialPortStream {
    /// No `flush`: the bytes are in the kernel's tty buffer once written, and serialport's
    /// flush (tcdrain) fails on a PTY, where native_sim boards live.
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match &mut self.port {
            Inner::Tty(p) => p.write_all(b),
            Inner::Net(n) => n.write_all(b),
        }
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        let port = match &mut self.port {
            Inner::Tty(p) => p,
            Inner::Net(n) => return n.read(buf, timeout),
        };
        // serialport treats a zero timeout as "return at once", which is what we want too.
        if timeout != self.timeout {
            port.set_timeout(timeout).map_err(std::io::Error::from)?;
            self.timeout = timeout;
        }
        match port.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Ok(0),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// Open `path` at `baud` with SMP console framing on top.
pub fn open_serial(path: &str, baud: u32) -> Result<SerialTransport<SerialPortStream>, SmpError> {
    Ok(SerialTransport::new(SerialPortStream::open(path, baud)?))
}

fn port_error(path: &str, e: serialport::Error) -> SmpError {
    let hint = match e.kind() {
        serialport::ErrorKind::NoDevice => {
            " (no such device: unplugged, or a wrong /dev/serial/by-id name?)"
        }
        serialport::ErrorKind::Io(ErrorKind::PermissionDenied) => {
            " (permission denied: is the user in the `dialout` group?)"
        }
        serialport::ErrorKind::Io(ErrorKind::NotFound) => " (no such file)",
        serialport::ErrorKind::Io(ErrorKind::ResourceBusy) => {
            " (busy: another program, e.g. a terminal, holds the port)"
        }
        _ => "",
    };
    SmpError::Transport(format!("serial port {path}: {e}{hint}"))
}
