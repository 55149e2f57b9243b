//! A Kconfig `.config` file as `kconfiglib` / Zephyr's `kconfig.py` writes it, read line by
//! line so that every value keeps the line it came from.
//!
//! The format (Zephyr `scripts/kconfig/kconfiglib.py`, `Kconfig.write_config` and
//! `Symbol.config_string`): `CONFIG_X=y` / `=m` for bool and tristate symbols that are set,
//! `# CONFIG_X is not set` for ones that are not, bare decimal (`-1`, `128`) for `int`,
//! `0x…` for `hex`, and `"…"` with `\"` and `\\` escaped for `string`. Sysbuild's own
//! `.config` uses the prefix `SB_CONFIG_` instead of `CONFIG_`. Any other comment is a
//! menu heading and is skipped.

use crate::build::BuildError;
use crate::facts::{Fact, Source};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One value as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `=y`.
    Yes,
    /// `=m` (tristate module; Zephyr has no modules, kept for completeness).
    Module,
    /// `# CONFIG_X is not set`.
    NotSet,
    /// A quoted string, unescaped.
    Str(String),
    /// Anything unquoted other than `y`/`m`: an `int` or `hex` value, kept as written.
    Word(String),
}

/// A symbol's assignment and its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Value,
    pub line: u32,
}

/// A `.config` file, read.
#[derive(Debug, Clone)]
pub struct Kconfig {
    pub path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl Kconfig {
    /// Read and parse `path`.
    pub fn read(path: &Path) -> Result<Kconfig, BuildError> {
        let bytes = std::fs::read(path).map_err(|source| BuildError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // `.config` files are ASCII in practice; host paths in strings may not be. A stray
        // byte must not make the whole file unreadable.
        let text = String::from_utf8_lossy(&bytes);
        Kconfig::parse(path, &text)
    }

    /// Parse `text` as the contents of `path` (used for error locations only).
    pub fn parse(path: &Path, text: &str) -> Result<Kconfig, BuildError> {
        let mut entries = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let at = || format!("{}:{line}", path.display());
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                if let Some(name) = comment
                    .trim()
                    .strip_suffix(" is not set")
                    .filter(|n| is_symbol_name(n))
                {
                    entries.insert(
                        name.to_string(),
                        Entry {
                            value: Value::NotSet,
                            line,
                        },
                    );
                }
                continue;
            }
            let Some((name, value)) = trimmed.split_once('=') else {
                return Err(BuildError::Malformed {
                    at: at(),
                    message: format!("expected `CONFIG_NAME=value`, found `{}`", clip(trimmed)),
                });
            };
            let name = name.trim();
            if !is_symbol_name(name) {
                return Err(BuildError::Malformed {
                    at: at(),
                    message: format!("`{}` is not a Kconfig symbol name", clip(name)),
                });
            }
            let value = parse_value(value.trim()).map_err(|message| BuildError::Malformed {
                at: format!("{}:{line}", path.display()),
                message: format!("{name}: {message}"),
            })?;
            // kconfiglib writes each symbol once; if a hand-edited file repeats one, the
            // last assignment wins, as it does when Kconfig reads the file back.
            entries.insert(name.to_string(), Entry { value, line });
        }
        Ok(Kconfig {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The entry for a full symbol name (`CONFIG_BOOT_MAX_IMG_SECTORS`, `SB_CONFIG_…`).
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// All entries, by name.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether this is sysbuild's own `.config` (it holds `SB_CONFIG_*` symbols).
    pub fn is_sysbuild(&self) -> bool {
        self.entries.keys().any(|k| k.starts_with("SB_CONFIG_"))
    }

    /// Where `name` was read.
    pub fn source(&self, name: &str) -> Option<Source> {
        self.get(name).map(|e| Source {
            file: self.path.clone(),
            line: e.line,
        })
    }

    /// A bool symbol: `Some(true)` for `=y`/`=m`, `Some(false)` for "is not set" (or `=n`),
    /// `None` when the file does not mention it.
    pub fn bool(&self, name: &str) -> Option<Fact<bool>> {
        let e = self.get(name)?;
        let value = match &e.value {
            Value::Yes | Value::Module => true,
            Value::NotSet => false,
            Value::Word(w) => w == "y",
            Value::Str(_) => false,
        };
        Some(self.fact(name, value))
    }

    /// A bool symbol that is `y`; false (without a source) when absent.
    pub fn is_set(&self, name: &str) -> bool {
        self.bool(name).is_some_and(|f| f.value)
    }

    /// A bool with its Kconfig default when the symbol is absent (source `None`).
    pub fn bool_or(&self, name: &str, default: bool) -> Fact<bool> {
        self.bool(name).unwrap_or(Fact {
            value: default,
            source: None,
        })
    }

    /// A string symbol, unescaped (an unquoted value is taken as written).
    pub fn string(&self, name: &str) -> Option<Fact<String>> {
        let e = self.get(name)?;
        match &e.value {
            Value::Str(s) | Value::Word(s) => Some(self.fact(name, s.clone())),
            _ => None,
        }
    }

    /// An `int` or `hex` symbol. `Ok(None)` when absent or not set; an error naming
    /// file:line when the value is not a number.
    pub fn int(&self, name: &str) -> Result<Option<Fact<i64>>, BuildError> {
        let Some(e) = self.get(name) else {
            return Ok(None);
        };
        let text = match &e.value {
            Value::Word(w) | Value::Str(w) => w.as_str(),
            Value::NotSet => return Ok(None),
            Value::Yes | Value::Module => {
                return Err(self.malformed(name, e.line, "expected a number, found `y`"))
            }
        };
        match parse_number(text) {
            Some(v) => Ok(Some(self.fact(name, v))),
            None => Err(self.malformed(
                name,
                e.line,
                &format!("expected a decimal or 0x number, found `{}`", clip(text)),
            )),
        }
    }

    /// An `int`/`hex` symbol that must fit `u32` (sizes, counts, offsets).
    pub fn u32(&self, name: &str) -> Result<Option<Fact<u32>>, BuildError> {
        let Some(f) = self.int(name)? else {
            return Ok(None);
        };
        match u32::try_from(f.value) {
            Ok(v) => Ok(Some(Fact {
                value: v,
                source: f.source,
            })),
            Err(_) => {
                let line = f.source.as_ref().map_or(0, |s| s.line);
                Err(self.malformed(
                    name,
                    line,
                    &format!("{} is out of range 0..=0xffffffff", f.value),
                ))
            }
        }
    }

    fn fact<T>(&self, name: &str, value: T) -> Fact<T> {
        Fact {
            value,
            source: self.source(name),
        }
    }

    fn malformed(&self, name: &str, line: u32, message: &str) -> BuildError {
        BuildError::Malformed {
            at: format!("{}:{line}", self.path.display()),
            message: format!("{name}: {message}"),
        }
    }
}

fn is_symbol_name(s: &str) -> bool {
    !s.is_empty()
        && (s.starts_with("CONFIG_") || s.starts_with("SB_CONFIG_"))
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse_value(v: &str) -> Result<Value, String> {
    match v {
        "y" => return Ok(Value::Yes),
        "m" => return Ok(Value::Module),
        "n" => return Ok(Value::NotSet),
        _ => {}
    }
    let Some(body) = v.strip_prefix('"') else {
        return Ok(Value::Word(v.to_string()));
    };
    let mut out = String::new();
    let mut chars = body.chars();
    loop {
        match chars.next() {
            None => return Err("string has no closing quote".into()),
            Some('\\') => match chars.next() {
                Some(c) => out.push(c),
                None => return Err("string ends in a lone backslash".into()),
            },
            Some('"') => {
                let rest: String = chars.collect();
                if !rest.trim().is_empty() {
                    return Err(format!("text after the closing quote: `{}`", clip(&rest)));
                }
                return Ok(Value::Str(out));
            }
            Some(c) => out.push(c),
        }
    }
}

/// Decimal (optionally negative) or `0x` hex, as Kconfig writes `int` and `hex` symbols.
pub fn parse_number(text: &str) -> Option<i64> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let v = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

fn clip(s: &str) -> String {
    if s.chars().count() > 60 {
        let head: String = s.chars().take(60).collect();
        format!("{head}…")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Kconfig {
        Kconfig::parse(Path::new("x/.config"), text).unwrap()
    }

    #[test]
    fn reads_every_kind_of_line_with_its_line_number() {
        let k = parse(
            "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_BOOT_SWAP_USING_MOVE=y\n\
             # CONFIG_MCUBOOT_SERIAL is not set\nCONFIG_BOOT_MAX_IMG_SECTORS=128\n\
             CONFIG_ROM_START_OFFSET=0x200\nSB_CONFIG_MCUBOOT_MCUBOOT_IMAGE_NUMBER=-1\n\
             CONFIG_BOOT_SIGNATURE_KEY_FILE=\"C:/ncs/a \\\"b\\\" \\\\c.pem\"\n",
        );
        let f = k.bool("CONFIG_BOOT_SWAP_USING_MOVE").unwrap();
        assert!(f.value);
        assert_eq!(f.source.unwrap().line, 4);
        let f = k.bool("CONFIG_MCUBOOT_SERIAL").unwrap();
        assert!(!f.value);
        assert_eq!(f.source.unwrap().to_string(), "x/.config:5");
        assert_eq!(
            k.u32("CONFIG_BOOT_MAX_IMG_SECTORS").unwrap().unwrap().value,
            128
        );
        assert_eq!(
            k.u32("CONFIG_ROM_START_OFFSET").unwrap().unwrap().value,
            0x200
        );
        assert_eq!(
            k.int("SB_CONFIG_MCUBOOT_MCUBOOT_IMAGE_NUMBER")
                .unwrap()
                .unwrap()
                .value,
            -1
        );
        assert_eq!(
            k.string("CONFIG_BOOT_SIGNATURE_KEY_FILE").unwrap().value,
            "C:/ncs/a \"b\" \\c.pem"
        );
        assert!(k.is_sysbuild());
        assert!(k.bool("CONFIG_ABSENT").is_none());
        assert!(!k.bool_or("CONFIG_ABSENT", false).value);
        assert!(k.bool_or("CONFIG_ABSENT", true).source.is_none());
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Kconfig::parse(Path::new("b/.config"), "CONFIG_A=y\nnonsense\n").unwrap_err();
        assert!(e.to_string().starts_with("b/.config:2:"), "{e}");
        let e = Kconfig::parse(Path::new("b/.config"), "CONFIG_A=\"open\n").unwrap_err();
        assert!(e.to_string().contains("b/.config:1: CONFIG_A"), "{e}");
        let k = parse("CONFIG_N=12x\nCONFIG_BIG=0x1ffffffff\n");
        let e = k.int("CONFIG_N").unwrap_err();
        assert!(e.to_string().starts_with("x/.config:1: CONFIG_N"), "{e}");
        let e = k.u32("CONFIG_BIG").unwrap_err();
        assert!(e.to_string().starts_with("x/.config:2: CONFIG_BIG"), "{e}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "=",
            "CONFIG_=",
            "# CONFIG_ is not set",
            "CONFIG_A=\"\\",
            "CONFIG_A=\"x\" trailing",
            "\u{feff}CONFIG_A=y",
            "CONFIG_A=-",
            "CONFIG_A=0x",
        ] {
            if let Ok(k) = Kconfig::parse(Path::new("f"), text) {
                let _ = k.int("CONFIG_A");
            }
        }
        assert_eq!(parse_number("0x"), None);
        assert_eq!(parse_number("-"), None);
        assert_eq!(parse_number("0X1F"), Some(31));
    }
}
