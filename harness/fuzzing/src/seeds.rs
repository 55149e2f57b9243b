//! Seed inputs per target, generated at run time from what the repository and the shared test
//! data already hold: the bundled scenarios and layouts, imgtool's images
//! (`../shared/vectors/imgtool`), the real-build corpus (`../shared/corpus`: Partition Manager
//! maps, `.config` files), and packets the simulated board really exchanges. Nothing is copied
//! into the repository; `fuzz-seeds` writes them to `fuzz/corpus/<target>/` (gitignored).

use std::path::{Path, PathBuf};

use dfu_hil_mcuboot::trailer::{Field, SwapType, TrailerLayout, UpgradeMode};
use dfu_hil_smp::{group, img_cmd, map, os_cmd, uint, Op, Packet, Value, Version};

use crate::sim_target::{factory_app, with_factory_board};
use crate::Target;

/// The repository root (the scenarios and layouts it bundles).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/corpus` beside the repository, or `$DFU_HIL_CORPUS` (as the build crate's
/// corpus tests find it).
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("DFU_HIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/corpus"))
}

/// `../shared/vectors/imgtool` beside the repository, or `$DFU_HIL_VECTORS`.
pub fn vectors_dir() -> PathBuf {
    std::env::var_os("DFU_HIL_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/vectors/imgtool"))
}

/// Every seed of `target`. Missing shared data only means fewer seeds: each target also has
/// seeds built here, so the list is never empty.
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    let mut out = match target {
        Target::SerialFraming => requests()
            .iter()
            .chain(&responses())
            .flat_map(|p| {
                [
                    dfu_hil_smp::serial::encode_zephyr(p),
                    dfu_hil_smp::serial::encode_client(p),
                    dfu_hil_smp::serial::encode_client_lines(p, 64),
                ]
            })
            .chain([b"uart:~$ [00:00:01.000] <inf> app: booted\r\n".to_vec()])
            .collect(),
        Target::SmpPacket => responses().into_iter().chain(requests()).collect(),
        Target::Image => images(),
        Target::Trailer => trailers(),
        Target::Scenario => {
            let dir = repo().join("scenarios");
            let mut v = files(&dir, &["yaml"]);
            v.extend(files(&dir.join("common"), &["yaml"]));
            v
        }
        Target::Layout => files(&repo().join("partitions"), &["yaml"]),
        Target::PmImport => {
            let mut v = corpus_files(|name| {
                name.ends_with(".yml") || name == "pm.config" || name.starts_with("pm_CPUNET")
            });
            v.extend(files(&corpus_dir().join("pm-static"), &["yml"]));
            v
        }
        Target::Kconfig => corpus_files(|name| name.ends_with(".config")),
        Target::Ihex => images().iter().map(|i| to_ihex(0x0000_c000, i)).collect(),
        Target::SimSmpServer => {
            let mut v = requests();
            v.push(requests().concat());
            v
        }
    };
    out.push(Vec::new());
    out
}

/// Files directly in `dir` with one of these extensions, sorted (deterministic seeds).
fn files(dir: &Path, exts: &[&str]) -> Vec<Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Files of the corpus's build folders whose name passes `keep`, sorted.
fn corpus_files(keep: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(corpus_dir().join("ncs-builds")) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .filter_map(|build| std::fs::read_dir(build.path()).ok())
        .flat_map(|files| files.flatten().map(|f| f.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&keep))
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// imgtool's images plus the simulated board's app.
fn images() -> Vec<Vec<u8>> {
    let mut v = files(&vectors_dir(), &["bin"]);
    v.extend(factory_app().map(|(_, app)| app));
    v
}

fn request(op: Op, group: u16, id: u8, body: Value) -> Vec<u8> {
    Packet::request(Version::V2, op, group, id, 1, body).encode()
}

/// The requests a client sends in a DFU: echo, list, parameters, an upload's first chunk,
/// test, confirm, erase, reset; one v1 request too.
fn requests() -> Vec<Vec<u8>> {
    let image = factory_app().map(|(_, a)| a).unwrap_or_default();
    let chunk = image.get(..128).unwrap_or(&image).to_vec();
    let sha = dfu_hil_sim::device::smp_server::file_sha(&image);
    let text = |s: &str| Value::Text(s.into());
    vec![
        request(Op::Write, group::OS, os_cmd::ECHO, map([("d", text("hi"))])),
        request(Op::Read, group::IMAGE, img_cmd::STATE, map([])),
        request(Op::Read, group::OS, os_cmd::PARAMS, map([])),
        request(Op::Read, group::OS, os_cmd::TASKSTAT, map([])),
        request(Op::Read, group::OS, os_cmd::BOOTLOADER_INFO, map([])),
        request(Op::Read, group::IMAGE, img_cmd::SLOT_INFO, map([])),
        request(
            Op::Write,
            group::IMAGE,
            img_cmd::UPLOAD,
            map([
                ("image", uint(0)),
                ("len", uint(image.len() as u64)),
                ("off", uint(0)),
                ("sha", Value::Bytes(sha)),
                ("data", Value::Bytes(chunk)),
            ]),
        ),
        request(
            Op::Write,
            group::IMAGE,
            img_cmd::STATE,
            map([("confirm", Value::Bool(true))]),
        ),
        request(
            Op::Write,
            group::IMAGE,
            img_cmd::ERASE,
            map([("slot", uint(1))]),
        ),
        request(Op::Write, group::OS, os_cmd::RESET, map([])),
        Packet::request(
            Version::V1,
            Op::Read,
            group::IMAGE,
            img_cmd::STATE,
            2,
            map([]),
        )
        .encode(),
    ]
}

/// What the simulated board answers to [`requests`]: real response bodies (image list, params,
/// errors) for the client-side decoders.
fn responses() -> Vec<Vec<u8>> {
    requests()
        .iter()
        .flat_map(|r| with_factory_board(|b| b.smp_request(r)).unwrap_or_default())
        .collect()
}

/// A 12-byte layout head (the trailer target's encoding) and a tail to decode: the trailer
/// states a DFU goes through, for a few modes and alignments.
fn trailers() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (mode, mode_byte, max_align, write) in [
        (UpgradeMode::SwapMove, 0u8, 8u32, 4u32),
        (UpgradeMode::SwapScratch, 1, 8, 4),
        (UpgradeMode::SwapOffset, 2, 16, 16),
        (UpgradeMode::OverwriteOnly, 3, 32, 8),
    ] {
        let l = TrailerLayout {
            slot_size: 0x2000,
            max_align,
            write_size: write,
            erased: 0xff,
            max_sectors: 16,
            mode,
        };
        let mut head = Vec::with_capacity(12);
        head.extend(l.slot_size.to_le_bytes());
        head.extend(l.max_sectors.to_le_bytes());
        head.extend([max_align as u8, write as u8, l.erased, mode_byte]);
        let (off, len) = l.tail();
        let mut slot = vec![l.erased; l.slot_size as usize];
        let mut states = vec![slot.clone()];
        for w in [
            l.magic_write(),
            l.swap_info_write(0, SwapType::Test),
            l.swap_size_write(0x1000),
            l.status_record_write(0, 1),
            l.flag_write(Field::CopyDone, 1),
            l.flag_write(Field::ImageOk, 1),
        ] {
            let at = w.offset as usize;
            if let Some(dst) = slot.get_mut(at..at + w.data.len()) {
                dst.copy_from_slice(&w.data);
            }
            states.push(slot.clone());
        }
        for s in states {
            let mut seed = head.clone();
            seed.extend_from_slice(&s[off as usize..(off + len) as usize]);
            out.push(seed);
        }
    }
    out
}

/// Intel HEX of `data` at `base`, as a build writes `zephyr.signed.hex`: extended linear
/// address records, 16-byte data records, end of file.
pub fn to_ihex(base: u32, data: &[u8]) -> Vec<u8> {
    fn record(out: &mut String, kind: u8, addr: u16, bytes: &[u8]) {
        let mut sum = (bytes.len() as u8)
            .wrapping_add((addr >> 8) as u8)
            .wrapping_add(addr as u8)
            .wrapping_add(kind);
        out.push_str(&format!(":{:02X}{addr:04X}{kind:02X}", bytes.len()));
        for b in bytes {
            sum = sum.wrapping_add(*b);
            out.push_str(&format!("{b:02X}"));
        }
        out.push_str(&format!("{:02X}\n", sum.wrapping_neg()));
    }
    let mut out = String::new();
    let mut upper = None;
    for (i, chunk) in data.chunks(16).enumerate() {
        let addr = base.wrapping_add((i * 16) as u32);
        if upper != Some(addr >> 16) {
            upper = Some(addr >> 16);
            record(&mut out, 4, 0, &((addr >> 16) as u16).to_be_bytes());
        }
        record(&mut out, 0, addr as u16, chunk);
    }
    record(&mut out, 1, 0, &[]);
    out.into_bytes()
}
