//! Assertions: compare what a scenario expects with what the board shows, field by field, and
//! say both sides in words a DFU engineer uses.

use crate::scenario::{BootloaderSpec, FlagExpect, MagicExpect, SlotExpect, TrailerExpect};
use dfu_hil_board::{BoardError, Probe};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::{Flag, MagicState, Trailer, TrailerLayout};
use dfu_hil_smp::SlotState;

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub what: String,
    pub expected: String,
    pub actual: String,
}

/// A failed expectation: a one-line summary and an expected/actual table.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub summary: String,
    /// The expected/actual table, as printed under the step.
    pub detail: String,
    /// The fields that differ (empty when the mismatch is not field by field, e.g. a sweep's
    /// cut point that did not recover).
    pub fields: Vec<Field>,
}

impl Mismatch {
    pub fn new(summary: String, detail: String) -> Self {
        Mismatch {
            summary,
            detail,
            fields: Vec::new(),
        }
    }

    pub fn from_fields(fields: &[Field]) -> Self {
        let summary = fields
            .iter()
            .map(|f| format!("{}: expected {}, got {}", f.what, f.expected, f.actual))
            .collect::<Vec<_>>()
            .join("; ");
        let w = fields
            .iter()
            .map(|f| f.what.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let mut detail = format!("  {:w$}  {:<24} actual\n", "field", "expected");
        for f in fields {
            detail.push_str(&format!(
                "  {:w$}  {:<24} {}\n",
                f.what, f.expected, f.actual
            ));
        }
        Mismatch {
            summary,
            detail,
            fields: fields.to_vec(),
        }
    }
}

fn check(out: &mut Vec<Field>, what: String, want: Option<bool>, got: bool) {
    if let Some(w) = want {
        if w != got {
            out.push(Field {
                what,
                expected: w.to_string(),
                actual: got.to_string(),
            });
        }
    }
}

/// Compare one slot of `image list` with an expectation.
pub fn slot(
    n: u32,
    want: &SlotExpect,
    got: Option<&SlotState>,
    want_image: Option<(&str, &[u8])>,
    name_of: impl Fn(&[u8]) -> String,
) -> Vec<Field> {
    let mut out = Vec::new();
    let Some(got) = got else {
        if want.present != Some(false) {
            out.push(Field {
                what: format!("slot{n}"),
                expected: "listed".into(),
                actual: "not listed (empty or no valid image)".into(),
            });
        }
        return out;
    };
    if want.present == Some(false) {
        out.push(Field {
            what: format!("slot{n}"),
            expected: "not listed".into(),
            actual: format!("{} v{}", name_of(&got.hash), got.version),
        });
    }
    if let Some((fixture, hash)) = want_image {
        if got.hash != hash {
            out.push(Field {
                what: format!("slot{n}.image"),
                expected: fixture.to_owned(),
                actual: name_of(&got.hash),
            });
        }
    }
    check(&mut out, format!("slot{n}.active"), want.active, got.active);
    check(
        &mut out,
        format!("slot{n}.confirmed"),
        want.confirmed,
        got.confirmed,
    );
    check(
        &mut out,
        format!("slot{n}.pending"),
        want.pending,
        got.pending,
    );
    check(
        &mut out,
        format!("slot{n}.permanent"),
        want.permanent,
        got.permanent,
    );
    check(
        &mut out,
        format!("slot{n}.bootable"),
        want.bootable,
        got.bootable,
    );
    out
}

fn magic_name(m: MagicExpect) -> &'static str {
    match m {
        MagicExpect::Good => "good",
        MagicExpect::Bad => "bad",
        MagicExpect::Unset => "unset",
    }
}

fn flag_name(f: FlagExpect) -> &'static str {
    match f {
        FlagExpect::Set => "set",
        FlagExpect::Bad => "bad",
        FlagExpect::Unset => "unset",
    }
}

/// Compare a decoded trailer with an expectation.
pub fn trailer(region: &str, want: &TrailerExpect, t: &Trailer) -> Vec<Field> {
    let mut out = Vec::new();
    if let Some(m) = want.magic {
        let got = match t.magic {
            MagicState::Good => MagicExpect::Good,
            MagicState::Bad => MagicExpect::Bad,
            MagicState::Unset => MagicExpect::Unset,
        };
        if got != m {
            out.push(Field {
                what: format!("{region}.magic"),
                expected: magic_name(m).into(),
                actual: format!("{} ({})", t.magic, hex::encode(t.magic_raw)),
            });
        }
    }
    for (name, want, got, raw) in [
        ("image-ok", want.image_ok, t.image_ok, t.image_ok_raw),
        ("copy-done", want.copy_done, t.copy_done, t.copy_done_raw),
    ] {
        let Some(w) = want else { continue };
        let g = match got {
            Flag::Set => FlagExpect::Set,
            Flag::Bad => FlagExpect::Bad,
            Flag::Unset => FlagExpect::Unset,
        };
        if g != w {
            out.push(Field {
                what: format!("{region}.{name}"),
                expected: flag_name(w).into(),
                actual: format!("{got} (0x{raw:02x})"),
            });
        }
    }
    if let Some(st) = want.swap_type {
        if t.swap_type() != st {
            out.push(Field {
                what: format!("{region}.swap-type"),
                expected: st.to_string(),
                actual: match t.swap_info {
                    Some(b) => format!("{} (swap_info 0x{b:02x})", t.swap_type()),
                    None => "none (swap_info erased)".into(),
                },
            });
        }
    }
    out
}

/// The trailer geometry of a region as the scenario's MCUboot build sees it.
pub fn trailer_layout(
    layout: &Layout,
    boot: &BootloaderSpec,
    region: &str,
) -> Option<TrailerLayout> {
    let p = layout.partition(region)?;
    let dev = layout.device_of(p);
    // BOOT_WRITE_SZ is the largest write size of the slots' devices.
    let w = layout
        .images
        .iter()
        .filter(|i| i.primary == region || i.secondary == region)
        .flat_map(|i| [&i.primary, &i.secondary])
        .filter_map(|n| layout.partition(n))
        .map(|q| layout.device_of(q).write_size)
        .max()
        .unwrap_or(dev.write_size);
    Some(TrailerLayout {
        slot_size: p.size,
        max_align: boot.max_align,
        write_size: w,
        erased: dev.erased,
        max_sectors: boot.max_sectors,
        mode: boot.mode,
    })
}

/// Read and decode a region's trailer through the probe.
pub fn read_trailer(
    probe: &mut dyn Probe,
    layout: &Layout,
    boot: &BootloaderSpec,
    region: &str,
) -> Result<Trailer, BoardError> {
    let l = trailer_layout(layout, boot, region)
        .ok_or_else(|| BoardError::NoRegion(region.to_owned()))?;
    let (off, len) = l.tail();
    let tail = probe.read(region, off, len)?;
    l.decode(&tail)
        .map_err(|e| BoardError::Probe(format!("{region}: {e}")))
}
