//! Firmware fixtures: the images a scenario flashes and uploads, derived reproducibly from a
//! manifest (`firmware-fixtures/fixtures.yaml`) — never hand-edited binaries.
//!
//! For the simulated board an `app` fixture is a synthetic Zephyr-like binary signed like
//! `west build` signs (imgtool-compatible); for hardware a `file` fixture points at a real
//! `zephyr.signed.bin`. The `mcuboot` fixture is built from the scenario's `bootloader:` block.

use crate::build_input::{FromBuild, BUILD_KEY};
pub use crate::fixture_spec::{
    AppFixture, BuildRole, DependencySpec, DerivedFixture, FixtureSpec, Manifest, McubootFixture,
    ProvisionFixture,
};
use crate::scenario::BootloaderSpec;
use dfu_hil_firmware::nsib;
use dfu_hil_firmware::provision::provision_for;
use dfu_hil_firmware::{build_app, build_bootloader, AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::image::{Image, Version};
use dfu_hil_mcuboot::keys::SigningKey;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// Where the app in this image was linked to start, from its slot's start (the header room
    /// its build expected: `rom-start-offset` of a synthetic app, the build's `mcuboot_pad` /
    /// `CONFIG_ROM_START_OFFSET`); the fault diagnosis compares it with the image's `hdr_size`.
    pub link_offset: Option<u32>,
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
    /// The build the scenario runs on: `build:` fixtures, its signing key (`build`).
    pub build: Option<&'a FromBuild>,
    /// The release the simulated firmware follows (`firmware:`, else the build's, else
    /// upstream's): written into every app and bootloader descriptor.
    pub release: dfu_hil_firmware::Release,
    /// The SMP transport the scenario uses: a BLE app without a stated `netbuf-size` is built
    /// as Bluetooth DFU apps are configured (see [`BLE_NETBUF_SIZE`]).
    pub transport: crate::scenario::TransportKind,
}

/// `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE` of a Bluetooth DFU app: Zephyr's `smp_svr`
/// `overlay-bt.conf` and NCS's `NCS_SAMPLE_MCUMGR_BT_OTA_DFU` (NCS 2.3–3.1) both pair
/// `CONFIG_BT_L2CAP_TX_MTU=498` with a net_buf of one SMP packet split into five writes at that
/// MTU, (498 − 3) × 5 = 2475 bytes. Zephyr's plain default (384) with MTU 498 is a pairing no
/// such build produces, so the simulated BLE link (ATT MTU 498) gets 2475 unless the fixture or
/// the build says otherwise.
pub const BLE_NETBUF_SIZE: u32 = 2475;

/// The bytes of an image file as a fixture takes them: a raw `.bin` as it is; Intel HEX
/// (`zephyr.signed.hex`) and `dfu_application.zip` through the build crate's image reader,
/// which must find exactly one MCUboot image in them (a multi-image zip or `merged.hex` is
/// ambiguous here: name the image with a `build:` fixture instead).
pub fn read_image_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut items = dfu_hil_build::images::read_image_file(path).map_err(|e| e.to_string())?;
    if items.len() == 1 {
        return Ok(items.remove(0).1);
    }
    let labels: Vec<String> = items.into_iter().map(|(l, _)| l).collect();
    Err(format!(
        "{}: holds {} images ({}); a fixture is one image — use `build: app` / `build: net-core` with the build, or one of the files",
        path.display(),
        labels.len(),
        labels.join(", ")
    ))
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
        if name == BUILD_KEY {
            if let Some(b) = self.build {
                let path = b.key.as_ref().ok_or_else(|| FixtureError::Build {
                    name: name.to_owned(),
                    message: format!(
                        "MCUboot's signing key is not on this machine: {}",
                        b.key_setting()
                    ),
                })?;
                return SigningKey::load(path).map_err(|e| FixtureError::Build {
                    name: name.to_owned(),
                    message: format!("{}: {e} (from {})", path.display(), b.key_setting()),
                });
            }
        }
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
        let mut link_offset = match spec {
            FixtureSpec::App(app) => Some(app.rom_start_offset),
            FixtureSpec::Build(_) => self.build.and_then(|b| b.app_model().link_offset),
            _ => None,
        };
        let bytes = match spec {
            FixtureSpec::Derived(d) => {
                let base = self.build_depth(&d.from, depth + 1)?;
                link_offset = base.link_offset;
                if let (Some(b), true) = (self.build, self.is_build_image(&d.from, 0)) {
                    if b.key.is_none() {
                        return Err(Self::err(
                            name,
                            format!(
                                "re-signing `{}` (an image of the build) needs MCUboot's private key, which is not on this machine: {}",
                                d.from,
                                b.key_setting()
                            ),
                        ));
                    }
                }
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
                read_image_file(&dir.join(p)).map_err(|e| Self::err(name, e))?
            }
            FixtureSpec::Build(role) => self.build_image(name, *role)?,
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
            link_offset,
        })
    }

    /// Whether fixture `name` is, or derives from, an image of the build.
    fn is_build_image(&self, name: &str, depth: usize) -> bool {
        match self.spec(name) {
            Ok((FixtureSpec::Build(_), _)) => true,
            Ok((FixtureSpec::Derived(d), _)) if depth < 8 => {
                self.is_build_image(&d.from, depth + 1)
            }
            _ => false,
        }
    }

    /// A `build:` fixture: the build's signed image of that role. `app` and `app-update` are
    /// the same image in NCS (`app_update.bin` is a copy of `zephyr.signed.bin`), so either
    /// file serves for either name.
    fn build_image(&self, name: &str, role: BuildRole) -> Result<Vec<u8>, FixtureError> {
        let b = self.build.ok_or_else(|| {
            Self::err(
                name,
                format!(
                    "`build: {}` needs a build: `build: DIR` in the scenario or --build DIR",
                    role.name()
                ),
            )
        })?;
        let wanted = role.image_role();
        let twin = match role {
            BuildRole::App => Some(BuildRole::AppUpdate.image_role()),
            BuildRole::AppUpdate => Some(BuildRole::App.image_role()),
            _ => None,
        };
        let image = b
            .build
            .image(&wanted)
            .or_else(|| twin.as_ref().and_then(|t| b.build.image(t)))
            .ok_or_else(|| {
                let have: Vec<String> = b
                    .build
                    .images
                    .iter()
                    .map(|i| format!("{:?} ({})", i.role, i.path.display()))
                    .collect();
                Self::err(
                    name,
                    format!(
                        "{}: the build has no `{}` image (it has: {})",
                        b.build.dir.display(),
                        role.name(),
                        if have.is_empty() {
                            "none".into()
                        } else {
                            have.join(", ")
                        }
                    ),
                )
            })?;
        b.build.image_bytes(image).map_err(|e| Self::err(name, e))
    }

    fn derive_context(&self) -> Result<dfu_hil_mcuboot::derive::DeriveContext, FixtureError> {
        let mut keys = BTreeMap::new();
        for k in self.manifest.keys.keys() {
            keys.insert(k.clone(), self.key(k)?);
        }
        if self.build.is_some_and(|b| b.key.is_some()) {
            keys.insert(BUILD_KEY.to_owned(), self.key(BUILD_KEY)?);
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
            stand_in_app: self.build.map(|b| {
                let mut app = b.app_model();
                app.release = self.release;
                app
            }),
            release: self.release,
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
        desc.release = self.release;
        desc.confirm_on_boot = app.confirm_on_boot;
        desc.max_align = self.bootloader.max_align;
        if let Some(g) = &app.smp_groups {
            desc.smp_groups = g.clone();
        }
        if let Some(n) = app.netbuf_size {
            desc.buf_size = n;
        } else if self.transport == crate::scenario::TransportKind::Ble {
            desc.buf_size = BLE_NETBUF_SIZE;
        }
        if let Some(n) = app.netbuf_count {
            desc.buf_count = n;
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
        // On a build whose key is here, `default` (what every synthetic app is signed with
        // unless it names another key) is the key the build's MCUboot verifies: a synthetic
        // v1/v2 then boots under the build's MCUboot like its own images do.
        let key_name = if app.key == "default" && self.bootloader.key == BUILD_KEY {
            BUILD_KEY
        } else {
            app.key.as_str()
        };
        let key = if key_name == "none" {
            None
        } else {
            Some(self.key(key_name)?)
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
