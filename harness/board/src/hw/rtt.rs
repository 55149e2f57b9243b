//! SEGGER RTT log capture: reading the firmware's terminal output out of target RAM through the
//! debug probe, as text lines for the device log.
//!
//! Why our own reader and not the probe library's: this is where the decisions are (is the
//! control block there yet, was it re-initialised by a reset, where does a line end), and
//! keeping them behind the small [`RttMemory`] trait lets them be tested with a fake memory on
//! a machine without a probe. The probe-rs adapter only moves the bytes.
//!
//! The control block (`_SEGGER_RTT` in the firmware's ELF), as laid out on 32-bit Cortex-M:
//!
//! ```text
//! +0   char acID[16]           "SEGGER RTT\0…"  (written last by the firmware's init)
//! +16  i32  MaxNumUpBuffers
//! +20  i32  MaxNumDownBuffers
//! +24  up-buffer descriptors, 24 bytes each:
//!        +0 sName  +4 pBuffer  +8 SizeOfBuffer  +12 WrOff  +16 RdOff  +20 Flags
//!      then the down-buffer descriptors, same shape.
//! ```
//!
//! Up-buffer 0 is the terminal (Zephyr's log backend and `printk` write there). The firmware
//! only ever moves `WrOff`; the host consumes from `RdOff` to `WrOff` (wrapping at
//! `SizeOfBuffer`) and writes `RdOff` back so the firmware sees the space as free again.
//!
//! After a reset the RAM still holds the previous run's control block until the firmware's init
//! clears it and writes it again with `RdOff = WrOff = 0`. Because only the host moves `RdOff`,
//! a descriptor whose `RdOff` is not the one we last wrote means the firmware re-initialised it:
//! the reader then starts over from the new block. (`WrOff < RdOff` alone cannot tell: that is
//! also an ordinary wrapped ring.)

use object::{Object, ObjectSymbol};

/// The control block's symbol in Zephyr and SEGGER builds.
pub const SYMBOL: &str = "_SEGGER_RTT";

/// The ID the firmware writes at the start of an initialised control block. Only the first 11
/// bytes are compared: the rest of the 16-byte field is padding.
const ID: &[u8] = b"SEGGER RTT\0";
/// ID (16) + MaxNumUpBuffers (4) + MaxNumDownBuffers (4).
const HEADER_LEN: u32 = 24;
/// One buffer descriptor on a 32-bit target.
const DESC_LEN: u32 = 24;
/// Offset of `RdOff` inside a descriptor.
const DESC_RD_OFF: u32 = 16;
/// More buffers than any real configuration has: beyond it the "block" is garbage RAM.
const MAX_BUFFERS: i32 = 64;
/// Larger than any terminal buffer fits in a microcontroller's RAM: beyond it, garbage.
const MAX_BUFFER_SIZE: u32 = 1 << 20;
/// A "line" this long without a newline is cut, so binary output cannot grow memory forever.
pub const MAX_LINE: usize = 4096;
/// How much of a buffer's name is read.
const MAX_NAME: usize = 32;

/// Target memory as the RTT reader needs it. Addresses are the target's (32-bit).
pub trait RttMemory {
    fn read(&mut self, addr: u32, len: usize) -> Result<Vec<u8>, String>;
    fn write_u32(&mut self, addr: u32, value: u32) -> Result<(), String>;
}

/// Why RTT could not be read this time. Neither is final: the next poll tries again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RttError {
    #[error("RTT: target memory at 0x{addr:08x} not accessible: {message}")]
    Memory { addr: u32, message: String },
    #[error("RTT control block at 0x{block:08x} is not usable: {problem}")]
    Invalid { block: u32, problem: String },
}

/// Where the reader stands with the control block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RttState {
    /// Not looked at since creation or the last [`RttReader::reattach`].
    Detached,
    /// No ID at the address: the firmware has not initialised RTT (yet), e.g. just after a
    /// reset or while MCUboot runs.
    NotInitialised,
    /// Reading up-buffer 0.
    Attached { name: Option<String>, size: u32 },
}

/// Up-buffer 0's descriptor as read from the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UpBuffer {
    name_ptr: u32,
    buffer: u32,
    size: u32,
    wr_off: u32,
    rd_off: u32,
}

/// What the control block address holds.
enum Block {
    /// No ID (yet).
    Missing,
    Ready(UpBuffer),
}

/// The ring we are consuming, as of our last read.
#[derive(Debug, Clone, Copy)]
struct Channel {
    buffer: u32,
    size: u32,
    /// Where we are: the `RdOff` we last wrote (or found at attach).
    rd_off: u32,
}

impl Channel {
    /// Is `up` still the ring we were reading? A new buffer, size or an `RdOff` we did not
    /// write means the firmware initialised the block again.
    fn continues(&self, up: &UpBuffer) -> bool {
        up.buffer == self.buffer && up.size == self.size && up.rd_off == self.rd_off
    }
}

/// Reads the terminal (up-buffer 0) of one control block into text lines.
#[derive(Debug)]
pub struct RttReader {
    block: u32,
    state: RttState,
    channel: Option<Channel>,
    /// Bytes after the last newline, kept until the line is complete.
    partial: Vec<u8>,
    /// Lines completed outside a poll (by a reset cutting a partial line short).
    ready: Vec<String>,
}

impl RttReader {
    /// A reader for the control block at `block` (the `_SEGGER_RTT` address); nothing is read
    /// until [`attach`](Self::attach) or [`poll`](Self::poll).
    pub fn new(block: u32) -> Self {
        RttReader {
            block,
            state: RttState::Detached,
            channel: None,
            partial: Vec::new(),
            ready: Vec::new(),
        }
    }

    pub fn control_block(&self) -> u32 {
        self.block
    }

    pub fn state(&self) -> &RttState {
        &self.state
    }

    /// Look at the control block: validate it and (re)attach to up-buffer 0 if it is there.
    /// An absent ID is not an error but [`RttState::NotInitialised`]: after a reset the
    /// firmware writes the block only once it runs.
    pub fn attach<M: RttMemory + ?Sized>(&mut self, mem: &mut M) -> Result<RttState, RttError> {
        self.refresh(mem)?;
        Ok(self.state.clone())
    }

    /// Forget the ring (the target was reset, flashed or powered off): the next poll attaches
    /// again. A partial line is kept as a line of its own, since output cut short by a reset
    /// is often the interesting part.
    pub fn reattach(&mut self) {
        self.end_session();
        self.state = RttState::Detached;
    }

    /// Attach if needed, consume what the firmware wrote, and append the complete lines to
    /// `lines`. Lines are appended even when an error is returned (lines completed earlier
    /// are not lost), and on an error nothing is consumed: the next poll reads it again.
    pub fn poll<M: RttMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        lines: &mut Vec<String>,
    ) -> Result<(), RttError> {
        let result = match self.refresh(mem) {
            Ok(Some(up)) => self.drain(mem, up),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        lines.append(&mut self.ready);
        result
    }

    /// Read and check the block; returns up-buffer 0 when attached.
    fn refresh<M: RttMemory + ?Sized>(
        &mut self,
        mem: &mut M,
    ) -> Result<Option<UpBuffer>, RttError> {
        let block = match read_block(mem, self.block) {
            Ok(b) => b,
            Err(e @ RttError::Invalid { .. }) => {
                // Garbage where a ring was: that session is over whatever comes next.
                self.reattach();
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let up = match block {
            Block::Missing => {
                self.end_session();
                self.state = RttState::NotInitialised;
                return Ok(None);
            }
            Block::Ready(up) => up,
        };
        if self.channel.is_some_and(|c| !c.continues(&up)) {
            self.end_session();
        }
        if self.channel.is_none() {
            self.channel = Some(Channel {
                buffer: up.buffer,
                size: up.size,
                rd_off: up.rd_off,
            });
            self.state = RttState::Attached {
                name: read_name(mem, up.name_ptr),
                size: up.size,
            };
        }
        Ok(Some(up))
    }

    /// Consume `rd_off..wr_off` of the ring and hand `RdOff` back to the firmware.
    fn drain<M: RttMemory + ?Sized>(&mut self, mem: &mut M, up: UpBuffer) -> Result<(), RttError> {
        let Some(mut ch) = self.channel else {
            return Ok(());
        };
        let bytes = read_ring(mem, &ch, up.wr_off)?;
        if bytes.is_empty() {
            return Ok(());
        }
        let rd_addr = self.block + HEADER_LEN + DESC_RD_OFF;
        mem.write_u32(rd_addr, up.wr_off)
            .map_err(|message| RttError::Memory {
                addr: rd_addr,
                message,
            })?;
        // Only now is it consumed: a failed write leaves RdOff (ours and the target's) as it
        // was, so the same bytes are read again rather than lost or doubled.
        ch.rd_off = up.wr_off;
        self.channel = Some(ch);
        self.push_bytes(&bytes);
        Ok(())
    }

    /// Split into lines; the tail without a newline waits for the rest.
    fn push_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.finish_line();
            } else {
                self.partial.push(b);
                if self.partial.len() >= MAX_LINE {
                    self.finish_line();
                }
            }
        }
    }

    /// Decode the line only when complete, so a UTF-8 character split across two polls is
    /// kept whole; `\r` of Zephyr's `\r\n` endings is dropped.
    fn finish_line(&mut self) {
        let mut line = std::mem::take(&mut self.partial);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        self.ready.push(String::from_utf8_lossy(&line).into_owned());
    }

    /// The ring we read is gone: keep its unfinished line, drop the ring.
    fn end_session(&mut self) {
        if !self.partial.is_empty() {
            self.finish_line();
        }
        self.channel = None;
    }
}

/// Bytes waiting in the ring: from our `RdOff` to the firmware's `WrOff`, wrapping at the end.
fn read_ring<M: RttMemory + ?Sized>(
    mem: &mut M,
    ch: &Channel,
    wr_off: u32,
) -> Result<Vec<u8>, RttError> {
    let rd = ch.rd_off;
    let mut segments = Vec::with_capacity(2);
    if wr_off >= rd {
        segments.push((rd, wr_off - rd));
    } else {
        segments.push((rd, ch.size - rd));
        segments.push((0, wr_off));
    }
    let mut out = Vec::new();
    for (off, len) in segments.into_iter().filter(|&(_, len)| len > 0) {
        let addr = ch.buffer + off;
        let bytes = mem
            .read(addr, len as usize)
            .map_err(|message| RttError::Memory { addr, message })?;
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// Read the header and up-buffer 0's descriptor in one go.
fn read_block<M: RttMemory + ?Sized>(mem: &mut M, block: u32) -> Result<Block, RttError> {
    let raw = mem
        .read(block, (HEADER_LEN + DESC_LEN) as usize)
        .map_err(|message| RttError::Memory {
            addr: block,
            message,
        })?;
    parse_block(block, &raw)
}

fn u32_at(raw: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(raw[off..off + 4].try_into().expect("4 bytes"))
}

/// Check the ID, the counts and up-buffer 0. A block that has the ID but nonsense numbers is
/// an error (wrong address, or RAM caught mid-initialisation), never something to read from.
fn parse_block(block: u32, raw: &[u8]) -> Result<Block, RttError> {
    let invalid = |problem: String| RttError::Invalid { block, problem };
    if raw.len() < (HEADER_LEN + DESC_LEN) as usize {
        return Err(invalid(format!("short read ({} bytes)", raw.len())));
    }
    if &raw[..ID.len()] != ID {
        return Ok(Block::Missing);
    }
    let up_count = u32_at(raw, 16) as i32;
    let down_count = u32_at(raw, 20) as i32;
    if !(1..=MAX_BUFFERS).contains(&up_count) {
        return Err(invalid(format!(
            "MaxNumUpBuffers = {up_count}, expected 1..={MAX_BUFFERS}"
        )));
    }
    if !(0..=MAX_BUFFERS).contains(&down_count) {
        return Err(invalid(format!(
            "MaxNumDownBuffers = {down_count}, expected 0..={MAX_BUFFERS}"
        )));
    }
    let d = HEADER_LEN as usize;
    let up = UpBuffer {
        name_ptr: u32_at(raw, d),
        buffer: u32_at(raw, d + 4),
        size: u32_at(raw, d + 8),
        wr_off: u32_at(raw, d + 12),
        rd_off: u32_at(raw, d + 16),
    };
    check_up_buffer(&up).map_err(invalid)?;
    Ok(Block::Ready(up))
}

fn check_up_buffer(up: &UpBuffer) -> Result<(), String> {
    if up.buffer == 0 {
        return Err("up-buffer 0 has no buffer (pBuffer = 0)".into());
    }
    if up.size == 0 || up.size > MAX_BUFFER_SIZE {
        return Err(format!(
            "up-buffer 0 SizeOfBuffer = {}, expected 1..={MAX_BUFFER_SIZE}",
            up.size
        ));
    }
    if up.buffer.checked_add(up.size).is_none() {
        return Err(format!(
            "up-buffer 0 at 0x{:08x} + {} runs past the address space",
            up.buffer, up.size
        ));
    }
    if up.wr_off >= up.size || up.rd_off >= up.size {
        return Err(format!(
            "up-buffer 0 WrOff = {} / RdOff = {} outside its {} bytes",
            up.wr_off, up.rd_off, up.size
        ));
    }
    Ok(())
}

/// The buffer's name (`"Terminal"`), for the evidence log; a name that cannot be read is just
/// left out.
fn read_name<M: RttMemory + ?Sized>(mem: &mut M, ptr: u32) -> Option<String> {
    if ptr == 0 {
        return None;
    }
    let raw = mem.read(ptr, MAX_NAME).ok()?;
    let end = raw.iter().position(|&b| b == 0)?;
    (end > 0).then(|| String::from_utf8_lossy(&raw[..end]).into_owned())
}

/// Address of the RTT control block in an ELF (`_SEGGER_RTT`), if the firmware has RTT.
pub fn find_rtt_symbol(elf: &[u8]) -> Option<u32> {
    let file = object::File::parse(elf).ok()?;
    let sym = file
        .symbols()
        .find(|s| s.is_definition() && s.name() == Ok(SYMBOL))?;
    u32::try_from(sym.address()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: u32 = 0x2000_0000;
    const NAME: u32 = 0x2000_0080;
    const BUF: u32 = 0x2000_0100;
    const RD_OFF: u32 = BLOCK + HEADER_LEN + DESC_RD_OFF;
    const WR_OFF: u32 = BLOCK + HEADER_LEN + 12;

    /// Target RAM from `BLOCK`, recording the host's writes.
    struct FakeMem {
        ram: Vec<u8>,
        writes: Vec<(u32, u32)>,
        fail_reads: bool,
        fail_writes: bool,
    }

    impl FakeMem {
        fn new() -> Self {
            FakeMem {
                ram: vec![0; 0x400],
                writes: Vec::new(),
                fail_reads: false,
                fail_writes: false,
            }
        }

        fn index(&self, addr: u32, len: usize) -> Result<usize, String> {
            let i = addr.checked_sub(BLOCK).ok_or("below RAM")? as usize;
            if i + len > self.ram.len() {
                return Err(format!("0x{addr:08x}+{len} beyond RAM"));
            }
            Ok(i)
        }

        fn put(&mut self, addr: u32, bytes: &[u8]) {
            let i = self.index(addr, bytes.len()).unwrap();
            self.ram[i..i + bytes.len()].copy_from_slice(bytes);
        }

        fn put_u32(&mut self, addr: u32, v: u32) {
            self.put(addr, &v.to_le_bytes());
        }

        fn get_u32(&self, addr: u32) -> u32 {
            let i = self.index(addr, 4).unwrap();
            u32::from_le_bytes(self.ram[i..i + 4].try_into().unwrap())
        }

        /// What the firmware's init does: clear, descriptors, ID last.
        fn init(&mut self, up: i32, down: i32, size: u32) {
            self.ram.fill(0);
            self.put(NAME, b"Terminal\0");
            self.put_u32(BLOCK + 16, up as u32);
            self.put_u32(BLOCK + 20, down as u32);
            let d = BLOCK + HEADER_LEN;
            self.put_u32(d, NAME);
            self.put_u32(d + 4, BUF);
            self.put_u32(d + 8, size);
            self.put(BLOCK, b"SEGGER RTT\0\0\0\0\0\0");
        }

        /// What `SEGGER_RTT_Write` does in skip mode: copy at WrOff, wrapping, then move WrOff.
        fn fw_write(&mut self, text: &[u8]) {
            let size = self.get_u32(BLOCK + HEADER_LEN + 8);
            let mut wr = self.get_u32(WR_OFF);
            let rd = self.get_u32(RD_OFF);
            let used = if wr >= rd { wr - rd } else { size - rd + wr };
            assert!(
                text.len() as u32 <= size - 1 - used,
                "test writes more than fits"
            );
            for &b in text {
                self.put(BUF + wr, &[b]);
                wr = (wr + 1) % size;
            }
            self.put_u32(WR_OFF, wr);
        }
    }

    impl RttMemory for FakeMem {
        fn read(&mut self, addr: u32, len: usize) -> Result<Vec<u8>, String> {
            if self.fail_reads {
                return Err("probe gone".into());
            }
            let i = self.index(addr, len)?;
            Ok(self.ram[i..i + len].to_vec())
        }
        fn write_u32(&mut self, addr: u32, value: u32) -> Result<(), String> {
            if self.fail_writes {
                return Err("write refused".into());
            }
            self.index(addr, 4)?;
            self.put_u32(addr, value);
            self.writes.push((addr, value));
            Ok(())
        }
    }

    fn poll(r: &mut RttReader, mem: &mut FakeMem) -> Vec<String> {
        let mut lines = Vec::new();
        r.poll(mem, &mut lines).expect("poll");
        lines
    }

    fn attached(mem: &mut FakeMem, size: u32) -> RttReader {
        mem.init(3, 3, size);
        let mut r = RttReader::new(BLOCK);
        assert!(matches!(r.attach(mem), Ok(RttState::Attached { .. })));
        r
    }

    #[test]
    fn attach_reports_the_terminal_buffer() {
        let mut mem = FakeMem::new();
        mem.init(3, 3, 64);
        let mut r = RttReader::new(BLOCK);
        assert_eq!(r.state(), &RttState::Detached);
        assert_eq!(
            r.attach(&mut mem).unwrap(),
            RttState::Attached {
                name: Some("Terminal".into()),
                size: 64
            }
        );
        assert_eq!(r.control_block(), BLOCK);
    }

    #[test]
    fn complete_lines_out_partial_line_kept() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 64);
        mem.fw_write(b"*** Booting Zephyr\r\nhel");
        assert_eq!(poll(&mut r, &mut mem), vec!["*** Booting Zephyr"]);
        mem.fw_write(b"lo\r");
        assert!(poll(&mut r, &mut mem).is_empty());
        mem.fw_write(b"\n\nx\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["hello", "", "x"]);
    }

    #[test]
    fn rd_off_written_back_after_consuming() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 64);
        assert!(poll(&mut r, &mut mem).is_empty());
        assert!(mem.writes.is_empty(), "nothing consumed, nothing written");
        mem.fw_write(b"abc\n");
        poll(&mut r, &mut mem);
        assert_eq!(mem.writes, vec![(RD_OFF, 4)]);
        assert_eq!(mem.get_u32(RD_OFF), mem.get_u32(WR_OFF));
    }

    #[test]
    fn wrapped_ring_read_in_order() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 16);
        mem.fw_write(b"0123456789\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["0123456789"]);
        // 11 bytes consumed; the next 9 run over the end of the 16-byte ring.
        mem.fw_write(b"abcdefgh\n");
        assert!(mem.get_u32(WR_OFF) < mem.get_u32(RD_OFF), "ring wrapped");
        assert_eq!(poll(&mut r, &mut mem), vec!["abcdefgh"]);
        assert_eq!(mem.get_u32(RD_OFF), 4);
        // And again, once the write position is behind: still read in order.
        mem.fw_write(b"wrap again\n");
        mem.fw_write(b"z\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["wrap again", "z"]);
    }

    #[test]
    fn ring_filled_to_the_end_exactly() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 16);
        mem.fw_write(b"0123456789abcd\n"); // 15 bytes: WrOff = 15, the last slot
        assert_eq!(poll(&mut r, &mut mem), vec!["0123456789abcd"]);
        mem.fw_write(b"q\n"); // 'q' at 15, '\n' at 0
        assert_eq!(poll(&mut r, &mut mem), vec!["q"]);
        assert_eq!(mem.get_u32(RD_OFF), 1);
    }

    #[test]
    fn id_missing_then_appearing() {
        let mut mem = FakeMem::new();
        let mut r = RttReader::new(BLOCK);
        assert_eq!(r.attach(&mut mem).unwrap(), RttState::NotInitialised);
        assert!(poll(&mut r, &mut mem).is_empty());
        assert_eq!(r.state(), &RttState::NotInitialised);
        assert!(
            mem.writes.is_empty(),
            "nothing written to a block that is not there"
        );

        mem.init(2, 2, 32);
        mem.fw_write(b"up\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["up"]);
        assert!(matches!(r.state(), RttState::Attached { size: 32, .. }));
    }

    #[test]
    fn reinitialised_after_reset_starts_over() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 32);
        mem.fw_write(b"old run\nhalf a li");
        assert_eq!(poll(&mut r, &mut mem), vec!["old run"]);
        // Reset: the new run's init clears the block (RdOff = WrOff = 0) and writes anew.
        mem.init(3, 3, 32);
        mem.fw_write(b"new run\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["half a li", "new run"]);
        assert_eq!(mem.get_u32(RD_OFF), 8);
    }

    #[test]
    fn reinitialised_with_a_different_buffer() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 32);
        mem.fw_write(b"a\n");
        poll(&mut r, &mut mem);
        // Another firmware (bigger buffer) whose block lands at the same address, already
        // having caught up with RdOff = WrOff = 2 before we look.
        mem.init(3, 3, 64);
        mem.fw_write(b"b\n");
        mem.put_u32(RD_OFF, 2);
        mem.fw_write(b"c\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["c"]);
        assert!(matches!(r.state(), RttState::Attached { size: 64, .. }));
    }

    #[test]
    fn id_gone_after_reset_then_back() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 32);
        mem.fw_write(b"before\ncut sh");
        assert_eq!(poll(&mut r, &mut mem), vec!["before"]);
        mem.ram.fill(0); // power cycle: RAM lost, firmware not running yet
        assert_eq!(poll(&mut r, &mut mem), vec!["cut sh"]);
        assert_eq!(r.state(), &RttState::NotInitialised);
        mem.init(3, 3, 32);
        mem.fw_write(b"after\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["after"]);
    }

    #[test]
    fn changed_id_counts_as_not_initialised() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 32);
        mem.put(BLOCK, b"SEGGER XXX");
        assert!(poll(&mut r, &mut mem).is_empty());
        assert_eq!(r.state(), &RttState::NotInitialised);
    }

    #[test]
    fn reattach_after_reset_of_a_stale_block_reads_no_duplicates() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 32);
        mem.fw_write(b"one\npart");
        assert_eq!(poll(&mut r, &mut mem), vec!["one"]);
        // Reset: RAM keeps the old block until the firmware re-inits it.
        r.reattach();
        assert_eq!(r.state(), &RttState::Detached);
        assert_eq!(poll(&mut r, &mut mem), vec!["part"], "partial line kept");
        assert!(matches!(r.state(), RttState::Attached { .. }));
        assert!(
            poll(&mut r, &mut mem).is_empty(),
            "old bytes not read twice"
        );
        // Then the firmware's init runs.
        mem.init(3, 3, 32);
        mem.fw_write(b"two\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["two"]);
    }

    fn invalid(mem: &mut FakeMem) -> String {
        let mut r = RttReader::new(BLOCK);
        match r.attach(mem) {
            Err(RttError::Invalid { block, problem }) => {
                assert_eq!(block, BLOCK);
                assert_eq!(r.state(), &RttState::Detached);
                problem
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn bad_counts_rejected() {
        let mut mem = FakeMem::new();
        for (up, down, what) in [
            (0, 3, "MaxNumUpBuffers = 0"),
            (-1, 3, "MaxNumUpBuffers = -1"),
            (1000, 3, "MaxNumUpBuffers = 1000"),
            (3, -2, "MaxNumDownBuffers = -2"),
            (3, 65, "MaxNumDownBuffers = 65"),
        ] {
            mem.init(up, down, 32);
            let p = invalid(&mut mem);
            assert!(p.contains(what), "{p}");
        }
    }

    #[test]
    fn bad_buffer_descriptor_rejected() {
        let mut mem = FakeMem::new();
        let d = BLOCK + HEADER_LEN;
        mem.init(3, 3, 0);
        assert!(invalid(&mut mem).contains("SizeOfBuffer = 0"));
        mem.init(3, 3, MAX_BUFFER_SIZE + 1);
        assert!(invalid(&mut mem).contains("SizeOfBuffer"));
        mem.init(3, 3, 32);
        mem.put_u32(d + 4, 0);
        assert!(invalid(&mut mem).contains("pBuffer = 0"));
        mem.init(3, 3, 32);
        mem.put_u32(WR_OFF, 32);
        assert!(invalid(&mut mem).contains("WrOff = 32"));
        mem.init(3, 3, 32);
        mem.put_u32(RD_OFF, 40);
        assert!(invalid(&mut mem).contains("RdOff = 40"));
        mem.init(3, 3, 32);
        mem.put_u32(d + 4, 0xffff_fff0);
        assert!(invalid(&mut mem).contains("address space"));
    }

    #[test]
    fn invalid_block_retried_on_next_poll() {
        let mut mem = FakeMem::new();
        mem.init(0, 0, 32);
        let mut r = RttReader::new(BLOCK);
        let mut lines = Vec::new();
        assert!(r.poll(&mut mem, &mut lines).is_err());
        mem.init(3, 3, 32);
        mem.fw_write(b"ok\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["ok"]);
    }

    #[test]
    fn block_turning_to_garbage_ends_the_session() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 32);
        mem.fw_write(b"tail");
        poll(&mut r, &mut mem);
        mem.put_u32(BLOCK + 16, 0);
        let mut lines = Vec::new();
        assert!(matches!(
            r.poll(&mut mem, &mut lines),
            Err(RttError::Invalid { .. })
        ));
        assert_eq!(lines, vec!["tail"], "lines come out even with the error");
        assert_eq!(r.state(), &RttState::Detached);
    }

    #[test]
    fn failed_write_back_consumes_nothing() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 32);
        mem.fw_write(b"keep me\n");
        mem.fail_writes = true;
        let mut lines = Vec::new();
        let e = r.poll(&mut mem, &mut lines).unwrap_err();
        assert_eq!(
            e,
            RttError::Memory {
                addr: RD_OFF,
                message: "write refused".into()
            }
        );
        assert!(lines.is_empty());
        mem.fail_writes = false;
        assert_eq!(poll(&mut r, &mut mem), vec!["keep me"], "read again, once");
        assert!(poll(&mut r, &mut mem).is_empty());
    }

    #[test]
    fn failed_read_is_a_memory_error_and_keeps_the_session() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 32);
        mem.fw_write(b"x\n");
        mem.fail_reads = true;
        let mut lines = Vec::new();
        assert!(matches!(
            r.poll(&mut mem, &mut lines),
            Err(RttError::Memory { addr: BLOCK, .. })
        ));
        assert!(matches!(r.state(), RttState::Attached { .. }));
        mem.fail_reads = false;
        assert_eq!(poll(&mut r, &mut mem), vec!["x"]);
    }

    #[test]
    fn lossy_utf8_and_characters_split_across_polls() {
        let mut mem = FakeMem::new();
        let mut r = attached(&mut mem, 32);
        mem.fw_write(b"\xffok\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["\u{fffd}ok"]);
        mem.fw_write(b"caf\xc3");
        assert!(poll(&mut r, &mut mem).is_empty());
        mem.fw_write(b"\xa9\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["café"]);
    }

    #[test]
    fn endless_line_is_cut() {
        let mut mem = FakeMem::new();
        mem.ram.resize(0x2000, 0);
        mem.init(3, 3, 0x1800);
        let mut r = RttReader::new(BLOCK);
        let long = vec![b'a'; MAX_LINE + 10];
        mem.fw_write(&long);
        let lines = poll(&mut r, &mut mem);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE);
        mem.fw_write(b"\n");
        assert_eq!(poll(&mut r, &mut mem), vec!["a".repeat(10)]);
    }

    #[test]
    fn unnamed_buffer_has_no_name() {
        let mut mem = FakeMem::new();
        mem.init(3, 3, 32);
        mem.put_u32(BLOCK + HEADER_LEN, 0);
        let mut r = RttReader::new(BLOCK);
        assert_eq!(
            r.attach(&mut mem).unwrap(),
            RttState::Attached {
                name: None,
                size: 32
            }
        );
    }

    /// A minimal ELF32 LE ARM file with only a symbol table: `syms` are (name, value,
    /// section index; 0 = undefined).
    fn elf_with_symbols(syms: &[(&str, u32, u16)]) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 16];
        for &(name, value, shndx) in syms {
            let name_off = strtab.len() as u32;
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
            symtab.extend_from_slice(&name_off.to_le_bytes());
            symtab.extend_from_slice(&value.to_le_bytes());
            symtab.extend_from_slice(&4u32.to_le_bytes());
            symtab.push((1 << 4) | 1); // STB_GLOBAL, STT_OBJECT
            symtab.push(0);
            symtab.extend_from_slice(&shndx.to_le_bytes());
        }
        let shstrtab = b"\0.bss\0.symtab\0.strtab\0.shstrtab\0";
        let symtab_off = 52u32;
        let strtab_off = symtab_off + symtab.len() as u32;
        let shstrtab_off = strtab_off + strtab.len() as u32;
        let shoff = (shstrtab_off + shstrtab.len() as u32).div_ceil(4) * 4;

        let mut out = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for half in [2u16, 40] {
            out.extend_from_slice(&half.to_le_bytes()); // ET_EXEC, EM_ARM
        }
        for word in [1u32, 0, 0, shoff, 0x0500_0000] {
            out.extend_from_slice(&word.to_le_bytes()); // version, entry, phoff, shoff, flags
        }
        for half in [52u16, 32, 0, 40, 5, 4] {
            out.extend_from_slice(&half.to_le_bytes()); // ehsize .. shnum, shstrndx
        }
        out.extend_from_slice(&symtab);
        out.extend_from_slice(&strtab);
        out.extend_from_slice(shstrtab);
        out.resize(shoff as usize, 0);
        // (name, type, flags, addr, offset, size, link, info, align, entsize)
        let sections: [[u32; 10]; 5] = [
            [0; 10],
            [1, 8, 3, 0x2000_0000, 0, 0x1000, 0, 0, 4, 0], // .bss: NOBITS, WRITE|ALLOC
            [6, 2, 0, 0, symtab_off, symtab.len() as u32, 3, 1, 4, 16],
            [14, 3, 0, 0, strtab_off, strtab.len() as u32, 0, 0, 1, 0],
            [22, 3, 0, 0, shstrtab_off, shstrtab.len() as u32, 0, 0, 1, 0],
        ];
        for s in sections {
            for w in s {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn rtt_symbol_found_in_elf() {
        let elf = elf_with_symbols(&[("z_main_thread", 0x2000_0040, 1), (SYMBOL, 0x2000_0410, 1)]);
        assert_eq!(find_rtt_symbol(&elf), Some(0x2000_0410));
    }

    #[test]
    fn rtt_symbol_absent_or_undefined() {
        assert_eq!(
            find_rtt_symbol(&elf_with_symbols(&[("main_stack", 0x2000_0000, 1)])),
            None
        );
        assert_eq!(find_rtt_symbol(&elf_with_symbols(&[(SYMBOL, 0, 0)])), None);
        assert_eq!(find_rtt_symbol(b"not an elf"), None);
    }
}
