//! The DFU flows a HIL run exercises, end to end through SMP packets and resets: factory boot,
//! upload, test, swap, revert, confirm, permanent (MCUboot `bootutil_public.c`: swap table,
//! `boot_set_pending_multi`, `boot_set_confirmed_multi`; Zephyr `img_mgmt_state.c`).

mod common;

use common::*;
use dfu_hil_mcuboot::trailer::{Flag, MagicState};

/// Upload v2 and mark it for test; returns its TLV hash.
fn upload_and_test(b: &mut dfu_hil_sim::SimBoard, v2: &[u8]) -> Vec<u8> {
    upload(b, v2, 200).expect("upload");
    let hash = tlv_hash(v2);
    let s1 = slot(b, 1).expect("slot1 listed after upload");
    assert_eq!(s1.hash, hash);
    assert_eq!(s1.version, "2.0.0");
    assert!(!s1.pending && !s1.confirmed && !s1.active && !s1.permanent);
    test_image(b, &hash);
    hash
}

#[test]
fn factory_boot_lists_slot0_active_confirmed() {
    let mut b = factory_board("1.0.0");
    assert_eq!(running(&b), "1.0.0");
    let l = list(&mut b);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(l[0].active && l[0].confirmed && !l[0].pending && l[0].bootable);
    assert_eq!(l[0].slot, 0);
    assert_eq!(l[0].version, "1.0.0");
    assert!(logged(&b, "Swap type: none"));
}

#[test]
fn test_swap_then_revert() {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let v2 = app(&lay, "2.0.0");
    let mut b = board_with(lay, &build(), &v1);
    upload_and_test(&mut b, &v2);
    let s1 = slot(&mut b, 1).unwrap();
    assert!(s1.pending && !s1.permanent && !s1.confirmed);
    // Secondary trailer as boot_set_pending(0) leaves it.
    let t = trailer(&b, "slot1");
    assert_eq!(t.magic, MagicState::Good);
    assert_eq!(t.swap_info, Some(0x02));

    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert!(logged(&b, "Swap type: test"));
    let l = list(&mut b);
    let (s0, s1) = (&l[0], &l[1]);
    assert!(s0.active && !s0.confirmed && s0.version == "2.0.0");
    assert!(s1.confirmed && !s1.active && !s1.pending && s1.version == "1.0.0");
    // The primary's trailer after a test swap, as MCUboot's simulator checks it.
    let p = trailer(&b, "slot0");
    assert_eq!(p.magic, MagicState::Good);
    assert_eq!(p.swap_info, Some(0x02));
    assert_eq!(p.copy_done, Flag::Set);
    assert_eq!(p.image_ok, Flag::Unset);
    assert!(p.swap_size.is_some());
    assert_eq!(triple(&trailer(&b, "slot1")), ERASED);
    assert_eq!(trailer(&b, "slot1").swap_info, None);

    // No confirm: the next reset reverts.
    b.reset();
    assert_eq!(running(&b), "1.0.0");
    assert!(logged(&b, "Swap type: revert"));
    let p = trailer(&b, "slot0");
    assert_eq!(triple(&p), (MagicState::Good, Flag::Set, Flag::Set));
    assert_eq!(p.swap_info, Some(0x04));
    assert_eq!(triple(&trailer(&b, "slot1")), ERASED);
    let l = list(&mut b);
    assert!(l[0].active && l[0].confirmed && l[0].version == "1.0.0");
    assert!(!l[1].pending && !l[1].confirmed && l[1].version == "2.0.0");

    // basic_revert: further boots stay on v1.
    for _ in 0..3 {
        b.reset();
        assert_eq!(running(&b), "1.0.0");
        assert_eq!(b.last_boot().decisions[0].swap_type.name(), "none");
    }
}

#[test]
fn confirm_after_test_swap_keeps_v2() {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let v2 = app(&lay, "2.0.0");
    let mut b = board_with(lay, &build(), &v1);
    upload_and_test(&mut b, &v2);
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    let l = parse(state_write(&mut b, None, true).expect("confirm"));
    assert!(l[0].active && l[0].confirmed);
    assert!(!l[1].confirmed && !l[1].pending);
    assert_eq!(
        triple(&trailer(&b, "slot0")),
        (MagicState::Good, Flag::Set, Flag::Set)
    );
    for _ in 0..2 {
        b.reset();
        assert_eq!(running(&b), "2.0.0");
    }
    // norevert: confirmed image stays, trailer (GOOD, SET, SET).
    assert_eq!(
        triple(&trailer(&b, "slot0")),
        (MagicState::Good, Flag::Set, Flag::Set)
    );
}

#[test]
fn permanent_upgrade() {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let v2 = app(&lay, "2.0.0");
    let mut b = board_with(lay, &build(), &v1);
    upload(&mut b, &v2, 300).expect("upload");
    let hash = tlv_hash(&v2);
    let l = parse(state_write(&mut b, Some(&hash), true).expect("confirm slot1"));
    assert!(l[1].pending && l[1].permanent);
    assert!(l[0].active && l[0].confirmed);
    let t = trailer(&b, "slot1");
    assert_eq!(t.image_ok, Flag::Set);
    assert_eq!(t.swap_info, Some(0x03));
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert!(logged(&b, "Swap type: perm"));
    let p = trailer(&b, "slot0");
    assert_eq!(triple(&p), (MagicState::Good, Flag::Set, Flag::Set));
    assert_eq!(p.swap_info, Some(0x03));
    assert_eq!(triple(&trailer(&b, "slot1")), ERASED);
    let l = list(&mut b);
    assert!(l[0].active && l[0].confirmed && l[0].version == "2.0.0");
    assert!(!l[1].pending && !l[1].confirmed);
    b.reset();
    assert_eq!(running(&b), "2.0.0");
}

#[test]
fn app_that_confirms_itself_is_kept() {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let mut d = dfu_hil_firmware::AppDescriptor::new("app", "2.0.0");
    d.confirm_on_boot = true;
    let v2 = app_with(&lay, &d, APP_SIZE, Some(&key()), 0x200);
    let mut b = board_with(lay, &build(), &v1);
    upload_and_test(&mut b, &v2);
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    assert_eq!(
        triple(&trailer(&b, "slot0")),
        (MagicState::Good, Flag::Set, Flag::Set)
    );
    b.reset();
    assert_eq!(running(&b), "2.0.0");
}

#[test]
fn reset_over_smp_answers_then_reboots() {
    let mut b = factory_board("1.0.0");
    let before = b.last_boot().n;
    let body = request(
        &mut b,
        dfu_hil_smp::Op::Write,
        dfu_hil_smp::group::OS,
        dfu_hil_smp::os_cmd::RESET,
        dfu_hil_smp::map([]),
    );
    assert_eq!(body, dfu_hil_smp::map([]));
    // Answered first; the reboot follows CONFIG_MCUMGR_GRP_OS_RESET_MS (250 ms) later, and
    // until then the old app answers.
    assert_eq!(b.last_boot().n, before);
    assert!(b.reset_pending());
    b.idle(std::time::Duration::from_millis(100));
    assert_eq!(b.last_boot().n, before, "still within the reset delay");
    assert!(b.idle(std::time::Duration::from_millis(300)));
    assert!(!b.reset_pending());
    assert_eq!(b.last_boot().n, before + 1);
    assert_eq!(running(&b), "1.0.0");
}

#[test]
fn serial_path_round_trip() {
    // The UART: a client-framed echo request comes back Zephyr-framed.
    let mut b = factory_board("1.0.0");
    b.uart_read();
    let req = dfu_hil_smp::Packet::request(
        dfu_hil_smp::Version::V2,
        dfu_hil_smp::Op::Write,
        dfu_hil_smp::group::OS,
        dfu_hil_smp::os_cmd::ECHO,
        0x42,
        dfu_hil_smp::map([("d", dfu_hil_smp::Value::Text("hello".into()))]),
    );
    // Right after the boot the SMP transport has not registered yet: the request is drained.
    b.uart_write(&dfu_hil_smp::serial::encode_client(&req.encode()));
    assert!(b.uart_read().is_empty());
    assert!(b.uart_drained() > 0);
    // A moment later it is answered.
    assert!(b.idle(std::time::Duration::from_millis(50)));
    b.uart_write(&dfu_hil_smp::serial::encode_client(&req.encode()));
    let out = b.uart_read();
    let mut dec = dfu_hil_smp::LineDecoder::new();
    let packets: Vec<Vec<u8>> = dec
        .push(&out)
        .into_iter()
        .filter_map(|e| match e {
            dfu_hil_smp::SerialEvent::Packet(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(packets.len(), 1, "{out:?}");
    // Zephyr v2 echo response (docs/protocol-facts.md, "Byte vectors used in tests").
    assert_eq!(
        packets[0],
        hex::decode("0b00000a000042 00bf617265 68656c6c6f ff".replace(' ', "")).unwrap()
    );
}

fn parse(v: dfu_hil_smp::Value) -> Vec<dfu_hil_smp::SlotState> {
    dfu_hil_smp::parse_image_state(&v).expect("state body")
}
