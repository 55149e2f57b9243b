//! The scenario language: what a DFU engineer writes in `scenarios/*.yaml`.
//!
//! Steps are an externally tagged enum (`- upload: { image: app-v2 }`) and every struct denies
//! unknown fields, so a typo is an error with file:line:col rather than a silently ignored key.
//! Each step keeps its source location so a failed expectation points at its YAML line.

use dfu_hil_mcuboot::trailer::UpgradeMode;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Layout name from `partitions/` (or a path to a layout file). May be left out when the
    /// scenario runs on a build (`build:` or `--build`): the build's layout is used.
    #[serde(default)]
    pub layout: String,
    /// An nRF Connect SDK / Zephyr build directory, relative to this file: the layout,
    /// MCUboot's configuration and the `build:` fixtures come from it (`--build` wins).
    pub build: Option<PathBuf>,
    #[serde(default)]
    pub bootloader: BootloaderSpec,
    /// The release the device's firmware was built from (`{ ncs: 2.4.0 }`, or `{ zephyr:
    /// 3.4.99, mcuboot: 1.10.0 }`): behaviour that differs between releases follows it.
    /// A build's `ncs_version.h` / `version.h` give it when this is left out.
    #[serde(default)]
    pub firmware: FirmwareSpec,
    #[serde(default)]
    pub transport: TransportKind,
    /// Fixtures added to (or overriding) `firmware-fixtures/fixtures.yaml` for this scenario.
    #[serde(default)]
    pub fixtures: BTreeMap<String, crate::fixture_spec::FixtureSpec>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Board profiles (`boards/*.yaml`) the scenario is written for, e.g. `[nrf5340dk,
    /// thingy53]`; empty = any board. Other lab boards skip it; simulated boards run it.
    #[serde(default)]
    pub boards: Vec<String>,
    /// ELF files of the firmware on a real board, by label (`mcuboot`, `app`, or a partition
    /// name), relative to the scenario: fault-loop PCs are named from their symbols, and the
    /// one with `_SEGGER_RTT` gives the device log over RTT. Simulated boards ignore them.
    #[serde(default)]
    pub elf: BTreeMap<String, PathBuf>,
    /// Whole-scenario timeout in seconds (overrides `--scenario-timeout-s`; default 1800).
    #[serde(default, deserialize_with = "crate::limits::opt_secs")]
    pub timeout_s: Option<u64>,
    /// Timeout of each step in seconds (overrides `--step-timeout-s`; default 300).
    #[serde(default, deserialize_with = "crate::limits::opt_secs")]
    pub step_timeout_s: Option<u64>,
    /// What the harness assumes about the device's SMP link, where this app's build differs
    /// from Zephyr's defaults (the command line still wins).
    #[serde(default)]
    pub device: DeviceLinkSpec,
    /// Run the same steps once per variant (e.g. per upgrade mode and layout); each variant
    /// is its own result, named `name[variant]`.
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Run the steps over every combination of the listed values (as MCUboot's simulator runs
    /// each test over devices × write alignment × erased value): e.g. `matrix: { write-size:
    /// [1, 4, 8], erased: [0xff, 0x00], sector-size: [0x1000, 0x2000] }`. Each combination is a
    /// variant; not together with `variants:`.
    #[serde(default)]
    pub matrix: Matrix,
    /// The flash geometry this variant runs with (from `variants:` or `matrix:`), applied to
    /// every flash device of the layout (not to RAM-emulated ones).
    #[serde(skip)]
    #[schemars(skip)]
    pub geometry: Geometry,
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
    /// Where the file states `layout:`, `build:` and each `bootloader:` key (filled at load),
    /// so a value that disagrees with a build can be reported at its line.
    #[serde(skip)]
    #[schemars(skip)]
    pub stated: Stated,
    /// The build this scenario runs on, once applied (`runner::build_input::apply`).
    #[serde(skip)]
    #[schemars(skip)]
    pub from_build: Option<std::sync::Arc<crate::build_input::FromBuild>>,
}

/// A line and column in the scenario file (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct At {
    pub line: u64,
    pub column: u64,
}

/// What the scenario file states itself, as opposed to defaults: the keys a build may
/// disagree with, with their location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stated {
    pub layout: Option<At>,
    pub build: Option<At>,
    /// `transport:` as written (a build's app must have that SMP transport).
    pub transport: Option<At>,
    /// `bootloader:` keys as written (`mode`, `max-sectors`, …); a variant's `mode` counts.
    pub bootloader: BTreeMap<String, At>,
    /// `firmware:` as written.
    pub firmware: Option<At>,
    /// `matrix:` as written.
    pub matrix: Option<At>,
}

impl Stated {
    /// Read the locations from the file's text (a second, lenient pass: the strict one
    /// already succeeded, so this one only looks up keys).
    fn read(text: &str) -> Stated {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(default)]
            layout: Option<Spanned<serde::de::IgnoredAny>>,
            #[serde(default)]
            build: Option<Spanned<serde::de::IgnoredAny>>,
            #[serde(default)]
            transport: Option<Spanned<serde::de::IgnoredAny>>,
            #[serde(default)]
            bootloader: Option<BTreeMap<String, Spanned<serde::de::IgnoredAny>>>,
            #[serde(default)]
            variants: Option<Spanned<serde::de::IgnoredAny>>,
            #[serde(default)]
            firmware: Option<Spanned<serde::de::IgnoredAny>>,
            #[serde(default)]
            matrix: Option<Spanned<serde::de::IgnoredAny>>,
        }
        let Ok(p) = serde_saphyr::from_str::<Probe>(text) else {
            return Stated::default();
        };
        let at = |s: &Spanned<serde::de::IgnoredAny>| At {
            line: s.referenced.line(),
            column: s.referenced.column(),
        };
        let mut bootloader: BTreeMap<String, At> = p
            .bootloader
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.clone(), at(v)))
            .collect();
        if let Some(v) = p.variants.as_ref().or(p.matrix.as_ref()) {
            bootloader.insert("variants".into(), at(v));
        }
        Stated {
            layout: p.layout.as_ref().map(at),
            build: p.build.as_ref().map(at),
            transport: p.transport.as_ref().map(at),
            bootloader,
            firmware: p.firmware.as_ref().map(at),
            matrix: p.matrix.as_ref().map(at),
        }
    }
}

/// `firmware:` — the release the device's firmware follows (see `dfu_hil_firmware::release`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FirmwareSpec {
    /// nRF Connect SDK release, e.g. `2.4.0`: Zephyr and MCUboot follow from its table.
    pub ncs: Option<String>,
    /// Zephyr version (`3.4.99` = the tree between 3.4 and 3.5); with `ncs:` it overrides the
    /// table's.
    pub zephyr: Option<String>,
    /// MCUboot version; with `ncs:` it overrides the table's.
    pub mcuboot: Option<String>,
}

impl FirmwareSpec {
    /// The release stated, `None` when the block is empty.
    pub fn release(&self) -> Result<Option<dfu_hil_firmware::Release>, String> {
        use dfu_hil_firmware::{Release, Ver};
        let ver = |key: &str, v: &Option<String>| -> Result<Option<Ver>, String> {
            v.as_deref()
                .map(|s| s.parse::<Ver>().map_err(|e| format!("firmware.{key}: {e}")))
                .transpose()
        };
        let (ncs, zephyr, mcuboot) = (
            ver("ncs", &self.ncs)?,
            ver("zephyr", &self.zephyr)?,
            ver("mcuboot", &self.mcuboot)?,
        );
        let mut r = match (ncs, zephyr) {
            (None, None) if mcuboot.is_none() => return Ok(None),
            (Some(n), _) => Release::ncs(n).map_err(|e| format!("firmware.ncs: {e}"))?,
            (None, Some(z)) => Release::zephyr(z, mcuboot),
            (None, None) => Release::default(),
        };
        if let Some(z) = zephyr {
            r.zephyr = z;
        }
        if let Some(m) = mcuboot {
            r.mcuboot = m;
        }
        Ok(Some(r))
    }
}

/// The device facts the SMP client sizes and times its requests by; unset = the command line's
/// or Zephyr's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceLinkSpec {
    /// The app's serial receive lines, `COUNTxSIZE` (`CONFIG_UART_MCUMGR_RX_BUF_COUNT` ×
    /// `CONFIG_UART_MCUMGR_RX_BUF_SIZE`, Zephyr's default `2x128`), or `auto` to find the count
    /// with echo probes before the first upload.
    pub serial_lines: Option<String>,
    /// The app's `CONFIG_MCUMGR_GRP_OS_RESET_MS` (Zephyr's default 250): how long it keeps
    /// answering after `os reset`.
    /// Values above one hour are taken as one hour.
    pub reset_delay_ms: Option<u64>,
    /// How long the device may take after a reset before it answers SMP (default 60; clamped
    /// to one day when used).
    pub boot_timeout_s: Option<u64>,
}

/// One parameter set of a scenario.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Variant {
    /// Short name for reports (default: the mode, then the layout).
    pub name: Option<String>,
    pub mode: Option<UpgradeMode>,
    pub layout: Option<String>,
    /// Program unit of every flash device (bytes), replacing the layout's.
    pub write_size: Option<u32>,
    /// Erased value of every flash device (`0xff` NOR/NVMC, `0x00` some NOR parts).
    pub erased: Option<u8>,
    /// Erase unit of every flash device (bytes); the slots must stay aligned to it.
    pub sector_size: Option<u32>,
}

/// `matrix:` — lists of values whose every combination is one variant.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Matrix {
    #[serde(default)]
    pub mode: Vec<UpgradeMode>,
    #[serde(default)]
    pub layout: Vec<String>,
    #[serde(default)]
    pub write_size: Vec<u32>,
    #[serde(default)]
    pub erased: Vec<u8>,
    #[serde(default)]
    pub sector_size: Vec<u32>,
}

/// Most variants one `matrix:` may expand to (the product of its list lengths).
pub const MAX_MATRIX_VARIANTS: usize = 64;

impl Matrix {
    pub fn is_empty(&self) -> bool {
        self.mode.is_empty()
            && self.layout.is_empty()
            && self.write_size.is_empty()
            && self.erased.is_empty()
            && self.sector_size.is_empty()
    }

    /// The variants, in order (the last key varies fastest), or why there are too many.
    pub fn variants(&self) -> Result<Vec<Variant>, String> {
        let n = [
            self.mode.len(),
            self.layout.len(),
            self.write_size.len(),
            self.erased.len(),
            self.sector_size.len(),
        ]
        .iter()
        .map(|&l| l.max(1))
        .try_fold(1usize, |acc, l| acc.checked_mul(l))
        .filter(|&n| n <= MAX_MATRIX_VARIANTS)
        .ok_or_else(|| {
            format!(
                "matrix: more than {MAX_MATRIX_VARIANTS} combinations; split the scenario or list fewer values"
            )
        })?;
        fn axis<T: Clone>(v: &[T]) -> Vec<Option<T>> {
            if v.is_empty() {
                vec![None]
            } else {
                v.iter().cloned().map(Some).collect()
            }
        }
        let mut out = Vec::with_capacity(n);
        for mode in axis(&self.mode) {
            for layout in axis(&self.layout) {
                for write_size in axis(&self.write_size) {
                    for erased in axis(&self.erased) {
                        for sector_size in axis(&self.sector_size) {
                            out.push(Variant {
                                name: None,
                                mode,
                                layout: layout.clone(),
                                write_size,
                                erased,
                                sector_size,
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Flash geometry a variant imposes on the layout's devices (`None` = the layout's own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Geometry {
    pub write_size: Option<u32>,
    pub erased: Option<u8>,
    pub sector_size: Option<u32>,
}

impl Geometry {
    pub fn is_default(&self) -> bool {
        *self == Geometry::default()
    }

    /// Put this geometry on every flash device of `layout` (RAM-emulated ones keep theirs).
    pub fn apply(&self, layout: &mut dfu_hil_mcuboot::layout::Layout) {
        use dfu_hil_mcuboot::layout::DeviceKind;
        for d in layout
            .flash
            .iter_mut()
            .filter(|d| d.kind != DeviceKind::RamEmulated)
        {
            if let Some(w) = self.write_size {
                d.write_size = w;
            }
            if let Some(e) = self.erased {
                d.erased = e;
            }
            if let Some(sz) = self.sector_size {
                d.sector_size = sz;
            }
        }
    }
}

/// How MCUboot is built on the board under test.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BootloaderSpec {
    #[serde(default = "default_mode")]
    pub mode: UpgradeMode,
    /// Key fixture name (from the fixture manifest's `keys:`) MCUboot verifies with.
    #[serde(default = "default_key")]
    pub key: String,
    /// `BOOT_MAX_ALIGN`: 8, 16 or 32.
    #[serde(
        default = "default_max_align",
        deserialize_with = "crate::limits::max_align"
    )]
    pub max_align: u32,
    /// `BOOT_MAX_IMG_SECTORS` (1 to 65536).
    #[serde(
        default = "default_max_sectors",
        deserialize_with = "crate::limits::max_sectors"
    )]
    pub max_sectors: u32,
    #[serde(default = "yes")]
    pub validate_primary: bool,
    #[serde(default)]
    pub downgrade_prevention: bool,
    /// MCUboot has the QSPI/SPI NOR driver for external flash.
    #[serde(default = "yes")]
    pub external_flash_driver: bool,
    /// On a build (`build:` / `--build`), the values stated here win over the build's
    /// MCUboot configuration (deliberately modelling another MCUboot on the simulated board);
    /// without it a stated value that differs from the build is an error.
    #[serde(default)]
    pub override_build: bool,
}

fn default_mode() -> UpgradeMode {
    UpgradeMode::SwapMove
}
fn default_key() -> String {
    "default".into()
}
fn default_max_align() -> u32 {
    8
}
fn default_max_sectors() -> u32 {
    128
}
fn yes() -> bool {
    true
}

impl Default for BootloaderSpec {
    fn default() -> Self {
        BootloaderSpec {
            mode: default_mode(),
            key: default_key(),
            max_align: 8,
            max_sectors: 128,
            validate_primary: true,
            downgrade_prevention: false,
            external_flash_driver: true,
            override_build: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    #[default]
    Serial,
    Ble,
    Udp,
}

/// One step of a scenario.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum Step {
    /// Program fixtures through the probe: `{ region: fixture }`.
    Flash(BTreeMap<String, String>),
    /// Upload a fixture over SMP.
    Upload(UploadStep),
    /// `image test <hash of fixture>`.
    Test(String),
    /// `image confirm` (no hash: the running image) or of a fixture's hash.
    Confirm(ConfirmStep),
    Reset(ResetStep),
    /// Check SMP image state and which image runs.
    Expect(ExpectStep),
    /// Check trailer fields read back through the probe: `{ region: fields }`.
    ExpectTrailer(BTreeMap<String, TrailerExpect>),
    /// Check the CPU is stuck in a fault loop (optionally in a given symbol).
    ExpectFault(FaultExpect),
    /// Run an SMP action that must fail with a named device error.
    ExpectError(ExpectErrorStep),
    /// Erase a slot: over SMP (`slot: 1`, img_mgmt erase) or through the probe (`region: slot1`).
    Erase(EraseStep),
    /// Cut power: at the Nth flash operation from now (simulated board), or part-way through the
    /// next upload. The board stays off until a probe reset (`reset: { how: probe }`).
    PowerCut(PowerCutStep),
    /// Wait until the board runs and answers SMP (after a reset on slow hardware).
    WaitBoot(WaitBootStep),
    /// Run the diagnosis on the current evidence and check what it concludes.
    ExpectDiagnosis(DiagnosisExpect),
    /// Cut power at every flash operation of a block, in turn, and check the board recovers
    /// each time (simulated board).
    Sweep(SweepStep),
    /// Insert the steps of another file (path relative to this one): shared set-up.
    Include(String),
    /// Check the boot chain beyond MCUboot's slots: NSIB active slot, version and counter,
    /// network-core firmware version.
    ExpectBootChain(BootChainExpect),
    Sleep(SleepStep),
    /// A raw SMP request: `{ group, command, op, body, version, expect }`; without `expect`
    /// the answer is recorded in the evidence.
    Smp(crate::raw_smp::SmpStep),
    /// nRF Connect Device Manager's update sequence (Android `FirmwareUpgradeManager` task
    /// order): bootloader info, image list, upload unless slot1 already holds the image,
    /// erase settings (group 63; NOT_SUPPORTED and group errors ignored), confirm / test, reset.
    DeviceManager(DeviceManagerStep),
}

/// `device-manager: { image: X, mode: confirm-only, erase-settings: true }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceManagerStep {
    /// The fixture the phone app sends.
    pub image: String,
    #[serde(default)]
    pub mode: DeviceManagerMode,
    /// The app's "Erase application settings" option (on by default in the app).
    #[serde(default = "yes")]
    pub erase_settings: bool,
}

/// Device Manager's upgrade modes (`FirmwareUpgradeManager.Mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceManagerMode {
    /// Test, reset, then confirm after the reset.
    #[default]
    TestAndConfirm,
    /// Confirm (without testing), then reset.
    ConfirmOnly,
    /// Test, then reset; the image must confirm itself.
    TestOnly,
}

impl Step {
    pub fn keyword(&self) -> &'static str {
        match self {
            Step::Flash(_) => "flash",
            Step::Upload(_) => "upload",
            Step::Test(_) => "test",
            Step::Confirm(_) => "confirm",
            Step::Reset(_) => "reset",
            Step::Expect(_) => "expect",
            Step::ExpectTrailer(_) => "expect-trailer",
            Step::ExpectFault(_) => "expect-fault",
            Step::ExpectError(_) => "expect-error",
            Step::Erase(_) => "erase",
            Step::PowerCut(_) => "power-cut",
            Step::WaitBoot(_) => "wait-boot",
            Step::ExpectDiagnosis(_) => "expect-diagnosis",
            Step::Sweep(_) => "sweep",
            Step::Include(_) => "include",
            Step::ExpectBootChain(_) => "expect-boot-chain",
            Step::Sleep(_) => "sleep",
            Step::Smp(_) => "smp",
            Step::DeviceManager(_) => "device-manager",
        }
    }

    /// Short human description for the console.
    pub fn summary(&self) -> String {
        match self {
            Step::Flash(m) => {
                let parts: Vec<String> = m.iter().map(|(r, f)| format!("{r}={f}")).collect();
                format!("flash {}", parts.join(", "))
            }
            Step::Upload(u) => format!("upload {}", u.image),
            Step::Test(f) => format!("test {f}"),
            Step::Confirm(c) => match &c.image {
                Some(i) => format!("confirm {i}"),
                None => "confirm (running image)".into(),
            },
            Step::Reset(r) => format!("reset ({})", r.how.name()),
            Step::Expect(e) => {
                let mut s = vec![];
                if let Some(r) = &e.running {
                    s.push(format!("running {r}"));
                }
                let image = match e.image_number {
                    0 => String::new(),
                    n => format!("image {n} "),
                };
                if e.slot0.is_some() {
                    s.push(format!("{image}slot0"));
                }
                if e.slot1.is_some() {
                    s.push(format!("{image}slot1"));
                }
                format!("expect {}", s.join(", "))
            }
            Step::ExpectTrailer(m) => {
                format!(
                    "expect-trailer {}",
                    m.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
            Step::ExpectFault(f) => match &f.symbol {
                Some(s) => format!("expect-fault in {s}"),
                None => "expect-fault".into(),
            },
            Step::ExpectError(e) => format!("expect-error {} from {}", e.error, e.action.summary()),
            Step::Erase(e) => match (&e.region, e.slot) {
                (Some(r), _) => format!("erase {r} (probe)"),
                (None, Some(n)) => format!("erase slot {n} (smp)"),
                (None, None) => "erase (smp, default slot)".into(),
            },
            Step::PowerCut(p) => match (p.at_flash_op, p.at_upload_percent) {
                (Some(n), _) => format!("power-cut at flash op {n}"),
                (None, Some(pc)) => format!("power-cut at {pc}% of the next upload"),
                (None, None) => "power-cut now".into(),
            },
            Step::WaitBoot(w) => format!("wait-boot ({} ms)", w.timeout_ms),
            Step::ExpectDiagnosis(d) => format!("expect-diagnosis \"{}\"", d.contains),
            Step::Sweep(w) if w.is_param() => format!(
                "sweep {} over [{}]",
                w.param.as_deref().unwrap_or(""),
                w.values.iter().map(plain).collect::<Vec<_>>().join(", ")
            ),
            Step::Sweep(w) => format!(
                "sweep power cuts over [{}]",
                w.cut_during
                    .iter()
                    .map(Step::summary)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Step::Include(f) => format!("include {f}"),
            Step::ExpectBootChain(b) => {
                let mut parts = vec![];
                if let Some(s) = &b.nsib_slot {
                    parts.push(format!("nsib-slot {s}"));
                }
                if let Some(v) = b.nsib_version {
                    parts.push(format!("nsib-version {v}"));
                }
                if let Some(n) = b.nsib_counter_used {
                    parts.push(format!("counter {n} used"));
                }
                if let Some(v) = &b.netcore_version {
                    parts.push(format!("netcore {v}"));
                }
                format!("expect-boot-chain {}", parts.join(", "))
            }
            Step::Sleep(s) => format!("sleep {} ms", s.ms),
            Step::Smp(r) => crate::raw_smp::summary(r.group, r.command, r.op, r.version),
            Step::DeviceManager(d) => format!(
                "device-manager {} ({})",
                d.image,
                match d.mode {
                    DeviceManagerMode::TestAndConfirm => "test-and-confirm",
                    DeviceManagerMode::ConfirmOnly => "confirm-only",
                    DeviceManagerMode::TestOnly => "test-only",
                }
            ),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UploadStep {
    pub image: String,
    /// MCUboot image number (0 = application; 1 = network core on nRF5340).
    #[serde(default)]
    pub image_number: u32,
    /// Requests in flight (1 = stop-and-wait); default from the device's `buf_count`.
    pub window: Option<usize>,
    /// Size requests for this device buffer instead of the one `params` reports (e.g. to
    /// reproduce an over-long request on a device without params).
    pub buf_size: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfirmStep {
    pub image: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResetStep {
    #[serde(default)]
    pub how: ResetHow,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResetHow {
    /// `os reset` over SMP, as a host tool does after an upload.
    #[default]
    Smp,
    /// Reset through the debug probe (works when the app is dead).
    Probe,
}

impl ResetHow {
    pub fn name(self) -> &'static str {
        match self {
            ResetHow::Smp => "smp",
            ResetHow::Probe => "probe",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpectStep {
    /// Fixture that must be running (the active slot's hash, and the CPU running).
    pub running: Option<String>,
    /// Which image's slots `slot0`/`slot1` mean (0 = application; 1 = nRF5340 network core).
    #[serde(default)]
    pub image_number: u32,
    pub slot0: Option<SlotExpect>,
    pub slot1: Option<SlotExpect>,
}

/// Flags img_mgmt reports for a slot; only the fields given are checked.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SlotExpect {
    /// Fixture whose image hash the slot must hold.
    pub image: Option<String>,
    /// `false`: the slot must not be listed (empty or invalid).
    pub present: Option<bool>,
    pub active: Option<bool>,
    pub confirmed: Option<bool>,
    pub pending: Option<bool>,
    pub permanent: Option<bool>,
    pub bootable: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MagicExpect {
    Good,
    Bad,
    Unset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FlagExpect {
    Set,
    Bad,
    Unset,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrailerExpect {
    pub magic: Option<MagicExpect>,
    pub image_ok: Option<FlagExpect>,
    pub copy_done: Option<FlagExpect>,
    /// Swap type recorded in swap_info: none (erased), test, perm, revert.
    pub swap_type: Option<dfu_hil_mcuboot::trailer::SwapType>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FaultExpect {
    pub symbol: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpectErrorStep {
    /// Error name as mcumgr documents it (`NO_FREE_SLOT`, `NOT_SUPPORTED`, `HASH_NOT_FOUND`),
    /// optionally with its group (`image/NO_FREE_SLOT`), or a number.
    pub error: String,
    /// The SMP action that must fail (`upload`, `test`, `confirm`, `erase`).
    pub action: Box<Step>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EraseStep {
    /// img_mgmt erase of this slot over SMP.
    pub slot: Option<u32>,
    /// Erase a whole partition through the probe instead.
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PowerCutStep {
    /// Cut before the Nth flash erase/write from now (1 = the next one), MCUboot-sim style.
    #[serde(default, deserialize_with = "crate::limits::opt_flash_op")]
    pub at_flash_op: Option<u64>,
    /// Cut when the next upload has sent this percentage of the image (0-100).
    #[serde(default, deserialize_with = "crate::limits::opt_percent")]
    #[schemars(range(max = 100))]
    pub at_upload_percent: Option<u8>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BootChainExpect {
    /// NSIB's active MCUboot slot (`s0`/`s1`).
    pub nsib_slot: Option<String>,
    /// fw_info version of the MCUboot NSIB boots.
    pub nsib_version: Option<u32>,
    /// Monotonic counter slots used so far.
    pub nsib_counter_used: Option<u32>,
    /// Firmware version running on the nRF5340 network core.
    pub netcore_version: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SweepStep {
    /// Power-cut sweep: the block whose every flash erase/write is a cut point (e.g.
    /// `- reset: {}` = the swap).
    #[serde(default)]
    pub cut_during: Vec<Step>,
    /// Power-cut sweep: after each cut, power on and check (e.g. probe reset, then expect).
    #[serde(default)]
    pub then: Vec<Step>,
    /// Check only every Nth cut point (1 = all).
    #[serde(default = "one")]
    pub every: u64,
    /// Power-cut sweep: run `cut-during` again for every cut point instead of rebuilding the
    /// state after the cut from a record of the uncut run (slower; the evidence log then holds
    /// the interrupted run too). Verdicts are the same either way.
    #[serde(default)]
    pub replay: bool,
    /// Power-cut sweep: after each cut, also cut again before every flash operation of the
    /// recovery (`then`, i.e. MCUboot resuming), then require `then` to pass (a second power
    /// loss while MCUboot resumes, as MCUboot's simulator checks). Cost: cut points × resume
    /// operations.
    #[serde(default)]
    pub recovery_cuts: bool,
    /// Parameter sweep: the name written `${name}` in the steps of `do`.
    pub param: Option<String>,
    /// Parameter sweep: `do` runs once per value, in order.
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub values: Vec<serde_json::Value>,
    /// Parameter sweep: the steps run for each value (`${name}` replaced; a value standing
    /// alone keeps its type, so `window: ${w}` stays a number).
    #[serde(default, rename = "do")]
    #[schemars(with = "Option<Vec<Step>>")]
    pub do_steps: Option<serde_json::Value>,
    /// `do` instantiated per value at load time: (`name=value`, steps).
    #[serde(skip)]
    #[schemars(skip)]
    pub instances: Vec<(String, Vec<Step>)>,
}

impl SweepStep {
    /// A sweep over parameter values rather than over power-cut points.
    pub fn is_param(&self) -> bool {
        self.param.is_some()
    }

    /// Every step the sweep can run (both kinds), for checks made before running.
    pub fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.cut_during
            .iter()
            .chain(&self.then)
            .chain(self.instances.iter().flat_map(|(_, s)| s))
    }

    /// Check the sweep's shape and build `instances` from `do` (recursively for nested
    /// sweeps). Errors are worded for the sweep's own line.
    fn instantiate(&mut self, budget: &mut Expansion) -> Result<(), String> {
        let Some(name) = self.param.clone() else {
            if self.do_steps.is_some() || !self.values.is_empty() {
                return Err("sweep: `values`/`do` need `param` (the name used as ${name})".into());
            }
            if self.cut_during.is_empty() || self.then.is_empty() {
                return Err("sweep: a power-cut sweep needs `cut-during` and `then` (or sweep a parameter with `param`, `values`, `do`)".into());
            }
            return instantiate_all(
                self.cut_during.iter_mut().chain(self.then.iter_mut()),
                budget,
            );
        };
        if !self.cut_during.is_empty() || !self.then.is_empty() {
            return Err("sweep: either power-cut points (`cut-during`, `then`) or a parameter (`param`, `values`, `do`), not both".into());
        }
        if self.values.is_empty() {
            return Err(format!("sweep over `{name}`: `values` is empty"));
        }
        let block = self
            .do_steps
            .as_ref()
            .ok_or_else(|| format!("sweep over `{name}`: no `do` steps"))?;
        if budget.depth >= crate::limits::MAX_SWEEP_DEPTH {
            return Err(format!(
                "sweep over `{name}`: parameter sweeps nested more than {} deep",
                crate::limits::MAX_SWEEP_DEPTH
            ));
        }
        budget.depth += 1;
        self.instances.clear();
        for v in &self.values {
            let label = format!("{name}={}", plain(v));
            let concrete = substitute(block, &name, v);
            let mut steps: Vec<Step> = serde_json::from_value(concrete)
                .map_err(|e| format!("sweep with {label}: `do`: {e}"))?;
            budget.add(steps.len())?;
            instantiate_all(steps.iter_mut(), budget).map_err(|e| format!("with {label}: {e}"))?;
            self.instances.push((label, steps));
        }
        budget.depth -= 1;
        Ok(())
    }
}

/// How much a scenario has grown while its sweeps are instantiated, so that a small file
/// cannot ask for an exponential number of steps (see [`crate::limits`]).
#[derive(Debug, Default)]
struct Expansion {
    /// Steps in the scenario so far, sweep instances included.
    steps: usize,
    /// Parameter sweeps currently being instantiated inside one another.
    depth: usize,
}

impl Expansion {
    fn add(&mut self, n: usize) -> Result<(), String> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > crate::limits::MAX_EXPANDED_STEPS {
            return Err(format!(
                "sweeps expand to more than {} steps",
                crate::limits::MAX_EXPANDED_STEPS
            ));
        }
        Ok(())
    }
}

fn instantiate_all<'a>(
    steps: impl Iterator<Item = &'a mut Step>,
    budget: &mut Expansion,
) -> Result<(), String> {
    for s in steps {
        instantiate_step(s, budget)?;
    }
    Ok(())
}

fn instantiate_step(step: &mut Step, budget: &mut Expansion) -> Result<(), String> {
    match step {
        Step::Sweep(w) => w.instantiate(budget),
        Step::ExpectError(e) => instantiate_step(&mut e.action, budget),
        _ => Ok(()),
    }
}

/// A value as text in a step (`"app-v2"` → `app-v2`, `3` → `3`).
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `${name}` replaced by `with` everywhere in `v`: a string that is exactly `${name}` becomes
/// the value itself (keeping numbers numbers), inside longer strings its text.
fn substitute(v: &serde_json::Value, name: &str, with: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let pattern = format!("${{{name}}}");
    match v {
        Value::String(s) if *s == pattern => with.clone(),
        Value::String(s) => Value::String(s.replace(&pattern, &plain(with))),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, name, with)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, name, with)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DiagnosisExpect {
    /// Text the diagnosis must contain (case-insensitive).
    pub contains: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WaitBootStep {
    #[serde(
        default = "default_boot_timeout",
        deserialize_with = "crate::limits::ms"
    )]
    pub timeout_ms: u64,
}

fn default_boot_timeout() -> u64 {
    10_000
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SleepStep {
    #[serde(deserialize_with = "crate::limits::ms")]
    pub ms: u64,
}

/// A scenario as loaded, with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub path: PathBuf,
    pub scenario: Scenario,
    /// The file each step came from (the scenario, or a file it includes).
    pub step_files: Vec<PathBuf>,
}

impl LoadedScenario {
    pub fn step_file(&self, i: usize) -> &Path {
        self.step_files
            .get(i)
            .map(PathBuf::as_path)
            .unwrap_or(&self.path)
    }
}

/// A file of shared steps for `- include: FILE`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IncludeFile {
    #[serde(default)]
    pub description: String,
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
}

/// Invalid input: names the file, and line/column with a snippet where the parser knows them.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

pub fn load(path: &Path) -> Result<LoadedScenario, ScenarioError> {
    let bytes = std::fs::read(path).map_err(|source| ScenarioError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(utf8(&bytes, path)?, path)
}

/// The file's text, or an error naming the byte offset of the first byte that is not UTF-8.
fn utf8<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, ScenarioError> {
    std::str::from_utf8(bytes).map_err(|e| ScenarioError::Invalid {
        path: path.to_owned(),
        message: format!(
            "not UTF-8 text: invalid byte 0x{:02x} at byte offset {}",
            bytes[e.valid_up_to()],
            e.valid_up_to()
        ),
    })
}

pub fn parse(text: &str, path: &Path) -> Result<LoadedScenario, ScenarioError> {
    let mut scenario: Scenario = parse_yaml(text, path)?;
    scenario.stated = Stated::read(text);
    if !scenario.matrix.is_empty() {
        let at = scenario.stated.matrix.unwrap_or(At { line: 1, column: 1 });
        let fail = |message: String| ScenarioError::Parse {
            path: path.to_owned(),
            line: at.line,
            column: at.column,
            message,
        };
        if !scenario.variants.is_empty() {
            return Err(fail(
                "`matrix:` and `variants:` together: list the combinations in one of them".into(),
            ));
        }
        scenario.variants = scenario.matrix.variants().map_err(fail)?;
    }
    if let Err(message) = scenario.firmware.release() {
        let at = scenario
            .stated
            .firmware
            .unwrap_or(At { line: 1, column: 1 });
        return Err(ScenarioError::Parse {
            path: path.to_owned(),
            line: at.line,
            column: at.column,
            message,
        });
    }
    let mut includes = Includes::default();
    let (mut steps, step_files) =
        expand_includes(std::mem::take(&mut scenario.steps), path, 0, &mut includes)?;
    let mut budget = Expansion {
        steps: steps.len(),
        depth: 0,
    };
    for (st, file) in steps.iter_mut().zip(&step_files) {
        instantiate_step(&mut st.value, &mut budget).map_err(|message| ScenarioError::Parse {
            path: file.clone(),
            line: st.referenced.line(),
            column: st.referenced.column(),
            message,
        })?;
    }
    scenario.steps = steps;
    Ok(LoadedScenario {
        path: path.to_owned(),
        scenario,
        step_files,
    })
}

type Expanded = (Vec<Spanned<Step>>, Vec<PathBuf>);

/// Included files already parsed, by path: a file included from many places is read and parsed
/// once; and the running count of steps, bounded by [`crate::limits::MAX_EXPANDED_STEPS`]
/// because includes multiply (9 files each including the next one 9 times is 9^8 steps).
#[derive(Default)]
struct Includes {
    parsed: std::collections::HashMap<PathBuf, Vec<Spanned<Step>>>,
    steps: usize,
}

/// Replace `include` steps by the included files' steps, remembering where each came from.
fn expand_includes(
    steps: Vec<Spanned<Step>>,
    path: &Path,
    depth: usize,
    includes: &mut Includes,
) -> Result<Expanded, ScenarioError> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    for st in steps {
        let Step::Include(rel) = &st.value else {
            includes.steps += 1;
            if includes.steps > crate::limits::MAX_EXPANDED_STEPS {
                return Err(ScenarioError::Parse {
                    path: path.to_owned(),
                    line: st.referenced.line(),
                    column: st.referenced.column(),
                    message: format!(
                        "includes expand to more than {} steps",
                        crate::limits::MAX_EXPANDED_STEPS
                    ),
                });
            }
            out.push(st);
            files.push(path.to_owned());
            continue;
        };
        let inc = path.parent().unwrap_or(Path::new(".")).join(rel);
        let at = |message: String| ScenarioError::Parse {
            path: path.to_owned(),
            line: st.referenced.line(),
            column: st.referenced.column(),
            message,
        };
        if depth >= 8 {
            return Err(at(format!(
                "include `{rel}`: includes nested too deep (a cycle?)"
            )));
        }
        let file_steps = match includes.parsed.get(&inc) {
            Some(s) => s.clone(),
            None => {
                let bytes = crate::limits::read_include(&inc)
                    .map_err(|e| at(format!("include `{}`: {e}", inc.display())))?;
                let text = utf8(&bytes, &inc)?;
                let file: IncludeFile = parse_yaml(text, &inc)?;
                includes.parsed.insert(inc.clone(), file.steps.clone());
                file.steps
            }
        };
        let (s, f) = expand_includes(file_steps, &inc, depth + 1, includes)?;
        out.extend(s);
        files.extend(f);
    }
    Ok((out, files))
}

fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ScenarioError> {
    match serde_saphyr::from_str::<T>(text) {
        Ok(v) => Ok(v),
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let mut message = e.to_string();
            if let Some(hint) = suggestion(&message) {
                message.push_str(&format!("\nhelp: did you mean `{hint}`?"));
            }
            Err(ScenarioError::Parse {
                path: path.to_owned(),
                line,
                column,
                message,
            })
        }
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and "unknown variant"), the
/// closest expected name, if it is close enough to be a typo.
pub fn suggestion(message: &str) -> Option<String> {
    let rest = message
        .split_once("unknown field `")
        .or_else(|| message.split_once("unknown variant `"))?
        .1;
    let (got, rest) = rest.split_once('`')?;
    // Both "expected `a` or `b`" (serde) and "expected one of a, b" (serde-saphyr) forms.
    let list = rest.split_once("expected")?.1.lines().next().unwrap_or("");
    let list = list.trim().trim_start_matches("one of").trim();
    let expected: Vec<&str> = list
        .split([',', ' '])
        .map(|w| w.trim().trim_matches('`'))
        .filter(|w| !w.is_empty() && *w != "or")
        .collect();
    expected
        .iter()
        .map(|e| (edit_distance(got, e), *e))
        .filter(|(d, e)| *d <= (e.len() / 3).max(2))
        .min()
        .map(|(_, e)| e.to_owned())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// JSON Schema of scenario files, for editors (yaml-language-server).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Scenario)).expect("schema serialises")
}

/// One scenario per variant (or the scenario itself when it has none).
pub fn expand(l: LoadedScenario) -> Vec<LoadedScenario> {
    if l.scenario.variants.is_empty() {
        return vec![l];
    }
    l.scenario
        .variants
        .iter()
        .map(|v| {
            let mut s = l.scenario.clone();
            if let Some(m) = v.mode {
                s.bootloader.mode = m;
                // The variant states the mode, at the `variants:` key.
                if let Some(at) = s.stated.bootloader.get("variants").copied() {
                    s.stated.bootloader.insert("mode".into(), at);
                }
            }
            if let Some(layout) = &v.layout {
                s.layout = layout.clone();
            }
            s.geometry = Geometry {
                write_size: v.write_size,
                erased: v.erased,
                sector_size: v.sector_size,
            };
            let label = v.name.clone().unwrap_or_else(|| {
                let mut parts = vec![];
                if let Some(m) = v.mode {
                    parts.push(m.to_string());
                }
                if let Some(layout) = &v.layout {
                    parts.push(layout.clone());
                }
                if let Some(w) = v.write_size {
                    parts.push(format!("write-size={w}"));
                }
                if let Some(e) = v.erased {
                    parts.push(format!("erased={e:#04x}"));
                }
                if let Some(sz) = v.sector_size {
                    parts.push(format!("sector-size={sz:#x}"));
                }
                parts.join(",")
            });
            s.name = format!("{}[{label}]", l.scenario.name);
            s.variants.clear();
            LoadedScenario {
                path: l.path.clone(),
                scenario: s,
                step_files: l.step_files.clone(),
            }
        })
        .collect()
}

/// Every scenario file in `scenarios/` and `scenarios/field/` (the field cases as their users
/// lived them), sorted; shared steps under `scenarios/common/` and the build template under
/// `scenarios/build/` are not run by default.
pub fn all_scenarios(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    for dir in [root.join("scenarios"), root.join("scenarios").join("field")] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            v.extend(
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml")),
            );
        }
    }
    v.sort();
    v
}

/// Scenario files matching `patterns`: a name or path (as `scenario NAME`), else every bundled
/// scenario whose file stem contains the pattern. No pattern selects them all.
pub fn select(root: &Path, patterns: &[String]) -> Vec<PathBuf> {
    let all = all_scenarios(root);
    if patterns.is_empty() {
        return all;
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for p in patterns {
        if let Some(path) = resolve(p, root) {
            if !out.contains(&path) {
                out.push(path);
            }
            continue;
        }
        for a in &all {
            let stem = a.file_stem().unwrap_or_default().to_string_lossy();
            if stem.contains(p.as_str()) && !out.contains(a) {
                out.push(a.clone());
            }
        }
    }
    out
}

/// Resolve `scenario NAME`: a path to a file, or `scenarios/NAME.yaml` under the project root.
pub fn resolve(name: &str, root: &Path) -> Option<PathBuf> {
    let as_path = Path::new(name);
    if as_path.is_file() {
        return Some(as_path.to_owned());
    }
    let p = root.join("scenarios").join(format!("{name}.yaml"));
    p.is_file().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
name: t
layout: nrf52840-internal
steps:
  - flash: { mcuboot: mcuboot, slot0: app-v1 }
  - upload: { image: app-v2 }
  - test: app-v2
  - reset: {}
  - expect: { running: app-v2, slot0: { confirmed: false } }
  - expect-trailer: { slot1: { magic: good, image-ok: unset } }
"#;

    #[test]
    fn parses_steps_with_lines() {
        let s = parse(OK, Path::new("t.yaml")).unwrap().scenario;
        assert_eq!(s.steps.len(), 6);
        assert_eq!(s.steps[2].referenced.line(), 7);
        assert!(matches!(&s.steps[2].value, Step::Test(f) if f == "app-v2"));
        assert_eq!(s.bootloader.mode, UpgradeMode::SwapMove);
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let bad = OK.replace("image: app-v2 }", "imgae: app-v2 }");
        let e = parse(&bad, Path::new("t.yaml")).unwrap_err();
        let ScenarioError::Parse { line, message, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(*line, 6, "{e}");
        assert!(message.contains("imgae"), "{message}");
        assert!(e.to_string().starts_with("t.yaml:6:"), "{e}");
        assert!(e.to_string().contains("did you mean `image`?"), "{e}");
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let m = "unknown field `imgae`, expected `image` or `image-number`";
        assert_eq!(suggestion(m).as_deref(), Some("image"));
        let m = "unknown variant `expect-trailr`, expected one of `flash`, `expect-trailer`";
        assert_eq!(suggestion(m).as_deref(), Some("expect-trailer"));
        assert_eq!(suggestion("unknown field `zzz`, expected `image`"), None);
        let m = "line 6 column 15: unknown field `imgae`, expected one of image, image-number";
        assert_eq!(suggestion(m).as_deref(), Some("image"));
    }

    #[test]
    fn schema_lists_steps() {
        let s = json_schema().to_string();
        assert!(
            s.contains("expect-trailer") && s.contains("power-cut"),
            "{s}"
        );
    }

    #[test]
    fn bad_value_is_located() {
        let bad = OK.replace("magic: good", "magic: great");
        let e = parse(&bad, Path::new("t.yaml")).unwrap_err().to_string();
        assert!(e.starts_with("t.yaml:10:"), "{e}");
    }

    const PARAM: &str = r#"
name: t
layout: nrf52840-internal
steps:
  - sweep:
      param: w
      values: [1, 3]
      do:
        - upload: { image: "app-v${w}", window: "${w}" }
        - expect: { running: "app-v${w}" }
"#;

    #[test]
    fn parameter_sweep_instantiates_each_value_keeping_types() {
        let s = parse(PARAM, Path::new("t.yaml")).unwrap().scenario;
        let Step::Sweep(w) = &s.steps[0].value else {
            panic!()
        };
        assert!(w.is_param());
        let labels: Vec<&str> = w.instances.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["w=1", "w=3"]);
        let Step::Upload(u) = &w.instances[1].1[0] else {
            panic!()
        };
        assert_eq!((u.image.as_str(), u.window), ("app-v3", Some(3)));
        assert_eq!(w.all_steps().count(), 4);
        assert_eq!(s.steps[0].value.summary(), "sweep w over [1, 3]");
    }

    #[test]
    fn parameter_sweep_errors_point_at_the_sweep() {
        let typo = PARAM.replace("window:", "windw:");
        let e = parse(&typo, Path::new("t.yaml")).unwrap_err().to_string();
        assert!(e.starts_with("t.yaml:5:5: sweep with w=1: `do`:"), "{e}");
        assert!(e.contains("windw"), "{e}");
        let both = PARAM.replace(
            "      param: w\n",
            "      param: w\n      cut-during: [ { reset: {} } ]\n",
        );
        let e = parse(&both, Path::new("t.yaml")).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        let empty = PARAM.replace("[1, 3]", "[]");
        let e = parse(&empty, Path::new("t.yaml")).unwrap_err().to_string();
        assert!(e.contains("`values` is empty"), "{e}");
        let no_then = "name: t\nlayout: l\nsteps:\n  - sweep: { cut-during: [ { reset: {} } ] }\n";
        let e = parse(no_then, Path::new("t.yaml")).unwrap_err().to_string();
        assert!(
            e.starts_with("t.yaml:4:5:") && e.contains("needs `cut-during` and `then`"),
            "{e}"
        );
    }

    /// Regression (issue #16): numbers that later overflowed a clock or a counter, or armed a
    /// cut that never fires, are rejected where they are written.
    #[test]
    fn out_of_range_numbers_are_rejected_at_their_line() {
        let cases = [
            ("timeout-s: 18446744073709551615\n", "t.yaml:3:"),
            ("step-timeout-s: 18446744073709551615\n", "t.yaml:3:"),
            (
                "steps:\n  - power-cut: { at-flash-op: 18446744073709551615 }\n",
                "t.yaml:4:",
            ),
            (
                "steps:\n  - power-cut: { at-upload-percent: 250 }\n",
                "t.yaml:4:",
            ),
            (
                "steps:\n  - sleep: { ms: 18446744073709551615 }\n",
                "t.yaml:4:",
            ),
            (
                "steps:\n  - wait-boot: { timeout-ms: 18446744073709551615 }\n",
                "t.yaml:4:",
            ),
        ];
        for (extra, at) in cases {
            let text = if extra.starts_with("steps:") {
                format!("name: t\nlayout: l\n{extra}")
            } else {
                format!("name: t\nlayout: l\n{extra}steps:\n  - reset: {{}}\n")
            };
            let e = parse(&text, Path::new("t.yaml")).unwrap_err().to_string();
            assert!(
                e.starts_with(at) && e.contains("out of range"),
                "{extra}: {e}"
            );
        }
        for bad in [
            "max-sectors: 4294967295",
            "max-sectors: 0",
            "max-align: 0",
            "max-align: 12",
        ] {
            let text =
                format!("name: t\nlayout: l\nbootloader: {{ {bad} }}\nsteps:\n  - reset: {{}}\n");
            let e = parse(&text, Path::new("t.yaml")).unwrap_err().to_string();
            assert!(
                e.starts_with("t.yaml:3:") && e.contains("out of range"),
                "{bad}: {e}"
            );
        }
        // The edges still load.
        let ok = "name: t\nlayout: l\ntimeout-s: 2592000\nsteps:\n  - power-cut: { at-upload-percent: 100 }\n";
        parse(ok, Path::new("t.yaml")).unwrap();
    }

    /// Regression (issue #16): 8 nested sweeps of 10 values asked for 10^8 steps at load and
    /// exhausted memory; now the nesting and the total are bounded, named at the sweep's line.
    #[test]
    fn nested_sweeps_are_bounded() {
        let mut block = "[ { reset: {} } ]".to_string();
        for level in 0..8 {
            block = format!(
                "[ {{ sweep: {{ param: p{level}, values: [0,1,2,3,4,5,6,7,8,9], do: {block} }} }} ]"
            );
        }
        let text = format!("name: t\nlayout: l\nsteps: {block}\n");
        let e = parse(&text, Path::new("t.yaml")).unwrap_err().to_string();
        assert!(e.starts_with("t.yaml:3:"), "{e}");
        assert!(e.contains("nested more than"), "{e}");

        // Shallow but wide: 3 levels of 100 values = 10^6 steps.
        let values: Vec<String> = (0..100).map(|v| v.to_string()).collect();
        let values = values.join(",");
        let mut block = "[ { reset: {} } ]".to_string();
        for level in 0..3 {
            block =
                format!("[ {{ sweep: {{ param: p{level}, values: [{values}], do: {block} }} }} ]");
        }
        let text = format!("name: t\nlayout: l\nsteps: {block}\n");
        let e = parse(&text, Path::new("t.yaml")).unwrap_err().to_string();
        assert!(e.contains("more than 100000 steps"), "{e}");
    }

    /// Regression (issue #16): a scenario and 8 files each including the next one 9 times
    /// (9^7 steps) took 55 s and 1 GB.
    #[test]
    fn include_fan_out_is_bounded_and_fast() {
        let dir = tempfile::tempdir().unwrap();
        for level in 0..8 {
            let body = if level == 7 {
                "steps:\n  - reset: {}\n".to_string()
            } else {
                let inc = format!("  - include: f{}.yaml\n", level + 1);
                format!("steps:\n{}", inc.repeat(9))
            };
            std::fs::write(dir.path().join(format!("f{level}.yaml")), body).unwrap();
        }
        let main = dir.path().join("main.yaml");
        std::fs::write(&main, "name: t\nlayout: l\nsteps:\n  - include: f0.yaml\n").unwrap();
        let t = std::time::Instant::now();
        let e = load(&main).unwrap_err().to_string();
        assert!(e.contains("more than 100000 steps"), "{e}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
    }

    /// Regression (issue #16): a non-UTF-8 file said only "stream did not contain valid UTF-8".
    #[test]
    fn non_utf8_names_the_byte_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.yaml");
        std::fs::write(&p, b"name: t\nlayout: \xff\n").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("byte offset 16"), "{e}");
    }

    const MATRIX: &str = "name: m\nlayout: nrf52840-internal\nmatrix:\n  mode: [swap-move, swap-scratch]\n  write-size: [1, 8]\n  erased: [0xff, 0x00]\nsteps:\n  - reset: {}\n";

    #[test]
    fn matrix_expands_to_every_combination_with_geometry() {
        let l = parse(MATRIX, Path::new("t.yaml")).unwrap();
        let v = expand(l);
        assert_eq!(v.len(), 8);
        let names: Vec<&str> = v.iter().map(|s| s.scenario.name.as_str()).collect();
        assert_eq!(names[0], "m[swap-move,write-size=1,erased=0xff]");
        assert_eq!(names[7], "m[swap-scratch,write-size=8,erased=0x00]");
        let g = v[7].scenario.geometry;
        assert_eq!(
            (g.write_size, g.erased, g.sector_size),
            (Some(8), Some(0), None)
        );
        assert_eq!(v[7].scenario.bootloader.mode, UpgradeMode::SwapScratch);
    }

    #[test]
    fn matrix_is_bounded_and_exclusive_with_variants() {
        let big = "name: m\nlayout: x\nmatrix:\n  write-size: [1, 2, 4, 8, 16]\n  erased: [0, 255]\n  sector-size: [1, 2, 3, 4, 5, 6, 7]\nsteps: []\n";
        let e = parse(big, Path::new("t.yaml")).unwrap_err().to_string();
        assert!(e.contains("t.yaml:4:") && e.contains("more than 64"), "{e}");
        let both = format!("{MATRIX}variants:\n  - {{ mode: swap-move }}\n");
        let e = parse(&both, Path::new("t.yaml")).unwrap_err().to_string();
        assert!(e.contains("`matrix:` and `variants:`"), "{e}");
        let bad = MATRIX.replace("0x00]", "0x100]");
        assert!(parse(&bad, Path::new("t.yaml")).is_err());
    }

    #[test]
    fn geometry_applies_to_flash_but_not_ram_emulated_devices() {
        let mut layout = dfu_hil_mcuboot::layout::Layout::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../partitions/nrf5340-multi-image.yaml"),
        )
        .unwrap();
        Geometry {
            write_size: Some(16),
            erased: Some(0),
            sector_size: None,
        }
        .apply(&mut layout);
        for d in &layout.flash {
            let ram = d.kind == dfu_hil_mcuboot::layout::DeviceKind::RamEmulated;
            assert_eq!(d.write_size == 16, !ram, "{}", d.name);
            assert_eq!(d.erased == 0, !ram, "{}", d.name);
        }
    }
}
