//! Options shared by every scenario of a run.

use crate::device_link::DeviceLinkOptions;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Options shared by every scenario of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Project root (holds `partitions/`, `firmware-fixtures/`, `scenarios/`).
    pub root: PathBuf,
    /// Where per-scenario evidence folders go.
    pub evidence_dir: PathBuf,
    /// Set by Ctrl-C / SIGTERM: the current step finishes, the rest are reported interrupted.
    pub interrupt: Arc<AtomicBool>,
    /// Timeout of one SMP request (the first upload chunk gets longer: it waits for an erase).
    pub request_timeout: Duration,
    /// Whole-scenario deadline (the scenario's `timeout-s` wins when set).
    pub scenario_timeout: Option<Duration>,
    /// Deadline of one step (the scenario's `step-timeout-s` wins when set): a stuck upload
    /// or sweep ends as an error instead of holding a farm board all night.
    pub step_timeout: Duration,
    /// What the client assumes about the device's SMP link, with where each figure comes
    /// from. The command line's values win over the scenario's `device:` block.
    pub device: DeviceLinkOptions,
    /// The board's own facts (inventory entry over board profile): used where neither the
    /// command line nor the scenario says anything.
    pub board_device: DeviceLinkOptions,
    /// `--build DIR`: the build every scenario runs on (wins over a scenario's `build:`).
    pub build: Option<PathBuf>,
}

/// Default step timeout: a 1 MiB upload at 115200 baud takes ~140 s.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);
/// Default scenario timeout.
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(1800);

impl RunOptions {
    pub fn new(root: PathBuf, evidence_dir: PathBuf) -> Self {
        RunOptions {
            root,
            evidence_dir,
            interrupt: Arc::new(AtomicBool::new(false)),
            request_timeout: Duration::from_millis(2500),
            scenario_timeout: Some(DEFAULT_SCENARIO_TIMEOUT),
            step_timeout: DEFAULT_STEP_TIMEOUT,
            device: DeviceLinkOptions::default(),
            board_device: DeviceLinkOptions::default(),
            build: None,
        }
    }
}
