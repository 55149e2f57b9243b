//! The command line itself: clap's own consistency checks on the whole command, every
//! `dfu-hil` command line the READMEs show, and their exit-code tables against the one table
//! in `dfu_hil_runner::exit`.

use clap::Parser;
use dfu_hil_cli::Cli;
use dfu_hil_runner::exit::Exit;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// clap checks option clashes (e.g. a subcommand's `-v` against the global `-v`) only in debug
/// builds, when the command is built: do it here, so such a clash fails a test, not a user.
#[test]
fn whole_command_passes_clap_debug_assert() {
    dfu_hil_cli::command().debug_assert();
}

/// Split a shell line into words: whitespace, with "double" and 'single' quotes; stops at an
/// unquoted `#` comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The `dfu-hil` arguments of every command line in the Markdown's code blocks:
/// `cargo run [--release …] -- ARGS` or `dfu-hil ARGS`. Other lines are not dfu-hil.
fn dfu_hil_lines(markdown: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    let mut in_block = false;
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let words = shell_words(line);
        let args = match words.first().map(String::as_str) {
            Some("cargo") if words.get(1).map(String::as_str) == Some("run") => {
                match words.iter().position(|w| w == "--") {
                    Some(p) => words[p + 1..].to_vec(),
                    None => continue,
                }
            }
            Some("dfu-hil") => words[1..].to_vec(),
            _ => continue,
        };
        found.push((i + 1, args));
    }
    found
}

#[test]
fn shell_words_split_like_a_shell() {
    assert_eq!(
        shell_words(r#"cargo run -- farm --inventory "$X Y" -t a  # comment"#),
        [
            "cargo",
            "run",
            "--",
            "farm",
            "--inventory",
            "$X Y",
            "-t",
            "a"
        ]
    );
    assert_eq!(shell_words("a#b 'c d'"), ["a#b", "c d"]);
}

#[test]
fn every_readme_command_line_parses() {
    let mut checked = 0;
    for file in ["README.md", "ci/README.md"] {
        for (line, args) in dfu_hil_lines(&read(file)) {
            let argv = std::iter::once("dfu-hil".to_string()).chain(args.iter().cloned());
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!(
                    "{file}:{line}: `dfu-hil {}` does not parse:\n{e}",
                    args.join(" ")
                );
            }
            checked += 1;
        }
    }
    // Both READMEs show commands; finding none would mean the extraction broke.
    assert!(checked >= 15, "only {checked} command lines found");
}

/// The README's `lint --board` example must work on a fresh checkout: the inventory it names
/// exists and has that board (it used to name ci/lab.yaml, which is not in the repository).
#[test]
fn readme_lint_board_example_runs() {
    let readme = read("README.md");
    let (line, args) = dfu_hil_lines(&readme)
        .into_iter()
        .find(|(_, a)| {
            a.first().map(String::as_str) == Some("lint") && a.contains(&"--board".into())
        })
        .expect("README shows `lint --board`");
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(&args)
        .current_dir(root())
        .output()
        .expect("run dfu-hil");
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        err.is_empty() && out.contains("ok      "),
        "README.md:{line}: `dfu-hil {}`:\n{out}{err}",
        args.join(" ")
    );
}

/// The rows of the Markdown table that follows `heading`: (code, other cells).
fn table_after(markdown: &str, heading: &str) -> Vec<(i32, Vec<String>)> {
    let start = markdown
        .find(heading)
        .unwrap_or_else(|| panic!("no `{heading}`"));
    markdown[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            let code = cells[0].parse().ok()?;
            Some((code, cells[1..].to_vec()))
        })
        .collect()
}

/// The README's table is `Exit::markdown_table()`, verbatim.
#[test]
fn readme_exit_table_is_the_runner_table() {
    let readme = read("README.md");
    let want = Exit::markdown_table();
    assert!(
        readme.contains(&want),
        "README.md's exit-code table differs from dfu_hil_runner::exit; it should read:\n{want}"
    );
}

/// ci/README.md words the meanings for the farm, but has the same codes and the same retry
/// advice as the table.
#[test]
fn ci_readme_exit_table_agrees_with_the_runner_table() {
    let rows = table_after(&read("ci/README.md"), "## Exit codes");
    let codes: Vec<i32> = rows.iter().map(|(c, _)| *c).collect();
    let mut want: Vec<i32> = Exit::ALL.iter().map(|e| e.as_i32()).collect();
    let mut got = codes.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "ci/README.md exit codes");
    for (code, cells) in rows {
        let exit = Exit::from_code(code).unwrap();
        let retry = cells.get(1).map(String::as_str).unwrap_or_default();
        let shown = match retry {
            "—" | "-" => None,
            r if r.starts_with("yes") => Some(true),
            r if r.starts_with("no") => Some(false),
            r => panic!("ci/README.md: code {code}: retry cell {r:?}"),
        };
        assert_eq!(shown, exit.retry(), "ci/README.md: retry advice for {code}");
    }
}

fn dfu_hil(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(args)
        .arg("--root")
        .arg(root())
        .output()
        .expect("run dfu-hil");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

/// `image sign` in the debug binary, as the README shows it: no clap panic (exit 101), and the
/// image version given with `--version`.
#[test]
fn image_sign_runs_in_the_debug_binary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, text) = dfu_hil(&["image", "sign", "--help"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("--version"), "{text}");
    let key = d.join("key.pem");
    std::fs::write(
        &key,
        dfu_hil_mcuboot::keys::SigningKey::generate_p256_from_seed(b"readme").to_pem(),
    )
    .unwrap();
    let input = d.join("in.bin");
    let mut bin = vec![0u8; 0x200];
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&0x0000_c301u32.to_le_bytes());
    bin.extend(std::iter::repeat_n(0x5a, 0x1000));
    std::fs::write(&input, bin).unwrap();
    let output = d.join("out.bin");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (code, text) = dfu_hil(&[
        "image",
        "sign",
        "-k",
        &s(&key),
        "--header-size",
        "0x200",
        "--version",
        "1.2.3",
        "--slot-size",
        "0x7a000",
        &s(&input),
        &s(&output),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("version 1.2.3"), "{text}");
    // The global -v still means --verbose, on any command.
    let (code, text) = dfu_hil(&["-v", "image", "inspect", &s(&output), "--key", &s(&key)]);
    assert_eq!(code, Some(0), "{text}");
}

/// A missing inventory is input the user got wrong (96), for `run`, `lint` and
/// `inventory list` alike; not an unavailable board (98).
#[test]
fn missing_inventory_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-lab.yaml");
    let inv = missing.to_str().unwrap();
    let j = dir.path().join("junit.xml");
    let (code, text) = dfu_hil(&[
        "run",
        "internal-swap-revert",
        "--board",
        "dk-1",
        "--inventory",
        inv,
        "--junit",
        j.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(96), "{text}");
    assert!(text.contains("no-lab.yaml"), "{text}");
    let (code, text) = dfu_hil(&["lint", "--board", "dk-1", "--inventory", inv]);
    assert_eq!(code, Some(96), "{text}");
    assert!(text.contains("no-lab.yaml"), "{text}");
    let (code, text) = dfu_hil(&["inventory", "list", "--inventory", inv]);
    assert_eq!(code, Some(96), "{text}");
    // A board id the (readable) inventory does not have is a typo: input as well.
    let example = root().join("ci/lab.example.yaml");
    let (code, text) = dfu_hil(&[
        "run",
        "internal-swap-revert",
        "--board",
        "dk-1",
        "--inventory",
        example.to_str().unwrap(),
        "--junit",
        j.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(96), "{text}");
    assert!(text.contains("no board `dk-1`"), "{text}");
}

/// `inventory discover --check` on a desk that differs from the file (the example's serial
/// numbers are made up, so nothing here matches) exits with the table's infrastructure code.
#[test]
fn inventory_check_uses_the_table() {
    let example = root().join("ci/lab.example.yaml");
    let (code, text) = dfu_hil(&[
        "inventory",
        "discover",
        "--inventory",
        example.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(code, Some(Exit::Infrastructure.as_i32()), "{text}");
    assert!(text.contains("difference"), "{text}");
}
