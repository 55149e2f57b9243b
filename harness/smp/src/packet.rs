//! One SMP packet: header + CBOR body, with the two encodings that matter.
//!
//! Clients (and this crate's [`crate::Client`]) send definite-length maps; Zephyr's zcbor encoder
//! answers with *indefinite*-length maps and arrays (zcbor `src/zcbor_encode.c`,
//! `list_map_start_encode`, unless `ZCBOR_CANONICAL`, which Zephyr leaves off). The simulated board
//! must match Zephyr byte for byte, so the encoder is written here rather than delegated to a serde
//! serialiser whose container style we do not control.

use ciborium::value::Value;
use ciborium_ll::{Encoder, Header as CborHead};

use crate::errors::SmpError;
use crate::header::{Header, Op, RawHeader, Version, HEADER_LEN};

/// A decoded SMP packet.
///
/// `body` is normally a CBOR map. An *empty* payload (len 0, which Zephyr accepts for
/// commands that decode nothing) is represented as `Value::Null` and encodes back to zero
/// bytes, so the distinction survives a round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub header: Header,
    pub body: Value,
}

impl Packet {
    /// A request packet (`len` is computed by the encoders).
    pub fn request(version: Version, op: Op, group: u16, id: u8, seq: u8, body: Value) -> Packet {
        Packet {
            header: Header {
                op,
                version,
                flags: 0,
                len: 0,
                group,
                seq,
                id,
            },
            body,
        }
    }

    /// The response a Zephyr server sends for `request` (header rule of Zephyr `smp.c`,
    /// `smp_make_rsp_hdr`).
    pub fn response_to(request: &Header, body: Value) -> Packet {
        Packet {
            header: request.response_header(),
            body,
        }
    }

    /// Encode with the header's len recomputed. Client style: definite-length maps.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(false)
    }

    /// Encode as Zephyr does for responses: indefinite-length maps AND arrays
    /// (0xbf..0xff, 0x9f..0xff), shortest ints, definite text/byte strings, key order
    /// preserved as given in the `Value::Map` vec.
    pub fn encode_zephyr(&self) -> Vec<u8> {
        self.encode_with(true)
    }

    fn encode_with(&self, indefinite: bool) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        if !matches!(self.body, Value::Null) {
            write_value(&mut out, &self.body, indefinite);
        }
        let body_len = out.len() - HEADER_LEN;
        let mut h = self.header;
        // SMP cannot express more; a longer body is a caller bug the device would reject.
        h.len = u16::try_from(body_len).unwrap_or(u16::MAX);
        out[..HEADER_LEN].copy_from_slice(&h.encode());
        out
    }

    /// Decode header + CBOR (accepts definite and indefinite). Error if header len != body
    /// bytes available, or if the CBOR item does not use exactly `len` bytes.
    pub fn decode(bytes: &[u8]) -> Result<Packet, SmpError> {
        let (p, used) = Packet::decode_prefix(bytes)?;
        if used != bytes.len() {
            return Err(SmpError::Length {
                header: p.header.len,
                available: bytes.len() - HEADER_LEN,
            });
        }
        Ok(p)
    }

    /// Decode the first packet in `bytes` and return it with the number of bytes it used.
    /// Zephyr allows several requests concatenated in one transport packet (`smp.c`,
    /// `smp_process_request_packet`);
    /// a server walks them with this.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Packet, usize), SmpError> {
        let raw = RawHeader::decode(bytes)?;
        let header = raw.to_header()?;
        let len = header.len as usize;
        let available = bytes.len() - HEADER_LEN;
        if len > available {
            return Err(SmpError::Length {
                header: header.len,
                available,
            });
        }
        let body = decode_cbor(&bytes[HEADER_LEN..HEADER_LEN + len])?;
        Ok((Packet { header, body }, HEADER_LEN + len))
    }
}

/// Decode exactly one CBOR item that fills `b`. Empty input gives `Value::Null`.
pub fn decode_cbor(b: &[u8]) -> Result<Value, SmpError> {
    if b.is_empty() {
        return Ok(Value::Null);
    }
    let mut rest: &[u8] = b;
    let v: Value =
        ciborium::de::from_reader(&mut rest).map_err(|e| SmpError::Cbor(e.to_string()))?;
    if !rest.is_empty() {
        return Err(SmpError::Cbor(format!(
            "{} trailing byte(s) after the CBOR item",
            rest.len()
        )));
    }
    Ok(v)
}

/// Definite-length CBOR encoding of one value (what a client sends).
pub fn encode_cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, v, false);
    out
}

/// Zephyr-style (indefinite containers) CBOR encoding of one value.
pub fn encode_cbor_zephyr(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, v, true);
    out
}

/// Size of the definite-length encoding, without allocating the bytes of large strings.
/// Used by the uploader to size chunks exactly.
pub fn cbor_len(v: &Value) -> usize {
    match v {
        Value::Integer(i) => {
            let n = i128::from(*i);
            let arg = if n >= 0 { n as u128 } else { (-1 - n) as u128 };
            head_len(u64::try_from(arg).unwrap_or(u64::MAX))
        }
        Value::Bytes(b) => head_len(b.len() as u64) + b.len(),
        Value::Text(t) => head_len(t.len() as u64) + t.len(),
        Value::Float(f) => {
            if (*f as f32) as f64 == *f || f.is_nan() {
                5
            } else {
                9
            }
        }
        Value::Bool(_) | Value::Null => 1,
        Value::Tag(t, inner) => head_len(*t) + cbor_len(inner),
        Value::Array(a) => head_len(a.len() as u64) + a.iter().map(cbor_len).sum::<usize>(),
        Value::Map(m) => {
            head_len(m.len() as u64)
                + m.iter()
                    .map(|(k, v)| cbor_len(k) + cbor_len(v))
                    .sum::<usize>()
        }
        _ => encode_cbor(v).len(),
    }
}

/// Bytes needed for a CBOR head carrying argument `n` (shortest form).
pub fn head_len(n: u64) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Append one CBOR head in its shortest form. The head rule is ciborium-ll's — the mcuboot
/// crate's boot record uses the same encoder — so it is written down once, not per crate.
fn write_head(out: &mut Vec<u8>, head: CborHead) {
    // Writing into a Vec cannot fail.
    let _ = Encoder::from(&mut *out).push(head);
}

fn write_value(out: &mut Vec<u8>, v: &Value, indefinite: bool) {
    match v {
        Value::Integer(i) => {
            let n = i128::from(*i);
            if n >= 0 {
                write_head(
                    out,
                    CborHead::Positive(u64::try_from(n).unwrap_or(u64::MAX)),
                );
            } else {
                write_head(
                    out,
                    CborHead::Negative(u64::try_from(-1 - n).unwrap_or(u64::MAX)),
                );
            }
        }
        Value::Bytes(b) => {
            write_head(out, CborHead::Bytes(Some(b.len())));
            out.extend_from_slice(b);
        }
        Value::Text(t) => {
            write_head(out, CborHead::Text(Some(t.len())));
            out.extend_from_slice(t.as_bytes());
        }
        Value::Array(a) => {
            if indefinite {
                out.push(0x9f);
            } else {
                write_head(out, CborHead::Array(Some(a.len())));
            }
            for item in a {
                write_value(out, item, indefinite);
            }
            if indefinite {
                out.push(0xff);
            }
        }
        Value::Map(m) => {
            if indefinite {
                out.push(0xbf);
            } else {
                write_head(out, CborHead::Map(Some(m.len())));
            }
            for (k, val) in m {
                write_value(out, k, indefinite);
                write_value(out, val, indefinite);
            }
            if indefinite {
                out.push(0xff);
            }
        }
        Value::Tag(t, inner) => {
            write_head(out, CborHead::Tag(*t));
            write_value(out, inner, indefinite);
        }
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Null => out.push(0xf6),
        Value::Float(f) => {
            // SMP never carries floats; single precision when lossless keeps it short.
            if (*f as f32) as f64 == *f || f.is_nan() {
                out.push(0xfa);
                out.extend_from_slice(&(*f as f32).to_be_bytes());
            } else {
                out.push(0xfb);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        // `Value` is non-exhaustive; anything new is encoded as undefined rather than panicking.
        _ => out.push(0xf7),
    }
}

// ---------------------------------------------------------------------------------------------
// Map helpers: SMP bodies are text-keyed maps; these keep call sites short and tolerant.

/// Build a text-keyed map in the given key order (order matters for Zephyr byte-exactness).
pub fn map<'k>(entries: impl IntoIterator<Item = (&'k str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::Text(k.to_string()), v))
            .collect(),
    )
}

/// An unsigned integer value.
pub fn uint(n: u64) -> Value {
    Value::Integer(n.into())
}

/// Value under text key `key` in map `v` (first occurrence); None if `v` is not a map.
pub fn map_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Unsigned integer under `key` (None if absent, negative or not an integer).
pub fn map_uint(v: &Value, key: &str) -> Option<u64> {
    match map_get(v, key)? {
        Value::Integer(i) => u64::try_from(i128::from(*i)).ok(),
        _ => None,
    }
}

/// Signed integer under `key`.
pub fn map_int(v: &Value, key: &str) -> Option<i64> {
    match map_get(v, key)? {
        Value::Integer(i) => i64::try_from(i128::from(*i)).ok(),
        _ => None,
    }
}

pub fn map_bool(v: &Value, key: &str) -> Option<bool> {
    match map_get(v, key)? {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

pub fn map_bytes<'a>(v: &'a Value, key: &str) -> Option<&'a [u8]> {
    match map_get(v, key)? {
        Value::Bytes(b) => Some(b),
        _ => None,
    }
}

pub fn map_text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    match map_get(v, key)? {
        Value::Text(t) => Some(t),
        _ => None,
    }
}

pub fn map_array<'a>(v: &'a Value, key: &str) -> Option<&'a [Value]> {
    match map_get(v, key)? {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering for transcripts.

/// Byte strings longer than this are abbreviated in [`render_value`]; 32 keeps image hashes whole.
pub const RENDER_BYTES_MAX: usize = 32;

/// Render a CBOR value as compact JSON-like text (CBOR diagnostic flavour for byte strings:
/// `h'…'`). Long byte strings show their first bytes and their size, so a 350-byte data chunk
/// stays on one readable line.
pub fn render_value(v: &Value) -> String {
    let mut s = String::new();
    render_into(&mut s, v);
    s
}

fn render_into(s: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::Integer(i) => {
            let _ = write!(s, "{}", i128::from(*i));
        }
        Value::Bytes(b) => {
            if b.len() <= RENDER_BYTES_MAX {
                let _ = write!(s, "h'{}'", hex::encode(b));
            } else {
                let _ = write!(s, "h'{}…'({} B)", hex::encode(&b[..4]), b.len());
            }
        }
        Value::Text(t) => {
            let _ = write!(s, "{t:?}");
        }
        Value::Float(f) => {
            let _ = write!(s, "{f}");
        }
        Value::Bool(b) => {
            let _ = write!(s, "{b}");
        }
        Value::Null => s.push_str("null"),
        Value::Tag(t, inner) => {
            let _ = write!(s, "{t}(");
            render_into(s, inner);
            s.push(')');
        }
        Value::Array(a) => {
            s.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                render_into(s, item);
            }
            s.push(']');
        }
        Value::Map(m) => {
            s.push('{');
            for (i, (k, val)) in m.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                match k {
                    Value::Text(t) if is_plain_key(t) => s.push_str(t),
                    other => render_into(s, other),
                }
                s.push_str(": ");
                render_into(s, val);
            }
            s.push('}');
        }
        _ => s.push_str("undefined"),
    }
}

fn is_plain_key(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{group, img_cmd, os_cmd};

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// The shortest-form head at each width boundary, written out by hand from RFC 8949 §3.
    const HEAD_BOUNDARIES: [(u64, &str); 6] = [
        (23, "17"),
        (24, "18 18"),
        (255, "18 ff"),
        (256, "19 0100"),
        (65535, "19 ffff"),
        (65536, "1a 00010000"),
    ];

    #[test]
    fn heads_at_the_length_boundaries() {
        for (n, head) in HEAD_BOUNDARIES {
            // Major type 0 (unsigned) carries the bits as they are; 2 (bytes) and 3 (text)
            // set 0x40 / 0x60 and follow with the n bytes.
            let want = h(head);
            assert_eq!(encode_cbor(&uint(n)), want, "uint {n}");
            let bytes = encode_cbor(&Value::Bytes(vec![0xa5; n as usize]));
            let mut bhead = want.clone();
            bhead[0] |= 0x40;
            assert_eq!(&bytes[..bhead.len()], &bhead[..], "bstr {n}");
            assert_eq!(bytes.len(), bhead.len() + n as usize, "bstr {n}");
            let text = encode_cbor(&Value::Text("a".repeat(n as usize)));
            let mut thead = want.clone();
            thead[0] |= 0x60;
            assert_eq!(&text[..thead.len()], &thead[..], "tstr {n}");
            assert_eq!(head_len(n), want.len(), "head_len {n}");
        }
        assert_eq!(encode_cbor(&uint(1 << 32)), h("1b 0000000100000000"));
        assert_eq!(encode_cbor(&Value::Integer((-25).into())), h("38 18"));
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn echo_request_client_style() {
        let p = Packet::request(
            Version::V2,
            Op::Write,
            group::OS,
            os_cmd::ECHO,
            0x42,
            map([("d", text("hello"))]),
        );
        assert_eq!(
            p.encode(),
            h("0a 00 00 09 00 00 42 00 a1 61 64 65 68 65 6c 6c 6f")
        );
        assert_eq!(Packet::decode(&p.encode()).unwrap().body, p.body);
    }

    #[test]
    fn echo_response_zephyr_style() {
        let req = Header::decode(&h("0a 00 00 09 00 00 42 00")).unwrap();
        let p = Packet::response_to(&req, map([("r", text("hello"))]));
        let want = h("0b 00 00 0a 00 00 42 00 bf 61 72 65 68 65 6c 6c 6f ff");
        assert_eq!(p.encode_zephyr(), want);
        let back = Packet::decode(&want).unwrap();
        assert_eq!(map_text(&back.body, "r"), Some("hello"));
        assert_eq!(back.header.len, 10);
    }

    #[test]
    fn v1_error_reply_vector() {
        let req = Header::decode(&h("02 00 00 00 00 01 a3 01")).unwrap();
        let p = Packet::response_to(&req, map([("rc", uint(3))]));
        let want = h("03 00 00 06 00 01 a3 01 bf 62 72 63 03 ff");
        assert_eq!(p.encode_zephyr(), want);
        assert_eq!(
            map_uint(&Packet::decode(&want).unwrap().body, "rc"),
            Some(3)
        );
    }

    #[test]
    fn upload_response_vector() {
        let req = Header::decode(&h("0a 00 00 00 00 01 10 01")).unwrap();
        let p = Packet::response_to(&req, map([("off", uint(4096))]));
        assert_eq!(
            p.encode_zephyr(),
            h("0b 00 00 09 00 01 10 01 bf 63 6f 66 66 19 10 00 ff")
        );
        assert_eq!(p.header.id, img_cmd::UPLOAD);
    }

    #[test]
    fn group_error_vector() {
        let req = Header::decode(&h("0a 00 00 00 00 01 11 01")).unwrap();
        let err = map([("group", uint(1)), ("rc", uint(21))]);
        let p = Packet::response_to(&req, map([("err", err)]));
        let want =
            h("0b 00 00 13 00 01 11 01 bf 63 65 72 72 bf 65 67 72 6f 75 70 01 62 72 63 15 ff ff");
        assert_eq!(p.encode_zephyr(), want);
        assert_eq!(
            Packet::decode(&want).unwrap(),
            Packet {
                header: Header {
                    len: 0x13,
                    ..p.header
                },
                body: p.body.clone()
            }
        );
    }

    #[test]
    fn android_params_request_and_zephyr_params_response() {
        // Android's hard-coded v1 params request with an empty map.
        let want = h("00 00 00 01 00 00 ff 06 a0");
        let p = Packet::request(
            Version::V1,
            Op::Read,
            group::OS,
            os_cmd::PARAMS,
            0xff,
            map([]),
        );
        assert_eq!(p.encode(), want);
        let req = Packet::decode(&want).unwrap();

        let mut rsp_req = req.header;
        rsp_req.version = Version::V2;
        let rsp = Packet::response_to(
            &rsp_req,
            map([("buf_size", uint(2475)), ("buf_count", uint(4))]),
        );
        let mut w = h("09 00 00 19 00 00 ff 06 bf 68");
        w.extend_from_slice(b"buf_size");
        w.extend_from_slice(&h("19 09 ab 69"));
        w.extend_from_slice(b"buf_count");
        w.extend_from_slice(&h("04 ff"));
        assert_eq!(w.len(), 33);
        assert_eq!(rsp.encode_zephyr(), w);
    }

    #[test]
    fn indefinite_arrays_and_nested() {
        let v = map([(
            "images",
            Value::Array(vec![map([
                ("slot", uint(0)),
                ("active", Value::Bool(true)),
            ])]),
        )]);
        let z = encode_cbor_zephyr(&v);
        assert_eq!(z[0], 0xbf);
        assert_eq!(z[8], 0x9f);
        assert_eq!(&z[z.len() - 3..], &[0xff, 0xff, 0xff]);
        assert_eq!(decode_cbor(&z).unwrap(), v);
        let d = encode_cbor(&v);
        assert_eq!(d.len(), cbor_len(&v));
        assert_eq!(decode_cbor(&d).unwrap(), v);
    }

    #[test]
    fn shortest_ints_and_negatives() {
        for (n, len) in [
            (0u64, 1),
            (23, 1),
            (24, 2),
            (255, 2),
            (256, 3),
            (65535, 3),
            (65536, 5),
            (u32::MAX as u64 + 1, 9),
        ] {
            let e = encode_cbor(&uint(n));
            assert_eq!(e.len(), len, "{n}");
            assert_eq!(cbor_len(&uint(n)), len);
            assert_eq!(decode_cbor(&e).unwrap(), uint(n));
        }
        let neg = Value::Integer((-1i64).into());
        assert_eq!(encode_cbor(&neg), vec![0x20]);
        let neg = Value::Integer((-500i64).into());
        assert_eq!(decode_cbor(&encode_cbor(&neg)).unwrap(), neg);
    }

    #[test]
    fn length_mismatch_and_trailing() {
        // Header claims 10 bytes, 9 available.
        assert!(matches!(
            Packet::decode(&h("0a 00 00 0a 00 00 42 00 a1 61 64 65 68 65 6c 6c 6f")),
            Err(SmpError::Length {
                header: 10,
                available: 9
            })
        ));
        // Header claims 8, 9 available.
        assert!(Packet::decode(&h("0a 00 00 08 00 00 42 00 a1 61 64 65 68 65 6c 6c 6f")).is_err());
        // Trailing byte inside the claimed length.
        assert!(Packet::decode(&h("0a 00 00 02 00 00 42 00 a0 a0")).is_err());
        // Empty payload is Null and round-trips to zero bytes.
        let p = Packet::decode(&h("08 00 00 00 00 01 01 00")).unwrap();
        assert_eq!(p.body, Value::Null);
        assert_eq!(p.encode(), h("08 00 00 00 00 01 01 00"));
        // Concatenated packets.
        let two = [
            h("08 00 00 01 00 00 01 06 a0"),
            h("08 00 00 01 00 00 02 06 a0"),
        ]
        .concat();
        let (a, used) = Packet::decode_prefix(&two).unwrap();
        assert_eq!(used, 9);
        assert_eq!(a.header.seq, 1);
        assert_eq!(Packet::decode(&two[used..]).unwrap().header.seq, 2);
    }

    #[test]
    fn getters_and_render() {
        let v = map([
            ("off", uint(4096)),
            ("data", Value::Bytes(vec![0xab; 354])),
            ("sha", Value::Bytes(vec![1, 2])),
            ("ok", Value::Bool(true)),
            ("name", text("x")),
        ]);
        assert_eq!(map_uint(&v, "off"), Some(4096));
        assert_eq!(map_bytes(&v, "sha"), Some(&[1u8, 2][..]));
        assert_eq!(map_bool(&v, "ok"), Some(true));
        assert_eq!(map_text(&v, "name"), Some("x"));
        assert_eq!(map_uint(&v, "name"), None);
        assert_eq!(map_get(&uint(1), "x"), None);
        assert_eq!(
            render_value(&v),
            "{off: 4096, data: h'abababab…'(354 B), sha: h'0102', ok: true, name: \"x\"}"
        );
    }
}
