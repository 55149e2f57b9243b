//! A raw SMP request written by hand (scenario step `smp:` and `dfu-hil smp raw`): any group,
//! command and body, in SMP v1 or v2, and what to check in the answer.
//!
//! Bodies are written as YAML/JSON and sent as CBOR: maps, arrays, text, integers, floats,
//! booleans and null map one to one; a text that starts with `hex:` is sent as a CBOR byte
//! string (an image hash: `hash: "hex:9f86…"`). Answers come back the same way, byte strings
//! as `hex:…` text, so an `expect` is written in the form it is printed in.

use dfu_hil_smp::{DeviceError, Value};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `op` of a raw request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RawOp {
    #[default]
    Read,
    Write,
}

impl RawOp {
    pub fn op(self) -> dfu_hil_smp::Op {
        match self {
            RawOp::Read => dfu_hil_smp::Op::Read,
            RawOp::Write => dfu_hil_smp::Op::Write,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            RawOp::Read => "read",
            RawOp::Write => "write",
        }
    }
}

/// `smp: { group: 63, command: 0, op: write, body: {}, version: 1, expect: { rc: 8 } }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmpStep {
    /// Management group ID (0 OS, 1 image, 63 Zephyr basic, 64+ application).
    pub group: u16,
    /// Command ID within the group.
    pub command: u8,
    #[serde(default)]
    pub op: RawOp,
    /// Request body (a map; `hex:` text becomes a byte string). Empty map when absent.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub body: Option<serde_json::Value>,
    /// SMP version of the request header: 1 (original) or 2. The link's own version when absent.
    pub version: Option<u8>,
    /// What the answer must be; without it the answer is only recorded.
    pub expect: Option<SmpAnswerExpect>,
}

/// Expected answer of a raw request. Unset keys are not checked.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmpAnswerExpect {
    /// A bare `{"rc": N}` (SMP-level `MGMT_ERR_*`, or a v1-translated group error); 0 means
    /// "no error at all".
    pub rc: Option<u32>,
    /// A group error `{"err": {"group": G, "rc": R}}`.
    pub err: Option<GroupErrExpect>,
    /// Top-level fields of the answer and their values (as printed: byte strings as `hex:…`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub fields: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupErrExpect {
    pub group: u16,
    pub rc: u32,
}

/// JSON → CBOR.
pub fn to_cbor(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (_, Some(i), _) => Value::from(i),
            (_, _, f) => Value::Float(f.unwrap_or(0.0)),
        },
        J::String(s) => match s.strip_prefix("hex:").and_then(|h| hex::decode(h).ok()) {
            Some(b) => Value::Bytes(b),
            None => Value::Text(s.clone()),
        },
        J::Array(a) => Value::Array(a.iter().map(to_cbor).collect()),
        J::Object(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (Value::Text(k.clone()), to_cbor(v)))
                .collect(),
        ),
    }
}

/// CBOR → JSON, byte strings as `hex:…`; non-text map keys are printed as text.
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Integer(i) => {
            let n: i128 = (*i).into();
            match (u64::try_from(n), i64::try_from(n)) {
                (Ok(u), _) => J::from(u),
                (_, Ok(i)) => J::from(i),
                _ => J::String(n.to_string()),
            }
        }
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Text(t) => J::String(t.clone()),
        Value::Bytes(b) => J::String(format!("hex:{}", hex::encode(b))),
        Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Text(t) => t.clone(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Value::Tag(_, inner) => to_json(inner),
        _ => J::Null,
    }
}

/// The body a device error was decoded from (the client turns error bodies into errors).
pub fn error_body(e: &DeviceError) -> Value {
    let t = |s: &str| Value::Text(s.into());
    match *e {
        DeviceError::Mgmt { rc } => Value::Map(vec![(t("rc"), Value::from(rc))]),
        DeviceError::Group { group, rc } => Value::Map(vec![(
            t("err"),
            Value::Map(vec![
                (t("group"), Value::from(group)),
                (t("rc"), Value::from(rc)),
            ]),
        )]),
    }
}

/// Check an answer against `expect`; each difference as (what, expected, actual).
pub fn check(
    answer: &serde_json::Value,
    expect: &SmpAnswerExpect,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let rc = answer.get("rc").and_then(|v| v.as_u64());
    let err = answer.get("err");
    if let Some(want) = expect.rc {
        let got = rc.unwrap_or(0);
        if got != u64::from(want) || (want == 0 && err.is_some()) {
            out.push((
                "rc".into(),
                want.to_string(),
                match (rc, err) {
                    (Some(r), _) => r.to_string(),
                    (None, Some(e)) => format!("no rc (group error {e})"),
                    (None, None) => "no rc (success)".into(),
                },
            ));
        }
    }
    if let Some(want) = &expect.err {
        let g = err.and_then(|e| e.get("group")).and_then(|v| v.as_u64());
        let r = err.and_then(|e| e.get("rc")).and_then(|v| v.as_u64());
        if g != Some(u64::from(want.group)) || r != Some(u64::from(want.rc)) {
            out.push((
                "err".into(),
                format!("{{group: {}, rc: {}}}", want.group, want.rc),
                match (err, rc) {
                    (Some(e), _) => e.to_string(),
                    (None, Some(r)) => format!("no group error (rc {r})"),
                    (None, None) => "no group error (success)".into(),
                },
            ));
        }
    }
    for (k, want) in &expect.fields {
        let got = answer.get(k);
        if got != Some(want) {
            out.push((
                k.clone(),
                want.to_string(),
                got.map_or("absent".into(), |g| g.to_string()),
            ));
        }
    }
    out
}

/// One line for the console and the evidence: `g63/c0 write (v1) → {"rc":8}`.
pub fn summary(group: u16, command: u8, op: RawOp, version: Option<u8>) -> String {
    let v = version.map(|v| format!(" (v{v})")).unwrap_or_default();
    format!("smp g{group}/c{command} {}{v}", op.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hex_text_becomes_bytes_and_back() {
        let j = json!({"hash": "hex:0a0b", "confirm": true, "n": 3});
        let c = to_cbor(&j);
        assert_eq!(to_json(&c), j);
        assert!(
            matches!(&c, Value::Map(m) if m.iter().any(|(_, v)| matches!(v, Value::Bytes(b) if b == &[10, 11])))
        );
    }

    #[test]
    fn check_rc_err_fields() {
        let e = SmpAnswerExpect {
            rc: Some(8),
            ..Default::default()
        };
        assert!(check(&json!({"rc": 8}), &e).is_empty());
        assert_eq!(check(&json!({}), &e).len(), 1);
        let e = SmpAnswerExpect {
            err: Some(GroupErrExpect { group: 1, rc: 28 }),
            ..Default::default()
        };
        assert!(check(&json!({"err": {"group": 1, "rc": 28}}), &e).is_empty());
        assert_eq!(check(&json!({"rc": 6}), &e).len(), 1);
        let mut e = SmpAnswerExpect::default();
        e.fields.insert("buf_size".into(), json!(2475));
        assert!(check(&json!({"buf_size": 2475, "buf_count": 4}), &e).is_empty());
        assert_eq!(check(&json!({"buf_size": 384}), &e).len(), 1);
        // rc 0 means success: a group error is not success.
        let e = SmpAnswerExpect {
            rc: Some(0),
            ..Default::default()
        };
        assert!(check(&json!({}), &e).is_empty());
        assert_eq!(check(&json!({"err": {"group": 1, "rc": 28}}), &e).len(), 1);
    }
}
