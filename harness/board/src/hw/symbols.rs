//! PC → function name (and file:line when the ELF has DWARF) from the ELF files a scenario
//! names, choosing the ELF by address range.
//!
//! Why by address range: MCUboot and the app are separate links whose address ranges do not
//! overlap (MCUboot's partition vs the primary slot), and a fault loop *during a swap* is in
//! MCUboot while one after the jump is in the app. Looking the PC up in "whichever ELF has a
//! symbol there" would give a wrong but plausible name when one ELF's range covers the other's
//! gap, so each ELF owns a range (given by the caller from the partition layout, or taken from
//! the ELF's own code sections).
//!
//! ARM ELF function symbols carry the Thumb bit (bit 0) in their value; it is cleared here so a
//! sampled PC (always even) matches.

use super::fault::SymbolLookup;
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SymbolKind};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SymbolError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an ELF file the harness can read: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: no function symbols (stripped ELF? give the unstripped zephyr.elf)")]
    NoSymbols { path: PathBuf },
}

/// One function symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// Start address with the Thumb bit cleared.
    pub address: u32,
    /// 0 when the ELF does not say (assembly labels); such a symbol covers up to the next one.
    pub size: u32,
}

/// Where a PC is, as precisely as the ELF allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Label of the ELF (`mcuboot`, `app`).
    pub image: String,
    pub function: Option<String>,
    /// PC minus the function start.
    pub offset: u32,
    /// `file:line` from DWARF.
    pub location: Option<String>,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.function {
            Some(n) => write!(f, "{n}+0x{:x} [{}]", self.offset, self.image)?,
            None => write!(f, "? [{}]", self.image)?,
        }
        if let Some(l) = &self.location {
            write!(f, " {l}")?;
        }
        Ok(())
    }
}

/// The symbols of one ELF and the address range it owns.
pub struct ElfSymbols {
    pub label: String,
    pub range: Range<u32>,
    /// Sorted by address.
    functions: Vec<Function>,
    dwarf: Option<addr2line::Loader>,
}

impl fmt::Debug for ElfSymbols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElfSymbols")
            .field("label", &self.label)
            .field("range", &self.range)
            .field("functions", &self.functions.len())
            .field("dwarf", &self.dwarf.is_some())
            .finish()
    }
}

impl ElfSymbols {
    /// Load `path`. `range` is the address range this ELF owns (its partition); `None` takes
    /// the span of its executable sections.
    pub fn load(label: &str, path: &Path, range: Option<Range<u32>>) -> Result<Self, SymbolError> {
        let bytes = std::fs::read(path).map_err(|source| SymbolError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut s = Self::parse(label, &bytes, range, path)?;
        // DWARF is a bonus: an ELF without it (or one addr2line cannot read) still names functions.
        s.dwarf = addr2line::Loader::new(path).ok();
        Ok(s)
    }

    /// Parse ELF bytes (symbol table only, no file:line). `path` is for messages.
    pub fn parse(
        label: &str,
        bytes: &[u8],
        range: Option<Range<u32>>,
        path: &Path,
    ) -> Result<Self, SymbolError> {
        let file = object::File::parse(bytes).map_err(|e| SymbolError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mut functions: Vec<Function> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
            .filter_map(|s| {
                let name = s.name().ok()?.to_owned();
                // ARM mapping symbols ($t, $a, $d) mark code/data, not functions.
                if name.is_empty() || name.starts_with('$') {
                    return None;
                }
                Some(Function {
                    name,
                    address: (s.address() as u32) & !1,
                    size: s.size() as u32,
                })
            })
            .collect();
        if functions.is_empty() {
            return Err(SymbolError::NoSymbols {
                path: path.to_owned(),
            });
        }
        functions.sort_by(|a, b| a.address.cmp(&b.address).then(b.size.cmp(&a.size)));
        functions.dedup_by(|b, a| a.address == b.address);
        let range = match range {
            Some(r) => r,
            None => code_span(&file).unwrap_or_else(|| {
                let lo = functions[0].address;
                let last = functions.last().expect("non-empty");
                lo..last.address.saturating_add(last.size.max(2))
            }),
        };
        Ok(ElfSymbols {
            label: label.to_owned(),
            range,
            functions,
            dwarf: None,
        })
    }

    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// Address of a function by name (for breakpoints on fatal-path symbols).
    pub fn address_of(&self, name: &str) -> Option<u32> {
        self.functions
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.address)
    }

    /// The function containing `pc`: the last one starting at or before it, if `pc` is inside
    /// its size (or, for sizeless symbols, before the next function).
    pub fn function_at(&self, pc: u32) -> Option<&Function> {
        let pc = pc & !1;
        let i = self.functions.partition_point(|f| f.address <= pc);
        if i == 0 {
            return None;
        }
        let f = &self.functions[i - 1];
        let end = if f.size > 0 {
            f.address.saturating_add(f.size)
        } else {
            self.functions
                .get(i)
                .map(|n| n.address)
                .unwrap_or(self.range.end)
        };
        (pc < end).then_some(f)
    }

    fn locate(&self, pc: u32) -> Located {
        let f = self.function_at(pc);
        let location = self.dwarf.as_ref().and_then(|d| {
            let loc = d.find_location(u64::from(pc & !1)).ok()??;
            let file = loc.file?;
            let short = Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.to_owned());
            Some(match loc.line {
                Some(l) => format!("{short}:{l}"),
                None => short,
            })
        });
        Located {
            image: self.label.clone(),
            function: f.map(|f| f.name.clone()),
            offset: f.map(|f| (pc & !1) - f.address).unwrap_or(0),
            location,
        }
    }
}

/// Span of the ELF's allocated executable sections.
fn code_span(file: &object::File<'_>) -> Option<Range<u32>> {
    let mut lo = u64::MAX;
    let mut hi = 0u64;
    for s in file.sections() {
        let exec = match s.flags() {
            SectionFlags::Elf { sh_flags } => {
                sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0
                    && sh_flags & u64::from(object::elf::SHF_ALLOC) != 0
            }
            _ => s.kind() == object::SectionKind::Text,
        };
        if exec && s.size() > 0 {
            lo = lo.min(s.address());
            hi = hi.max(s.address() + s.size());
        }
    }
    (lo < hi).then(|| lo as u32..hi.min(u64::from(u32::MAX)) as u32)
}

/// Several ELFs (typically MCUboot and the app), each owning its address range.
#[derive(Debug, Default)]
pub struct Symbolizer {
    images: Vec<ElfSymbols>,
}

impl Symbolizer {
    pub fn new() -> Self {
        Symbolizer::default()
    }

    /// Add an ELF. Ranges may not overlap: an overlap means the layout or the ELFs are wrong,
    /// and silently preferring one would name the wrong code.
    pub fn add(&mut self, elf: ElfSymbols) -> Result<(), OverlapError> {
        if let Some(o) = self
            .images
            .iter()
            .find(|o| o.range.start < elf.range.end && elf.range.start < o.range.end)
        {
            return Err(OverlapError {
                a: o.label.clone(),
                a_range: o.range.clone(),
                b: elf.label.clone(),
                b_range: elf.range.clone(),
            });
        }
        self.images.push(elf);
        Ok(())
    }

    pub fn images(&self) -> &[ElfSymbols] {
        &self.images
    }

    /// The ELF owning `pc`.
    pub fn image_for(&self, pc: u32) -> Option<&ElfSymbols> {
        self.images.iter().find(|i| i.range.contains(&pc))
    }

    pub fn locate(&self, pc: u32) -> Option<Located> {
        self.image_for(pc).map(|i| i.locate(pc))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("ELF `{b}` (0x{:x}..0x{:x}) overlaps ELF `{a}` (0x{:x}..0x{:x}): give each its own partition range", b_range.start, b_range.end, a_range.start, a_range.end)]
pub struct OverlapError {
    pub a: String,
    pub a_range: Range<u32>,
    pub b: String,
    pub b_range: Range<u32>,
}

impl SymbolLookup for Symbolizer {
    fn function(&self, pc: u32) -> Option<String> {
        self.image_for(pc)?.function_at(pc).map(|f| f.name.clone())
    }
    fn describe(&self, pc: u32) -> Option<String> {
        self.locate(pc).map(|l| l.to_string())
    }
}
