//! Accepted messages mapped onto the canonical tables (events, orders, order lines, reviews, exposures).

use super::*;

/// Builders of the tables that collected messages feed.
pub struct Collected {
    events: TableBuilder,
    orders: TableBuilder,
    items: TableBuilder,
    reviews: TableBuilder,
    exposures: TableBuilder,
    quarantine: QuarantineRows,
    /// The messageIds added, when kept (compaction records them before publishing).
    pub(super) ids: Option<Vec<String>>,
    /// Messages accepted.
    pub accepted: u64,
}

impl Collected {
    /// Empty builders; recording the messageIds added when `keep_ids`.
    pub(super) fn keeping_ids(keep_ids: bool) -> Collected {
        Collected {
            ids: keep_ids.then(Vec::new),
            ..Collected::default()
        }
    }
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

pub(super) fn text(s: impl Into<String>) -> Val<'static> {
    Val::Text(std::borrow::Cow::Owned(s.into()))
}

pub(super) fn opt_text(s: Option<String>) -> Val<'static> {
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
