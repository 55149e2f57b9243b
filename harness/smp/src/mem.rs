//! In-memory links for tests and for the simulated board.
//!
//! [`pipe`] is a byte pipe (think: a null-modem cable) so the full serial framing is exercised;
//! [`packet_pipe`] carries whole SMP packets for when framing is not the subject.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::errors::SmpError;
use crate::transport::{ByteStream, Transport};

#[derive(Debug, Default)]
struct ChanState {
    buf: VecDeque<u8>,
    closed: bool,
}

/// One direction of the pipe.
#[derive(Debug, Default)]
struct Chan {
    state: Mutex<ChanState>,
    cv: Condvar,
}

impl Chan {
    fn lock(&self) -> std::sync::MutexGuard<'_, ChanState> {
        // A panic in another test thread must not cascade into poisoned-lock panics here.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.cv.notify_all();
    }
}

#[derive(Debug)]
struct EndInner {
    rx: Arc<Chan>,
    tx: Arc<Chan>,
}

impl Drop for EndInner {
    /// Dropping an end hangs up both directions, so a server thread blocked in `read` on the
    /// other end wakes with an error and can exit.
    fn drop(&mut self) {
        self.rx.close();
        self.tx.close();
    }
}

/// One end of an in-memory byte pipe. Clones share the end (e.g. one thread reads while another
/// injects log output); the end hangs up when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct PipeEnd {
    inner: Arc<EndInner>,
}

/// A connected pair: bytes written on one end are readable on the other.
pub fn pipe() -> (PipeEnd, PipeEnd) {
    let a_to_b = Arc::new(Chan::default());
    let b_to_a = Arc::new(Chan::default());
    (
        PipeEnd {
            inner: Arc::new(EndInner {
                rx: b_to_a.clone(),
                tx: a_to_b.clone(),
            }),
        },
        PipeEnd {
            inner: Arc::new(EndInner {
                rx: a_to_b,
                tx: b_to_a,
            }),
        },
    )
}

impl PipeEnd {
    /// Bytes waiting to be read on this end.
    pub fn available(&self) -> usize {
        self.inner.rx.lock().buf.len()
    }

    /// True once the other end has been dropped.
    pub fn is_closed(&self) -> bool {
        self.inner.rx.lock().closed
    }
}

impl ByteStream for PipeEnd {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        let mut st = self.inner.tx.lock();
        if st.closed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "pipe peer hung up",
            ));
        }
        st.buf.extend(b.iter().copied());
        drop(st);
        self.inner.tx.cv.notify_all();
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        let deadline = Instant::now() + timeout;
        let chan = &self.inner.rx;
        let mut st = chan.lock();
        loop {
            if !st.buf.is_empty() {
                let n = buf.len().min(st.buf.len());
                for (dst, src) in buf.iter_mut().zip(st.buf.drain(..n)) {
                    *dst = src;
                }
                return Ok(n);
            }
            if st.closed {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "pipe peer hung up",
                ));
            }
            let now = Instant::now();
            if now >= deadline || buf.is_empty() {
                return Ok(0);
            }
            st = chan
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// One end of an in-memory packet link (no framing, one message = one packet, like UDP).
#[derive(Debug)]
pub struct PacketEnd {
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    max_packet: usize,
}

/// A connected pair of packet ends, each advertising `max_packet`.
pub fn packet_pipe(max_packet: usize) -> (PacketEnd, PacketEnd) {
    let (atx, brx) = mpsc::channel();
    let (btx, arx) = mpsc::channel();
    (
        PacketEnd {
            tx: atx,
            rx: arx,
            max_packet,
        },
        PacketEnd {
            tx: btx,
            rx: brx,
            max_packet,
        },
    )
}

impl Transport for PacketEnd {
    fn send(&mut self, packet: &[u8]) -> Result<(), SmpError> {
        self.tx
            .send(packet.to_vec())
            .map_err(|_| SmpError::Transport("packet pipe peer hung up".into()))
    }

    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, SmpError> {
        match self.rx.recv_timeout(timeout) {
            Ok(p) => Ok(p),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(SmpError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(SmpError::Transport("packet pipe peer hung up".into()))
            }
        }
    }

    fn max_packet(&self) -> usize {
        self.max_packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_and_timeout() {
        let (mut a, mut b) = pipe();
        a.write_all(b"hello").unwrap();
        let mut buf = [0u8; 3];
        assert_eq!(b.read(&mut buf, Duration::from_millis(10)).unwrap(), 3);
        assert_eq!(&buf, b"hel");
        assert_eq!(b.available(), 2);
        let mut buf = [0u8; 16];
        assert_eq!(b.read(&mut buf, Duration::from_millis(10)).unwrap(), 2);
        assert_eq!(b.read(&mut buf, Duration::from_millis(10)).unwrap(), 0);
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let n = a.read(&mut buf, Duration::from_secs(10)).unwrap();
            buf[..n].to_vec()
        });
        b.write_all(b"x").unwrap();
        assert_eq!(t.join().unwrap(), b"x");
        // `a` was dropped with the thread: b sees the hang-up.
        assert!(b.read(&mut buf, Duration::from_millis(10)).is_err());
        assert!(b.write_all(b"y").is_err());
    }

    #[test]
    fn packets_cross() {
        let (mut a, mut b) = packet_pipe(100);
        a.send(&[1, 2]).unwrap();
        assert_eq!(b.recv(Duration::from_millis(10)).unwrap(), vec![1, 2]);
        assert!(matches!(
            b.recv(Duration::from_millis(1)),
            Err(SmpError::Timeout)
        ));
        assert_eq!(a.max_packet(), 100);
    }
}
