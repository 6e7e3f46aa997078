//! Segment-compatible event intake: validating Segment messages (track, identify, page, screen,
//! group, alias), correcting client clock skew, encoding accepted and rejected messages as
//! write-ahead-log records, and mapping records onto the canonical tables (events; orders and
//! order lines from `Order Completed` and `Order Refunded`; reviews from `Product Reviewed`;
//! exposures from `Experiment Viewed`). The mapping is documented in docs/collector.md.

use std::collections::HashMap;

use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ingest::build::TableBuilder;
use crate::ingest::value::{Val, parse_money};
use crate::storage::quarantine::QRow;
use crate::storage::schema::Table;
use crate::storage::wal::{self, WalPosition};
use crate::storage::workspace::{DataFile, Manifest, Workspace, Writer};

/// Segment's limit on one message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Segment's limit on a batch request body.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Segment's limit on messages in one batch.
pub const MAX_BATCH_MESSAGES: usize = 2500;

const RECORD_VERSION: u8 = 1;

/// The message types of Segment's tracking API.
pub const TYPES: [&str; 6] = ["track", "identify", "page", "screen", "group", "alias"];

/// A message checked and ready to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The messageId (or, when the client sent none, a hash of the message).
    pub message_id: String,
    /// The event instant after clock-skew correction (µs since the epoch, UTC).
    pub ts: i64,
    /// The message as received, with `type` filled in for single-message endpoints.
    pub json: Vec<u8>,
}

/// A message refused, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Position in the request (0 for single-message endpoints).
    pub index: usize,
    /// The messageId when one could be read.
    pub message_id: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// The start of the message text, kept in the quarantine.
    pub text: String,
}

/// The 128-bit key under which a messageId is deduplicated.
pub fn id_key(message_id: &str) -> u128 {
    let h = blake3::hash(message_id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.as_bytes()[..16]);
    u128::from_le_bytes(b)
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An RFC 3339 instant (Segment's ISO 8601 timestamps) as µs since the epoch.
pub fn parse_iso(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp_micros())
}

/// Checks one message. `kind` is the endpoint's type (None for /v1/batch, where each message
/// names its own), `sent_at` the batch's `sentAt`, `received` the server's clock.
///
/// The event instant is Segment's: `timestamp` shifted by the client's clock error
/// (`receivedAt − sentAt`) when the client sent `sentAt`, `timestamp` alone without it, and the
/// arrival instant without either.
pub fn check(
    raw: &str,
    kind: Option<&str>,
    sent_at: Option<&str>,
    received: i64,
    index: usize,
) -> std::result::Result<Accepted, Rejected> {
    let reject = |id: Option<String>, reason: String| Rejected {
        index,
        message_id: id,
        reason,
        text: raw.chars().take(2000).collect(),
    };
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(reject(
            None,
            format!(
                "message of {} bytes exceeds Segment's {MAX_MESSAGE_BYTES}-byte limit",
                raw.len()
            ),
        ));
    }
    let mut v: Map<String, Value> = match serde_json::from_str(raw) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(reject(None, "a message must be a JSON object".into())),
        Err(e) => return Err(reject(None, format!("invalid JSON: {e}"))),
    };
    let message_id = v.get("messageId").and_then(id_text);
    let t = match (kind, v.get("type").and_then(Value::as_str)) {
        (Some(k), _) => k.to_string(),
        (None, Some(t)) if TYPES.contains(&t) => t.to_string(),
        (None, Some(t)) => {
            return Err(reject(
                message_id,
                format!("unknown type `{t}` (one of {})", TYPES.join(", ")),
            ));
        }
        (None, None) => return Err(reject(message_id, "a batch message needs a `type`".into())),
    };
    let user = v.get("userId").and_then(id_text);
    let anon = v.get("anonymousId").and_then(id_text);
    if user.is_none() && anon.is_none() {
        return Err(reject(
            message_id,
            "neither userId nor anonymousId is set".into(),
        ));
    }
    if t == "track"
        && v.get("event")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return Err(reject(
            message_id,
            "a track call needs an `event` name".into(),
        ));
    }
    if t == "alias" && v.get("previousId").and_then(id_text).is_none() {
        return Err(reject(
            message_id,
            "an alias call needs a `previousId`".into(),
        ));
    }
    let instant = |field: &str| -> std::result::Result<Option<i64>, String> {
        match v.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => parse_iso(s)
                .map(Some)
                .ok_or_else(|| format!("`{field}` `{s}` is not an ISO 8601 instant")),
            Some(_) => Err(format!("`{field}` must be an ISO 8601 string")),
        }
    };
    let ts = instant("timestamp").map_err(|r| reject(message_id.clone(), r))?;
    let own_sent = instant("sentAt").map_err(|r| reject(message_id.clone(), r))?;
    let sent = match own_sent {
        Some(s) => Some(s),
        None => sent_at.and_then(parse_iso),
    };
    let ts = match (ts, sent) {
        (Some(t), Some(s)) => t + (received - s),
        (Some(t), None) => t,
        (None, _) => received,
    };
    if let Err(reason) = check_spec(&t, &v) {
        return Err(reject(message_id, reason));
    }
    let message_id = message_id_in(&v, raw.as_bytes());
    // The stored message carries its type and messageId, so replay and compaction read the same
    // id that deduplicated it here.
    let add_type = kind.is_some() && v.get("type").and_then(Value::as_str) != Some(&t);
    let add_id = v.get("messageId").and_then(id_text).is_none();
    let json = if add_type || add_id {
        v.insert("type".into(), Value::String(t));
        v.insert("messageId".into(), Value::String(message_id.clone()));
        serde_json::to_vec(&v).map_err(|e| reject(None, e.to_string()))?
    } else {
        raw.as_bytes().to_vec()
    };
    Ok(Accepted {
        message_id,
        ts,
        json,
    })
}

/// The e-commerce events whose canonical rows need fields: say which is missing.
fn check_spec(t: &str, v: &Map<String, Value>) -> std::result::Result<(), String> {
    if t != "track" {
        return Ok(());
    }
    let event = v.get("event").and_then(Value::as_str).unwrap_or("");
    let p = v.get("properties").and_then(Value::as_object);
    let get = |k: &str| p.and_then(|p| p.get(k)).filter(|x| !x.is_null());
    match event {
        "Order Completed" | "Order Refunded" => {
            if get("order_id").and_then(id_text).is_none() {
                return Err(format!("`{event}` needs properties.order_id"));
            }
            for k in ["total", "revenue", "subtotal", "discount", "shipping"] {
                if let Some(x) = get(k)
                    && money(x).is_none()
                {
                    return Err(format!("`{event}` properties.{k} is not an amount: {x}"));
                }
            }
            if let Some(products) = get("products") {
                let Some(list) = products.as_array() else {
                    return Err(format!("`{event}` properties.products must be an array"));
                };
                for (i, item) in list.iter().enumerate() {
                    let Some(o) = item.as_object() else {
                        return Err(format!("`{event}` products[{i}] is not an object"));
                    };
                    if item_id(o).is_none() {
                        return Err(format!("`{event}` products[{i}] has no product_id or sku"));
                    }
                    if let Some(q) = o.get("quantity").filter(|q| !q.is_null())
                        && q.as_i64().is_none()
                    {
                        return Err(format!(
                            "`{event}` products[{i}].quantity is not a whole number"
                        ));
                    }
                    if let Some(x) = o.get("price").filter(|x| !x.is_null())
                        && money(x).is_none()
                    {
                        return Err(format!("`{event}` products[{i}].price is not an amount"));
                    }
                }
            }
        }
        "Product Reviewed" => {
            if get("product_id").and_then(id_text).is_none() {
                return Err("`Product Reviewed` needs properties.product_id".into());
            }
            match get("rating").and_then(rating) {
                Some(_) => {}
                None => return Err("`Product Reviewed` needs properties.rating from 1 to 5".into()),
            }
        }
        "Experiment Viewed" => {
            if get("experiment_id")
                .or(get("experiment_name"))
                .and_then(id_text)
                .is_none()
            {
                return Err("`Experiment Viewed` needs properties.experiment_id".into());
            }
            if get("variation_id")
                .or(get("variation_name"))
                .and_then(id_text)
                .is_none()
            {
                return Err(
                    "`Experiment Viewed` needs properties.variation_id or variation_name".into(),
                );
            }
        }
        _ => {}
    }
    Ok(())
}

fn rating(v: &Value) -> Option<i64> {
    let r = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (r.fract() == 0.0 && (1.0..=5.0).contains(&r)).then_some(r as i64)
}

/// A Segment amount (number or numeric string) in units of 10⁻⁴.
fn money(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => parse_money(&n.to_string()).ok(),
        Value::String(s) => parse_money(s).ok(),
        _ => None,
    }
}

fn item_id(o: &Map<String, Value>) -> Option<String> {
    o.get("product_id")
        .and_then(id_text)
        .or_else(|| o.get("sku").and_then(id_text))
}

mod compaction;
mod log;
mod mapping;

pub use compaction::*;
pub use log::*;
pub use mapping::*;

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000_000;

    #[test]
    fn clock_skew_is_corrected_as_segment_does() {
        // The client's clock is 10 s fast: sentAt 12:00:10 arrives at 12:00:00 server time, so
        // an event stamped 11:59:40 by the client happened at 11:59:30.
        let received = parse_iso("2024-01-01T12:00:00Z").unwrap();
        let raw = r#"{"userId":"u1","event":"Signed Up","timestamp":"2024-01-01T11:59:40Z","sentAt":"2024-01-01T12:00:10Z"}"#;
        let a = check(raw, Some("track"), None, received, 0).unwrap();
        assert_eq!(a.ts, parse_iso("2024-01-01T11:59:30Z").unwrap());
        // sentAt of the batch applies to messages without their own.
        let raw =
            r#"{"type":"track","userId":"u1","event":"x","timestamp":"2024-01-01T11:59:40Z"}"#;
        let a = check(raw, None, Some("2024-01-01T12:00:10Z"), received, 0).unwrap();
        assert_eq!(a.ts, parse_iso("2024-01-01T11:59:30Z").unwrap());
        // Without timestamp: the arrival instant.
        let a = check(
            r#"{"anonymousId":"a","event":"x"}"#,
            Some("track"),
            None,
            received,
            0,
        )
        .unwrap();
        assert_eq!(a.ts, received);
    }

    #[test]
    fn bad_messages_are_rejected_with_a_reason() {
        let r = |raw: &str, kind: Option<&str>| check(raw, kind, None, T0, 3).unwrap_err();
        assert!(
            r(r#"{"event":"x"}"#, Some("track"))
                .reason
                .contains("userId")
        );
        assert!(
            r(r#"{"userId":"u"}"#, Some("track"))
                .reason
                .contains("event")
        );
        assert!(
            r(r#"{"userId":"u","type":"nope"}"#, None)
                .reason
                .contains("unknown type")
        );
        assert!(r(r#"[1]"#, Some("track")).reason.contains("object"));
        assert!(
            r(r#"{"userId":"#, Some("track"))
                .reason
                .contains("invalid JSON")
        );
        let e = r(
            r#"{"userId":"u","event":"Order Completed","properties":{"total":"ten","order_id":"o"}}"#,
            Some("track"),
        );
        assert!(e.reason.contains("total"), "{}", e.reason);
        let e = r(
            r#"{"userId":"u","event":"Product Reviewed","properties":{"product_id":"p","rating":6}}"#,
            Some("track"),
        );
        assert!(e.reason.contains("rating"));
        assert_eq!(e.index, 3);
        let big = format!(
            r#"{{"userId":"u","event":"x","properties":{{"s":"{}"}}}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(r(&big, Some("track")).reason.contains("limit"));
    }

    #[test]
    fn an_order_maps_to_an_event_an_order_and_its_lines() {
        let raw = r#"{"userId":"u1","messageId":"m1","event":"Order Completed","timestamp":"2024-01-01T12:00:00Z",
            "context":{"campaign":{"source":"newsletter"},"device":{"type":"mobile"}},
            "properties":{"order_id":"o1","total":27.5,"subtotal":25,"discount":2.5,"shipping":5,"currency":"USD","coupon":"HELLO",
              "products":[{"product_id":"p1","quantity":2,"price":10,"size":"M"},{"sku":"p2","price":"5.0"}]}}"#;
        let a = check(raw, Some("track"), None, T0, 0).unwrap();
        let rec = encode(T0, &[a], &[]);
        let mut c = Collected::default();
        c.add_record(&rec).unwrap();
        let (tables, q) = c.finish().unwrap();
        assert!(q.is_empty());
        let by = group(tables);
        let fmt = |t: Table| {
            datafusion::arrow::util::pretty::pretty_format_batches(&by[&t])
                .unwrap()
                .to_string()
        };
        // Each table's printout holds every expected value.
        for (t, want) in [
            (
                Table::Events,
                &["| m1 ", "| order ", "newsletter", "mobile"][..],
            ),
            (
                Table::Orders,
                &["27.5000", "25.0000", "HELLO", "completed"][..],
            ),
            (Table::OrderItems, &["p1", "p2", "{\"size\":\"M\"}"][..]),
        ] {
            let text = fmt(t);
            for w in want {
                assert!(text.contains(w), "{t:?} lacks {w}: {text}");
            }
        }
        assert_eq!(by[&Table::OrderItems][0].num_rows(), 2);
    }

    #[test]
    fn compaction_moves_the_log_into_tables_and_merges_small_files() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let writer = ws.writer().unwrap();
        let mut w = wal::WalWriter::open(ws.root(), WalPosition::default(), |_, _| Ok(())).unwrap();
        let mut n = 0;
        for round in 0..MERGE_AT_FILES + 3 {
            let accepted: Vec<Accepted> = (0..5)
                .map(|i| {
                    n += 1;
                    let raw = format!(
                        r#"{{"userId":"u{i}","event":"Product Viewed","messageId":"r{round}-{i}"}}"#
                    );
                    check(&raw, Some("track"), None, T0, i).unwrap()
                })
                .collect();
            let mut framed = Vec::new();
            wal::frame(&encode(T0, &accepted, &[]), &mut framed);
            w.append(&framed).unwrap();
            w.sync().unwrap();
            // Before compaction the rows are in the tail; after it, in the tables, never both.
            let mut m = ws.manifest().unwrap();
            assert_eq!(
                tail(&ws, &mut m)
                    .unwrap()
                    .map_or(0, |t| t.rows(Table::Events)),
                5
            );
            let mut ids = Vec::new();
            let done = compact(&writer, w.position(), |i| {
                ids.extend_from_slice(i);
                Ok(())
            })
            .unwrap();
            assert_eq!(ids.len(), 5);
            assert_eq!(done.messages, 5);
            writer.sweep().unwrap();
            let mut m = ws.manifest().unwrap();
            assert!(tail(&ws, &mut m).unwrap().is_none());
            assert_eq!(m.rows(Table::Events), n as u64);
            assert!(
                m.files(Table::Events).len() < MERGE_AT_FILES,
                "round {round}"
            );
        }
        // Swept: only the published files are on disk.
        let on_disk = std::fs::read_dir(ws.root().join("tables/events"))
            .unwrap()
            .count();
        assert_eq!(on_disk, ws.manifest().unwrap().files(Table::Events).len());
    }

    #[test]
    fn a_message_without_an_id_is_logged_with_the_id_it_was_deduplicated_by() {
        let a = check(r#"{"userId":"u","event":"x"}"#, Some("track"), None, T0, 0).unwrap();
        assert!(a.message_id.starts_with("h-"));
        let ids = message_ids(&encode(T0, std::slice::from_ref(&a), &[])).unwrap();
        assert_eq!(ids, (T0, vec![a.message_id]));
    }

    #[test]
    fn event_names_follow_the_ecommerce_spec() {
        assert_eq!(canonical_event("Product Added"), "add_to_cart");
        assert_eq!(canonical_event("Experiment Viewed"), "experiment_viewed");
        assert_eq!(canonical_event("Video Played (HD)"), "video_played_hd");
    }
}
