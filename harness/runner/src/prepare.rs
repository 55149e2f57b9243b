//! Preparation: everything that can be checked before a board is touched — the layout, every
//! region and fixture a step names, the device link settings, the ELF files — so bad input
//! exits 96 with the file:line:col of the step that names it.

use crate::device_link::device_link;
use crate::fixtures::{self, Built, FixtureError};
use crate::options::RunOptions;
use crate::scenario::{LoadedScenario, Step};
use dfu_hil_mcuboot::layout::{Layout, LayoutError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{scenario}: layout `{layout}` not found (looked for {tried})")]
    NoLayout {
        scenario: PathBuf,
        layout: String,
        tried: String,
    },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{scenario}: {source}")]
    Fixture {
        scenario: PathBuf,
        source: FixtureError,
    },
    #[error("{scenario}:{line}:{column}: {message}")]
    Semantic {
        scenario: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    /// The build the scenario runs on cannot be read or used (`message` names the file:line).
    #[error("{scenario}: build: {message}")]
    Build { scenario: PathBuf, message: String },
    /// Values the scenario states that the build's MCUboot contradicts (each names both
    /// lines); see [`crate::build_input`] for why the build wins.
    #[error("{scenario}: the scenario disagrees with the build it runs on:\n{}\nhelp: drop these keys (the build's values are used) or set `override-build: true` in `bootloader:` to model another MCUboot on the simulated board", list.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"))]
    BuildDisagrees {
        scenario: PathBuf,
        list: Vec<crate::build_input::Disagreement>,
    },
}

/// The scenario's layout: `partitions/NAME.yaml` under the project root, or a path.
pub fn resolve_layout(root: &Path, s: &LoadedScenario) -> Result<Layout, SetupError> {
    let mut layout = resolve_named_layout(root, s)?;
    let g = s.scenario.geometry;
    if !g.is_default() {
        g.apply(&mut layout);
        layout.name = format!("{} ({})", layout.name, geometry_label(&g));
        layout.check(&s.path).map_err(|e| SetupError::Semantic {
            scenario: s.path.clone(),
            line: s
                .scenario
                .stated
                .bootloader
                .get("variants")
                .map_or(1, |a| a.line),
            column: s
                .scenario
                .stated
                .bootloader
                .get("variants")
                .map_or(1, |a| a.column),
            message: format!("{}: {e}", s.scenario.name),
        })?;
    }
    Ok(layout)
}

fn geometry_label(g: &crate::scenario::Geometry) -> String {
    let mut parts = vec![];
    if let Some(w) = g.write_size {
        parts.push(format!("write-size {w}"));
    }
    if let Some(e) = g.erased {
        parts.push(format!("erased {e:#04x}"));
    }
    if let Some(sz) = g.sector_size {
        parts.push(format!("sector-size {sz:#x}"));
    }
    parts.join(", ")
}

fn resolve_named_layout(root: &Path, s: &LoadedScenario) -> Result<Layout, SetupError> {
    if let Some(b) = &s.scenario.from_build {
        return Ok(b.layout.clone());
    }
    let name = &s.scenario.layout;
    if name.is_empty() {
        return Err(SetupError::Semantic {
            scenario: s.path.clone(),
            line: 1,
            column: 1,
            message: "no `layout:` and no build: name a layout from partitions/, or the build the scenario runs on (`build: DIR` or --build DIR)".into(),
        });
    }
    let candidates = [
        root.join("partitions").join(format!("{name}.yaml")),
        s.path.parent().unwrap_or(Path::new(".")).join(name),
    ];
    for c in &candidates {
        if c.is_file() {
            // An nRF Connect SDK Partition Manager map can be named directly, under any file
            // name: what it is is read from its content.
            let is_pm_map = std::fs::read_to_string(c).is_ok_and(|t| {
                dfu_hil_build::pm::sniff::sniff(&t) == dfu_hil_build::pm::sniff::FileKind::PmMap
            });
            if is_pm_map {
                let semantic = |message: String| SetupError::Semantic {
                    scenario: s.path.clone(),
                    line: 0,
                    column: 0,
                    message,
                };
                let imp = dfu_hil_build::pm::import_file(c, &Default::default())
                    .map_err(|e| semantic(e.to_string()))?;
                if !imp.missing.is_empty() {
                    return Err(semantic(format!(
                        "{}: the Partition Manager map has no {} (a partial pm_static.yml pins only \
                         some partitions: use the build's partitions.yml)",
                        c.display(),
                        imp.missing.join(", ")
                    )));
                }
                return Ok(imp.layout);
            }
            return Ok(Layout::load(c)?);
        }
    }
    Err(SetupError::NoLayout {
        scenario: s.path.clone(),
        layout: name.clone(),
        tried: candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Fixture names a scenario's steps use, with the step's location in the file that holds it.
fn referenced_fixtures(s: &LoadedScenario) -> Vec<(String, PathBuf, u64, u64)> {
    let mut out = Vec::new();
    for (i, st) in s.scenario.steps.iter().enumerate() {
        let mut names = Vec::new();
        step_fixtures(&st.value, &mut names);
        let (l, c) = (st.referenced.line(), st.referenced.column());
        let file = s.step_file(i);
        out.extend(names.into_iter().map(|n| (n, file.to_owned(), l, c)));
    }
    out
}

fn step_fixtures(step: &Step, out: &mut Vec<String>) {
    match step {
        Step::Flash(m) => out.extend(m.values().cloned()),
        Step::Upload(u) => out.push(u.image.clone()),
        Step::DeviceManager(d) => out.push(d.image.clone()),
        Step::Test(f) => out.push(f.clone()),
        Step::Confirm(c) => out.extend(c.image.clone()),
        Step::Expect(e) => {
            out.extend(e.running.clone());
            for slot in [&e.slot0, &e.slot1].into_iter().flatten() {
                out.extend(slot.image.clone());
            }
        }
        Step::ExpectError(e) => step_fixtures(&e.action, out),
        Step::Sweep(w) => w.all_steps().for_each(|s| step_fixtures(s, out)),
        _ => {}
    }
}

/// Partitions a step names.
fn step_regions(step: &Step) -> Vec<&String> {
    match step {
        Step::Flash(m) => m.keys().collect(),
        Step::ExpectTrailer(m) => m.keys().collect(),
        Step::Erase(e) => e.region.iter().collect(),
        Step::ExpectError(e) => step_regions(&e.action),
        Step::Sweep(w) => w.all_steps().flat_map(step_regions).collect(),
        _ => vec![],
    }
}

/// Check a scenario against its layout and build its fixtures (everything that can be known
/// before touching a board), so bad input exits 96 with a location instead of failing mid-run.
pub fn prepare(
    s: &LoadedScenario,
    opts: &RunOptions,
) -> Result<(Layout, BTreeMap<String, Built>), SetupError> {
    let applied = crate::build_input::apply(s.clone(), opts)?;
    let s = &applied;
    let layout = resolve_layout(&opts.root, s)?;
    if let Err(message) = device_link(s, &opts.device, &opts.board_device) {
        return Err(SetupError::Semantic {
            scenario: s.path.clone(),
            line: 0,
            column: 0,
            message,
        });
    }
    for (label, rel) in &s.scenario.elf {
        let p = elf_path(s, rel);
        if !p.is_file() {
            return Err(SetupError::Semantic {
                scenario: s.path.clone(),
                line: 0,
                column: 0,
                message: format!("elf `{label}`: no file {}", p.display()),
            });
        }
    }
    check_regions(s, &layout)?;
    let manifest_path = opts.root.join("firmware-fixtures").join("fixtures.yaml");
    let manifest = if manifest_path.is_file() {
        fixtures::load_manifest(&manifest_path).map_err(|source| SetupError::Fixture {
            scenario: s.path.clone(),
            source,
        })?
    } else {
        fixtures::Manifest::default()
    };
    let builder = fixtures::Builder {
        manifest_dir: opts.root.join("firmware-fixtures"),
        manifest,
        extra: &s.scenario.fixtures,
        scenario_dir: s.path.parent().unwrap_or(Path::new(".")).to_owned(),
        layout: &layout,
        bootloader: &s.scenario.bootloader,
        build: s.scenario.from_build.as_deref(),
        release: crate::build_input::release(&s.scenario),
        transport: s.scenario.transport,
    };
    check_build_key(s, &builder)?;
    let mut built = BTreeMap::new();
    for (name, file, line, column) in referenced_fixtures(s) {
        if built.contains_key(&name) {
            continue;
        }
        match builder.build(&name) {
            Ok(b) => {
                built.insert(name, b);
            }
            Err(FixtureError::Unknown(n)) => {
                return Err(SetupError::Semantic {
                    scenario: file,
                    line,
                    column,
                    message: format!("unknown fixture `{n}` (not in the scenario's `fixtures:` nor firmware-fixtures/fixtures.yaml)"),
                })
            }
            Err(source) => {
                return Err(SetupError::Fixture {
                    scenario: s.path.clone(),
                    source,
                })
            }
        }
    }
    Ok((layout, built))
}

/// MCUboot image numbers whose slot pair a step uses over SMP (upload, expect on slots, erase
/// of the secondary slot).
fn step_pairs(step: &Step) -> Vec<u32> {
    match step {
        Step::Upload(u) => vec![u.image_number],
        Step::DeviceManager(_) => vec![0],
        Step::Expect(e) if e.slot0.is_some() || e.slot1.is_some() => vec![e.image_number],
        Step::Erase(e) if e.region.is_none() => vec![0],
        Step::ExpectError(e) => step_pairs(&e.action),
        Step::Sweep(w) => w.all_steps().flat_map(step_pairs).collect(),
        _ => vec![],
    }
}

/// The Partition Manager names of image `n`'s slot pair, as a user's `pm_static.yml` has them.
fn pair_names(n: u32) -> String {
    match n {
        0 => "`mcuboot_primary` + `mcuboot_secondary` (image 0's slots)".into(),
        n => format!("`mcuboot_primary_{n}` + `mcuboot_secondary_{n}` (image {n}'s slots)"),
    }
}

/// Every partition the steps name must be in the layout. All missing ones are named at once
/// (a partial `pm_static.yml` usually lacks several), at the first step that needs one.
fn check_regions(s: &LoadedScenario, layout: &Layout) -> Result<(), SetupError> {
    let mut missing: Vec<String> = Vec::new();
    let mut first = None;
    for (i, st) in s.scenario.steps.iter().enumerate() {
        // Only image 0's pair is required here: an upload for image 1 may go elsewhere (an
        // MCUboot update for NSIB's s0/s1 lands in image 0's secondary slot).
        let pairs = step_pairs(&st.value)
            .into_iter()
            .filter(|n| *n == 0 && layout.images.is_empty())
            .map(pair_names);
        for r in step_regions(&st.value)
            .into_iter()
            .filter(|r| layout.partition(r).is_none())
            .map(|r| format!("`{r}`"))
            .chain(pairs)
        {
            if !missing.contains(&r) {
                missing.push(r);
                first.get_or_insert((i, st.value.keyword(), st.referenced));
            }
        }
    }
    let Some((i, keyword, at)) = first else {
        return Ok(());
    };
    let names = &missing;
    let whose = match &s.scenario.from_build {
        Some(b) => format!(
            "the build's layout `{}` (from {})",
            layout.name,
            b.build
                .files
                .get("partitions.yml")
                .or_else(|| b.build.files.get("pm_static.yml"))
                .or_else(|| b.build.files.get("zephyr.dts"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| b.build.dir.display().to_string())
        ),
        None => format!("layout `{}`", layout.name),
    };
    // NCS with NSIB links MCUboot into b0's slots: there is no `mcuboot` partition to flash.
    let hint = if missing.iter().any(|m| m == "`mcuboot`") && layout.partition("s0").is_some() {
        "\nhelp: MCUboot runs from NSIB's s0/s1 here: flash `b0: b0`, `provision: provision` and `s0: mcuboot-s0-v1` (an `mcuboot: { nsib-slot: s0 }` fixture) instead of `mcuboot:`"
    } else {
        ""
    };
    Err(SetupError::Semantic {
        scenario: s.step_file(i).to_owned(),
        line: at.line(),
        column: at.column(),
        message: format!(
            "{keyword}: no partition{} {} in {whose}, which the steps need (it has: {}){hint}",
            if missing.len() > 1 { "s" } else { "" },
            names.join(", "),
            layout.partition_names().join(", ")
        ),
    })
}

/// A key the scenario states for MCUboot must be the build's key when both are known: the
/// device verifies with the build's.
fn check_build_key(s: &LoadedScenario, builder: &fixtures::Builder) -> Result<(), SetupError> {
    let Some(b) = &s.scenario.from_build else {
        return Ok(());
    };
    let (Some(at), Some(path)) = (s.scenario.stated.bootloader.get("key"), &b.key) else {
        return Ok(());
    };
    if s.scenario.bootloader.override_build
        || s.scenario.bootloader.key == crate::build_input::BUILD_KEY
    {
        return Ok(());
    }
    let stated = builder
        .key(&s.scenario.bootloader.key)
        .map_err(|source| SetupError::Fixture {
            scenario: s.path.clone(),
            source,
        })?;
    let theirs = builder
        .key(crate::build_input::BUILD_KEY)
        .map_err(|source| SetupError::Fixture {
            scenario: s.path.clone(),
            source,
        })?;
    if stated.public().to_pem() != theirs.public().to_pem() {
        return Err(SetupError::BuildDisagrees {
            scenario: s.path.clone(),
            list: vec![crate::build_input::Disagreement {
                field: "key".into(),
                scenario_value: format!("`{}`", s.scenario.bootloader.key),
                scenario_at: format!("{}:{}:{}", s.path.display(), at.line, at.column),
                build_value: format!("another key ({})", path.display()),
                build_at: b.key_setting(),
            }],
        });
    }
    Ok(())
}

pub(crate) fn elf_path(s: &LoadedScenario, rel: &Path) -> PathBuf {
    s.path.parent().unwrap_or(Path::new(".")).join(rel)
}
