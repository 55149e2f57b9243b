//! The run API in one place, for callers (CLI, farm) that used it before the executor was
//! split by job: options, preparation, the executor and the typed results.

pub use crate::build_input::{apply as apply_build, FromBuild};
pub use crate::device_link::{device_link, DeviceLink, DeviceLinkOptions};
pub use crate::exec::{run_scenario, short_hash};
pub use crate::options::{RunOptions, DEFAULT_SCENARIO_TIMEOUT, DEFAULT_STEP_TIMEOUT};
pub use crate::prepare::{prepare, resolve_layout, SetupError};
pub use crate::result::{
    board_lacks, board_unavailable, BoardFailureKind, Failure, Location, ScenarioResult,
    StepResult, StepStatus,
};
