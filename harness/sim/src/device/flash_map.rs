//! The board's flash as partitions: every device of a layout, addressed by partition name, with
//! one operation counter across all devices so a power cut can land on any erase or write.
//!
//! Optionally each device has a chip's erase/write timing ([`FlashMap::set_timing`],
//! [`crate::device::flash_timing`]); then every erase and write adds what the real flash would take to
//! a busy clock ([`FlashMap::busy_time`]), so a caller can make the board answer as late as a
//! device whose CPU stalls while its NVMC works.

use crate::device::flash::{FlashError, NorFlash, OpKind};
use crate::device::flash_journal::FlashJournal;
use crate::device::flash_timing::FlashTiming;
use dfu_hil_mcuboot::layout::{DeviceKind, Layout, Partition};
use std::time::Duration;

/// Counted flash operation, kept so evidence can say what the bootloader was doing at a cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashOp {
    pub n: u64,
    pub kind: OpKind,
    pub partition: String,
    pub offset: u32,
    pub len: u32,
}

#[derive(Debug, Clone)]
pub struct FlashMap {
    pub layout: Layout,
    devices: Vec<NorFlash>,
    ops: u64,
    cut_before: Option<u64>,
    last_op: Option<FlashOp>,
    /// RAM-emulated devices are reachable only while the bootloader runs (see
    /// [`MapError::RamEmulated`]).
    ram_access: bool,
    /// Per device (same order as `devices`): the chip timing its erases and writes cost.
    timing: Vec<Option<FlashTiming>>,
    /// Modelled time the flash has been busy (erases and writes on timed devices).
    busy: Duration,
    /// Every operation recorded while a sweep runs its block uncut ([`FlashJournal`]).
    journal: Option<FlashJournal>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("no partition `{0}` in this layout")]
    NoPartition(String),
    #[error(
        "partition `{0}` is RAM-emulated flash (NCS `ram_flash`, the nRF5340 network core's \
         primary slot): only MCUboot writes it, PCD hands its content to the network core \
         over shared memory, and it is lost at reset; it cannot be read through the probe. \
         Check what the network core runs instead: `expect-boot-chain: {{ netcore-version: … }}` \
         in a scenario, or read the network core's flash through its own access port"
    )]
    RamEmulated(String),
    /// Programming the network core through the probe with something that is not an image.
    #[error("partition `{partition}` (network core): not an MCUboot image: {message}")]
    NotAnImage { partition: String, message: String },
    #[error("partition `{partition}`: {source}")]
    Flash {
        partition: String,
        source: FlashError,
    },
}

impl MapError {
    pub fn is_power_cut(&self) -> bool {
        matches!(
            self,
            MapError::Flash {
                source: FlashError::PowerCut { .. },
                ..
            }
        )
    }
}

impl FlashMap {
    pub fn new(layout: Layout) -> Self {
        let devices = layout
            .flash
            .iter()
            .map(|d| NorFlash::new(&d.name, d.size, d.sector_size, d.write_size, d.erased))
            .collect::<Vec<_>>();
        let timing = vec![None; devices.len()];
        FlashMap {
            devices,
            ops: 0,
            cut_before: None,
            last_op: None,
            ram_access: false,
            timing,
            busy: Duration::ZERO,
            journal: None,
            layout,
        }
    }

    pub fn devices(&self) -> &[NorFlash] {
        &self.devices
    }

    pub fn device_mut(&mut self, name: &str) -> Option<&mut NorFlash> {
        self.devices.iter_mut().find(|d| d.name == name)
    }

    /// Give device `device` a chip's erase/write timing (`None`: its operations take no
    /// modelled time, the default). Returns false when the layout has no such device.
    pub fn set_timing(&mut self, device: &str, timing: Option<FlashTiming>) -> bool {
        match self.devices.iter().position(|d| d.name == device) {
            Some(i) => {
                self.timing[i] = timing;
                true
            }
            None => false,
        }
    }

    /// Give every internal-flash device of the layout (the chip's own flash, behind its NVMC)
    /// this timing; external and RAM-emulated devices keep none. Returns how many devices got
    /// it.
    pub fn set_internal_timing(&mut self, timing: FlashTiming) -> usize {
        let mut n = 0;
        for (i, d) in self.layout.flash.iter().enumerate() {
            if d.kind == DeviceKind::Internal {
                self.timing[i] = Some(timing);
                n += 1;
            }
        }
        n
    }

    /// The timing of device `device`, if it has one.
    pub fn timing(&self, device: &str) -> Option<FlashTiming> {
        let i = self.devices.iter().position(|d| d.name == device)?;
        self.timing[i]
    }

    /// Modelled time the flash has spent erasing and writing on timed devices since the board
    /// was created (or since [`take_busy_time`](Self::take_busy_time)): each erase costs
    /// t_ERASEPAGE per page it covers, each write t_WRITE per word. Operations cut by a power
    /// cut, and failed ones, cost nothing.
    pub fn busy_time(&self) -> Duration {
        self.busy
    }

    /// [`busy_time`](Self::busy_time), then start counting again from zero.
    pub fn take_busy_time(&mut self) -> Duration {
        std::mem::take(&mut self.busy)
    }

    /// Number of erase/write operations since the board was created.
    pub fn op_count(&self) -> u64 {
        self.ops
    }

    pub fn last_op(&self) -> Option<&FlashOp> {
        self.last_op.as_ref()
    }

    /// Arm a power cut before the `n`-th operation from now (1 = the very next one).
    pub fn arm_power_cut(&mut self, n: u64) {
        self.cut_before = Some(self.ops.saturating_add(n));
    }

    pub fn disarm_power_cut(&mut self) {
        self.cut_before = None;
    }

    pub fn partition(&self, name: &str) -> Result<&Partition, MapError> {
        self.layout
            .partition(name)
            .ok_or_else(|| MapError::NoPartition(name.to_owned()))
    }

    /// Let the bootloader reach RAM-emulated devices (on while MCUboot runs).
    pub(crate) fn set_ram_access(&mut self, on: bool) {
        self.ram_access = on;
    }

    /// Is this partition on a RAM-emulated device?
    pub fn is_ram_emulated(&self, name: &str) -> bool {
        self.layout
            .partition(name)
            .is_some_and(|p| self.layout.device_of(p).kind == DeviceKind::RamEmulated)
    }

    /// Power loss: RAM-emulated devices forget everything.
    pub fn clear_ram_emulated(&mut self) {
        for (i, d) in self.layout.flash.iter().enumerate() {
            if d.kind == DeviceKind::RamEmulated {
                let dev = &mut self.devices[i];
                let blank = vec![dev.erased; dev.size() as usize];
                dev.load(&blank).expect("same size");
            }
        }
    }

    fn locate(&self, name: &str) -> Result<(usize, u32, u32), MapError> {
        let p = self.partition(name)?;
        if !self.ram_access && self.layout.device_of(p).kind == DeviceKind::RamEmulated {
            return Err(MapError::RamEmulated(name.to_owned()));
        }
        let dev = self
            .devices
            .iter()
            .position(|d| d.name == p.device)
            .expect("layout checked: partition device exists");
        Ok((dev, p.offset, p.size))
    }

    fn check_inside(name: &str, size: u32, off: u32, len: u32) -> Result<(), MapError> {
        if off.checked_add(len).is_none_or(|e| e > size) {
            return Err(MapError::Flash {
                partition: name.to_owned(),
                source: FlashError::OutOfRange {
                    device: name.to_owned(),
                    offset: off,
                    len,
                    size,
                },
            });
        }
        Ok(())
    }

    pub fn size(&self, name: &str) -> Result<u32, MapError> {
        Ok(self.partition(name)?.size)
    }

    pub fn sector_size(&self, name: &str) -> Result<u32, MapError> {
        let (d, _, _) = self.locate(name)?;
        Ok(self.devices[d].sector_size)
    }

    pub fn write_size(&self, name: &str) -> Result<u32, MapError> {
        let (d, _, _) = self.locate(name)?;
        Ok(self.devices[d].write_size)
    }

    pub fn erased_value(&self, name: &str) -> Result<u8, MapError> {
        let (d, _, _) = self.locate(name)?;
        Ok(self.devices[d].erased)
    }

    /// Read inside a partition (reads are not counted: a cut cannot land on them).
    pub fn read(&self, name: &str, off: u32, len: u32) -> Result<Vec<u8>, MapError> {
        let (d, base, size) = self.locate(name)?;
        Self::check_inside(name, size, off, len)?;
        self.devices[d]
            .read(base + off, len)
            .map(|b| b.to_vec())
            .map_err(|source| MapError::Flash {
                partition: name.to_owned(),
                source,
            })
    }

    fn count(&mut self, kind: OpKind, name: &str, off: u32, len: u32) -> Result<(), MapError> {
        self.ops += 1;
        let op = FlashOp {
            n: self.ops,
            kind,
            partition: name.to_owned(),
            offset: off,
            len,
        };
        if self.cut_before == Some(self.ops) {
            self.cut_before = None;
            self.last_op = Some(op);
            return Err(MapError::Flash {
                partition: name.to_owned(),
                source: FlashError::PowerCut { op: self.ops },
            });
        }
        if let Some(j) = &mut self.journal {
            j.before_op(&self.devices, op.clone());
        }
        self.last_op = Some(op);
        Ok(())
    }

    /// Record every operation from now on, with a checkpoint of all devices every `interval`
    /// operations (see [`FlashJournal`]).
    pub fn start_journal(&mut self, interval: u64) {
        self.journal = Some(FlashJournal::new(self.ops, interval));
    }

    /// A copy of the map without a recording in progress (a snapshot need not carry it).
    pub fn clone_without_journal(&self) -> FlashMap {
        let journal = None;
        FlashMap {
            layout: self.layout.clone(),
            devices: self.devices.clone(),
            ops: self.ops,
            cut_before: self.cut_before,
            last_op: self.last_op.clone(),
            ram_access: self.ram_access,
            timing: self.timing.clone(),
            busy: self.busy,
            journal,
        }
    }

    /// Stop recording; what was recorded.
    pub fn take_journal(&mut self) -> Option<FlashJournal> {
        self.journal.take()
    }

    /// The flash as a power cut before recorded operation `k` (1-based) of `journal` left it,
    /// counters included (the cut operation counted and last). This map must be in the state
    /// it was in when the journal started. False when `k` is not in the journal.
    pub fn rebuild_cut(&mut self, journal: &FlashJournal, k: u64) -> bool {
        match journal.rebuild(k, &mut self.devices) {
            Some(op) => {
                self.ops = op.n;
                self.last_op = Some(op);
                self.cut_before = None;
                true
            }
            None => false,
        }
    }

    pub fn erase(&mut self, name: &str, off: u32, len: u32) -> Result<(), MapError> {
        let (d, base, size) = self.locate(name)?;
        Self::check_inside(name, size, off, len)?;
        self.count(OpKind::Erase, name, off, len)?;
        self.devices[d]
            .erase(base + off, len)
            .map_err(|source| MapError::Flash {
                partition: name.to_owned(),
                source,
            })?;
        if let Some(j) = &mut self.journal {
            j.erased(d, base + off, len);
        }
        if let Some(t) = self.timing[d] {
            self.busy += t.erase_time(len);
        }
        Ok(())
    }

    pub fn write(&mut self, name: &str, off: u32, data: &[u8]) -> Result<(), MapError> {
        let (d, base, size) = self.locate(name)?;
        Self::check_inside(name, size, off, data.len() as u32)?;
        self.count(OpKind::Write, name, off, data.len() as u32)?;
        self.devices[d]
            .write(base + off, data)
            .map_err(|source| MapError::Flash {
                partition: name.to_owned(),
                source,
            })?;
        if let Some(j) = &mut self.journal {
            j.wrote(d, base + off, data);
        }
        if let Some(t) = self.timing[d] {
            self.busy += t.write_time(data.len() as u32);
        }
        Ok(())
    }

    /// Erase a whole partition.
    pub fn erase_all(&mut self, name: &str) -> Result<(), MapError> {
        let size = self.size(name)?;
        self.erase(name, 0, size)
    }

    /// Program `data` at the start of a partition as a flasher does: erase the sectors it covers,
    /// then write, padding the last write to the write size with the erased value.
    pub fn program(&mut self, name: &str, data: &[u8]) -> Result<(), MapError> {
        let size = self.size(name)?;
        let sector = self.sector_size(name)?;
        let w = self.write_size(name)? as usize;
        let erased = self.erased_value(name)?;
        Self::check_inside(name, size, 0, data.len() as u32)?;
        let span = (data.len() as u32).div_ceil(sector) * sector;
        if span > 0 {
            self.erase(name, 0, span)?;
        }
        let mut buf = data.to_vec();
        buf.resize(data.len().div_ceil(w) * w, erased);
        if !buf.is_empty() {
            self.write(name, 0, &buf)?;
        }
        Ok(())
    }

    /// [`program`](Self::program) a sector at a time (an erase and a write each, as a probe's
    /// flasher does), reporting `(bytes of data done, data length)` after every sector; the
    /// whole range is checked first, so an image that does not fit fails before any erase.
    pub fn program_with_progress(
        &mut self,
        name: &str,
        data: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), MapError> {
        let size = self.size(name)?;
        let sector = self.sector_size(name)?;
        let w = self.write_size(name)? as usize;
        let erased = self.erased_value(name)?;
        Self::check_inside(name, size, 0, data.len() as u32)?;
        let total = data.len() as u64;
        let mut done = 0u64;
        for (i, chunk) in data.chunks(sector as usize).enumerate() {
            let offset = i as u32 * sector;
            let mut buf = chunk.to_vec();
            buf.resize(chunk.len().div_ceil(w) * w, erased);
            self.erase(name, offset, sector)?;
            self.write(name, offset, &buf)?;
            done += chunk.len() as u64;
            progress(done, total);
        }
        if total == 0 {
            progress(0, 0);
        }
        Ok(())
    }

    /// Copy `len` bytes between partitions (used by swap algorithms after erasing the target).
    pub fn copy(
        &mut self,
        from: &str,
        from_off: u32,
        to: &str,
        to_off: u32,
        len: u32,
    ) -> Result<(), MapError> {
        let data = self.read(from, from_off, len)?;
        self.write(to, to_off, &data)
    }
}
