//! A Partition Manager map (`partitions.yml`, `pm_static.yml`) read as entries with the line each
//! starts on.
//!
//! Only `address` and `size` place a partition: NCS `scripts/partition_manager.py`
//! (`get_dynamic_area_start_and_size`, `get_pm_config`) reads those two from a static file and
//! writes `end_address` as output only, so an `end_address` that disagrees is reported, not
//! trusted. `span` may be a list, a single name, `{one_of: [...]}` (as in `pm.yml`), or a YAML
//! alias of an `orig_span` anchor (`span: *id001`, the way PyYAML dumps a shared list).

use super::PmError;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;

/// One top-level entry of a PM map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmEntry {
    pub name: String,
    /// 1-based line of the entry's name.
    pub line: u32,
    pub address: u64,
    pub size: u64,
    pub end_address: Option<u64>,
    /// `None`: the file does not say; Partition Manager's default is `flash_primary`.
    pub region: Option<String>,
    pub device: Option<String>,
    /// The partitions this one is a container of (empty for a plain partition).
    pub span: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SpanSpec {
    List(Vec<String>),
    One(String),
    OneOf { one_of: Vec<String> },
}

impl SpanSpec {
    fn names(self) -> Vec<String> {
        match self {
            SpanSpec::List(v) | SpanSpec::OneOf { one_of: v } => v,
            SpanSpec::One(s) => vec![s],
        }
    }
}

/// Unknown keys (`placement`, `share_size`, `sharers`, `inside`, `orig_span`, `align`) are
/// placement inputs Partition Manager already resolved into `address`/`size`.
#[derive(Deserialize)]
struct RawEntry {
    address: Option<u64>,
    size: Option<u64>,
    end_address: Option<u64>,
    region: Option<String>,
    device: Option<String>,
    span: Option<SpanSpec>,
}

/// True when the text has nothing but comments and blank lines (a real `pm_static.yml` in the
/// corpus is exactly that: PyYAML loads it as `None`, and Partition Manager then has no static
/// configuration at all).
pub fn only_comments(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---" || l == "...")
}

/// The 1-based line where top-level key `name` is written (block style: at column 0).
pub fn key_line(text: &str, name: &str) -> Option<u32> {
    text.lines().enumerate().find_map(|(i, l)| {
        let rest = l
            .strip_prefix(name)
            .or_else(|| l.strip_prefix(&format!("\"{name}\"")))
            .or_else(|| l.strip_prefix(&format!("'{name}'")))?;
        rest.trim_start()
            .starts_with(':')
            .then(|| u32::try_from(i + 1).unwrap_or(u32::MAX))
    })
}

/// A YAML error as `file:line:col: not <what>: …`, the position taken from the parser's
/// message (`line N column M`) so the `at` prefix is the same as every other error's.
pub fn syntax_error(file: &Path, what: &str, e: &dyn std::fmt::Display) -> PmError {
    let msg = e.to_string();
    let pos = msg.find("line ").and_then(|i| {
        let mut w = msg[i + 5..].split(|c: char| !c.is_ascii_digit() && c != ' ');
        let nums: Vec<u64> = w
            .next()?
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let line = *nums.first()?;
        let col = msg[i..].find("column ").and_then(|j| {
            msg[i + j + 7..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        });
        Some(match col {
            Some(c) => format!(":{line}:{c}"),
            None => format!(":{line}"),
        })
    });
    let first = msg
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ");
    PmError::Invalid {
        at: format!("{}{}", file.display(), pos.unwrap_or_default()),
        message: format!("not {what}: {first}"),
    }
}

/// Read a PM map. Errors name `file:line` and the partition.
pub fn read_map(text: &str, file: &Path) -> Result<Vec<PmEntry>, PmError> {
    let f = file.display();
    if only_comments(text) {
        return Err(PmError::Invalid {
            at: format!("{f}:1"),
            message: "no partitions: every line is a comment or blank (Partition Manager \
                      reads such a file as no static configuration at all)"
                .into(),
        });
    }
    let map: BTreeMap<String, Spanned<RawEntry>> = serde_saphyr::from_str(text)
        .map_err(|e| syntax_error(file, "a Partition Manager map", &e))?;
    let mut out = Vec::with_capacity(map.len());
    for (name, sp) in map {
        let line = key_line(text, &name)
            .unwrap_or_else(|| u32::try_from(sp.referenced.line()).unwrap_or(u32::MAX));
        let raw = sp.value;
        let invalid = |message: String| PmError::Invalid {
            at: format!("{f}:{line}"),
            message: format!("partition `{name}`: {message}"),
        };
        let (Some(address), Some(size)) = (raw.address, raw.size) else {
            let which = if raw.address.is_none() {
                "address"
            } else {
                "size"
            };
            return Err(invalid(format!(
                "no `{which}`: a static or generated map pins both (a `pm.yml` placement \
                 request is not a map Partition Manager has resolved)"
            )));
        };
        // PM maps describe 32-bit address spaces; a larger end would truncate to a wrong partition.
        if address.checked_add(size).is_none_or(|end| end > 1 << 32) {
            return Err(invalid(format!(
                "address {address:#x} + size {size:#x} ends past the 32-bit address space"
            )));
        }
        out.push(PmEntry {
            name,
            line,
            address,
            size,
            end_address: raw.end_address,
            region: raw.region,
            device: raw.device.filter(|d| !d.is_empty()),
            span: raw.span.map(SpanSpec::names).unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(t: &str) -> Result<Vec<PmEntry>, PmError> {
        read_map(t, Path::new("pm_static.yml"))
    }

    #[test]
    fn anchors_flow_style_and_upper_case_hex() {
        let t = "app: {address: 0x18200, size: 0x5AE00}\n\
                 mcuboot_primary:\n  address: 0xc000\n  orig_span: &id001 [mcuboot_pad, app]\n  size: 0x69000\n  span: *id001\n\
                 one: {address: 0x0, size: 0x10, span: {one_of: [app]}}\n\
                 single: {address: 0x0, size: 0x10, span: app}\n";
        let e = read(t).unwrap();
        let by = |n: &str| e.iter().find(|x| x.name == n).unwrap().clone();
        assert_eq!((by("app").size, by("app").line), (0x5ae00, 1));
        assert_eq!(by("mcuboot_primary").span, vec!["mcuboot_pad", "app"]);
        assert_eq!(by("mcuboot_primary").line, 2);
        assert_eq!(by("one").span, vec!["app"]);
        assert_eq!(by("single").span, vec!["app"]);
    }

    #[test]
    fn comments_only_is_refused_at_line_1() {
        let e = read("# a:\n#   address: 0x0\n\n").unwrap_err().to_string();
        assert!(
            e.starts_with("pm_static.yml:1:") && e.contains("comment"),
            "{e}"
        );
    }

    #[test]
    fn missing_address_and_overflow_name_line_and_partition() {
        let e = read("a: {address: 0x0, size: 0x10}\nb:\n  size: 0x10\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("pm_static.yml:2:") && e.contains("`b`") && e.contains("address"),
            "{e}"
        );
        let e = read("x: {address: 0xfffff000, size: 0x2000}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("pm_static.yml:1:") && e.contains("32-bit"),
            "{e}"
        );
        let e = read("- a\n- b\n").unwrap_err().to_string();
        assert!(
            e.starts_with("pm_static.yml") && e.contains("not a Partition Manager map"),
            "{e}"
        );
    }
}
