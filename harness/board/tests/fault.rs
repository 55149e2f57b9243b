//! Fault decoding and core classification, with register dumps written down as data (what a
//! probe would read in each situation; no hardware involved).

use dfu_hil_board::hw::fault::{
    classify, decode, histogram, CoreEvidence, FaultRegisters, HaltCause, NoSymbols, RawStatus,
};
use dfu_hil_board::CoreState;

/// Symbols of a made-up MCUboot (0x0..0xc000) and app (0xc000..) — address → function.
fn syms(pc: u32) -> Option<String> {
    let table: &[(u32, u32, &str)] = &[
        (0x0000_1b40, 0x08, "arch_system_halt"),
        (0x0000_1c00, 0x40, "z_arm_hard_fault"),
        (0x0000_2000, 0x10, "fih_panic_loop"),
        (0x0000_3000, 0x200, "boot_go"),
        (0x0000_c400, 0x100, "main"),
        (0x0000_c800, 0x10, "arch_cpu_idle"),
        (0x0000_d000, 0x40, "spin_on_flag"),
    ];
    table
        .iter()
        .find(|(a, s, _)| pc >= *a && pc < a + s)
        .map(|(_, _, n)| (*n).to_owned())
}

fn regs(cfsr: u32, hfsr: u32) -> FaultRegisters {
    FaultRegisters {
        cfsr,
        hfsr,
        ..FaultRegisters::default()
    }
}

fn ev(status: RawStatus, pcs: &[u32], fault: Option<FaultRegisters>) -> CoreEvidence {
    CoreEvidence {
        status,
        pc_samples: pcs.to_vec(),
        fault,
    }
}

/// The `--header-size 32` vs ROM_START_OFFSET 0x200 failure (docs/protocol-facts.md, "Header size
/// smaller than the link offset"): MCUboot jumps to slot + 0x20, finds SP = 0 and reset vector = 0,
/// the branch to an even address faults with INVSTATE, escalates to HardFault (FORCED), and
/// MCUboot's fatal handler spins in arch_system_halt. The core reports *running*; only the PC
/// samples show the loop.
#[test]
fn hdr_size_mismatch_is_a_fault_loop_in_arch_system_halt() {
    let dump = regs(0x0002_0000, 0x4000_0000);
    let report = decode(&dump);
    assert!(report.has("INVSTATE"));
    assert!(report.has("FORCED"));
    let text = report.to_string();
    assert!(text.contains("tried to execute ARM state"), "{text}");
    assert!(text.contains("vector table"), "{text}");
    assert_eq!(report.mem_fault_address, None);
    assert_eq!(report.bus_fault_address, None);

    // 32 samples around the two-instruction spin of arch_system_halt.
    let pcs: Vec<u32> = (0..32).map(|i| 0x1b40 + 2 * (i % 3)).collect();
    let c = classify(&ev(RawStatus::Running, &pcs, Some(dump)), &syms);
    assert_eq!(
        c.state,
        CoreState::FaultLoop {
            pc: 0x1b40,
            symbol: Some("arch_system_halt".into())
        }
    );
    assert_eq!(
        c.state.to_string(),
        "fault loop in arch_system_halt (pc 0x00001b40)"
    );
    let notes = c.notes.join("\n");
    assert!(notes.contains("UFSR.INVSTATE"), "{notes}");
    assert!(notes.contains("HFSR.FORCED"), "{notes}");
    assert!(notes.contains("CFSR=0x00020000"), "{notes}");
    assert!(
        notes.contains("fatal-path function arch_system_halt"),
        "{notes}"
    );
}

#[test]
fn lockup_wins_over_everything() {
    // VTOR moved to the zero area: the HardFault vector itself is bad -> lockup.
    let c = classify(
        &ev(
            RawStatus::LockedUp,
            &[],
            Some(regs(0x0002_0000, 0x4000_0002)),
        ),
        &syms,
    );
    assert_eq!(c.state, CoreState::LockedUp);
    assert!(decode(&regs(0, 0x2)).has("VECTTBL"));
    assert!(c.notes.iter().any(|n| n.contains("locked up")));
}

#[test]
fn fault_address_registers_only_when_valid() {
    // DACCVIOL with MMARVALID: MMFAR is the faulting address.
    let mut r = regs(0x0000_0082, 0);
    r.mmfar = 0x2000_0000;
    let d = decode(&r);
    assert!(d.has("DACCVIOL"));
    assert_eq!(d.mem_fault_address, Some(0x2000_0000));
    assert!(d
        .lines()
        .iter()
        .any(|l| l.contains("MMFAR") && l.contains("0x20000000")));
    // Same without MMARVALID: the stale MMFAR is not reported.
    r.cfsr = 0x02;
    assert_eq!(decode(&r).mem_fault_address, None);

    // Precise bus error with BFARVALID.
    let mut r = regs(0x0000_8200, 0);
    r.bfar = 0x4000_1000;
    let d = decode(&r);
    assert!(d.has("PRECISERR"));
    assert_eq!(d.bus_fault_address, Some(0x4000_1000));
    // Imprecise: BFARVALID is never set, so no address.
    let mut r = regs(0x0000_0400, 0);
    r.bfar = 0xdead_beef;
    let d = decode(&r);
    assert!(d.has("IMPRECISERR"));
    assert_eq!(d.bus_fault_address, None);
}

#[test]
fn each_cfsr_field_decodes_to_its_register() {
    let d = decode(&regs(0x0001_1001, 0));
    let names: Vec<(&str, &str)> = d.bits.iter().map(|b| (b.register, b.name)).collect();
    assert_eq!(
        names,
        vec![
            ("MMFSR", "IACCVIOL"),
            ("BFSR", "STKERR"),
            ("UFSR", "UNDEFINSTR")
        ]
    );
    let d = decode(&regs(0x0308_0000, 0x8000_0000));
    let names: Vec<&str> = d.bits.iter().map(|b| b.name).collect();
    assert_eq!(names, vec!["NOCP", "UNALIGNED", "DIVBYZERO", "DEBUGEVT"]);
    assert!(decode(&regs(0, 0)).is_empty());
    assert_eq!(
        decode(&regs(0, 0)).to_string(),
        "no fault latched (CFSR and HFSR are 0)"
    );
}

#[test]
fn secure_fault_on_armv8m() {
    let r = FaultRegisters {
        sfsr: Some(0x48), // AUVIOL | SFARVALID
        sfar: Some(0x0003_0000),
        ..FaultRegisters::default()
    };
    let d = decode(&r);
    assert!(d.has("AUVIOL"));
    assert_eq!(d.secure_fault_address, Some(0x0003_0000));
    let r = FaultRegisters {
        sfsr: Some(0x08),
        sfar: Some(0x0003_0000),
        ..FaultRegisters::default()
    };
    assert_eq!(decode(&r).secure_fault_address, None);
}

#[test]
fn idle_app_is_running_not_stuck() {
    // WFI in the idle thread: the PC never moves, but there is no fault and it is idle code.
    let pcs = vec![0xc804; 32];
    let c = classify(&ev(RawStatus::Sleeping, &pcs, Some(regs(0, 0))), &syms);
    assert_eq!(c.state, CoreState::Running);
    assert!(c.notes.iter().any(|n| n.contains("idle")));
}

#[test]
fn busy_wait_without_fault_is_running() {
    let pcs: Vec<u32> = (0..32).map(|i| 0xd000 + 2 * (i % 4)).collect();
    let c = classify(&ev(RawStatus::Running, &pcs, Some(regs(0, 0))), &syms);
    assert_eq!(c.state, CoreState::Running);
}

#[test]
fn stuck_with_latched_fault_and_no_symbols_is_a_fault_loop() {
    let pcs: Vec<u32> = (0..16).map(|i| 0x0001_0010 + 2 * (i % 2)).collect();
    let c = classify(
        &ev(
            RawStatus::Running,
            &pcs,
            Some(regs(0x0001_0000, 0x4000_0000)),
        ),
        &NoSymbols,
    );
    assert_eq!(
        c.state,
        CoreState::FaultLoop {
            pc: 0x0001_0010,
            symbol: None
        }
    );
}

#[test]
fn dominant_fatal_function_needs_ninety_percent() {
    // 30 of 32 in fih_panic_loop (MCUboot's FIH panic), 2 elsewhere: a loop.
    let mut pcs = vec![0x2004; 30];
    pcs.extend([0x3010, 0x3020]);
    let c = classify(&ev(RawStatus::Running, &pcs, None), &syms);
    assert_eq!(
        c.state,
        CoreState::FaultLoop {
            pc: 0x2004,
            symbol: Some("fih_panic_loop".into())
        }
    );
    // 20 of 32: the app is busy and passes through the fatal path? Not a loop.
    let mut pcs = vec![0x1b40; 20];
    pcs.extend((0..12).map(|i| 0xc400 + 8 * i));
    let c = classify(&ev(RawStatus::Running, &pcs, None), &syms);
    assert_eq!(c.state, CoreState::Running);
}

#[test]
fn halted_states() {
    // Halted by the harness: halted.
    let c = classify(
        &ev(
            RawStatus::Halted(HaltCause::Request),
            &[0xc410],
            Some(regs(0, 0)),
        ),
        &syms,
    );
    assert_eq!(c.state, CoreState::Halted);
    // Halted by the HardFault vector catch: a fault, wherever the PC is.
    let c = classify(
        &ev(RawStatus::Halted(HaltCause::Exception), &[0x1c04], None),
        &syms,
    );
    assert_eq!(
        c.state,
        CoreState::FaultLoop {
            pc: 0x1c04,
            symbol: Some("z_arm_hard_fault".into())
        }
    );
    // Someone halted a fault loop to look at it: still the fault loop.
    let c = classify(
        &ev(
            RawStatus::Halted(HaltCause::Request),
            &[0x1b42],
            Some(regs(0x0002_0000, 0x4000_0000)),
        ),
        &syms,
    );
    assert!(matches!(c.state, CoreState::FaultLoop { pc: 0x1b42, .. }));
}

#[test]
fn invalid_pcsr_samples_are_ignored() {
    let c = classify(&ev(RawStatus::Running, &[u32::MAX; 32], None), &syms);
    assert_eq!(c.state, CoreState::Running);
    assert!(c.notes.is_empty());
    let c = classify(&ev(RawStatus::Off, &[], None), &syms);
    assert_eq!(c.state, CoreState::Off);
}

#[test]
fn histogram_orders_by_count() {
    let h = histogram(&[0x1b40, 0x1b42, 0x1b40, 0x1b40, 0x1b42, 0x9], &syms);
    assert_eq!(
        h,
        "0x00001b40 arch_system_halt ×3, 0x00001b42 arch_system_halt ×2, 0x00000009 ×1"
    );
}
