//! PC symbolization with ELF files made here: a tiny ELF32 little-endian ARM executable builder
//! (one `.text` section at a chosen address, a symbol table), so the tests depend on no
//! firmware binary from anywhere.

use dfu_hil_board::hw::fault::{classify, CoreEvidence, FaultRegisters, RawStatus, SymbolLookup};
use dfu_hil_board::hw::symbols::{ElfSymbols, SymbolError, Symbolizer};
use dfu_hil_board::CoreState;
use std::path::Path;

/// (name, value, size, is_function). Values of Thumb functions carry bit 0, as real ones do.
type Sym<'a> = (&'a str, u32, u32, bool);

/// Build an ELF32 LE ARM executable: `.text` of `text_size` zero bytes at `text_addr`, and
/// `syms` in `.symtab` (a `$t` mapping symbol is added first, as compilers emit one).
fn elf32_arm(text_addr: u32, text_size: u32, syms: &[Sym<'_>]) -> Vec<u8> {
    fn u16le(v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn u32le(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    let text = vec![0u8; text_size as usize];

    // .strtab: "\0" then names.
    let mut strtab = vec![0u8];
    let mut name_off = Vec::new();
    for n in std::iter::once("$t").chain(syms.iter().map(|s| s.0)) {
        name_off.push(strtab.len() as u32);
        strtab.extend_from_slice(n.as_bytes());
        strtab.push(0);
    }
    // .symtab: null, local `$t`, then globals.
    let mut symtab = vec![0u8; 16];
    let entry = |name: u32, value: u32, size: u32, info: u8, shndx: u16, out: &mut Vec<u8>| {
        u32le(out, name);
        u32le(out, value);
        u32le(out, size);
        out.push(info);
        out.push(0);
        u16le(out, shndx);
    };
    entry(name_off[0], text_addr, 0, 0, 1, &mut symtab); // STB_LOCAL, STT_NOTYPE
    for (i, (_, value, size, func)) in syms.iter().enumerate() {
        let typ = if *func { 2 } else { 1 }; // STT_FUNC / STT_OBJECT
        entry(
            name_off[i + 1],
            *value,
            *size,
            (1 << 4) | typ,
            1,
            &mut symtab,
        );
    }
    let shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0".to_vec();
    let (n_text, n_symtab, n_strtab, n_shstrtab) = (1u32, 7u32, 15u32, 23u32);

    let mut out = Vec::new();
    let text_off = 52u32;
    let symtab_off = text_off + text.len() as u32;
    let strtab_off = symtab_off + symtab.len() as u32;
    let shstrtab_off = strtab_off + strtab.len() as u32;
    let shoff = (shstrtab_off + shstrtab.len() as u32).div_ceil(4) * 4;

    // ELF header.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    u16le(&mut out, 2); // ET_EXEC
    u16le(&mut out, 40); // EM_ARM
    u32le(&mut out, 1);
    u32le(&mut out, syms.first().map(|s| s.1).unwrap_or(text_addr)); // e_entry
    u32le(&mut out, 0); // e_phoff
    u32le(&mut out, shoff);
    u32le(&mut out, 0x0500_0400); // EABI5, hard-float
    u16le(&mut out, 52);
    u16le(&mut out, 32);
    u16le(&mut out, 0);
    u16le(&mut out, 40);
    u16le(&mut out, 5);
    u16le(&mut out, 4); // e_shstrndx
    assert_eq!(out.len(), 52);
    out.extend_from_slice(&text);
    out.extend_from_slice(&symtab);
    out.extend_from_slice(&strtab);
    out.extend_from_slice(&shstrtab);
    out.resize(shoff as usize, 0);

    #[allow(clippy::too_many_arguments)]
    fn sh(
        out: &mut Vec<u8>,
        name: u32,
        typ: u32,
        flags: u32,
        addr: u32,
        off: u32,
        size: u32,
        link: u32,
        info: u32,
        align: u32,
        entsize: u32,
    ) {
        for x in [
            name, typ, flags, addr, off, size, link, info, align, entsize,
        ] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    sh(&mut out, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    // .text: SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR
    sh(
        &mut out, n_text, 1, 0x6, text_addr, text_off, text_size, 0, 0, 4, 0,
    );
    // .symtab: SHT_SYMTAB, link = .strtab, info = first global (after null + `$t`)
    sh(
        &mut out,
        n_symtab,
        2,
        0,
        0,
        symtab_off,
        symtab.len() as u32,
        3,
        2,
        4,
        16,
    );
    sh(
        &mut out,
        n_strtab,
        3,
        0,
        0,
        strtab_off,
        strtab.len() as u32,
        0,
        0,
        1,
        0,
    );
    sh(
        &mut out,
        n_shstrtab,
        3,
        0,
        0,
        shstrtab_off,
        shstrtab.len() as u32,
        0,
        0,
        1,
        0,
    );
    out
}

/// A made-up MCUboot: code in its 48 KiB partition.
fn mcuboot_elf() -> Vec<u8> {
    elf32_arm(
        0x0,
        0xc000,
        &[
            ("__start", 0x0000_0101, 0x20, true),
            ("boot_go", 0x0000_0801, 0x400, true),
            ("arch_system_halt", 0x0000_1b41, 0x08, true),
            ("z_arm_hard_fault", 0x0000_1c01, 0x40, true),
            ("boot_state", 0x0000_8000, 0x100, false),
        ],
    )
}

/// A made-up app linked for the primary slot at 0xc000 with a 0x200 header.
fn app_elf() -> Vec<u8> {
    elf32_arm(
        0xc200,
        0x4000,
        &[
            ("main", 0x0000_c401, 0x100, true),
            ("arch_cpu_idle", 0x0000_c801, 0x10, true),
            ("arch_system_halt", 0x0000_d001, 0x08, true),
            // Assembly label without a size: covers up to the next function.
            ("z_arm_exc_spurious", 0x0000_e001, 0, true),
            ("k_sys_fatal_error_handler", 0x0000_e101, 0x20, true),
        ],
    )
}

fn loaded() -> Symbolizer {
    let mut s = Symbolizer::new();
    s.add(
        ElfSymbols::parse(
            "mcuboot",
            &mcuboot_elf(),
            Some(0..0xc000),
            Path::new("mcuboot.elf"),
        )
        .unwrap(),
    )
    .unwrap();
    s.add(
        ElfSymbols::parse(
            "app",
            &app_elf(),
            Some(0xc000..0x100000),
            Path::new("app.elf"),
        )
        .unwrap(),
    )
    .unwrap();
    s
}

#[test]
fn functions_with_thumb_bit_cleared() {
    let e = ElfSymbols::parse("mcuboot", &mcuboot_elf(), None, Path::new("m.elf")).unwrap();
    let names: Vec<(&str, u32)> = e
        .functions()
        .iter()
        .map(|f| (f.name.as_str(), f.address))
        .collect();
    // Data objects and the `$t` mapping symbol are not functions.
    assert_eq!(
        names,
        vec![
            ("__start", 0x100),
            ("boot_go", 0x800),
            ("arch_system_halt", 0x1b40),
            ("z_arm_hard_fault", 0x1c00)
        ]
    );
    assert_eq!(e.address_of("arch_system_halt"), Some(0x1b40));
    // No range given: the span of the executable sections.
    assert_eq!(e.range, 0..0xc000);
}

#[test]
fn pc_maps_to_the_elf_owning_its_range() {
    let s = loaded();
    // Same name in both ELFs: the address range decides which one is meant.
    let m = s.locate(0x1b44).unwrap();
    assert_eq!(m.image, "mcuboot");
    assert_eq!(m.function.as_deref(), Some("arch_system_halt"));
    assert_eq!(m.offset, 4);
    assert_eq!(m.to_string(), "arch_system_halt+0x4 [mcuboot]");
    let a = s.locate(0xd002).unwrap();
    assert_eq!(a.image, "app");
    assert_eq!(a.to_string(), "arch_system_halt+0x2 [app]");
    // Inside a range but between functions.
    assert_eq!(s.function(0x1b48), None);
    assert_eq!(s.locate(0x1b48).unwrap().to_string(), "? [mcuboot]");
    // Outside every range.
    assert!(s.locate(0x2000_0000).is_none());
    // Sizeless symbol: up to the next function.
    assert_eq!(s.function(0xe0fe).as_deref(), Some("z_arm_exc_spurious"));
    assert_eq!(
        s.function(0xe100).as_deref(),
        Some("k_sys_fatal_error_handler")
    );
    // Odd PCs (a Thumb address as someone wrote it) resolve the same.
    assert_eq!(s.function(0xc801).as_deref(), Some("arch_cpu_idle"));
}

#[test]
fn overlapping_ranges_are_refused() {
    let mut s = Symbolizer::new();
    s.add(ElfSymbols::parse("mcuboot", &mcuboot_elf(), None, Path::new("m.elf")).unwrap())
        .unwrap();
    let e = s
        .add(
            ElfSymbols::parse("app", &app_elf(), Some(0x8000..0x10000), Path::new("a.elf"))
                .unwrap(),
        )
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("overlaps") && msg.contains("mcuboot"), "{msg}");
}

#[test]
fn files_load_from_disk_and_bad_ones_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zephyr.elf");
    std::fs::write(&p, app_elf()).unwrap();
    let e = ElfSymbols::load("app", &p, None).unwrap();
    assert_eq!(e.range, 0xc200..0x10200);
    let mut s = Symbolizer::new();
    s.add(e).unwrap();
    // No DWARF in these ELFs: a name, no file:line.
    let l = s.locate(0xc410).unwrap();
    assert_eq!(l.location, None);
    assert_eq!(l.to_string(), "main+0x10 [app]");

    let bad = dir.path().join("zephyr.bin");
    std::fs::write(&bad, [0u8; 64]).unwrap();
    assert!(matches!(
        ElfSymbols::load("app", &bad, None),
        Err(SymbolError::Parse { .. })
    ));
    let stripped = dir.path().join("stripped.elf");
    std::fs::write(&stripped, elf32_arm(0, 0x100, &[])).unwrap();
    let e = ElfSymbols::load("app", &stripped, None).unwrap_err();
    assert!(e.to_string().contains("stripped"), "{e}");
    assert!(matches!(
        ElfSymbols::load("x", &dir.path().join("missing.elf"), None),
        Err(SymbolError::Io { .. })
    ));
}

#[test]
fn classification_uses_the_right_elf() {
    let s = loaded();
    // hdr_size mismatch: loop in MCUboot's arch_system_halt, not the app's one.
    let ev = CoreEvidence {
        status: RawStatus::Running,
        pc_samples: (0..32).map(|i| 0x1b40 + 2 * (i % 4)).collect(),
        fault: Some(FaultRegisters {
            cfsr: 0x0002_0000,
            hfsr: 0x4000_0000,
            ..FaultRegisters::default()
        }),
    };
    let c = classify(&ev, &s);
    assert_eq!(
        c.state,
        CoreState::FaultLoop {
            pc: 0x1b40,
            symbol: Some("arch_system_halt".into())
        }
    );
    assert!(
        c.notes.iter().any(|n| n.contains("[mcuboot]")),
        "{:?}",
        c.notes
    );
    // The app's fatal handler, after a fault in the app.
    let ev = CoreEvidence {
        status: RawStatus::Running,
        pc_samples: vec![0xd000; 32],
        fault: None,
    };
    let c = classify(&ev, &s);
    assert!(c.notes.iter().any(|n| n.contains("[app]")), "{:?}", c.notes);
    assert!(matches!(c.state, CoreState::FaultLoop { pc: 0xd000, .. }));
}
