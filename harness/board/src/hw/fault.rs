//! Cortex-M fault evidence: decode the SCB fault status registers into words an engineer can
//! act on, and classify what a probe saw (core status, PC samples, fault registers) into a
//! [`CoreState`].
//!
//! This is pure logic on purpose: no probe and no board exist where the harness is developed,
//! so every rule here is tested with recorded register dumps. The probe-rs adapter only reads
//! the registers and PCs and hands them to [`classify`].
//!
//! Why the classification needs more than one signal (docs/protocol-facts.md, "Telling a
//! fatal-error spin from a hang"):
//! * a double fault locks the core up (DHCSR `S_LOCKUP`) — unambiguous;
//! * Zephyr's fatal path ends in `arch_system_halt()`, which spins with IRQs masked: the core
//!   reports *running*, so only sampling the PC shows it is stuck;
//! * an idle app also keeps its PC in one place (WFI in the idle thread), so "PC does not move"
//!   alone is not a fault: it takes a fatal-path symbol, or a latched fault in CFSR/HFSR.

use crate::probe::CoreState;
use std::collections::BTreeMap;
use std::fmt;

/// SCB addresses of the fault registers (ARMv7-M and ARMv8-M Mainline).
pub mod addr {
    /// Configurable Fault Status Register: MMFSR [7:0], BFSR [15:8], UFSR [31:16].
    pub const CFSR: u64 = 0xE000_ED28;
    pub const HFSR: u64 = 0xE000_ED2C;
    pub const MMFAR: u64 = 0xE000_ED34;
    pub const BFAR: u64 = 0xE000_ED38;
    /// Vector table offset: where the core takes exceptions from (a bad VTOR locks up).
    pub const VTOR: u64 = 0xE000_ED08;
    /// ARMv8-M with the Security Extension only (nRF5340 app core): secure faults (TF-M/SPM).
    pub const SFSR: u64 = 0xE000_EDE4;
    pub const SFAR: u64 = 0xE000_EDE8;
    /// DWT program counter sample register (non-intrusive PC sampling, optional in v7-M/v8-M).
    pub const DWT_PCSR: u64 = 0xE000_101C;
}

/// The fault registers as read from the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultRegisters {
    pub cfsr: u32,
    pub hfsr: u32,
    pub mmfar: u32,
    pub bfar: u32,
    /// `None` on cores without the Security Extension (or when not read).
    pub sfsr: Option<u32>,
    pub sfar: Option<u32>,
}

/// One set status bit, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultBit {
    /// Sub-register: `MMFSR`, `BFSR`, `UFSR`, `HFSR` or `SFSR`.
    pub register: &'static str,
    /// Bit name as in the ARM manuals (what people search for).
    pub name: &'static str,
    /// What it means for the person debugging a DFU failure.
    pub meaning: String,
}

impl fmt::Display for FaultBit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.meaning)
    }
}

struct BitDef {
    bit: u32,
    name: &'static str,
    meaning: &'static str,
}

const fn b(bit: u32, name: &'static str, meaning: &'static str) -> BitDef {
    BitDef { bit, name, meaning }
}

/// MMFSR, CFSR bits 0..7. Bit 7 (MMARVALID) is a qualifier, handled separately.
const MMFSR: &[BitDef] = &[
    b(0, "IACCVIOL", "instruction fetch from a region the MPU forbids (or execute-never), e.g. jumping into RAM or an unmapped slot"),
    b(1, "DACCVIOL", "data access the MPU forbids (stack overflow into a guard region, NULL pointer)"),
    b(3, "MUNSTKERR", "MPU fault while unstacking on exception return (corrupted stack)"),
    b(4, "MSTKERR", "MPU fault while stacking on exception entry (stack pointer out of its region)"),
    b(5, "MLSPERR", "MPU fault during lazy floating-point state preservation"),
];

/// BFSR, CFSR bits 8..15. Bit 15 (BFARVALID) is a qualifier.
const BFSR: &[BitDef] = &[
    b(8, "IBUSERR", "bus error on instruction fetch: executing from an address with no memory behind it"),
    b(9, "PRECISERR", "precise data bus error: a load/store to an address with no memory or peripheral behind it"),
    b(10, "IMPRECISERR", "imprecise data bus error: a buffered write failed; the faulting PC is somewhere before the reported one"),
    b(11, "UNSTKERR", "bus error while unstacking on exception return (corrupted stack or stack pointer)"),
    b(12, "STKERR", "bus error while stacking on exception entry: the stack pointer is invalid (e.g. an initial SP of 0 from an empty vector table)"),
    b(13, "LSPERR", "bus error during lazy floating-point state preservation"),
];

/// UFSR, CFSR bits 16..31.
const UFSR: &[BitDef] = &[
    b(16, "UNDEFINSTR", "undefined instruction: executing data or erased flash (0xFFFF...) as code"),
    b(17, "INVSTATE", "tried to execute ARM state (EPSR.T = 0) — a jump to an even address, typically through a bad vector table (image header size != app link offset) or a corrupt function pointer"),
    b(18, "INVPC", "invalid PC load on exception return (EXC_RETURN corrupted, stack overwritten)"),
    b(19, "NOCP", "coprocessor (FPU) access while it is disabled (CPACR), e.g. an app built with FPU after a bootloader that left it off"),
    b(20, "STKOF", "stack overflow detected by the stack limit register (ARMv8-M PSPLIM/MSPLIM)"),
    b(24, "UNALIGNED", "unaligned access while unaligned traps are enabled"),
    b(25, "DIVBYZERO", "integer division by zero while the trap is enabled"),
];

const HFSR: &[BitDef] = &[
    b(1, "VECTTBL", "bus fault reading the vector table during exception processing: VTOR points at memory that is not there"),
    b(30, "FORCED", "a configurable fault (see CFSR) escalated to HardFault: its handler is disabled or it happened at too high a priority"),
    b(31, "DEBUGEVT", "debug event escalated to HardFault (a BKPT with no debugger attached)"),
];

/// SFSR (ARMv8-M Security Extension). Bit 6 (SFARVALID) is a qualifier.
const SFSR: &[BitDef] = &[
    b(
        0,
        "INVEP",
        "non-secure code called a secure address that is not a valid entry point (missing SG)",
    ),
    b(
        1,
        "INVIS",
        "integrity signature check failed on exception return",
    ),
    b(
        2,
        "INVER",
        "invalid exception return (secure/non-secure state mix-up)",
    ),
    b(
        3,
        "AUVIOL",
        "non-secure access to secure memory (SAU/IDAU attribution violation)",
    ),
    b(
        4,
        "INVTRAN",
        "branch from secure to non-secure code without BLXNS/BXNS",
    ),
    b(
        5,
        "LSPERR",
        "security violation during lazy floating-point state preservation",
    ),
    b(
        7,
        "LSERR",
        "error during lazy floating-point state activation",
    ),
];

const MMARVALID: u32 = 1 << 7;
const BFARVALID: u32 = 1 << 15;
const SFARVALID: u32 = 1 << 6;

fn set_bits(value: u32, register: &'static str, defs: &[BitDef], out: &mut Vec<FaultBit>) {
    for d in defs {
        if value & (1 << d.bit) != 0 {
            out.push(FaultBit {
                register,
                name: d.name,
                meaning: d.meaning.to_owned(),
            });
        }
    }
}

/// A decoded fault: the set bits in words, and the faulting addresses the hardware vouches for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultReport {
    pub bits: Vec<FaultBit>,
    /// MMFAR, only when MMARVALID says it holds the faulting data address.
    pub mem_fault_address: Option<u32>,
    /// BFAR, only when BFARVALID says so (never for IMPRECISERR).
    pub bus_fault_address: Option<u32>,
    /// SFAR, only when SFARVALID says so.
    pub secure_fault_address: Option<u32>,
}

impl FaultReport {
    /// No fault latched at all (CFSR, HFSR and SFSR read zero).
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// True when a bit with this name is set.
    pub fn has(&self, name: &str) -> bool {
        self.bits.iter().any(|b| b.name == name)
    }

    /// One line per bit plus the valid addresses, for logs and reports.
    pub fn lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .bits
            .iter()
            .map(|b| format!("{}.{}", b.register, b))
            .collect();
        if let Some(a) = self.mem_fault_address {
            v.push(format!("MMFAR: faulting data address 0x{a:08x}"));
        }
        if let Some(a) = self.bus_fault_address {
            v.push(format!("BFAR: faulting bus address 0x{a:08x}"));
        }
        if let Some(a) = self.secure_fault_address {
            v.push(format!("SFAR: faulting secure address 0x{a:08x}"));
        }
        v
    }
}

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no fault latched (CFSR and HFSR are 0)");
        }
        f.write_str(&self.lines().join("; "))
    }
}

/// Decode the fault registers. MMFAR/BFAR/SFAR are reported only when their VALID bit is set:
/// otherwise they hold stale or unrelated values and would send the reader the wrong way.
pub fn decode(regs: &FaultRegisters) -> FaultReport {
    let mut bits = Vec::new();
    set_bits(regs.cfsr, "MMFSR", MMFSR, &mut bits);
    set_bits(regs.cfsr, "BFSR", BFSR, &mut bits);
    set_bits(regs.cfsr, "UFSR", UFSR, &mut bits);
    set_bits(regs.hfsr, "HFSR", HFSR, &mut bits);
    if let Some(sfsr) = regs.sfsr {
        set_bits(sfsr, "SFSR", SFSR, &mut bits);
    }
    FaultReport {
        bits,
        mem_fault_address: (regs.cfsr & MMARVALID != 0).then_some(regs.mmfar),
        bus_fault_address: (regs.cfsr & BFARVALID != 0).then_some(regs.bfar),
        secure_fault_address: match (regs.sfsr, regs.sfar) {
            (Some(s), Some(a)) if s & SFARVALID != 0 => Some(a),
            _ => None,
        },
    }
}

/// The core status as the probe reports it (DHCSR), before any interpretation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawStatus {
    Running,
    /// WFI/WFE: an idle thread, or an old-Zephyr fatal loop on `k_cpu_idle()`.
    Sleeping,
    Halted(HaltCause),
    LockedUp,
    /// Powered off, held in reset, or the debug port does not answer.
    Off,
    Unknown,
}

/// Why a halted core stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltCause {
    /// Vector catch on an exception (HardFault catch).
    Exception,
    Breakpoint,
    /// The harness (or someone) asked it to halt.
    Request,
    Other,
}

/// Everything the probe gathered about the core at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreEvidence {
    pub status: RawStatus,
    /// Sampled PCs (DWT PCSR or halt/read/resume), oldest first. All-ones values (PCSR's "no
    /// sample") are ignored.
    pub pc_samples: Vec<u32>,
    pub fault: Option<FaultRegisters>,
}

/// Function names of the fatal paths of Zephyr and MCUboot: a PC that keeps coming back to one
/// of these means the firmware gave up. Zephyr: `kernel/fatal.c`, `arch/arm/core/cortex_m`
/// fault handling; MCUboot: `fih_panic_loop` (fault-injection hardening panic), `FIH_PANIC`.
pub const FATAL_SYMBOLS: &[&str] = &[
    "arch_system_halt",
    "k_sys_fatal_error_handler",
    "z_fatal_error",
    "z_arm_fatal_error",
    "z_arm_fault",
    "z_arm_hard_fault",
    "z_arm_usage_fault",
    "z_arm_bus_fault",
    "z_arm_mpu_fault",
    "z_arm_exc_spurious",
    "arch_irq_spurious",
    "fih_panic_loop",
    "HardFault_Handler",
    "assert_post_action",
];

/// Names of idle code: a PC parked here (with no latched fault) is a healthy, idle app.
const IDLE_SYMBOLS: &[&str] = &[
    "arch_cpu_idle",
    "k_cpu_idle",
    "idle",
    "z_idle",
    "arch_cpu_atomic_idle",
];

/// PCs within this many bytes of each other count as "the same place" (a spin loop is a couple
/// of instructions).
pub const SPIN_SPAN: u32 = 32;

/// Share of samples that must land in the dominant function to call it a loop.
const DOMINANT_SHARE: f64 = 0.9;

/// Result of a classification: the state for the runner, plus the evidence in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub state: CoreState,
    /// Human lines: decoded fault bits, PC histogram, why this state was chosen.
    pub notes: Vec<String>,
}

/// Map a PC to a function name (and, for notes, a longer description). Implemented by
/// [`crate::hw::symbols::Symbolizer`]; tests pass closures over tables.
pub trait SymbolLookup {
    /// Function containing `pc`, bare name (what scenarios' `expect-fault: { symbol }` compare).
    fn function(&self, pc: u32) -> Option<String>;
    /// Longer description for notes (`name+0x6 [mcuboot] fatal.c:42`); defaults to the name.
    fn describe(&self, pc: u32) -> Option<String> {
        self.function(pc)
    }
}

impl<F: Fn(u32) -> Option<String>> SymbolLookup for F {
    fn function(&self, pc: u32) -> Option<String> {
        self(pc)
    }
}

/// No symbols available.
pub struct NoSymbols;

impl SymbolLookup for NoSymbols {
    fn function(&self, _pc: u32) -> Option<String> {
        None
    }
}

/// Classify what the probe saw.
///
/// Rules, first match wins:
/// 1. `LockedUp` → [`CoreState::LockedUp`] (double fault; nothing else to learn from the PC).
/// 2. `Off` → [`CoreState::Off`].
/// 3. Halted on a caught exception → fault loop at the halted PC.
/// 4. Halted otherwise → `Halted`, unless a fault is latched *and* the PC is in a fatal-path
///    symbol (someone halted a fault loop to look at it) → fault loop.
/// 5. Running/sleeping with PC samples: if ≥90 % of them fall in one fatal-path function →
///    fault loop in it; if they all sit within [`SPIN_SPAN`] bytes, a fault is latched and the
///    place is not idle code → fault loop; otherwise running.
pub fn classify(ev: &CoreEvidence, syms: &dyn SymbolLookup) -> Classification {
    let mut notes = Vec::new();
    let report = ev.fault.as_ref().map(decode);
    let fault_latched = report.as_ref().is_some_and(|r| !r.is_empty());
    if let (Some(regs), Some(r)) = (&ev.fault, &report) {
        if fault_latched {
            notes.push(format!(
                "CFSR=0x{:08x} HFSR=0x{:08x}: {}",
                regs.cfsr, regs.hfsr, r
            ));
        }
    }
    let samples: Vec<u32> = ev
        .pc_samples
        .iter()
        .copied()
        .filter(|&pc| pc != u32::MAX)
        .collect();
    if !samples.is_empty() {
        notes.push(format!("PC samples: {}", histogram(&samples, syms)));
    }
    let fault_loop = |pc: u32, notes: Vec<String>| Classification {
        state: CoreState::FaultLoop {
            pc,
            symbol: syms.function(pc),
        },
        notes,
    };

    match ev.status {
        RawStatus::LockedUp => {
            notes.push(
                "core is locked up (a fault inside the fault handler, or a bad vector table)"
                    .into(),
            );
            return Classification {
                state: CoreState::LockedUp,
                notes,
            };
        }
        RawStatus::Off => {
            return Classification {
                state: CoreState::Off,
                notes,
            }
        }
        RawStatus::Halted(cause) => {
            let pc = samples.last().copied();
            if let Some(pc) = pc {
                if cause == HaltCause::Exception {
                    notes.push("halted by the exception vector catch".into());
                    return fault_loop(pc, notes);
                }
                if fault_latched && is_fatal(syms.function(pc).as_deref()) {
                    notes.push("halted inside the fatal-error path with a fault latched".into());
                    return fault_loop(pc, notes);
                }
            }
            return Classification {
                state: CoreState::Halted,
                notes,
            };
        }
        RawStatus::Running | RawStatus::Sleeping | RawStatus::Unknown => {}
    }

    if samples.is_empty() {
        return Classification {
            state: CoreState::Running,
            notes,
        };
    }

    // Dominant function among the samples.
    let mut by_fn: BTreeMap<String, usize> = BTreeMap::new();
    for &pc in &samples {
        if let Some(f) = syms.function(pc) {
            *by_fn.entry(f).or_default() += 1;
        }
    }
    if let Some((name, n)) = by_fn.iter().max_by_key(|(_, n)| **n) {
        if is_fatal(Some(name)) && (*n as f64) >= DOMINANT_SHARE * samples.len() as f64 {
            let pc = most_common(
                samples
                    .iter()
                    .copied()
                    .filter(|&pc| syms.function(pc).as_deref() == Some(name.as_str())),
            );
            notes.push(format!(
                "{n}/{} samples in fatal-path function {name}",
                samples.len()
            ));
            return fault_loop(pc, notes);
        }
    }

    let lo = *samples.iter().min().expect("non-empty");
    let hi = *samples.iter().max().expect("non-empty");
    let stuck = hi - lo <= SPIN_SPAN;
    if stuck {
        let pc = most_common(samples.iter().copied());
        let idle = syms
            .function(pc)
            .is_some_and(|f| IDLE_SYMBOLS.contains(&f.as_str()));
        if fault_latched && !idle {
            notes.push(format!(
                "all {} samples within {} bytes and a fault is latched: a spin loop after a fault",
                samples.len(),
                hi - lo
            ));
            return fault_loop(pc, notes);
        }
        if idle {
            notes.push("PC parked in idle code: the app is idle, not stuck".into());
        } else {
            notes.push("PC does not move, but no fault is latched and the place is not a fatal-path function: treated as running (a busy wait?)".into());
        }
    }
    Classification {
        state: CoreState::Running,
        notes,
    }
}

fn is_fatal(name: Option<&str>) -> bool {
    name.is_some_and(|n| FATAL_SYMBOLS.contains(&n))
}

fn most_common(pcs: impl Iterator<Item = u32>) -> u32 {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for pc in pcs {
        *counts.entry(pc).or_default() += 1;
    }
    // Ties go to the lowest address (BTreeMap order, max_by_key keeps the last max: reverse).
    counts
        .iter()
        .rev()
        .max_by_key(|(_, n)| **n)
        .map(|(pc, _)| *pc)
        .unwrap_or(0)
}

/// `0x00001234 arch_system_halt+0x4 [mcuboot] ×30, …`, most frequent first, at most 5 entries.
pub fn histogram(samples: &[u32], syms: &dyn SymbolLookup) -> String {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for &pc in samples {
        *counts.entry(pc).or_default() += 1;
    }
    let mut v: Vec<(u32, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut parts: Vec<String> = v
        .iter()
        .take(5)
        .map(|(pc, n)| match syms.describe(*pc) {
            Some(d) => format!("0x{pc:08x} {d} ×{n}"),
            None => format!("0x{pc:08x} ×{n}"),
        })
        .collect();
    if v.len() > 5 {
        parts.push(format!("… {} more addresses", v.len() - 5));
    }
    parts.join(", ")
}
