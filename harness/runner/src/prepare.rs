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
}

/// The scenario's layout: `partitions/NAME.yaml` under the project root, or a path.
pub fn resolve_layout(root: &Path, s: &LoadedScenario) -> Result<Layout, SetupError> {
    let name = &s.scenario.layout;
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
    for (i, st) in s.scenario.steps.iter().enumerate() {
        for r in step_regions(&st.value) {
            if layout.partition(r).is_none() {
                return Err(SetupError::Semantic {
                    scenario: s.step_file(i).to_owned(),
                    line: st.referenced.line(),
                    column: st.referenced.column(),
                    message: format!(
                        "{}: no partition `{r}` in layout `{}` (it has: {})",
                        st.value.keyword(),
                        layout.name,
                        layout.partition_names().join(", ")
                    ),
                });
            }
        }
    }
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
    };
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

pub(crate) fn elf_path(s: &LoadedScenario, rel: &Path) -> PathBuf {
    s.path.parent().unwrap_or(Path::new(".")).join(rel)
}
