//! The collector's log records: accepted and rejected messages of one request, encoded and decoded, and their message ids.

use super::*;

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

pub(super) fn message_id_of(json: &[u8]) -> Result<String> {
    let v: Map<String, Value> = serde_json::from_slice(json)
        .map_err(|e| Error::Internal(format!("collector record: {e}")))?;
    Ok(message_id_in(&v, json))
}

/// A message's messageId, or for a client that sent none, a hash of its text.
pub(super) fn message_id_in(v: &Map<String, Value>, text: &[u8]) -> String {
    v.get("messageId")
        .and_then(id_text)
        .unwrap_or_else(|| format!("h-{}", blake3::hash(text)))
}

/// Batches and the table each belongs to.
pub type TableBatches = Vec<(Table, RecordBatch)>;
/// Quarantine rows with their source name.
pub(crate) type QuarantineRows = Vec<(String, QRow)>;
