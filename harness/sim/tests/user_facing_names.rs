//! No Rust-internal name (`SimBoard::netcore_flash`, `FlashMap::read`, …) in a message a user
//! reads: every sentence-like string literal in the simulated board's and the runner's sources
//! is scanned for a `Type::item` path. Strings without a space (attribute paths such as
//! `deserialize_with = "crate::limits::ms"`) are not messages and are skipped.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The contents of the ordinary string literals of `src` (comments and char literals
/// skipped; a `\` line continuation joins lines as Rust does).
fn string_literals(src: &str) -> Vec<(usize, String)> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
        }
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '\'' {
            // char literal ('"', '\\', 'x') or a lifetime ('a): skip a literal only.
            if b.get(i + 1) == Some(&'\\') {
                i += 4;
                continue;
            }
            if b.get(i + 2) == Some(&'\'') {
                i += 3;
                continue;
            }
            i += 1;
            continue;
        }
        if c == '"' {
            let start = line;
            let mut s = String::new();
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\n' {
                    line += 1;
                }
                if b[i] == '\\' {
                    if b.get(i + 1) == Some(&'\n') {
                        i += 1;
                        while i < b.len() && b[i].is_whitespace() {
                            if b[i] == '\n' {
                                line += 1;
                            }
                            i += 1;
                        }
                        continue;
                    }
                    s.push(b[i]);
                    if let Some(n) = b.get(i + 1) {
                        s.push(*n);
                    }
                    i += 2;
                    continue;
                }
                s.push(b[i]);
                i += 1;
            }
            out.push((start, s));
        }
        i += 1;
    }
    out
}

/// `Ident::ident` with an upper-case type name, or a `crate::`/`self::` path, inside `s`.
fn internal_path(s: &str) -> Option<String> {
    let w: Vec<char> = s.chars().collect();
    for i in 1..w.len().saturating_sub(2) {
        if w[i] == ':' && w[i + 1] == ':' && (w[i + 2].is_alphabetic() || w[i + 2] == '_') {
            let mut a = i;
            while a > 0 && (w[a - 1].is_alphanumeric() || w[a - 1] == '_') {
                a -= 1;
            }
            let head: String = w[a..i].iter().collect();
            if head.is_empty() || head == "std" {
                continue;
            }
            let typeish = head.chars().next().is_some_and(|c| c.is_uppercase());
            if typeish || head == "crate" || head == "self" || head.starts_with("dfu_hil") {
                let tail: String = w[i..(i + 24).min(w.len())].iter().collect();
                return Some(format!("{head}{tail}"));
            }
        }
    }
    None
}

#[test]
fn no_rust_paths_in_messages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["sim/src", "runner/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 20,
        "sources not found under {}",
        root.display()
    );
    let mut hits = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (line, s) in string_literals(&text) {
            if !s.contains(' ') {
                continue;
            }
            if let Some(p) = internal_path(&s) {
                hits.push(format!("{}:{line}: {p}", f.display()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "internal names in messages:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_scanner_sees_the_old_leak() {
    let src =
        "let e = \"read the network core's own flash instead: \\\n   SimBoard::netcore_flash)\";";
    let lits = string_literals(src);
    assert_eq!(lits.len(), 1);
    assert!(internal_path(&lits[0].1).is_some(), "{lits:?}");
    assert!(internal_path("see std::fs for files").is_none());
    assert!(internal_path("slot 1: state: pending").is_none());
}
