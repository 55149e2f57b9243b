//! NSIB (`b0`): the version-counter slots every image agrees on, and the s0/s1 variants of
//! MCUboot that let MCUboot itself be updated.
//!
//! `CONFIG_SB_NUM_VER_COUNTER_SLOTS` (sdk-nrf `subsys/bootloader/Kconfig`) sizes the monotonic
//! counter area of the provisioning data b0's build writes (`provision.hex`); the images that
//! read or bump the counter (`bl_storage.c`, `get_monotonic_counter` / `set_monotonic_counter`,
//! used by b0 and by MCUboot's hardware downgrade prevention) are built with their own copy of
//! the option. When they disagree, an image computes the counter area with another number of
//! slots than the one provisioned.
//!
//! b0 boots s0 or s1, whichever holds the newer valid image (sdk-nrf `samples/bootloader`,
//! `main.c`); an MCUboot update must be linked for the slot MCUboot is not running from, which
//! sysbuild builds only with `SB_CONFIG_SECURE_BOOT_BUILD_S1_VARIANT_IMAGE` (parent/child:
//! `CONFIG_BUILD_S1_VARIANT`, the `s1_image` child), giving `signed_by_mcuboot_and_b0_*` images.

use super::text::kconfig_evidence;
use super::{Evidence, Finding, Severity};
use crate::build::{Build, ImageRole};
use crate::facts::Fact;

pub const COUNTER_SLOTS: &str = "nsib-counter-slots-differ";
pub const NO_S1: &str = "nsib-no-s1-variant";
pub const UPDATE_MISSING: &str = "nsib-update-image-missing";

/// The images' `CONFIG_SB_NUM_VER_COUNTER_SLOTS` differ, compared per core: the application
/// core's b0, MCUboot, s1_image and app share one provisioning; the nRF5340 network core's b0n
/// and image have their own.
pub fn counter_slots(build: &Build, out: &mut Vec<Finding>) {
    let Some(n) = &build.nsib else { return };
    let net = |who: &str| who == "netcore" || who == "b0n";
    for core in [false, true] {
        let group: Vec<&(String, Fact<u32>)> = n
            .counter_slots
            .iter()
            .filter(|(w, _)| net(w) == core)
            .collect();
        let Some((_, first)) = group.first() else {
            continue;
        };
        if group.iter().all(|(_, f)| f.value == first.value) {
            continue;
        }
        let values = group
            .iter()
            .map(|(who, f)| format!("{who} {}", f.value))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(Finding {
            id: COUNTER_SLOTS,
            severity: Severity::Warning,
            title: format!(
                "CONFIG_SB_NUM_VER_COUNTER_SLOTS differs between the {} core's images: {values}",
                if core { "network" } else { "application" }
            ),
            cause: "the monotonic version counter is provisioned once with b0's number of slots; \
                    an image built with another number reads or bumps the counter area at the \
                    wrong size, and a downgrade check or a counter update can fail after the \
                    first update"
                .into(),
            evidence: group
                .iter()
                .map(|(who, f)| {
                    let mut e = kconfig_evidence(f, &n.config, "CONFIG_SB_NUM_VER_COUNTER_SLOTS");
                    e.text = format!("{who}: {}", e.text);
                    e
                })
                .collect(),
            fix: "set CONFIG_SB_NUM_VER_COUNTER_SLOTS once for every image of the core \
                  (sysbuild: SB_CONFIG_SECURE_BOOT_NUM_VER_COUNTER_SLOTS where the NCS version \
                  has it; else the same value in each image's .conf)"
                .into(),
        });
    }
}

/// NSIB with MCUboot but no s1 variant, or an s1 variant whose update image is not in the build.
pub fn variants(build: &Build, out: &mut Vec<Finding>) {
    let (Some(n), Some(_)) = (&build.nsib, &build.mcuboot) else {
        return;
    };
    if !build.has_b0() {
        return; // counter slots seen without b0 (a network core's b0n, CONFIG_SECURE_BOOT=y alone)
    }
    let s1_ev = || {
        kconfig_evidence(
            &n.s1_variant,
            &n.config,
            "SB_CONFIG_SECURE_BOOT_BUILD_S1_VARIANT_IMAGE",
        )
    };
    if !n.s1_variant.value {
        out.push(Finding {
            id: NO_S1,
            severity: Severity::Warning,
            title: "b0 boots MCUboot from s0, and no s1 variant of MCUboot is built".into(),
            cause: "an MCUboot update must be linked for the other NSIB slot; without the s1 \
                    variant there is no image to update MCUboot with (fine if MCUboot is never \
                    updated in the field)"
                .into(),
            evidence: vec![s1_ev()],
            fix: "enable SB_CONFIG_SECURE_BOOT_BUILD_S1_VARIANT_IMAGE=y (sysbuild) or \
                  CONFIG_BUILD_S1_VARIANT=y (parent/child), with an MCUboot image number for \
                  MCUboot itself (SB_CONFIG_MCUBOOT_MCUBOOT_IMAGE_NUMBER)"
                .into(),
        });
        return;
    }
    if build.images.is_empty() {
        return; // the build's binaries are not here (e.g. only its configuration was kept)
    }
    let has = |slot: u8| {
        build
            .images
            .iter()
            .any(|i| i.role == ImageRole::McubootUpdate { nsib_slot: slot })
    };
    if !has(1) {
        out.push(Finding {
            id: UPDATE_MISSING,
            severity: Severity::Warning,
            title: "the s1 variant of MCUboot is configured but no MCUboot update image was found"
                .into(),
            cause: "a scenario or a phone app that updates MCUboot needs \
                    signed_by_mcuboot_and_b0_s1_image.bin (older NCS: s1_image / \
                    *_s1_image_update.bin); the build directory does not hold it"
                .into(),
            evidence: vec![
                s1_ev(),
                Evidence::new(&build.dir, None, "no signed_by_mcuboot_and_b0_* image"),
            ],
            fix: "build again (the image is made by the default target), or add the file to \
                  what the CI keeps of the build"
                .into(),
        });
    }
}
