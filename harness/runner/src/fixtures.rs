//! Firmware fixtures: the images a scenario flashes and uploads, derived reproducibly from a
//! manifest (`firmware-fixtures/fixtures.yaml`) — never hand-edited binaries.
//!
//! For the simulated board an `app` fixture is a synthetic Zephyr-like binary signed like
//! `west build` signs (imgtool-compatible); for hardware a `file` fixture points at a real
//! `zephyr.signed.bin`. The `mcuboot` fixture is built from the scenario's `bootloader:` block.

use crate::scenario::BootloaderSpec;
use dfu_hil_firmware::nsib;
use dfu_hil_firmware::provision::{provision_for, DEFAULT_COUNTER_SLOTS};
use dfu_hil_firmware::{build_app, build_bootloader, AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::image::{Image, Version};
use dfu_hil_mcuboot::keys::SigningKey;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum FixtureSpec {
    /// The bootloader, built from the scenario's `bootloader:` block; with `nsib-slot` the
    /// variant linked for NSIB's s0 or s1 (with its fw_info version), as programmed there.
    Mcuboot(McubootFixture),
    /// An MCUboot update for an NSIB board: the s0/s1 variant signed for b0 and wrapped as an
    /// MCUboot image (NCS's `signed_by_mcuboot_and_b0_s*_image_update.bin`).
    McubootUpdate(McubootFixture),
    /// The NSIB immutable bootloader (b0).
    B0 {},
    /// NSIB's provision data: the public key hash and the monotonic counter slots.
    Provision(ProvisionFixture),
    /// A synthetic application signed for the primary slot.
    App(AppFixture),
    /// A real image file (path relative to the manifest or scenario).
    File(PathBuf),
    /// Another fixture with derivations applied in order (`image derive`): re-signed with
    /// another version or key, corrupted payload/hash/signature, wrong header size, too large,
    /// truncated, non-bootable — every bad-input case without a firmware build.
    Derived(DerivedFixture),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DerivedFixture {
    pub from: String,
    #[schemars(with = "Vec<serde_json::Value>")]
    pub derive: Vec<dfu_hil_mcuboot::derive::Derivation>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct McubootFixture {
    /// `s0` or `s1`: build the NSIB variant linked for that slot.
    pub nsib_slot: Option<String>,
    /// fw_info firmware version (CONFIG_FW_INFO_FIRMWARE_VERSION); NSIB boots the highest.
    #[serde(default = "one")]
    pub fw_version: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProvisionFixture {
    /// Monotonic counter slots (NCS default 20 when MCUboot is the second stage).
    #[serde(default = "default_counter_slots")]
    pub counter_slots: u16,
}

fn default_counter_slots() -> u16 {
    DEFAULT_COUNTER_SLOTS
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AppFixture {
    /// Application name (shown in its boot banner).
    pub name: String,
    /// Image version, `major.minor.revision[+build]`.
    pub version: String,
    /// Size of the unsigned binary in bytes.
    #[serde(default = "default_size")]
    pub size: u32,
    /// Key name from the manifest's `keys:`; `none` signs hash-only.
    #[serde(default = "default_key")]
    pub key: String,
    /// imgtool `--header-size`.
    #[serde(default = "default_hdr")]
    pub header_size: u16,
    /// Where the app's vector table is linked, from the slot start (Zephyr ROM_START_OFFSET).
    #[serde(default = "default_hdr_u32")]
    pub rom_start_offset: u32,
    /// imgtool `--pad-header`.
    #[serde(default)]
    pub pad_header: bool,
    /// The app calls `boot_write_img_confirmed()` at start-up.
    #[serde(default)]
    pub confirm_on_boot: bool,
    /// SMP groups compiled in (0 = OS, 1 = image).
    pub smp_groups: Option<Vec<u16>>,
    /// The app's `CONFIG_UART_MCUMGR_RX_BUF_SIZE` (default 128): bytes per received SMP line.
    pub uart_rx_buf_size: Option<u32>,
    /// The app's `CONFIG_UART_MCUMGR_RX_BUF_COUNT` (default 2): SMP line buffers.
    pub uart_rx_buf_count: Option<u32>,
    /// The app's `CONFIG_MCUMGR_GRP_OS_RESET_MS` (default 250): how long it keeps answering
    /// after `os reset`.
    pub reset_ms: Option<u32>,
    /// MCUboot image number it is built for: linked for that image's primary slot and sized
    /// for its secondary (1 = the nRF5340 network core, linked at the netcore flash).
    #[serde(default)]
    pub image: u32,
    /// imgtool `--dependencies`: images that must be at least this version for this one to be
    /// installed (MCUboot holds every image of the update until they are met).
    #[serde(default)]
    pub dependencies: Vec<DependencySpec>,
}

/// One `--dependencies "(image, version)"` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DependencySpec {
    pub image: u8,
    /// Minimum version, `major.minor.revision[+build]`.
    pub version: String,
}

fn default_size() -> u32 {
    0x6000
}
fn default_key() -> String {
    "default".into()
}
fn default_hdr() -> u16 {
    0x200
}
fn default_hdr_u32() -> u32 {
    0x200
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Key name → PEM path (relative to the manifest).
    #[serde(default)]
    pub keys: BTreeMap<String, PathBuf>,
    #[serde(default)]
    pub images: BTreeMap<String, FixtureSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("fixture `{0}` is not defined in the scenario or the fixture manifest")]
    Unknown(String),
    #[error("fixture `{name}`: {message}")]
    Build { name: String, message: String },
}

/// A fixture ready to flash or upload.
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    pub bytes: Vec<u8>,
    /// SHA-256 of the file (what SMP upload sends as `sha`).
    pub file_sha256: [u8; 32],
    /// The image hash TLV (what `image list` shows and `image test` takes); None for MCUboot.
    pub image_hash: Option<Vec<u8>>,
    pub version: Option<String>,
}

pub fn load_manifest(path: &Path) -> Result<Manifest, FixtureError> {
    let text = std::fs::read_to_string(path).map_err(|e| FixtureError::Manifest {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    serde_saphyr::from_str(&text).map_err(|e| FixtureError::Manifest {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Everything needed to build fixtures for one scenario on one layout.
pub struct Builder<'a> {
    pub manifest_dir: PathBuf,
    pub manifest: Manifest,
    pub extra: &'a BTreeMap<String, FixtureSpec>,
    pub scenario_dir: PathBuf,
    pub layout: &'a Layout,
    pub bootloader: &'a BootloaderSpec,
}

impl Builder<'_> {
    fn spec(&self, name: &str) -> Result<(&FixtureSpec, &Path), FixtureError> {
        if let Some(s) = self.extra.get(name) {
            return Ok((s, &self.scenario_dir));
        }
        self.manifest
            .images
            .get(name)
            .map(|s| (s, self.manifest_dir.as_path()))
            .ok_or_else(|| FixtureError::Unknown(name.to_owned()))
    }

    pub fn key(&self, name: &str) -> Result<SigningKey, FixtureError> {
        let path = self
            .manifest
            .keys
            .get(name)
            .map(|p| self.manifest_dir.join(p))
            .ok_or_else(|| FixtureError::Build {
                name: name.to_owned(),
                message: format!("no key `{name}` in the manifest's `keys:`"),
            })?;
        SigningKey::load(&path).map_err(|e| FixtureError::Build {
            name: name.to_owned(),
            message: e.to_string(),
        })
    }

    fn err(name: &str, message: impl ToString) -> FixtureError {
        FixtureError::Build {
            name: name.to_owned(),
            message: message.to_string(),
        }
    }

    pub fn build(&self, name: &str) -> Result<Built, FixtureError> {
        self.build_depth(name, 0)
    }

    fn build_depth(&self, name: &str, depth: usize) -> Result<Built, FixtureError> {
        if depth > 8 {
            return Err(Self::err(
                name,
                "derivation chain too deep (a cycle of `from:`?)",
            ));
        }
        let (spec, dir) = self.spec(name)?;
        let bytes = match spec {
            FixtureSpec::Derived(d) => {
                let base = self.build_depth(&d.from, depth + 1)?;
                let ctx = self.derive_context()?;
                dfu_hil_mcuboot::derive::apply_all(&base.bytes, &d.derive, &ctx)
                    .map_err(|e| Self::err(name, format!("deriving from `{}`: {e}", d.from)))?
            }
            FixtureSpec::Mcuboot(m) => match &m.nsib_slot {
                None => self.build_mcuboot(name)?,
                Some(slot) => nsib::slot_contents(&self.nsib_variant(name, slot, m.fw_version)?),
            },
            FixtureSpec::McubootUpdate(m) => {
                let slot = m
                    .nsib_slot
                    .as_deref()
                    .ok_or_else(|| Self::err(name, "mcuboot-update needs `nsib-slot: s0|s1`"))?;
                let variant = self.nsib_variant(name, slot, m.fw_version)?;
                let secondary = self
                    .layout
                    .images
                    .first()
                    .and_then(|p| self.layout.partition(&p.secondary))
                    .ok_or_else(|| Self::err(name, "the layout has no secondary slot"))?;
                let key = self.key(&self.bootloader.key)?;
                let opts = SignOptions {
                    header_size: 0x200,
                    pad_header: true,
                    version: Version {
                        major: m.fw_version.min(255) as u8,
                        ..Version::default()
                    },
                    slot_size: secondary.size,
                    ..SignOptions::default()
                };
                sign(&variant, Some(&key), &opts).map_err(|e| Self::err(name, e))?
            }
            FixtureSpec::B0 {} => nsib::build_b0(),
            FixtureSpec::Provision(p) => {
                let key = self.key(&self.bootloader.key)?;
                for part in ["s0", "s1", "provision"] {
                    if self.layout.partition(part).is_none() {
                        return Err(Self::err(
                            name,
                            format!("the layout has no `{part}` partition (NSIB)"),
                        ));
                    }
                }
                provision_for(self.layout, &[key.public()], p.counter_slots)
                    .map_err(|e| Self::err(name, e))?
            }
            FixtureSpec::File(p) => {
                let path = dir.join(p);
                std::fs::read(&path)
                    .map_err(|e| Self::err(name, format!("{}: {e}", path.display())))?
            }
            FixtureSpec::App(app) => self.build_app(name, app)?,
        };
        let image = Image::parse(&bytes).ok();
        Ok(Built {
            name: name.to_owned(),
            file_sha256: Sha256::digest(&bytes).into(),
            image_hash: image
                .as_ref()
                .and_then(|i| i.hash_tlv().map(<[u8]>::to_vec)),
            version: image.map(|i| i.header.version.to_string()),
            bytes,
        })
    }

    fn derive_context(&self) -> Result<dfu_hil_mcuboot::derive::DeriveContext, FixtureError> {
        let mut keys = BTreeMap::new();
        for k in self.manifest.keys.keys() {
            keys.insert(k.clone(), self.key(k)?);
        }
        let pair = self.layout.images.first();
        let secondary = pair.and_then(|p| self.layout.partition(&p.secondary));
        let dev = secondary.map(|p| self.layout.device_of(p));
        Ok(dfu_hil_mcuboot::derive::DeriveContext {
            keys,
            slot_size: secondary.map(|p| p.size).unwrap_or(0),
            max_align: self.bootloader.max_align,
            write_size: dev.map(|d| d.write_size).unwrap_or(4),
            erased: dev.map(|d| d.erased).unwrap_or(0xff),
        })
    }

    fn nsib_variant(
        &self,
        name: &str,
        slot: &str,
        fw_version: u32,
    ) -> Result<Vec<u8>, FixtureError> {
        if self.layout.partition(slot).is_none() {
            return Err(Self::err(
                name,
                format!("the layout has no NSIB slot `{slot}`"),
            ));
        }
        let key = self.key(&self.bootloader.key)?;
        let build = self.bootloader_build()?;
        nsib::mcuboot_variant(&build, self.layout, slot, fw_version, &key)
            .map_err(|e| Self::err(name, e))
    }

    /// MCUboot's build configuration from the scenario's `bootloader:` block.
    fn bootloader_build(&self) -> Result<BootloaderBuild, FixtureError> {
        let b = self.bootloader;
        let key = self.key(&b.key)?;
        Ok(BootloaderBuild {
            mode: b.mode,
            max_align: b.max_align,
            max_sectors: b.max_sectors,
            key_pem: Some(key.public().to_pem()),
            validate_primary: b.validate_primary,
            downgrade_prevention: b.downgrade_prevention,
            external_flash_driver: b.external_flash_driver,
            version: "2.1.0".into(),
            ..BootloaderBuild::default()
        })
    }

    fn build_mcuboot(&self, name: &str) -> Result<Vec<u8>, FixtureError> {
        let build = self.bootloader_build()?;
        let part = self
            .layout
            .partition("mcuboot")
            .ok_or_else(|| Self::err(name, "the layout has no `mcuboot` partition"))?;
        Ok(build_bootloader(&build, self.layout.address(part)))
    }

    fn build_app(&self, name: &str, app: &AppFixture) -> Result<Vec<u8>, FixtureError> {
        let pair = self.layout.images.get(app.image as usize).ok_or_else(|| {
            Self::err(
                name,
                format!(
                    "image {} is not in layout `{}` (it has {} image pair(s))",
                    app.image,
                    self.layout.name,
                    self.layout.images.len()
                ),
            )
        })?;
        let primary = self
            .layout
            .partition(&pair.primary)
            .expect("checked layout");
        let secondary = self
            .layout
            .partition(&pair.secondary)
            .expect("checked layout");
        let version: Version = app
            .version
            .parse()
            .map_err(|e| Self::err(name, format!("version `{}`: {e}", app.version)))?;
        let mut desc = AppDescriptor::new(&app.name, &app.version);
        desc.confirm_on_boot = app.confirm_on_boot;
        desc.max_align = self.bootloader.max_align;
        if let Some(g) = &app.smp_groups {
            desc.smp_groups = g.clone();
        }
        if let Some(n) = app.uart_rx_buf_size {
            desc.uart_rx_buf_size = n;
        }
        if let Some(n) = app.uart_rx_buf_count {
            desc.uart_rx_buf_count = n;
        }
        if let Some(n) = app.reset_ms {
            desc.reset_ms = n;
        }
        dfu_hil_smp::LineLimits::new(
            desc.uart_rx_buf_size as usize,
            desc.uart_rx_buf_count as usize,
        )
        .map_err(|e| Self::err(name, format!("uart-rx-buf-size/-count: {e}")))?;
        let link_base = self.layout.address(primary);
        let mut payload = build_app(&desc, link_base, app.rom_start_offset, app.size);
        if app.pad_header {
            // The binary then starts with its vector table; imgtool prepends the header room.
            payload.drain(..app.rom_start_offset as usize);
        }
        let key = if app.key == "none" {
            None
        } else {
            Some(self.key(&app.key)?)
        };
        let dependencies = app
            .dependencies
            .iter()
            .map(|d| {
                let min_version = d.version.parse().map_err(|e| {
                    Self::err(name, format!("dependency version `{}`: {e}", d.version))
                })?;
                Ok(dfu_hil_mcuboot::image::Dependency {
                    image_id: d.image,
                    min_version,
                })
            })
            .collect::<Result<Vec<_>, FixtureError>>()?;
        let dev = self.layout.device_of(secondary);
        let opts = SignOptions {
            dependencies,
            header_size: app.header_size,
            pad_header: app.pad_header,
            version,
            slot_size: secondary.size,
            align: dev.write_size,
            max_align: self.bootloader.max_align,
            max_sectors: self.bootloader.max_sectors,
            ..SignOptions::default()
        };
        sign(&payload, key.as_ref(), &opts).map_err(|e| Self::err(name, e))
    }
}
