//! Serial over the network through the real ser2net (Debian's `ser2net` 4.x, the daemon a
//! labgrid exporter runs for each `NetworkSerialPort`): `dfu-hil sim serve` puts a simulated
//! board on a PTY, ser2net shares that PTY on a loopback port — once as RFC 2217
//! (`telnet(rfc2217)` accepter), once raw (`tcp`) — and the harness talks SMP through it, from
//! the library and from `dfu-hil smp --port rfc2217://…`.
//!
//! Without ser2net on PATH the test prints why and passes, unless `DFU_HIL_REQUIRE_SER2NET=1`
//! (set by `.ci/run`, which installs it), where a missing ser2net fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dfu_hil_smp::{open_serial, Client};

fn which(exe: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(exe))
        .find(|p| p.is_file())
}

/// ser2net's path, or `None` (after saying why) when the test is to be skipped.
pub fn ser2net_or_skip() -> Option<PathBuf> {
    match which("ser2net") {
        Some(p) => Some(p),
        None if std::env::var("DFU_HIL_REQUIRE_SER2NET").as_deref() == Ok("1") => {
            panic!("ser2net not found and DFU_HIL_REQUIRE_SER2NET=1 (apt-get install -y ser2net)")
        }
        None => {
            eprintln!("SKIPPED: ser2net not found (apt-get install -y ser2net); set DFU_HIL_REQUIRE_SER2NET=1 to make this a failure");
            None
        }
    }
}

/// Killed (and reaped) on drop, so a failing assertion leaves no daemon behind.
struct Reaped(Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `dfu-hil sim serve` in a child process; returns it and its PTY.
fn serve_sim(dir: &std::path::Path) -> (Reaped, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["sim", "serve", "--layout", "nrf52840-internal", "--flash"])
        .arg(dir.join("flash.bin"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dfu-hil sim serve");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let pty = loop {
        let line = lines
            .next()
            .expect("sim serve printed its PTY")
            .expect("read sim serve output");
        if let Some(p) = line.strip_prefix("uart connected to pseudotty: ") {
            break p.trim().to_owned();
        }
    };
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (Reaped(child), pty)
}

/// ser2net sharing `pty` on two loopback ports: RFC 2217 and raw.
fn start_ser2net(exe: &PathBuf, dir: &std::path::Path, pty: &str) -> (Reaped, u16, u16) {
    let (rfc, raw) = (free_port(), free_port());
    let config = format!(
        "%YAML 1.1\n---\n\
         connection: &rfc\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{rfc}\n  \
         connector: serialdev,{pty},115200n81,local\n\n\
         connection: &raw\n  accepter: tcp,127.0.0.1,{raw}\n  \
         connector: serialdev,{pty},115200n81,local\n"
    );
    let cfg = dir.join("ser2net.yaml");
    std::fs::write(&cfg, config).unwrap();
    let child = Command::new(exe)
        .arg("-n")
        .arg("-c")
        .arg(&cfg)
        .arg("-P")
        .arg(dir.join("ser2net.pid"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start ser2net");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", rfc)).is_err() {
        assert!(Instant::now() < deadline, "ser2net did not listen on {rfc}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The probe connection above must be gone before the real one (one user per port).
    std::thread::sleep(Duration::from_millis(200));
    (Reaped(child), rfc, raw)
}

#[test]
fn smp_through_real_ser2net_rfc2217_and_raw() {
    let Some(exe) = ser2net_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_sim, pty) = serve_sim(dir.path());
    let (_ser2net, rfc, raw) = start_ser2net(&exe, dir.path(), &pty);

    for url in [
        format!("rfc2217://127.0.0.1:{rfc}"),
        format!("tcp://127.0.0.1:{raw}"),
    ] {
        let started = Instant::now();
        let link = open_serial(&url, 115_200).unwrap_or_else(|e| panic!("open {url}: {e}"));
        let mut c = Client::new(link);
        c.set_timeout(Duration::from_secs(5));
        // Two console lines (the line limits of a stock Zephyr device apply over the network too).
        let text = "over the network ÿ ".repeat(5);
        assert_eq!(
            c.echo(&text)
                .unwrap_or_else(|e| panic!("echo over {url}: {e}")),
            text
        );
        let states = c
            .image_state()
            .unwrap_or_else(|e| panic!("image state over {url}: {e}"));
        assert!(states.iter().any(|s| s.slot == 0 && s.active), "{states:?}");
        eprintln!("{url}: echo + image state in {:?}", started.elapsed());
        drop(c);
        // ser2net lets the port go after the client leaves.
        std::thread::sleep(Duration::from_millis(300));
    }

    // The CLI accepts the URL wherever --port is.
    let out = Command::new(env!("CARGO_BIN_EXE_dfu-hil"))
        .args(["smp", "--port", &format!("rfc2217://127.0.0.1:{rfc}")])
        .args(["--timeout", "5", "image", "list"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run dfu-hil smp");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "dfu-hil smp over rfc2217 failed:\n{text}"
    );
}
