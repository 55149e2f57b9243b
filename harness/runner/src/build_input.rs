//! A user's build directory as the input of a run (`--build DIR`, or `build:` in a scenario).
//!
//! From the build the run takes the flash layout (Partition Manager output or the devicetree),
//! MCUboot's configuration (the `bootloader:` block), the signing key, the signed images (for
//! `build:` fixtures) and the application's SMP facts (for the simulated board's model of a
//! real image).
//!
//! **Who wins when the scenario and the build disagree.** The build: it is what will be
//! flashed, and a scenario's expectations written for another MCUboot (an overwrite-only
//! revert, a max-sectors limit) would test something the device does not do. So a value the
//! scenario states in its `bootloader:` block (or a variant's `mode`) that differs from the
//! build's is an error before anything runs (exit 96), naming both lines. A scenario that
//! deliberately models a different MCUboot than the build's (on the simulated board only: a
//! lab board runs the MCUboot that was flashed) says so with `bootloader: { override-build:
//! true }`; its stated values then win and each difference is printed as a note. The
//! scenario's `layout:` is not compared: with a build the build's layout is used (a bundled
//! scenario names a reference layout; that it names it is noted), and every partition the
//! steps name must exist in it.

use crate::options::RunOptions;
use crate::prepare::SetupError;
use crate::scenario::{At, BootloaderSpec, LoadedScenario, TransportKind};
use dfu_hil_build::facts::{AppFacts, Fact, McubootFacts, Source};
use dfu_hil_build::Build;
use dfu_hil_firmware::AppDescriptor;
use dfu_hil_mcuboot::layout::Layout;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The release the scenario's firmware follows: the scenario's `firmware:` block (checked at
/// load), else the build's `ncs_version.h` / `version.h` (`build_release`), else upstream's
/// default.
pub fn release(s: &crate::scenario::Scenario) -> dfu_hil_firmware::Release {
    if let Some(r) = s.firmware.release().ok().flatten() {
        return r;
    }
    s.from_build
        .as_ref()
        .and_then(|b| build_release(&b.build.versions))
        .unwrap_or_default()
}

/// The release a build's generated headers state: NCS from `ncs_version.h` (Zephyr and MCUboot
/// from its table, the Zephyr version from `version.h` when present), else plain Zephyr from
/// `version.h`.
pub fn build_release(
    v: &dfu_hil_build::versions::BuildVersions,
) -> Option<dfu_hil_firmware::Release> {
    use dfu_hil_firmware::{Release, Ver};
    let zephyr = v.zephyr.as_ref().and_then(|(z, _)| z.parse::<Ver>().ok());
    let ncs = v.ncs.as_ref().and_then(|(n, _)| n.parse::<Ver>().ok());
    match (ncs, zephyr) {
        (Some(n), z) => {
            let mut r = Release::ncs(n).ok()?;
            if let Some(z) = z {
                r.zephyr = z;
            }
            Some(r)
        }
        (None, Some(z)) => Some(Release::zephyr(z, None)),
        (None, None) => None,
    }
}

/// A stated `firmware:` the build's headers contradict, as a disagreement naming both.
fn release_disagreements(
    stated: &dfu_hil_firmware::Release,
    at: String,
    v: &dfu_hil_build::versions::BuildVersions,
) -> Vec<Disagreement> {
    let mut out = Vec::new();
    let mut check = |field: &str, ours: Option<String>, theirs: &Option<(String, PathBuf)>| {
        if let (Some(ours), Some((theirs, file))) = (ours, theirs) {
            let same = match (ours.parse::<dfu_hil_firmware::Ver>(), theirs.parse()) {
                (Ok(a), Ok(b)) => a == b,
                _ => ours == *theirs,
            };
            if !same {
                out.push(Disagreement {
                    field: field.into(),
                    scenario_value: ours,
                    scenario_at: at.clone(),
                    build_value: theirs.clone(),
                    build_at: file.display().to_string(),
                });
            }
        }
    };
    check("firmware.ncs", stated.ncs.map(|n| n.to_string()), &v.ncs);
    check(
        "firmware.zephyr",
        Some(stated.zephyr.to_string()),
        &v.zephyr,
    );
    out
}

/// The key name a scenario (or a derivation) uses for the build's own signing key
/// (`CONFIG_BOOT_SIGNATURE_KEY_FILE`).
pub const BUILD_KEY: &str = "build";

/// A build, opened and applied to one scenario variant.
#[derive(Debug)]
pub struct FromBuild {
    pub build: Build,
    /// Who named the build: `--build` or the scenario's `build:` at file:line:col.
    pub named_by: String,
    pub layout: Layout,
    /// MCUboot's signing key on this machine (`Build::signing_key`).
    pub key: Option<PathBuf>,
    /// Values the scenario states that differ from the build's.
    pub disagreements: Vec<Disagreement>,
    /// Things worth saying before the run (the scenario's layout replaced, the key missing,
    /// what the simulated board models, disagreements when `override-build` is set).
    pub notes: Vec<String>,
}

impl FromBuild {
    /// `CONFIG_BOOT_SIGNATURE_KEY_FILE` as written, with its file:line, for error messages.
    pub fn key_setting(&self) -> String {
        match self
            .build
            .mcuboot
            .as_ref()
            .and_then(|m| m.key_file.as_ref())
        {
            Some(f) => format!(
                "CONFIG_BOOT_SIGNATURE_KEY_FILE=\"{}\" ({})",
                f.value,
                at_source(&f.source)
            ),
            None => "CONFIG_BOOT_SIGNATURE_KEY_FILE (not set in MCUboot's .config)".into(),
        }
    }

    /// The simulated board's model of the build's application (see
    /// `BootloaderBuild::stand_in_app`): its SMP groups and buffers from the app's `.config`.
    pub fn app_model(&self) -> AppDescriptor {
        let name = self.build.app_name.clone().unwrap_or_else(|| "app".into());
        let mut d = AppDescriptor::new(&name, "0.0.0");
        if let Some(app) = &self.build.app {
            apply_app_facts(&mut d, app);
        }
        d.link_offset = dfu_hil_build::doctor::header::linked_header_room(&self.build)
            .filter(|_| {
                self.build
                    .app
                    .as_ref()
                    .is_some_and(|a| a.bootloader_mcuboot.value)
            })
            .map(|(size, _, _)| size);
        d.modelled_from = Some(format!(
            "the build's .config ({})",
            self.build
                .app
                .as_ref()
                .map(|a| a.config.display().to_string())
                .unwrap_or_else(|| "not found".into())
        ));
        d
    }

    /// What the run took from the build, for the evidence folder (`build.txt`) and the
    /// console.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "build {} ({:?}, named by {})\n",
            self.build.dir.display(),
            self.build.kind,
            self.named_by
        );
        for (what, path) in &self.build.files {
            out += &format!("  {what}: {}\n", path.display());
        }
        if let Some(m) = &self.build.mcuboot {
            out += &format!("  MCUboot configuration: {}\n", m.config.display());
        }
        match &self.key {
            Some(k) => out += &format!("  signing key: {}\n", k.display()),
            None => {
                out += &format!(
                    "  signing key: not on this machine ({})\n",
                    self.key_setting()
                )
            }
        }
        out += &format!("  layout: {}\n", self.layout.name);
        for n in &self.notes {
            out += &format!("note: {n}\n");
        }
        out += &format!("note: {}\n", self.model_note());
        out
    }

    /// One line saying what the simulated board models, for the console and the evidence.
    pub fn model_note(&self) -> String {
        let d = self.app_model();
        let from = self
            .build
            .app
            .as_ref()
            .map(|a| a.config.display().to_string())
            .unwrap_or_else(|| "no app .config (Zephyr's defaults)".into());
        format!(
            "the simulated board cannot execute the build's images: after MCUboot hands over \
             (vector table checked), it runs a model of the app's SMP server from {from}: \
             groups {:?}, netbuf {}x{} B, serial lines {}x{} B; the app does not confirm itself",
            d.smp_groups, d.buf_count, d.buf_size, d.uart_rx_buf_count, d.uart_rx_buf_size
        )
    }
}

impl FromBuild {
    /// A build opened for a tool without a scenario (`sim serve --build`, `image inspect
    /// --build`): its layout, key, and the `bootloader:` block its MCUboot implies (key name
    /// [`BUILD_KEY`] when the key is on this machine, else `default`, with a note).
    pub fn open_for_tool(dir: &Path) -> Result<(FromBuild, BootloaderSpec), String> {
        let build = Build::open(dir).map_err(|e| e.to_string())?;
        let layout = build
            .layout()
            .map_err(|e| format!("the build's layout: {e}"))?;
        let Some(m) = build.mcuboot.clone() else {
            return Err(format!(
                "{}: the build has no MCUboot (no mcuboot/zephyr/.config)",
                build.dir.display()
            ));
        };
        let (mut spec, _) = effective_bootloader(&BootloaderSpec::default(), &m, &|_| None)?;
        let key = build.signing_key();
        let mut notes = Vec::new();
        if key.is_some() {
            spec.key = BUILD_KEY.into();
        } else {
            notes.push(format!(
                "MCUboot's signing key is not on this machine ({})",
                FromBuild::key_setting_of(&m)
            ));
        }
        Ok((
            FromBuild {
                build,
                named_by: "--build".into(),
                layout,
                key,
                disagreements: Vec::new(),
                notes,
            },
            spec,
        ))
    }
}

/// A value the scenario states that the build contradicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The `bootloader:` key (`mode`, `max-sectors`, …).
    pub field: String,
    pub scenario_value: String,
    /// `file:line:col` of the scenario's key.
    pub scenario_at: String,
    pub build_value: String,
    /// `file:line` of the Kconfig symbol (or the file when the default applies).
    pub build_at: String,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: bootloader {} is {} here, but the build's MCUboot has {} ({})",
            self.scenario_at, self.field, self.scenario_value, self.build_value, self.build_at
        )
    }
}

fn at_source(s: &Option<Source>) -> String {
    match s {
        Some(s) => s.to_string(),
        None => "Kconfig default: symbol not set".into(),
    }
}

/// Which build a scenario runs on: `--build` wins over the scenario's `build:` (a path
/// relative to the scenario file). `None`: no build.
pub fn build_dir(s: &LoadedScenario, opts: &RunOptions) -> Option<(PathBuf, String)> {
    if let Some(d) = &opts.build {
        return Some((d.clone(), "--build".into()));
    }
    let rel = s.scenario.build.as_ref()?;
    let dir = s.path.parent().unwrap_or(Path::new(".")).join(rel);
    let at = s.scenario.stated.build.unwrap_or_default();
    Some((
        dir,
        format!("build: at {}:{}:{}", s.path.display(), at.line, at.column),
    ))
}

/// Apply the build the scenario runs on (if any): open it, take its layout and MCUboot
/// configuration, and check what the scenario states against them. Idempotent.
pub fn apply(s: LoadedScenario, opts: &RunOptions) -> Result<LoadedScenario, SetupError> {
    if s.scenario.from_build.is_some() {
        return Ok(s);
    }
    let Some((dir, named_by)) = build_dir(&s, opts) else {
        return Ok(s);
    };
    let build = Build::open(&dir).map_err(|e| SetupError::Build {
        scenario: s.path.clone(),
        message: format!("{e} (named by {named_by})"),
    })?;
    apply_opened(s, build, named_by)
}

/// [`apply`] with a build already opened.
pub fn apply_opened(
    s: LoadedScenario,
    build: Build,
    named_by: String,
) -> Result<LoadedScenario, SetupError> {
    let layout = build.layout().map_err(|e| SetupError::Build {
        scenario: s.path.clone(),
        message: format!("the build's layout: {e}"),
    })?;
    let key = build.signing_key();
    apply_parts(s, build, layout, key, named_by)
}

/// [`apply_opened`] with the layout and the signing key already resolved (tests build these
/// directly).
pub fn apply_parts(
    mut s: LoadedScenario,
    build: Build,
    layout: Layout,
    key: Option<PathBuf>,
    named_by: String,
) -> Result<LoadedScenario, SetupError> {
    let build_err = |message: String| SetupError::Build {
        scenario: s.path.clone(),
        message,
    };
    let Some(mcuboot) = build.mcuboot.clone() else {
        return Err(build_err(if layout.partition("mcuboot").is_some() {
            format!(
                "{}: the layout has an `mcuboot` partition but MCUboot's configuration is not in the build (no mcuboot/zephyr/.config): its mode, max-sectors and key are unknown",
                build.dir.display()
            )
        } else {
            format!(
                "{}: the build has no MCUboot (no mcuboot/zephyr/.config, no `mcuboot` partition): there is nothing to update through",
                build.dir.display()
            )
        }));
    };
    let mut notes = Vec::new();
    if let Some(at) = s.scenario.stated.layout {
        if !s.scenario.layout.is_empty() {
            notes.push(format!(
                "{}:{}:{}: layout `{}` is replaced by the build's layout `{}`",
                s.path.display(),
                at.line,
                at.column,
                s.scenario.layout,
                layout.name
            ));
        }
    }
    let stated = &s.scenario.stated.bootloader;
    let here = |key: &str| -> Option<String> {
        stated
            .get(key)
            .map(|At { line, column }| format!("{}:{line}:{column}", s.path.display()))
    };
    let (effective, mut disagreements) =
        effective_bootloader(&s.scenario.bootloader, &mcuboot, &here).map_err(build_err)?;
    if let (Some(stated), Some(At { line, column })) = (
        s.scenario.firmware.release().ok().flatten(),
        s.scenario.stated.firmware,
    ) {
        let at = format!("{}:{line}:{column}", s.path.display());
        disagreements.extend(release_disagreements(&stated, at, &build.versions));
    }
    let mut spec = if s.scenario.bootloader.override_build {
        for d in &disagreements {
            notes.push(format!(
                "{d} (override-build: the scenario's value is used)"
            ));
        }
        s.scenario.bootloader.clone()
    } else {
        if !disagreements.is_empty() {
            return Err(SetupError::BuildDisagrees {
                scenario: s.path.clone(),
                list: disagreements,
            });
        }
        effective
    };
    if here("key").is_none() {
        if key.is_some() {
            spec.key = BUILD_KEY.into();
        } else {
            notes.push(format!(
                "MCUboot's signing key is not on this machine ({}): the simulated MCUboot and \
                 synthetic images use the fixture key `{}`; the build's own images cannot be \
                 verified or re-signed",
                FromBuild::key_setting_of(&mcuboot),
                spec.key
            ));
        }
    }
    if let Some(app) = &build.app {
        let stated = s
            .scenario
            .stated
            .transport
            .map(|At { line, column }| format!("{}:{line}:{column}", s.path.display()));
        match smp_transport(app, s.scenario.transport, stated.as_deref()) {
            Ok((t, note)) => {
                s.scenario.transport = t;
                notes.extend(note);
            }
            Err(message) => return Err(build_err(message)),
        }
    }
    // The build's ELF files name fault-loop PCs and find RTT on a lab board, unless the
    // scenario lists its own.
    if s.scenario.elf.is_empty() {
        s.scenario.elf = build.elfs.clone().into_iter().collect();
    }
    s.scenario.bootloader = spec;
    s.scenario.layout = layout.name.clone();
    let from = FromBuild {
        build,
        named_by,
        layout,
        key,
        disagreements: Vec::new(),
        notes,
    };
    s.scenario.from_build = Some(Arc::new(from));
    Ok(s)
}

impl FromBuild {
    fn key_setting_of(m: &McubootFacts) -> String {
        match &m.key_file {
            Some(f) => format!(
                "CONFIG_BOOT_SIGNATURE_KEY_FILE=\"{}\" at {}",
                f.value,
                at_source(&f.source)
            ),
            None => format!(
                "CONFIG_BOOT_SIGNATURE_KEY_FILE not set in {}",
                m.config.display()
            ),
        }
    }
}

/// The `bootloader:` block the build implies, and every stated value that differs from it.
/// Each fact is MCUboot's Kconfig as the build's `mcuboot/zephyr/.config` holds it:
/// `CONFIG_BOOT_SWAP_USING_MOVE|SCRATCH|OFFSET`, `CONFIG_BOOT_UPGRADE_ONLY`,
/// `CONFIG_BOOT_DIRECT_XIP` (mode); `CONFIG_BOOT_MAX_IMG_SECTORS` (default 128,
/// `boot/zephyr/Kconfig`); `CONFIG_BOOT_VALIDATE_SLOT0` (default y);
/// `CONFIG_MCUBOOT_DOWNGRADE_PREVENTION` (default n); a NOR driver for the secondary slot
/// (`CONFIG_NORDIC_QSPI_NOR` / `CONFIG_SPI_NOR`); `CONFIG_BOOT_MAX_ALIGN` (bootutil's
/// `BOOT_MAX_ALIGN`, 8 when unset).
pub fn effective_bootloader(
    scenario: &BootloaderSpec,
    m: &McubootFacts,
    here: &dyn Fn(&str) -> Option<String>,
) -> Result<(BootloaderSpec, Vec<Disagreement>), String> {
    let mut out = scenario.clone();
    let mut list = Vec::new();
    let mut check = |field: &str, ours: String, theirs: String, src: &Option<Source>| {
        if let Some(at) = here(field) {
            if ours != theirs {
                list.push(Disagreement {
                    field: field.into(),
                    scenario_value: ours,
                    scenario_at: at,
                    build_value: theirs,
                    build_at: match src {
                        Some(src) => src.to_string(),
                        None => format!("{}: not set, Kconfig default", m.config.display()),
                    },
                });
            }
        }
    };
    let mode = m.mode.value.ok_or_else(|| {
        format!(
            "{}: MCUboot is built for a mode the harness does not model (RAM load, firmware \
             loader or a single application slot: CONFIG_SINGLE_APPLICATION_SLOT={})",
            at_source(&m.mode.source),
            if m.single_slot.value { "y" } else { "n" }
        )
    })?;
    // A variant's mode is checked against the build like a stated one.
    check(
        "mode",
        scenario.mode.to_string(),
        mode.to_string(),
        &m.mode.source,
    );
    out.mode = mode;
    let max_sectors = m.max_sectors.value;
    if !(1..=crate::limits::MAX_IMG_SECTORS).contains(&max_sectors) {
        return Err(format!(
            "{}: CONFIG_BOOT_MAX_IMG_SECTORS={max_sectors} is out of range (1 to {})",
            at_source(&m.max_sectors.source),
            crate::limits::MAX_IMG_SECTORS
        ));
    }
    check(
        "max-sectors",
        scenario.max_sectors.to_string(),
        max_sectors.to_string(),
        &m.max_sectors.source,
    );
    out.max_sectors = max_sectors;
    let (align, align_src) = match &m.max_align {
        Some(Fact { value, source }) => (*value, source.clone()),
        None => (8, None),
    };
    if ![8, 16, 32].contains(&align) {
        return Err(format!(
            "{}: CONFIG_BOOT_MAX_ALIGN={align}: BOOT_MAX_ALIGN is 8, 16 or 32",
            at_source(&align_src)
        ));
    }
    check(
        "max-align",
        scenario.max_align.to_string(),
        align.to_string(),
        &align_src,
    );
    out.max_align = align;
    for (field, ours, fact, slot) in [
        (
            "validate-primary",
            scenario.validate_primary,
            &m.validate_primary,
            &mut out.validate_primary,
        ),
        (
            "downgrade-prevention",
            scenario.downgrade_prevention,
            &m.downgrade_prevention,
            &mut out.downgrade_prevention,
        ),
        (
            "external-flash-driver",
            scenario.external_flash_driver,
            &m.external_flash_driver,
            &mut out.external_flash_driver,
        ),
    ] {
        check(
            field,
            ours.to_string(),
            fact.value.to_string(),
            &fact.source,
        );
        *slot = fact.value;
    }
    Ok((out, list))
}

/// The mcumgr group ids of the names the build crate reads (`CONFIG_MCUMGR_GRP_*`), as
/// Zephyr's `include/zephyr/mgmt/mcumgr/mgmt/mgmt_defines.h` numbers them
/// (`MGMT_GROUP_ID_OS` 0, `_IMAGE` 1, `_STAT` 2, `_SETTINGS` 3, `_LOG` 4, `_CRASH` 5,
/// `_SPLIT` 6, `_RUN` 7, `_FS` 8, `_SHELL` 9, `_ENUM` 10; `ZEPHYR_MGMT_GRP_BASIC` is
/// `MGMT_GROUP_ID_PERUSER - 1` = 63).
pub fn group_id(name: &str) -> Option<u16> {
    Some(match name {
        "os" => 0,
        "img" | "image" => 1,
        "stat" => 2,
        "settings" | "config" => 3,
        "log" => 4,
        "crash" => 5,
        "split" => 6,
        "run" => 7,
        "fs" => 8,
        "shell" => 9,
        "enum" => 10,
        "zephyr_basic" | "zephyr-basic" | "basic" => 63,
        _ => return None,
    })
}

/// The app's SMP facts onto the simulated app's descriptor; what the `.config` does not say
/// keeps Zephyr's default (`AppDescriptor::new`).
pub fn apply_app_facts(d: &mut AppDescriptor, app: &AppFacts) {
    let groups: Vec<u16> = app
        .mcumgr_groups
        .iter()
        .filter_map(|g| group_id(&g.value))
        .collect();
    d.smp_groups = groups;
    if let Some(n) = &app.netbuf_size {
        d.buf_size = n.value;
    }
    if let Some(n) = &app.netbuf_count {
        d.buf_count = n.value;
    }
    if let Some(n) = &app.uart_rx_buf_size {
        d.uart_rx_buf_size = n.value;
    }
}

/// The SMP transports of the app that each scenario transport can talk to. The serial client
/// frames SMP the way Zephyr's UART and shell transports do (`CONFIG_MCUMGR_TRANSPORT_UART`,
/// `…_SHELL`: base64 frames between `0x06 0x09` / `0x04 0x14` markers); the raw UART transport
/// sends unframed SMP, which it does not speak.
fn app_transports_for(t: TransportKind) -> &'static [&'static str] {
    match t {
        TransportKind::Serial => &["uart", "shell"],
        TransportKind::Ble => &["bt"],
        TransportKind::Udp => &["udp"],
    }
}

fn transport_name(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Serial => "serial",
        TransportKind::Ble => "ble",
        TransportKind::Udp => "udp",
    }
}

/// Which link a run on the build uses. A real device answers SMP only on the transports its app
/// was built with, so a stated `transport:` the app lacks is an error naming both places, and an
/// unstated one is taken from the app (serial first, then BLE, then UDP) with a note; an app with
/// no SMP transport at all cannot be updated over SMP (`doctor`: `smp-no-transport`).
pub fn smp_transport(
    app: &AppFacts,
    scenario: TransportKind,
    stated_at: Option<&str>,
) -> Result<(TransportKind, Option<String>), String> {
    let has = |t: TransportKind| {
        app.mcumgr_transports
            .iter()
            .find(|f| app_transports_for(t).contains(&f.value.as_str()))
    };
    let listed = if app.mcumgr_transports.is_empty() {
        "none".to_string()
    } else {
        app.mcumgr_transports
            .iter()
            .map(|f| format!("{} ({})", f.value, at_source(&f.source)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(at) = stated_at {
        return match has(scenario) {
            Some(_) => Ok((scenario, None)),
            None => Err(format!(
                "{at}: transport `{}`, but the build's app has no SMP transport for it \
                 (its mcumgr transports: {listed}; {}): the device would not answer",
                transport_name(scenario),
                app.config.display()
            )),
        };
    }
    for t in [
        TransportKind::Serial,
        TransportKind::Ble,
        TransportKind::Udp,
    ] {
        if let Some(f) = has(t) {
            let note = (t != scenario).then(|| {
                format!(
                    "transport `{}`: the build's app speaks SMP over {} ({}); the scenario states none",
                    transport_name(t),
                    f.value,
                    at_source(&f.source)
                )
            });
            return Ok((t, note));
        }
    }
    Err(format!(
        "the build's app has no SMP transport the harness speaks (mcumgr transports: {listed}; \
         {}): nothing can upload to it over SMP — enable CONFIG_MCUMGR_TRANSPORT_UART or \
         CONFIG_MCUMGR_TRANSPORT_BT (run `dfu-hil doctor` on the build)",
        app.config.display()
    ))
}

#[cfg(test)]
mod release_tests {
    use super::*;
    use dfu_hil_build::versions::BuildVersions;
    use dfu_hil_firmware::{Release, Ver};

    fn v(ncs: Option<&str>, zephyr: Option<&str>) -> BuildVersions {
        BuildVersions {
            ncs: ncs.map(|n| (n.to_string(), PathBuf::from("ncs_version.h"))),
            zephyr: zephyr.map(|z| (z.to_string(), PathBuf::from("version.h"))),
        }
    }

    #[test]
    fn release_from_build_headers() {
        let r = build_release(&v(Some("2.4.0"), Some("3.3.99"))).unwrap();
        assert_eq!(r.ncs, Some(Ver::new(2, 4, 0)));
        assert_eq!(r.zephyr, Ver::new(3, 3, 99));
        let r = build_release(&v(None, Some("3.4.99"))).unwrap();
        assert_eq!((r.ncs, r.zephyr), (None, Ver::new(3, 4, 99)));
        assert_eq!(build_release(&v(None, None)), None);
    }

    #[test]
    fn stated_firmware_the_build_contradicts_names_both() {
        let stated = Release::ncs(Ver::new(2, 5, 0)).unwrap();
        let d = release_disagreements(&stated, "s.yaml:3:11".into(), &v(Some("2.4.0"), None));
        assert_eq!(d.len(), 1);
        let text = d[0].to_string();
        assert!(text.contains("2.5.0") && text.contains("2.4.0"), "{text}");
        assert!(text.contains("ncs_version.h"), "{text}");
        // Near miss: the same release written another way agrees.
        let stated = Release::ncs(Ver::new(2, 4, 0)).unwrap();
        assert!(
            release_disagreements(&stated, "s".into(), &v(Some("2.4"), Some("3.3.99"))).is_empty()
        );
    }
}
