//! Finding the line a finding points at: a Kconfig symbol in a `.config`, a partition (or one of
//! its fields) in a Partition Manager `partitions.yml`. The facts carry their own source when
//! the build reader set one; these lookups cover the symbols that are absent (`# CONFIG_X is not
//! set`) and the partition fields the layout does not keep lines for.

use super::Evidence;
use crate::facts::{Fact, Source};
use std::path::Path;

fn lines(path: &Path) -> Option<Vec<String>> {
    let bytes = std::fs::read(path).ok()?;
    Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// The 1-based line of `SYMBOL=…` or `# SYMBOL is not set` in a `.config`, with its text.
pub fn kconfig_line(path: &Path, symbol: &str) -> Option<(u32, String)> {
    let set = format!("{symbol}=");
    let unset = format!("# {symbol} is not set");
    lines(path)?
        .into_iter()
        .enumerate()
        .find(|(_, l)| l.starts_with(&set) || l.trim_end() == unset)
        .map(|(i, l)| (i as u32 + 1, l.trim_end().to_owned()))
}

/// Evidence for a Kconfig fact: where the reader found it, else the line that leaves it unset in
/// `config`, else the file with "not set (default assumed)".
pub fn kconfig_evidence<T: std::fmt::Display>(
    fact: &Fact<T>,
    config: &Path,
    symbol: &str,
) -> Evidence {
    source_evidence(
        fact.source.as_ref(),
        &fact.value.to_string(),
        config,
        symbol,
    )
}

/// [`kconfig_evidence`] for a value without `Display`: `value` is its text.
pub fn source_evidence(
    source: Option<&Source>,
    value: &str,
    config: &Path,
    symbol: &str,
) -> Evidence {
    if let Some(src) = source {
        let text = kconfig_line(&src.file, symbol)
            .filter(|(l, _)| src.line == 0 || *l == src.line)
            .map(|(_, t)| t)
            .or_else(|| {
                // The reader may cite another spelling of the symbol (legacy names): its line.
                lines(&src.file).and_then(|ls| ls.get(src.line.checked_sub(1)? as usize).cloned())
            })
            .unwrap_or_else(|| format!("{symbol}={value}"));
        return Evidence::new(&src.file, Some(src.line), text);
    }
    match kconfig_line(config, symbol) {
        Some((line, text)) => Evidence::new(config, Some(line), text),
        None => Evidence::new(
            config,
            None,
            format!("{symbol} not set: Kconfig default {value} assumed"),
        ),
    }
}

/// Evidence for a symbol that has no fact (absent drivers, options read only here).
pub fn symbol_evidence(config: &Path, symbol: &str, absent: &str) -> Evidence {
    match kconfig_line(config, symbol) {
        Some((line, text)) => Evidence::new(config, Some(line), text),
        None => Evidence::new(config, None, format!("{symbol} {absent}")),
    }
}

/// The top-level entry `name:` of a Partition Manager file: its 1-based line.
pub fn pm_entry_line(path: &Path, name: &str) -> Option<u32> {
    let head = format!("{name}:");
    lines(path)?
        .iter()
        .position(|l| l.trim_end() == head || l.starts_with(&format!("{head} ")))
        .map(|i| i as u32 + 1)
}

/// A field (`size`, `address`, `region`, `device`) of the top-level entry `name:` in a Partition
/// Manager file written in block style, as NCS writes `partitions.yml`: its line and raw value.
pub fn pm_field(path: &Path, name: &str, key: &str) -> Option<(u32, String)> {
    let all = lines(path)?;
    let start = pm_entry_line(path, name)? as usize; // index of the line after the entry head
    let want = format!("{key}:");
    for (i, l) in all.iter().enumerate().skip(start) {
        if !l.starts_with(' ') && !l.starts_with('\t') && !l.trim().is_empty() {
            break; // next top-level entry
        }
        let t = l.trim();
        if let Some(v) = t.strip_prefix(&want) {
            return Some((i as u32 + 1, v.trim().to_owned()));
        }
    }
    None
}

/// Evidence for a partition of `partitions.yml`: its `key` line when there is one, else its
/// entry line, else the file.
pub fn partition_evidence(path: &Path, name: &str, key: &str, text: String) -> Evidence {
    if let Some((line, _)) = pm_field(path, name, key) {
        return Evidence::new(path, Some(line), text);
    }
    Evidence::new(path, pm_entry_line(path, name), text)
}

/// The line of a devicetree node labelled `label` (`label: partition@…`) in a `zephyr.dts`.
pub fn dts_label_line(path: &Path, label: &str) -> Option<u32> {
    let want = format!("{label}:");
    lines(path)?
        .iter()
        .position(|l| l.trim_start().starts_with(&want))
        .map(|i| i as u32 + 1)
}

/// The devicetree node label of a harness partition name read from `zephyr.dts`.
pub fn dts_label(name: &str) -> Option<&'static str> {
    Some(match name {
        "slot0" => "slot0_partition",
        "slot1" => "slot1_partition",
        "mcuboot_primary_1" => "slot2_partition",
        "mcuboot_secondary_1" => "slot3_partition",
        "scratch" => "scratch_partition",
        _ => return None,
    })
}

/// An integer as Kconfig and Partition Manager write them: decimal or `0x` hex.
pub fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim().trim_matches('"');
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// Arguments of `CONFIG_MCUBOOT_EXTRA_IMGTOOL_ARGS` split as CMake's `separate_arguments(UNIX_COMMAND)`
/// does for plain words (quotes removed).
pub fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_set_and_unset_symbols_and_pm_fields() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join(".config");
        std::fs::write(
            &c,
            "CONFIG_A=1\n# CONFIG_BOOT_MAX is not set\nCONFIG_BOOT_MAX_IMG_SECTORS=128\n",
        )
        .unwrap();
        assert_eq!(
            kconfig_line(&c, "CONFIG_BOOT_MAX_IMG_SECTORS"),
            Some((3, "CONFIG_BOOT_MAX_IMG_SECTORS=128".into()))
        );
        assert_eq!(kconfig_line(&c, "CONFIG_BOOT_MAX").unwrap().0, 2);
        assert_eq!(kconfig_line(&c, "CONFIG_NONE"), None);

        let p = d.path().join("partitions.yml");
        std::fs::write(
            &p,
            "app:\n  address: 0xc200\n  size: 0x1000\nmcuboot_secondary:\n  address: 0x0\n  \
             device: MX25R64\n  region: external_flash\n  size: 0xf0000\n",
        )
        .unwrap();
        assert_eq!(pm_entry_line(&p, "mcuboot_secondary"), Some(4));
        assert_eq!(
            pm_field(&p, "mcuboot_secondary", "size"),
            Some((8, "0xf0000".into()))
        );
        assert_eq!(pm_field(&p, "app", "region"), None);
        assert_eq!(parse_int("0xF0000"), Some(0xf0000));
        let dts = d.path().join("zephyr.dts");
        std::fs::write(&dts, "/ {\n\t\t\tslot1_partition: partition@80000 {\n").unwrap();
        assert_eq!(dts_label_line(&dts, dts_label("slot1").unwrap()), Some(2));
        assert_eq!(parse_int("\"512\""), Some(512));
    }

    #[test]
    fn splits_imgtool_args_like_cmake() {
        assert_eq!(
            split_args(" --pad-header  --header-size 0x200 \"a b\""),
            ["--pad-header", "--header-size", "0x200", "a b"]
        );
        assert!(split_args("").is_empty());
    }
}
