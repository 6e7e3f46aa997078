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

/// Encodes one request's accepted and rejected messages as a log record payload.
pub fn encode(received: i64, accepted: &[Accepted], rejected: &[Rejected]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        16 + accepted.iter().map(|a| a.json.len() + 13).sum::<usize>()
            + rejected
                .iter()
                .map(|r| r.text.len() + r.reason.len() + 64)
                .sum::<usize>(),
    );
    out.push(RECORD_VERSION);
    out.extend_from_slice(&received.to_le_bytes());
    out.extend_from_slice(&((accepted.len() + rejected.len()) as u32).to_le_bytes());
    for a in accepted {
        out.push(0);
        out.extend_from_slice(&a.ts.to_le_bytes());
        out.extend_from_slice(&(a.json.len() as u32).to_le_bytes());
        out.extend_from_slice(&a.json);
    }
    for r in rejected {
        let body = serde_json::json!({"reason": r.reason, "message_id": r.message_id, "text": r.text, "index": r.index});
        let body = body.to_string();
        out.push(1);
        out.extend_from_slice(&received.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// One decoded item of a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'a> {
    /// An accepted message: event instant and JSON.
    Accepted(i64, &'a [u8]),
    /// A rejected message: arrival instant and `{"reason", "message_id", "text"}`.
    Rejected(i64, &'a [u8]),
}

/// Decodes a record payload.
pub fn decode(payload: &[u8]) -> Result<(i64, Vec<Item<'_>>)> {
    let bad = || Error::Internal("malformed collector record".into());
    let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
        let s = payload.get(*at..*at + n).ok_or_else(bad)?;
        *at += n;
        Ok(s)
    };
    let mut at = 0;
    if take(&mut at, 1)?[0] != RECORD_VERSION {
        return Err(bad());
    }
    let i64_at = |b: &[u8]| -> i64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        i64::from_le_bytes(a)
    };
    let u32_at = |b: &[u8]| -> usize {
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        u32::from_le_bytes(a) as usize
    };
    let received = i64_at(take(&mut at, 8)?);
    let n = u32_at(take(&mut at, 4)?);
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = take(&mut at, 1)?[0];
        let ts = i64_at(take(&mut at, 8)?);
        let len = u32_at(take(&mut at, 4)?);
        let body = take(&mut at, len)?;
        items.push(if kind == 0 {
            Item::Accepted(ts, body)
        } else {
            Item::Rejected(ts, body)
        });
    }
    Ok((received, items))
}

/// When a record arrived and the messageIds of its accepted messages (to rebuild the
/// deduplication window).
pub fn message_ids(payload: &[u8]) -> Result<(i64, Vec<String>)> {
    let (received, items) = decode(payload)?;
    let mut out = Vec::new();
    for it in items {
        if let Item::Accepted(_, json) = it {
            out.push(message_id_of(json)?);
        }
    }
    Ok((received, out))
}

fn message_id_of(json: &[u8]) -> Result<String> {
    let v: Map<String, Value> = serde_json::from_slice(json)
        .map_err(|e| Error::Internal(format!("collector record: {e}")))?;
    Ok(message_id_in(&v, json))
}

/// A message's messageId, or for a client that sent none, a hash of its text.
fn message_id_in(v: &Map<String, Value>, text: &[u8]) -> String {
    v.get("messageId")
        .and_then(id_text)
        .unwrap_or_else(|| format!("h-{}", blake3::hash(text)))
}

/// Batches and the table each belongs to.
pub type TableBatches = Vec<(Table, RecordBatch)>;
/// Quarantine rows with their source name.
pub(crate) type QuarantineRows = Vec<(String, QRow)>;

/// Builders of the tables that collected messages feed.
pub struct Collected {
    events: TableBuilder,
    orders: TableBuilder,
    items: TableBuilder,
    reviews: TableBuilder,
    exposures: TableBuilder,
    quarantine: QuarantineRows,
    /// The messageIds added, when kept (compaction records them before publishing).
    ids: Option<Vec<String>>,
    /// Messages accepted.
    pub accepted: u64,
}

impl std::fmt::Debug for Collected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collected")
            .field("accepted", &self.accepted)
            .field("rejected", &self.quarantine.len())
            .finish()
    }
}

impl Default for Collected {
    fn default() -> Collected {
        Collected {
            events: TableBuilder::new(Table::Events, 1024),
            orders: TableBuilder::new(Table::Orders, 16),
            items: TableBuilder::new(Table::OrderItems, 16),
            reviews: TableBuilder::new(Table::Reviews, 16),
            exposures: TableBuilder::new(Table::Exposures, 16),
            quarantine: Vec::new(),
            ids: None,
            accepted: 0,
        }
    }
}

/// The canonical event of a Segment track event name (Segment's e-commerce spec v2), else the
/// name in snake case.
pub fn canonical_event(name: &str) -> String {
    match name {
        "Product Viewed" => "product_view".into(),
        "Product Added" => "add_to_cart".into(),
        "Product Removed" => "remove_from_cart".into(),
        "Checkout Started" => "checkout_start".into(),
        "Payment Info Entered" => "payment".into(),
        "Order Completed" => "order".into(),
        "Order Refunded" => "refund".into(),
        "Product Reviewed" => "review".into(),
        "Experiment Viewed" => "experiment_viewed".into(),
        "Products Searched" => "search".into(),
        "Product Added to Wishlist" => "favorite".into(),
        other => {
            let mut out = String::with_capacity(other.len());
            for c in other.trim().chars() {
                if c.is_alphanumeric() {
                    out.extend(c.to_lowercase());
                } else if !out.ends_with('_') {
                    out.push('_');
                }
            }
            out.trim_matches('_').to_string()
        }
    }
}

fn text(s: impl Into<String>) -> Val<'static> {
    Val::Text(std::borrow::Cow::Owned(s.into()))
}

fn opt_text(s: Option<String>) -> Val<'static> {
    s.map_or(Val::Null, text)
}

impl Collected {
    /// Adds every item of a record payload.
    pub fn add_record(&mut self, payload: &[u8]) -> Result<()> {
        let (_, items) = decode(payload)?;
        for it in items {
            match it {
                Item::Accepted(ts, json) => self.add_message(ts, json)?,
                Item::Rejected(_, body) => {
                    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                    let field =
                        |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    self.quarantine.push((
                        "collector".to_string(),
                        QRow {
                            line: v.get("index").and_then(Value::as_u64).unwrap_or(0),
                            column: "*".into(),
                            reason: field("reason"),
                            raw: field("text"),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    fn add_message(&mut self, ts: i64, json: &[u8]) -> Result<()> {
        let v: Map<String, Value> = serde_json::from_slice(json)
            .map_err(|e| Error::Internal(format!("collector record: {e}")))?;
        let id = message_id_in(&v, json);
        if let Some(ids) = &mut self.ids {
            ids.push(id.clone());
        }
        let s = |k: &str| v.get(k).and_then(id_text);
        let user = s("userId");
        let anon = s("anonymousId");
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("track");
        let empty = Map::new();
        let props = v
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let ctx = v
            .get("context")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let p = |k: &str| props.get(k).and_then(id_text);
        let ctx_at = |a: &str, b: &str| {
            ctx.get(a)
                .and_then(Value::as_object)
                .and_then(|o| o.get(b))
                .and_then(id_text)
        };
        let name = v.get("name").and_then(id_text);
        let (event, page) = match kind {
            "track" => (
                canonical_event(v.get("event").and_then(Value::as_str).unwrap_or("")),
                ctx_at("page", "path"),
            ),
            "page" | "screen" => (
                "page_view".to_string(),
                p("path").or(ctx_at("page", "path")).or(name.clone()),
            ),
            other => (other.to_string(), ctx_at("page", "path")),
        };
        // Properties kept on the event: the call's properties, and for identify/group/alias
        // the traits and ids that have no column.
        let mut extra = props.clone();
        for k in ["traits", "groupId", "previousId"] {
            if let Some(x) = v.get(k) {
                extra.insert(k.to_string(), x.clone());
            }
        }
        if let Some(n) = &name {
            extra
                .entry("name")
                .or_insert_with(|| Value::String(n.clone()));
        }
        let properties = if extra.is_empty() {
            Val::Null
        } else {
            text(Value::Object(extra).to_string())
        };
        let item = item_id(props);
        let price = props
            .get("price")
            .and_then(money)
            .map_or(Val::Null, Val::Money);
        let quantity = props
            .get("quantity")
            .and_then(Value::as_i64)
            .map_or(Val::Null, Val::Int);
        self.events.push(&[
            text(id.clone()),
            Val::Ts(ts),
            opt_text(user.clone()),
            opt_text(anon.clone()),
            opt_text(ctx.get("session_id").and_then(id_text).or(p("session_id"))),
            text(event.clone()),
            opt_text(item.clone()),
            opt_text(p("category")),
            opt_text(p("brand")),
            price,
            quantity,
            opt_text(p("order_id")),
            opt_text(ctx_at("campaign", "source")),
            opt_text(ctx_at("device", "type")),
            opt_text(page),
            properties,
        ])?;
        self.accepted += 1;
        let event_name = v.get("event").and_then(Value::as_str).unwrap_or("");
        match (kind, event_name) {
            ("track", "Order Completed" | "Order Refunded") => {
                let refund = event_name == "Order Refunded";
                let order = p("order_id").unwrap_or_default();
                let amount = |k: &str| props.get(k).and_then(money);
                let sign = if refund { -1 } else { 1 };
                let net = amount("total").or(amount("revenue"));
                let gross = amount("subtotal").or(amount("revenue")).or(net);
                let order_id = if refund {
                    format!("{order}#refund-{id}")
                } else {
                    order.clone()
                };
                let mut op = props.clone();
                op.remove("products");
                if refund {
                    op.insert("refunds_order_id".into(), Value::String(order));
                }
                self.orders.push(&[
                    text(order_id.clone()),
                    opt_text(user.clone()),
                    Val::Ts(ts),
                    if refund { Val::Null } else { Val::Ts(ts) },
                    text(if refund { "refunded" } else { "completed" }),
                    opt_text(ctx_at("campaign", "source")),
                    opt_text(ctx_at("campaign", "name")),
                    opt_text(p("coupon")),
                    Val::Null,
                    gross.map_or(Val::Null, |g| Val::Money(sign * g)),
                    amount("discount").map_or(Val::Null, Val::Money),
                    amount("shipping").map_or(Val::Null, Val::Money),
                    net.map_or(Val::Null, |n| Val::Money(sign * n)),
                    opt_text(p("currency")),
                    Val::Null,
                    if op.is_empty() {
                        Val::Null
                    } else {
                        text(Value::Object(op).to_string())
                    },
                ])?;
                let products = props
                    .get("products")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for (i, line) in products.iter().filter_map(Value::as_object).enumerate() {
                    let q = line.get("quantity").and_then(Value::as_i64).unwrap_or(1);
                    let mut attrs = line.clone();
                    for k in ["product_id", "sku", "quantity", "price"] {
                        attrs.remove(k);
                    }
                    self.items.push(&[
                        text(order_id.clone()),
                        Val::Int(i as i64 + 1),
                        opt_text(item_id(line)),
                        Val::Int(if refund { 0 } else { q }),
                        line.get("price")
                            .and_then(money)
                            .map_or(Val::Null, Val::Money),
                        Val::Null,
                        Val::Null,
                        if refund { Val::Int(q) } else { Val::Null },
                        Val::Null,
                        if attrs.is_empty() {
                            Val::Null
                        } else {
                            text(Value::Object(attrs).to_string())
                        },
                        Val::Null,
                    ])?;
                }
            }
            ("track", "Product Reviewed") => {
                self.reviews.push(&[
                    text(p("review_id").unwrap_or_else(|| id.clone())),
                    opt_text(item),
                    opt_text(user.clone().or(anon.clone())),
                    opt_text(p("order_id")),
                    Val::Ts(ts),
                    props
                        .get("rating")
                        .and_then(rating)
                        .map_or(Val::Null, Val::Int),
                    Val::Null,
                    Val::Null,
                    opt_text(p("review_body")),
                    Val::Null,
                    Val::Null,
                ])?;
            }
            ("track", "Experiment Viewed") => {
                self.exposures.push(&[
                    opt_text(p("experiment_id").or(p("experiment_name"))),
                    opt_text(user.or(anon)),
                    opt_text(p("variation_name").or(p("variation_id"))),
                    Val::Ts(ts),
                ])?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.accepted == 0 && self.quarantine.is_empty()
    }

    /// The batches per table, and the rejected messages as quarantine rows (file `collector`,
    /// line = the message's index in its request).
    pub(crate) fn finish(self) -> Result<(TableBatches, QuarantineRows)> {
        let mut out = Vec::new();
        for (t, b) in [
            (Table::Events, self.events),
            (Table::Orders, self.orders),
            (Table::OrderItems, self.items),
            (Table::Reviews, self.reviews),
            (Table::Exposures, self.exposures),
        ] {
            let batch = b.finish()?;
            if batch.num_rows() > 0 {
                out.push((t, batch));
            }
        }
        Ok((out, self.quarantine))
    }
}

/// Batches grouped by table.
pub fn group(batches: Vec<(Table, RecordBatch)>) -> HashMap<Table, Vec<RecordBatch>> {
    let mut by: HashMap<Table, Vec<RecordBatch>> = HashMap::new();
    for (t, b) in batches {
        by.entry(t).or_default().push(b);
    }
    by
}

/// The log records not yet compacted into the tables, as rows of the canonical tables.
#[derive(Debug, Default)]
pub struct Tail {
    /// Rows per table.
    pub tables: HashMap<Table, Vec<RecordBatch>>,
    /// Rejected messages as quarantine rows.
    pub(crate) quarantine: QuarantineRows,
    /// Where the valid log ends.
    pub end: WalPosition,
    /// Messages accepted in the tail.
    pub messages: u64,
}

impl Tail {
    /// Rows of a table in the tail.
    pub fn rows(&self, table: Table) -> u64 {
        self.tables
            .get(&table)
            .map_or(0, |b| b.iter().map(|b| b.num_rows() as u64).sum())
    }

    /// The newest `ts` of the tail's events, orders, reviews and exposures.
    pub fn newest(&self) -> Option<i64> {
        use datafusion::arrow::array::TimestampMicrosecondArray;
        let mut max: Option<i64> = None;
        for (t, batches) in &self.tables {
            let Some(i) = t.columns().iter().position(|c| c.name == "ts") else {
                continue;
            };
            for b in batches {
                if let Some(a) = b
                    .column(i)
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    && let Some(m) = datafusion::arrow::compute::max(a)
                {
                    max = Some(max.map_or(m, |x| x.max(m)));
                }
            }
        }
        max
    }

    /// The quarantine rows of the tail as a batch of the quarantine table.
    pub fn quarantine_batch(&self) -> Result<Option<RecordBatch>> {
        if self.quarantine.is_empty() {
            return Ok(None);
        }
        crate::storage::quarantine::quarantine_batch("wal", &self.quarantine).map(Some)
    }
}

/// Reads the log after `from` (up to `upto`, or its valid end) into table rows, and with
/// `keep_ids` the messageIds read.
fn read_tail(
    root: &std::path::Path,
    from: WalPosition,
    upto: Option<WalPosition>,
    keep_ids: bool,
) -> Result<(Tail, Vec<String>)> {
    let mut c = Collected {
        ids: keep_ids.then(Vec::new),
        ..Collected::default()
    };
    let mut last = from;
    wal::read_from(&wal::dir(root), from, |pos, payload| {
        if upto.is_some_and(|u| pos > u) {
            return Ok(());
        }
        last = pos;
        c.add_record(payload)
    })?;
    let messages = c.accepted;
    let ids = c.ids.take().unwrap_or_default();
    let (tables, quarantine) = c.finish()?;
    let tail = Tail {
        tables: group(tables),
        quarantine,
        end: last,
        messages,
    };
    Ok((tail, ids))
}

/// The uncompacted tail of the collector's log for a manifest (None when there is no log or
/// nothing after the compacted position). A segment removed by a compaction between reading the
/// manifest and the log makes this re-read the manifest.
pub fn tail(ws: &Workspace, manifest: &mut Manifest) -> Result<Option<Tail>> {
    let dir = wal::dir(ws.root());
    if !dir.exists() {
        return Ok(None);
    }
    for _ in 0..5 {
        let from = manifest.collector.unwrap_or_default();
        match read_tail(ws.root(), from, None, false) {
            Ok((t, _)) if t.messages == 0 && t.quarantine.is_empty() => return Ok(None),
            Ok((t, _)) => return Ok(Some(t)),
            Err(Error::LogMoved { .. }) => *manifest = ws.manifest()?,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Internal(
        "the collector's log kept moving under the reader".into(),
    ))
}

/// What the workspace's data is at this moment, for caches of analysis results: the manifest's
/// version, and the collector log's newest segment and its length. The log only grows at its
/// newest segment and loses segments only in a compaction, which publishes a new manifest, so
/// an unchanged stamp means every query reads the same rows.
pub fn data_stamp(ws: &Workspace) -> Result<(u64, u64, u64)> {
    data_stamp_of(ws, &ws.manifest()?)
}

/// [`data_stamp`] for a manifest already read.
pub fn data_stamp_of(ws: &Workspace, manifest: &Manifest) -> Result<(u64, u64, u64)> {
    let version = manifest.version;
    let dir = wal::dir(ws.root());
    let Some(&newest) = wal::segments(&dir)?.last() else {
        return Ok((version, 0, 0));
    };
    let path = wal::segment_path(&dir, newest);
    let len = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(Error::io(&path, e)),
    };
    Ok((version, newest, len))
}

/// A table's small files are merged once it has this many…
pub const MERGE_AT_FILES: usize = 16;
/// …of fewer rows than this each.
pub const MERGE_BELOW_ROWS: u64 = 250_000;

/// The rows of some of a table's files, each batch brought to the table's current schema (files
/// written before a column existed get it as nulls).
fn read_conformed(ws: &Workspace, files: &[DataFile], table: Table) -> Result<Vec<RecordBatch>> {
    use datafusion::arrow::array::new_null_array;
    use datafusion::arrow::compute::cast;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let schema = table.schema();
    let mut out = Vec::new();
    for f in files {
        let path = ws.path_of(f);
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| Error::parquet(&path, e))?;
        for batch in reader {
            let batch = batch?;
            let cols = schema
                .fields()
                .iter()
                .map(|field| match batch.column_by_name(field.name()) {
                    Some(c) => cast(c, field.data_type()),
                    None => Ok(new_null_array(field.data_type(), batch.num_rows())),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(RecordBatch::try_new(schema.clone(), cols)?);
        }
    }
    Ok(out)
}

/// What one compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compacted {
    /// Messages moved into the tables.
    pub messages: u64,
    /// Rejected messages moved into the quarantine.
    pub rejected: u64,
    /// The new compacted position.
    pub upto: WalPosition,
}

/// Moves the log's records up to `upto` (a position the log has made durable) into the tables
/// in one commit, records the new position in the manifest, then removes fully compacted
/// segments. Readers see each record exactly once throughout: from the log before the commit,
/// from the tables after it. `before_publish` gets the compacted messageIds first (the collector
/// records them, so a crash between the two never forgets a stored message).
pub fn compact(
    writer: &Writer,
    upto: WalPosition,
    before_publish: impl FnOnce(&[String]) -> Result<()>,
) -> Result<Compacted> {
    let mut commit = writer.begin()?;
    let from = commit.base().collector.unwrap_or_default();
    if upto <= from {
        return Ok(Compacted {
            upto: from,
            ..Compacted::default()
        });
    }
    let (t, ids) = read_tail(writer.workspace().root(), from, Some(upto), true)?;
    let rejected = t.quarantine.len() as u64;
    for table in Table::ALL {
        let Some(b) = t.tables.get(&table) else {
            continue;
        };
        // Each compaction writes a file per table; once a table holds many small ones, they are
        // merged with the new rows into one, so a collector running for weeks keeps few files.
        let small: Vec<DataFile> = commit
            .base()
            .files(table)
            .iter()
            .filter(|f| f.rows < MERGE_BELOW_ROWS)
            .cloned()
            .collect();
        if small.len() + 1 >= MERGE_AT_FILES {
            let mut all = read_conformed(writer.workspace(), &small, table)?;
            all.extend(b.iter().cloned());
            commit.replace_files(table, &small, &all)?;
        } else {
            commit.stage(Some(table), b)?;
        }
    }
    if !t.quarantine.is_empty() {
        let q = crate::storage::quarantine::quarantine_batch(commit.id(), &t.quarantine)?;
        commit.stage(None, &[q])?;
    }
    commit.set_collector(upto);
    before_publish(&ids)?;
    commit.publish()?;
    wal::remove_before(&wal::dir(writer.workspace().root()), upto)?;
    Ok(Compacted {
        messages: t.messages,
        rejected,
        upto,
    })
}

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
