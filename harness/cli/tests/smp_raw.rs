//! `dfu-hil smp raw` against `dfu-hil sim serve` on a PTY: any group and command, the decoded
//! answer printed, exit 100 on a device error.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Served {
    child: std::process::Child,
    pty: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Served {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["sim", "serve", "--root"])
        .arg(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start sim serve");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let pty = loop {
        let line = lines.next().expect("sim serve printed its PTY").unwrap();
        if let Some(p) = line.strip_prefix("uart connected to pseudotty: ") {
            break p.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Served { child, pty }
}

fn raw(pty: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["smp", "--port", pty, "raw"])
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn raw_requests_against_the_simulated_board() {
    let s = serve();
    // Zephyr basic erase storage on an app without the group: a bare rc 8, exit 100.
    let (code, out, err) = raw(
        &s.pty,
        &["--group", "63", "--command", "0", "--op", "write"],
    );
    assert_eq!(code, Some(100), "{out}{err}");
    assert_eq!(out.trim(), r#"{"rc":8}"#);
    assert!(err.contains("NOT_SUPPORTED"), "{err}");
    // The same over SMP v1: the same bare rc 8.
    let (code, out, _) = raw(
        &s.pty,
        &[
            "--group",
            "63",
            "--command",
            "0",
            "--op",
            "write",
            "--smp-version",
            "1",
        ],
    );
    assert_eq!((code, out.trim()), (Some(100), r#"{"rc":8}"#));
    // os mcumgr_params: Zephyr's defaults for the plain app fixture.
    let (code, out, _) = raw(&s.pty, &["--group", "0", "--command", "6"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), r#"{"buf_count":4,"buf_size":384}"#);
    // A body, and a group error as SMP v2 encodes it.
    let (code, out, _) = raw(
        &s.pty,
        &[
            "--group",
            "0",
            "--command",
            "0",
            "--op",
            "write",
            "--body",
            r#"{"d":"hi"}"#,
        ],
    );
    assert_eq!((code, out.trim()), (Some(0), r#"{"r":"hi"}"#));
    let (code, out, _) = raw(
        &s.pty,
        &[
            "--group",
            "1",
            "--command",
            "0",
            "--op",
            "write",
            "--body",
            r#"{"hash":"hex:00","confirm":true}"#,
        ],
    );
    assert_eq!(
        (code, out.trim()),
        (Some(100), r#"{"err":{"group":1,"rc":24}}"#)
    );
    // A body that is not a map is refused before any I/O.
    let (code, _, err) = raw(&s.pty, &["--group", "1", "--command", "0", "--body", "[1]"]);
    assert_eq!(code, Some(96), "{err}");
}

/// Where smpmgr can send the same request (it has no group 63 or params command), both
/// clients see the same answer: `os echo`, and group 10 (enum, not in the simulated app)
/// refused by both.
#[test]
fn raw_agrees_with_smpmgr_where_it_can_send_the_request() {
    let Some(exe) = std::env::var_os("SMPMGR").map(PathBuf::from) else {
        eprintln!("SMPMGR not set; skipped");
        return;
    };
    let s = serve();
    let run = |args: &[&str]| {
        let o = Command::new(&exe)
            .args(["--port", &s.pty, "--timeout", "10"])
            .args(args)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let theirs = run(&["os", "echo", "agree"]);
    assert!(theirs.contains("agree"), "{theirs}");
    let (code, ours, _) = raw(
        &s.pty,
        &[
            "--group",
            "0",
            "--command",
            "0",
            "--op",
            "write",
            "--body",
            r#"{"d":"agree"}"#,
        ],
    );
    assert_eq!((code, ours.trim()), (Some(0), r#"{"r":"agree"}"#));
    let theirs = run(&["enum", "get-supported-groups"]);
    let (code, ours, _) = raw(&s.pty, &["--group", "10", "--command", "1"]);
    assert_eq!((code, ours.trim()), (Some(100), r#"{"rc":8}"#));
    assert!(
        theirs.contains("8")
            || theirs.to_ascii_uppercase().contains("NOT_SUPPORTED")
            || theirs.to_ascii_lowercase().contains("not supported"),
        "smpmgr should see the same refusal: {theirs}"
    );
}
