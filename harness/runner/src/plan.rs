//! The plan step shared by `run`, `lint` and `farm`: which scenario files, which variants, and
//! everything about them that can be known before a board is touched.
//!
//! Why one step: `run` and the farm each had their own copy of "select, filter by tag, expand,
//! prepare", and the copies drifted (the farm stopped at the first invalid file while `run`
//! ran the valid ones). Every command now plans the same way and differs only in what it does
//! with the result: `lint` prints the problems, `run` and the farm run what is prepared and
//! report what is invalid (exit 96 once the rest has run).

use crate::fixtures::Built;
use crate::needs::{self, Need};
use crate::run::{self, RunOptions, SetupError};
use crate::scenario::{self, LoadedScenario, ScenarioError};
use dfu_hil_board::hw::Capability;
use dfu_hil_mcuboot::layout::Layout;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Scenario files matching `patterns` (see [`scenario::select`]) that carry any of `tags`
/// (no tag: all of them). A file that does not load is kept, so its error is reported by
/// [`plan`] instead of the file silently dropping out of the run.
pub fn select(root: &Path, patterns: &[String], tags: &[String]) -> Vec<PathBuf> {
    let mut paths = scenario::select(root, patterns);
    if !tags.is_empty() {
        paths.retain(|p| {
            scenario::load(p)
                .map(|s| s.scenario.tags.iter().any(|t| tags.contains(t)))
                .unwrap_or(true)
        });
    }
    paths
}

/// One variant of a scenario, ready to run: its layout, its fixtures built, and what it needs
/// from a board.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub loaded: LoadedScenario,
    pub layout: Layout,
    pub fixtures: BTreeMap<String, Built>,
    /// Every capability the steps need, each with the step that needs it.
    pub needs: Vec<Need>,
}

impl Prepared {
    /// The capabilities alone, for matching boards.
    pub fn capabilities(&self) -> BTreeSet<Capability> {
        needs::capability_set(&self.needs)
    }

    /// Why the board `board` (of profile `profile`, with `have`) cannot run this variant, or
    /// `None` if it can: a scenario written for other boards, or a step needing a capability
    /// the board lacks (named with its file:line:col).
    pub fn unfit(
        &self,
        board: &str,
        profile: Option<&str>,
        have: &BTreeSet<Capability>,
    ) -> Option<String> {
        needs::wrong_board(&self.loaded.scenario.boards, profile).or_else(|| {
            let unmet = needs::unmet(&self.needs, have);
            (!unmet.is_empty()).then(|| needs::explain(board, &unmet))
        })
    }
}

/// Why a scenario file or one of its variants cannot run (invalid input, exit 96).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file does not load (YAML, unknown field, include).
    #[error(transparent)]
    Load(#[from] ScenarioError),
    /// A variant does not fit its layout or its fixtures do not build.
    #[error(transparent)]
    Setup(#[from] SetupError),
}

/// What became of one selected file.
#[derive(Debug)]
pub struct FilePlan {
    pub path: PathBuf,
    /// Its variants that can run, in order.
    pub prepared: Vec<Prepared>,
    /// What is wrong with the file or with its other variants, in order.
    pub invalid: Vec<PlanError>,
}

/// Every selected file, planned.
#[derive(Debug, Default)]
pub struct Plan {
    pub files: Vec<FilePlan>,
}

impl Plan {
    /// Every variant that can run, in file order.
    pub fn prepared(&self) -> impl Iterator<Item = &Prepared> {
        self.files.iter().flat_map(|f| &f.prepared)
    }

    /// Every problem, in file order.
    pub fn invalid(&self) -> impl Iterator<Item = &PlanError> {
        self.files.iter().flat_map(|f| &f.invalid)
    }

    /// How many files or variants are invalid.
    pub fn invalid_count(&self) -> usize {
        self.files.iter().map(|f| f.invalid.len()).sum()
    }

    /// The variants that can run, leaving the problems behind.
    pub fn into_prepared(self) -> Vec<Prepared> {
        self.files.into_iter().flat_map(|f| f.prepared).collect()
    }
}

/// Load every file, expand its variants and prepare each (layout, regions, fixtures, device
/// link; see [`run::prepare`]). One bad file or variant never hides the good ones.
pub fn plan(paths: &[PathBuf], opts: &RunOptions) -> Plan {
    let files = paths
        .iter()
        .map(|path| {
            let mut file = FilePlan {
                path: path.clone(),
                prepared: Vec::new(),
                invalid: Vec::new(),
            };
            match scenario::load(path) {
                Err(e) => file.invalid.push(e.into()),
                Ok(loaded) => {
                    for variant in scenario::expand(loaded) {
                        // The build (if any) sets the layout and the `bootloader:` block the
                        // executor, evidence and reports then see.
                        let variant = match crate::build_input::apply(variant, opts) {
                            Ok(v) => v,
                            Err(e) => {
                                file.invalid.push(e.into());
                                continue;
                            }
                        };
                        match run::prepare(&variant, opts) {
                            Ok((layout, fixtures)) => {
                                let needs = needs::needs(&variant, &layout);
                                file.prepared.push(Prepared {
                                    loaded: variant,
                                    layout,
                                    fixtures,
                                    needs,
                                });
                            }
                            Err(e) => file.invalid.push(e.into()),
                        }
                    }
                }
            }
            file
        })
        .collect();
    Plan { files }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn an_invalid_file_does_not_hide_the_valid_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("bad.yaml");
        std::fs::write(&bad, "name: bad\nlayout: nrf52840-internal\nstepz: []\n").unwrap();
        let good = root().join("scenarios/bad-signature.yaml");
        let opts = RunOptions::new(root(), tmp.path().join("evidence"));
        let p = plan(&[bad.clone(), good.clone()], &opts);
        assert_eq!(p.invalid_count(), 1);
        assert!(p.invalid().next().unwrap().to_string().contains("bad.yaml"));
        let names: Vec<&Path> = p.prepared().map(|v| v.loaded.path.as_path()).collect();
        assert_eq!(names, [good.as_path()]);
        assert_eq!(p.files[0].path, bad);
        assert!(p.files[0].prepared.is_empty());
    }

    #[test]
    fn variants_are_expanded_and_needs_known() {
        let opts = RunOptions::new(root(), root().join("target/dfu-hil/evidence"));
        let paths = select(&root(), &["power-cut-during-swap".into()], &[]);
        let p = plan(&paths, &opts);
        assert_eq!(p.invalid_count(), 0);
        let v = p.prepared().next().unwrap();
        assert!(v.capabilities().contains(&Capability::FlashOpCut));
        let serial_only: BTreeSet<Capability> = [Capability::Serial].into();
        let why = v.unfit("dk", Some("nrf52840dk"), &serial_only).unwrap();
        assert!(why.contains("board `dk` lacks flash-op-cut"), "{why}");
        let all: BTreeSet<Capability> = Capability::ALL.iter().copied().collect();
        assert!(v.unfit("sim", None, &all).is_none());
    }

    #[test]
    fn tag_filter_keeps_unloadable_files() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("bad.yaml");
        std::fs::write(&bad, "not: [valid").unwrap();
        let picked = select(
            &root(),
            &[bad.display().to_string(), "bad-signature".into()],
            &["no-such-tag".into()],
        );
        assert_eq!(picked, [bad]);
    }
}
