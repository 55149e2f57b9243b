//! img_mgmt / os_mgmt server rules (Zephyr `smp/src/smp.c`, `os_mgmt.c`, `img_mgmt.c`,
//! `img_mgmt_state.c`, `zephyr_img_mgmt.c`; byte vectors: docs/protocol-facts.md).

mod common;

use common::*;
use dfu_hil_firmware::AppDescriptor;
use dfu_hil_mcuboot::trailer::MagicState;
use dfu_hil_sim::device::smp_server::img_err;
use dfu_hil_smp::{group, img_cmd, map, os_cmd, uint, Op, Packet, Value, Version};

fn board_v1_v2_uploaded() -> (dfu_hil_sim::SimBoard, Vec<u8>, Vec<u8>) {
    let lay = layout();
    let v1 = app(&lay, "1.0.0");
    let v2 = app(&lay, "2.0.0");
    let mut b = board_with(lay, &build(), &v1);
    upload(&mut b, &v2, 250).expect("upload");
    (b, v1, v2)
}

#[test]
fn test_of_active_image_denied() {
    let (mut b, v1, _) = board_v1_v2_uploaded();
    let rc = group_rc(state_write(&mut b, Some(&tlv_hash(&v1)), false));
    assert_eq!(rc, img_err::IMAGE_SETTING_TEST_TO_ACTIVE_DENIED);
    assert_eq!(rc, 33);
}

#[test]
fn unknown_hash_and_bad_hash() {
    let (mut b, _, _) = board_v1_v2_uploaded();
    assert_eq!(group_rc(state_write(&mut b, Some(&[0xab; 32]), false)), 8);
    assert_eq!(group_rc(state_write(&mut b, Some(&[0xab; 31]), true)), 24);
    assert_eq!(group_rc(state_write(&mut b, None, false)), 24);
}

#[test]
fn pending_rules() {
    let (mut b, v1, v2) = board_v1_v2_uploaded();
    let h2 = tlv_hash(&v2);
    test_image(&mut b, &h2);
    // Re-testing the same slot is a no-op.
    test_image(&mut b, &h2);
    // A test request cannot become permanent, nor can the running image be confirmed.
    assert_eq!(group_rc(state_write(&mut b, Some(&h2), true)), 28);
    assert_eq!(group_rc(state_write(&mut b, None, true)), 28);
    // Testing the active one is refused before the pending check.
    assert_eq!(
        group_rc(state_write(&mut b, Some(&tlv_hash(&v1)), false)),
        33
    );
    // Upload while pending: no free slot.
    let v3 = app(&layout(), "3.0.0");
    assert_eq!(upload_err(&mut b, &v3), 9);
}

#[test]
fn revert_state_rules() {
    let (mut b, v1, v2) = board_v1_v2_uploaded();
    test_image(&mut b, &tlv_hash(&v2));
    b.reset();
    assert_eq!(running(&b), "2.0.0");
    let before = trailer(&b, "slot0");
    // Confirming the revert target (slot1 = v1) succeeds without writing anything.
    let ops = b.flash.op_count();
    state_write(&mut b, Some(&tlv_hash(&v1)), true).expect("no-op confirm");
    assert_eq!(b.flash.op_count(), ops, "nothing written");
    assert_eq!(trailer(&b, "slot0"), before);
    // Any test is refused while a revert is scheduled.
    assert_eq!(
        group_rc(state_write(&mut b, Some(&tlv_hash(&v1)), false)),
        28
    );
    // Upload while the test image is unconfirmed: slot1 holds the revert target.
    let v3 = app(&layout(), "3.0.0");
    assert_eq!(upload_err(&mut b, &v3), 9);
    // ... so the device still reverts.
    b.reset();
    assert_eq!(running(&b), "1.0.0");
}

#[test]
fn confirm_by_hash_of_running_image_after_swap() {
    let (mut b, _, v2) = board_v1_v2_uploaded();
    let h2 = tlv_hash(&v2);
    test_image(&mut b, &h2);
    b.reset();
    // Zephyr's with_mcumgr flow: confirm by the hash taken before the swap, now in slot0.
    state_write(&mut b, Some(&h2), true).expect("confirm");
    b.reset();
    assert_eq!(running(&b), "2.0.0");
}

#[test]
fn confirm_in_none_state_writes_nothing() {
    let mut b = factory_board("1.0.0");
    let ops = b.flash.op_count();
    state_write(&mut b, None, true).expect("confirm");
    assert_eq!(b.flash.op_count(), ops);
    assert_eq!(trailer(&b, "slot0").magic, MagicState::Unset);
}

#[test]
fn upload_too_large() {
    let mut b = factory_board("1.0.0");
    let lay = layout();
    let hdr = app(&lay, "2.0.0")[..64].to_vec();
    let body = request(
        &mut b,
        Op::Write,
        group::IMAGE,
        img_cmd::UPLOAD,
        map([
            ("off", uint(0)),
            ("len", uint(0x7a000 + 1)),
            ("data", Value::Bytes(hdr)),
        ]),
    );
    assert_eq!(err_rc(&body), Some((1, 30)));
}

#[test]
fn upload_first_chunk_checks() {
    let mut b = factory_board("1.0.0");
    let img = app(&layout(), "2.0.0");
    let up = |b: &mut dfu_hil_sim::SimBoard, e: Vec<(&str, Value)>| {
        request(b, Op::Write, group::IMAGE, img_cmd::UPLOAD, map(e))
    };
    let data = |n: usize| Value::Bytes(img[..n].to_vec());
    assert_eq!(err_rc(&up(&mut b, vec![("data", data(64))])), Some((1, 20)));
    assert_eq!(
        err_rc(&up(
            &mut b,
            vec![("off", uint(0)), ("len", uint(10)), ("data", data(16))]
        )),
        Some((1, 22))
    );
    assert_eq!(
        err_rc(&up(&mut b, vec![("off", uint(0)), ("data", data(64))])),
        Some((1, 21))
    );
    let mut bad = img[..64].to_vec();
    bad[0] ^= 1;
    assert_eq!(
        err_rc(&up(
            &mut b,
            vec![
                ("off", uint(0)),
                ("len", uint(64)),
                ("data", Value::Bytes(bad))
            ]
        )),
        Some((1, 23))
    );
    // A wrong CBOR type is an SMP-level EINVAL in the v1 form.
    let body = up(
        &mut b,
        vec![("off", Value::Text("0".into())), ("data", data(64))],
    );
    assert_eq!(body, map([("rc", uint(3))]));
}

#[test]
fn upload_resume_and_wrong_offset() {
    let mut b = factory_board("1.0.0");
    let img = app(&layout(), "2.0.0");
    let sha = dfu_hil_sim::device::smp_server::file_sha(&img);
    let first = |b: &mut dfu_hil_sim::SimBoard| {
        request(
            b,
            Op::Write,
            group::IMAGE,
            img_cmd::UPLOAD,
            map([
                ("off", uint(0)),
                ("len", uint(img.len() as u64)),
                ("sha", Value::Bytes(sha.clone())),
                ("data", Value::Bytes(img[..256].to_vec())),
            ]),
        )
    };
    assert_eq!(dfu_hil_smp::map_uint(&first(&mut b), "off"), Some(256));
    let next = |b: &mut dfu_hil_sim::SimBoard, off: usize| {
        request(
            b,
            Op::Write,
            group::IMAGE,
            img_cmd::UPLOAD,
            map([
                ("off", uint(off as u64)),
                ("data", Value::Bytes(img[off..off + 256].to_vec())),
            ]),
        )
    };
    assert_eq!(dfu_hil_smp::map_uint(&next(&mut b, 256), "off"), Some(512));
    // Wrong offset: no error, the expected offset comes back and nothing is written.
    let ops = b.flash.op_count();
    assert_eq!(dfu_hil_smp::map_uint(&next(&mut b, 1024), "off"), Some(512));
    assert_eq!(b.flash.op_count(), ops);
    // Same sha again at off 0: resume, no erase.
    assert_eq!(dfu_hil_smp::map_uint(&first(&mut b), "off"), Some(512));
    assert_eq!(b.flash.op_count(), ops);
    // Overrun past len.
    let body = request(
        &mut b,
        Op::Write,
        group::IMAGE,
        img_cmd::UPLOAD,
        map([
            ("off", uint(512)),
            ("data", Value::Bytes(vec![0; img.len()])),
        ]),
    );
    assert_eq!(err_rc(&body), Some((1, 31)));
    // After a reset the session is gone: a continuation is answered with off 0.
    b.reset();
    assert_eq!(dfu_hil_smp::map_uint(&next(&mut b, 512), "off"), Some(0));
    // And the whole upload still works afterwards.
    upload(&mut b, &img, 333).expect("upload");
    assert_eq!(slot(&mut b, 1).unwrap().hash, tlv_hash(&img));
}

#[test]
fn v1_requests_get_translated_rc() {
    let (mut b, v1, _) = board_v1_v2_uploaded();
    let st = |h: &[u8], c: bool| {
        map([
            ("hash", Value::Bytes(h.to_vec())),
            ("confirm", Value::Bool(c)),
        ])
    };
    let body = request_v(
        &mut b,
        Version::V1,
        Op::Write,
        group::IMAGE,
        img_cmd::STATE,
        st(&[1; 32], false),
    );
    assert_eq!(body, map([("rc", uint(1))]), "HASH_NOT_FOUND → EUNKNOWN");
    let body = request_v(
        &mut b,
        Version::V1,
        Op::Write,
        group::IMAGE,
        img_cmd::STATE,
        st(&tlv_hash(&v1), false),
    );
    assert_eq!(
        body,
        map([("rc", uint(1))]),
        "TEST_TO_ACTIVE_DENIED → EUNKNOWN"
    );
    let v2 = app(&layout(), "2.0.0");
    let body = request_v(
        &mut b,
        Version::V1,
        Op::Write,
        group::IMAGE,
        img_cmd::STATE,
        st(&tlv_hash(&v2), false),
    );
    assert!(dfu_hil_smp::response_error(&body).is_none());
    let body = request_v(
        &mut b,
        Version::V1,
        Op::Write,
        group::IMAGE,
        img_cmd::STATE,
        st(&tlv_hash(&v1), true),
    );
    assert_eq!(body, map([("rc", uint(6))]), "ALREADY_PENDING → EBADSTATE");
}

#[test]
fn image_group_missing_is_enotsup() {
    let lay = layout();
    let mut d = AppDescriptor::new("noimg", "1.0.0");
    d.smp_groups = vec![0];
    let img = app_with(&lay, &d, APP_SIZE, Some(&key()), 0x200);
    let mut b = board_with(lay, &build(), &img);
    let body = request(&mut b, Op::Read, group::IMAGE, img_cmd::STATE, map([]));
    assert_eq!(body, map([("rc", uint(8))]));
    // OS group still answers.
    let body = request(
        &mut b,
        Op::Write,
        group::OS,
        os_cmd::ECHO,
        map([("d", Value::Text("x".into()))]),
    );
    assert_eq!(body, map([("r", Value::Text("x".into()))]));
}

#[test]
fn zephyr_byte_forms() {
    let mut b = factory_board("1.0.0");
    // v2 echo response (docs/protocol-facts.md, "Byte vectors used in tests").
    let req = Packet::request(
        Version::V2,
        Op::Write,
        group::OS,
        os_cmd::ECHO,
        0x42,
        map([("d", Value::Text("hello".into()))]),
    );
    assert_eq!(
        hex::encode(req.encode()),
        "0a0000090000420 0a16164656 8656c6c6f".replace(' ', "")
    );
    let out = b.smp_request(&req.encode());
    assert_eq!(
        hex::encode(&out[0]),
        "0b00000a000042 00bf6172656 8656c6c6fff".replace(' ', "")
    );
    // Upload without len → INVALID_LENGTH (21) as a v2 group error, seq 0x11.
    let img = app(&layout(), "2.0.0");
    let req = Packet::request(
        Version::V2,
        Op::Write,
        group::IMAGE,
        img_cmd::UPLOAD,
        0x11,
        map([("off", uint(0)), ("data", Value::Bytes(img[..64].to_vec()))]),
    );
    let out = b.smp_request(&req.encode());
    assert_eq!(
        hex::encode(&out[0]),
        "0b000013000111 01bf63657272bf6567726f7570016272631 5ffff".replace(' ', "")
    );
    // Params response, seq 0xff, buf 384 / count 4: indefinite map, shortest ints.
    let out = b.smp_request(&hex::decode("000000010000ff06a0").unwrap());
    let mut expect = hex::decode("0900").unwrap();
    let body = hex::decode("bf686275665f73697a65190180696275665f636f756e7404ff").unwrap();
    expect.extend_from_slice(&(body.len() as u16).to_be_bytes());
    expect.extend_from_slice(&hex::decode("0000ff06").unwrap());
    expect.extend_from_slice(&body);
    // Android's request is v1 (byte 0 = 0x00): the answer is v1 read-rsp (0x01).
    expect[0] = 0x01;
    assert_eq!(hex::encode(&out[0]), hex::encode(&expect));
}

#[test]
fn reserved_version_gets_too_new() {
    let mut b = factory_board("1.0.0");
    // Version bits 2 (0x10) on a read of image state.
    let out = b.smp_request(&hex::decode("1000000000010300").unwrap());
    assert_eq!(hex::encode(&out[0]), "0900000600010300bf6272630dff");
}

#[test]
fn erase_rules() {
    let (mut b, _, v2) = board_v1_v2_uploaded();
    test_image(&mut b, &tlv_hash(&v2));
    let body = request(&mut b, Op::Write, group::IMAGE, img_cmd::ERASE, map([]));
    assert_eq!(err_rc(&body), Some((1, 9)));
    let body = request(
        &mut b,
        Op::Write,
        group::IMAGE,
        img_cmd::ERASE,
        map([("slot", uint(0))]),
    );
    assert_eq!(err_rc(&body), Some((1, 9)));
    // Once the swap is confirmed the old image in slot1 can go.
    b.reset();
    state_write(&mut b, None, true).expect("confirm");
    let body = request(&mut b, Op::Write, group::IMAGE, img_cmd::ERASE, map([]));
    assert_eq!(body, map([]));
    assert!(slot(&mut b, 1).is_none());
}

fn err_rc(body: &Value) -> Option<(u16, u32)> {
    match dfu_hil_smp::response_error(body) {
        Some(dfu_hil_smp::DeviceError::Group { group, rc }) => Some((group, rc)),
        Some(dfu_hil_smp::DeviceError::Mgmt { rc }) => Some((0xffff, rc)),
        None => None,
    }
}

fn upload_err(b: &mut dfu_hil_sim::SimBoard, img: &[u8]) -> u32 {
    match upload(b, img, 256) {
        Err(dfu_hil_smp::DeviceError::Group { group: 1, rc }) => rc,
        other => panic!("expected a group error, got {other:?}"),
    }
}
