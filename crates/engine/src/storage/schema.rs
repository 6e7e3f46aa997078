//! The canonical data model: every table an analysis reads, as Arrow schemas.
//!
//! Each column is declared once here with its meaning, kind and an example; the Arrow schemas,
//! the ingest validation and docs/data-model.md (checked by a test) all come from this list.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Serialize;

/// Scale of every money column: four decimal places, because unit prices like 0.001 exist.
pub const MONEY_SCALE: i8 = 4;
/// Precision of every money column (up to 10^14 currency units).
pub const MONEY_PRECISION: u8 = 18;

/// The logical kind of a canonical column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// UTF-8 text (ids are text even when the source writes numbers, so `00004` stays `00004`).
    Text,
    /// A signed 64-bit integer.
    Int,
    /// A 64-bit float (statistics and measurements, never money).
    Float,
    /// A money amount in the shop currency: Decimal128 with scale 4.
    Money,
    /// An instant, microseconds since the epoch, UTC.
    Timestamp,
    /// A calendar date in the shop's time zone.
    Date,
    /// true or false.
    Bool,
    /// A JSON document stored as text (an object for attributes and properties, an array for tags).
    Json,
}

impl Kind {
    /// The Arrow type this kind is stored as.
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Text | Kind::Json => DataType::Utf8,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Money => DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Date => DataType::Date32,
            Kind::Bool => DataType::Boolean,
        }
    }

    /// The name used in docs and mapping files.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Money => "money",
            Kind::Timestamp => "timestamp",
            Kind::Date => "date",
            Kind::Bool => "bool",
            Kind::Json => "json",
        }
    }
}

/// One column of a canonical table.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Column {
    /// Column name.
    pub name: &'static str,
    /// Logical kind.
    pub kind: Kind,
    /// Whether every stored row must have a value.
    pub required: bool,
    /// What the column means.
    pub doc: &'static str,
    /// An example value as written in a CSV export.
    pub example: &'static str,
}

const fn req(name: &'static str, kind: Kind, doc: &'static str, example: &'static str) -> Column {
    Column {
        name,
        kind,
        required: true,
        doc,
        example,
    }
}

const fn opt(name: &'static str, kind: Kind, doc: &'static str, example: &'static str) -> Column {
    Column {
        name,
        kind,
        required: false,
        doc,
        example,
    }
}

use Kind::{Bool, Date, Float, Int, Json, Money, Text, Timestamp};

/// A canonical table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Behaviour events.
    Events,
    /// Orders (one row per order or credit note).
    Orders,
    /// Order lines.
    OrderItems,
    /// Product catalogue.
    Products,
    /// Customers.
    Customers,
    /// Product reviews.
    Reviews,
    /// Inventory snapshots and stock movements.
    Inventory,
    /// Marketing spend per channel and day.
    ChannelSpend,
    /// Marketing campaigns.
    Campaigns,
    /// Who a campaign targeted.
    CampaignMembers,
    /// Coupon redemptions.
    Redemptions,
    /// Experiment definitions.
    Experiments,
    /// Experiment exposures.
    Exposures,
}

impl Table {
    /// Every canonical table, in documentation order.
    pub const ALL: [Table; 13] = [
        Table::Events,
        Table::Orders,
        Table::OrderItems,
        Table::Products,
        Table::Customers,
        Table::Reviews,
        Table::Inventory,
        Table::ChannelSpend,
        Table::Campaigns,
        Table::CampaignMembers,
        Table::Redemptions,
        Table::Experiments,
        Table::Exposures,
    ];

    /// The table's name in SQL, on disk and in mapping files.
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Orders => "orders",
            Table::OrderItems => "order_items",
            Table::Products => "products",
            Table::Customers => "customers",
            Table::Reviews => "reviews",
            Table::Inventory => "inventory",
            Table::ChannelSpend => "channel_spend",
            Table::Campaigns => "campaigns",
            Table::CampaignMembers => "campaign_members",
            Table::Redemptions => "redemptions",
            Table::Experiments => "experiments",
            Table::Exposures => "exposures",
        }
    }

    /// Looks a table up by name.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// What one row of the table is.
    pub fn doc(self) -> &'static str {
        match self {
            Table::Events => {
                "One behaviour event of a user or visitor (a view, a cart add, an order event …)."
            }
            Table::Orders => {
                "One order, or one credit note (status `cancelled`/`refunded`, amounts negative)."
            }
            Table::OrderItems => {
                "One line of an order; identical repeated lines of one order are kept as separate lines."
            }
            Table::Products => "One product (SKU) of the catalogue.",
            Table::Customers => "One customer (registered or known buyer).",
            Table::Reviews => "One review of a product.",
            Table::Inventory => {
                "A stock snapshot (on_hand) or movement (received, adjusted) of an item on a day."
            }
            Table::ChannelSpend => {
                "Marketing spend of one channel (and optionally campaign) on one day."
            }
            Table::Campaigns => "One marketing campaign.",
            Table::CampaignMembers => "One customer targeted by a campaign.",
            Table::Redemptions => "One coupon redemption.",
            Table::Experiments => "One A/B experiment definition.",
            Table::Exposures => "One user's exposure to an experiment variant.",
        }
    }

    /// The table's columns.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Events => EVENTS,
            Table::Orders => ORDERS,
            Table::OrderItems => ORDER_ITEMS,
            Table::Products => PRODUCTS,
            Table::Customers => CUSTOMERS,
            Table::Reviews => REVIEWS,
            Table::Inventory => INVENTORY,
            Table::ChannelSpend => CHANNEL_SPEND,
            Table::Campaigns => CAMPAIGNS,
            Table::CampaignMembers => CAMPAIGN_MEMBERS,
            Table::Redemptions => REDEMPTIONS,
            Table::Experiments => EXPERIMENTS,
            Table::Exposures => EXPOSURES,
        }
    }

    /// The column that identifies a row, when the table has one; ingest refuses duplicates of it.
    pub fn key(self) -> &'static [&'static str] {
        match self {
            Table::Events => &["event_id"],
            Table::Orders => &["order_id"],
            Table::OrderItems => &["order_id", "line_no"],
            Table::Products => &["item_id"],
            Table::Customers => &["user_id"],
            Table::Reviews => &["review_id"],
            Table::Campaigns => &["campaign_id"],
            Table::Experiments => &["experiment_id"],
            _ => &[],
        }
    }

    /// The column holding the row's instant, used for time ranges.
    pub fn time_column(self) -> Option<&'static str> {
        match self {
            Table::Events
            | Table::Orders
            | Table::Reviews
            | Table::Exposures
            | Table::Redemptions => Some("ts"),
            Table::Customers => Some("registered_at"),
            Table::CampaignMembers => Some("added_at"),
            Table::Campaigns => Some("starts_at"),
            Table::Inventory | Table::ChannelSpend => Some("date"),
            Table::Products => Some("launched_at"),
            Table::Experiments => Some("starts_at"),
            Table::OrderItems => None,
        }
    }

    /// Whether the table has a `user_id` column.
    pub fn has_user(self) -> bool {
        self.columns().iter().any(|c| c.name == "user_id")
    }

    /// Looks up a column by name.
    pub fn column(self, name: &str) -> Option<&'static Column> {
        self.columns().iter().find(|c| c.name == name)
    }

    /// The Arrow schema of the table.
    pub fn schema(self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|c| Field::new(c.name, c.kind.data_type(), !c.required))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

static EVENTS: &[Column] = &[
    req(
        "event_id",
        Text,
        "Unique id of the event; synthesised as `<file hash>-<line>` when the source has none.",
        "3f9a0c1e-17",
    ),
    req(
        "ts",
        Timestamp,
        "When the event happened (UTC).",
        "2017-11-25 09:41:10+00",
    ),
    opt(
        "user_id",
        Text,
        "Known user (customer) id; null for anonymous visitors.",
        "100001",
    ),
    opt(
        "anonymous_id",
        Text,
        "Device or cookie id before the user is known.",
        "a7c1-…",
    ),
    opt(
        "session_id",
        Text,
        "Session id from the source; null when the source has none (analyses then sessionise by 30 minutes of inactivity).",
        "72d76fde-8bb3-…",
    ),
    req(
        "event",
        Text,
        "Canonical event name: page_view, product_view, add_to_cart, remove_from_cart, checkout_start, order, payment, favorite, search, refund, review, experiment_viewed, or a custom name.",
        "product_view",
    ),
    opt("item_id", Text, "Product the event is about.", "2268318"),
    opt(
        "category",
        Text,
        "Product category at the time of the event.",
        "2520377",
    ),
    opt(
        "brand",
        Text,
        "Product brand at the time of the event.",
        "shiseido",
    ),
    opt(
        "price",
        Money,
        "Unit price shown, in the shop currency.",
        "35.7900",
    ),
    opt("quantity", Int, "Units (cart adds, orders).", "1"),
    opt(
        "order_id",
        Text,
        "Order the event belongs to (order and payment events).",
        "536365",
    ),
    opt(
        "channel",
        Text,
        "Acquisition or traffic channel of the session.",
        "live_stream",
    ),
    opt(
        "device",
        Text,
        "Device class (mobile, desktop, app, mini_program …).",
        "mobile",
    ),
    opt(
        "page",
        Text,
        "Page or screen name or URL path.",
        "/p/2268318",
    ),
    opt(
        "properties",
        Json,
        "Other source fields, as a JSON object.",
        "{\"category_code\":\"appliances.kitchen.mixer\"}",
    ),
];

static ORDERS: &[Column] = &[
    req(
        "order_id",
        Text,
        "Unique id of the order (a credit note has its own id).",
        "536365",
    ),
    opt(
        "user_id",
        Text,
        "Customer who placed the order; null when unknown (guest or missing in the source).",
        "17850",
    ),
    opt(
        "ts",
        Timestamp,
        "When the order was placed (UTC); null only for sources without time (basket files).",
        "2010-12-01 08:26:00+00",
    ),
    opt(
        "paid_ts",
        Timestamp,
        "When the order was paid; null when unpaid or unknown.",
        "2010-12-01 08:30:00+00",
    ),
    req(
        "status",
        Text,
        "completed, paid, placed (not paid), cancelled (credit note / cancellation) or refunded.",
        "completed",
    ),
    opt(
        "channel",
        Text,
        "Sales or acquisition channel of the order.",
        "live_stream",
    ),
    opt(
        "campaign_id",
        Text,
        "Campaign credited with the order.",
        "summer-sale",
    ),
    opt("coupon", Text, "Coupon code used.", "WELCOME10"),
    opt(
        "units",
        Int,
        "Units in the order, when the source gives a count but no lines (CDNOW).",
        "2",
    ),
    opt(
        "gross_amount",
        Money,
        "Sum of line values before discounts (negative for credit notes).",
        "139.1200",
    ),
    opt(
        "discount_amount",
        Money,
        "Total discount granted (positive number).",
        "10.0000",
    ),
    opt("shipping_amount", Money, "Shipping charged.", "0.0000"),
    opt(
        "net_amount",
        Money,
        "What the customer paid: gross − discount + shipping (negative for credit notes).",
        "129.1200",
    ),
    opt(
        "currency",
        Text,
        "ISO 4217 currency code of the amounts.",
        "GBP",
    ),
    opt(
        "region",
        Text,
        "Country or region of the order.",
        "United Kingdom",
    ),
    opt(
        "properties",
        Json,
        "Other source fields, as a JSON object.",
        "{\"store_id\":\"367\"}",
    ),
];

static ORDER_ITEMS: &[Column] = &[
    req("order_id", Text, "Order the line belongs to.", "536365"),
    req(
        "line_no",
        Int,
        "Line number; unique within the order (presets use the source line number).",
        "2",
    ),
    req("item_id", Text, "Product sold.", "85123A"),
    req(
        "quantity",
        Int,
        "Units sold on the line (0 on a credit-note line, whose units are in returned_quantity).",
        "6",
    ),
    opt(
        "unit_price",
        Money,
        "Price per unit before line discount.",
        "2.5500",
    ),
    opt(
        "unit_cost",
        Money,
        "Cost per unit (COGS); null when the source has no costs.",
        "1.2000",
    ),
    opt(
        "discount",
        Money,
        "Discount on the whole line (positive number).",
        "0.5000",
    ),
    opt(
        "returned_quantity",
        Int,
        "Units returned or cancelled (positive).",
        "1",
    ),
    opt(
        "return_reason",
        Text,
        "Why units were returned.",
        "size too small",
    ),
    opt(
        "attributes",
        Json,
        "Variant attributes of the line (size, colour …), as a JSON object.",
        "{\"size\":\"M\"}",
    ),
    opt(
        "coupon_discount",
        Money,
        "The part of the line's discount that came from coupons (positive number); null when the source does not say.",
        "0.3000",
    ),
];

static PRODUCTS: &[Column] = &[
    req("item_id", Text, "Product (SKU) id.", "85123A"),
    opt(
        "name",
        Text,
        "Product name.",
        "WHITE HANGING HEART T-LIGHT HOLDER",
    ),
    opt(
        "category",
        Text,
        "Category (leaf or path).",
        "home/decoration",
    ),
    opt("brand", Text, "Brand.", "National"),
    opt("price", Money, "List price.", "2.5500"),
    opt(
        "cost",
        Money,
        "Unit cost; null when unknown (margin analyses then say so).",
        "1.2000",
    ),
    opt(
        "attributes",
        Json,
        "Attributes (size, colour, department …), as a JSON object.",
        "{\"department\":\"Dresses\"}",
    ),
    opt(
        "tags",
        Json,
        "Tags, as a JSON array of strings.",
        "[\"new\"]",
    ),
    opt(
        "launched_at",
        Timestamp,
        "When the product went on sale.",
        "2024-03-01 00:00:00+00",
    ),
];

static CUSTOMERS: &[Column] = &[
    req(
        "user_id",
        Text,
        "Customer id (the same id as orders.user_id and events.user_id).",
        "17850",
    ),
    opt(
        "registered_at",
        Timestamp,
        "When the customer registered.",
        "2024-02-11 10:00:00+00",
    ),
    opt(
        "acquisition_channel",
        Text,
        "Channel that acquired the customer.",
        "content",
    ),
    opt("member_tier", Text, "Membership tier.", "gold"),
    opt("points", Int, "Loyalty points balance.", "1200"),
    opt("region", Text, "Country or region.", "United Kingdom"),
    opt(
        "tags",
        Json,
        "Tags, as a JSON array of strings.",
        "[\"vip\"]",
    ),
    opt(
        "attributes",
        Json,
        "Other attributes (demographics, pre-period covariates …), as a JSON object.",
        "{\"age\":\"35-44\"}",
    ),
];

static REVIEWS: &[Column] = &[
    req("review_id", Text, "Review id.", "0"),
    req("item_id", Text, "Product reviewed.", "767"),
    opt(
        "user_id",
        Text,
        "Reviewer; null when the source has none.",
        "17850",
    ),
    opt("order_id", Text, "Order the review is about.", "536365"),
    opt(
        "ts",
        Timestamp,
        "When the review was written; null when the source has none.",
        "2024-05-01 12:00:00+00",
    ),
    req("rating", Int, "Stars, 1–5.", "4"),
    opt(
        "recommended",
        Bool,
        "Whether the reviewer recommends the product.",
        "true",
    ),
    opt("title", Text, "Review title.", "Some major design flaws"),
    opt("body", Text, "Review text.", "I had such high hopes …"),
    opt(
        "helpful_count",
        Int,
        "How many other customers found the review helpful.",
        "3",
    ),
    opt(
        "attributes",
        Json,
        "Attributes of the reviewed product or reviewer, as a JSON object.",
        "{\"department\":\"Dresses\"}",
    ),
];

static INVENTORY: &[Column] = &[
    req("item_id", Text, "Product.", "85123A"),
    req(
        "date",
        Date,
        "Day of the snapshot or movement (shop time).",
        "2024-05-01",
    ),
    opt(
        "on_hand",
        Int,
        "Units in stock at the end of the day (snapshot).",
        "120",
    ),
    opt("received", Int, "Units received that day.", "50"),
    opt(
        "adjusted",
        Int,
        "Stock adjustment that day (negative = written off, damaged, lost).",
        "-12",
    ),
    opt("reason", Text, "Reason for an adjustment.", "damaged"),
    opt(
        "unit_cost",
        Money,
        "Cost per unit of the stock, for inventory value.",
        "1.2000",
    ),
];

static CHANNEL_SPEND: &[Column] = &[
    req("date", Date, "Day (shop time).", "2024-05-01"),
    req("channel", Text, "Channel.", "live_stream"),
    opt(
        "campaign_id",
        Text,
        "Campaign, when spend is per campaign.",
        "summer-sale",
    ),
    req("spend", Money, "Spend that day.", "1200.0000"),
    opt("impressions", Int, "Impressions.", "150000"),
    opt("clicks", Int, "Clicks.", "3400"),
];

static CAMPAIGNS: &[Column] = &[
    req("campaign_id", Text, "Campaign id.", "18"),
    opt("name", Text, "Name.", "Spring coupons"),
    opt("channel", Text, "Channel the campaign runs on.", "email"),
    opt("starts_at", Timestamp, "Start.", "2017-03-01 00:00:00+00"),
    opt("ends_at", Timestamp, "End.", "2017-04-30 00:00:00+00"),
    opt(
        "kind",
        Text,
        "Kind (coupon, discount, type A/B/C …).",
        "Type A",
    ),
    opt(
        "cost",
        Money,
        "Total cost (discounts granted plus fees).",
        "5000.0000",
    ),
    opt(
        "audience",
        Text,
        "Audience description or id.",
        "lapsed buyers",
    ),
];

static CAMPAIGN_MEMBERS: &[Column] = &[
    req("campaign_id", Text, "Campaign.", "18"),
    req("user_id", Text, "Customer targeted.", "1017"),
    opt(
        "added_at",
        Timestamp,
        "When the customer was added.",
        "2017-03-01 00:00:00+00",
    ),
    opt(
        "holdout",
        Bool,
        "In the campaign's randomised holdout (kept from it, for measuring it); empty = treated.",
        "false",
    ),
];

static REDEMPTIONS: &[Column] = &[
    req("campaign_id", Text, "Campaign of the coupon.", "18"),
    opt("coupon", Text, "Coupon code or UPC.", "51800000050"),
    req("user_id", Text, "Customer who redeemed.", "1017"),
    opt(
        "ts",
        Timestamp,
        "When it was redeemed.",
        "2017-03-14 00:00:00+00",
    ),
    opt("order_id", Text, "Order it was redeemed on.", "31198570044"),
    opt("discount", Money, "Discount granted.", "1.0000"),
];

static EXPERIMENTS: &[Column] = &[
    req("experiment_id", Text, "Experiment key.", "checkout-button"),
    opt("name", Text, "Name.", "Green checkout button"),
    req(
        "variants",
        Json,
        "Variant names, as a JSON array.",
        "[\"control\",\"treatment\"]",
    ),
    opt(
        "weights",
        Json,
        "Variant weights, as a JSON array of numbers summing to 1.",
        "[0.5,0.5]",
    ),
    opt("coverage", Float, "Share of traffic included, 0–1.", "1.0"),
    opt(
        "seed",
        Text,
        "Hash seed (defaults to the key).",
        "checkout-button",
    ),
    opt("starts_at", Timestamp, "Start.", "2024-06-01 00:00:00+00"),
    opt("ends_at", Timestamp, "End.", "2024-06-21 00:00:00+00"),
    opt(
        "namespace",
        Text,
        "Mutual-exclusion namespace: experiments of one namespace whose ranges do not intersect never share a user.",
        "checkout-ns",
    ),
    opt(
        "surface",
        Text,
        "Where the experiment runs (page, flow, e-mail); two running experiments on one surface that no namespace separates are flagged.",
        "checkout",
    ),
    opt(
        "namespace_start",
        Float,
        "Start of the experiment's namespace range, 0–1 (inclusive).",
        "0.0",
    ),
    opt(
        "namespace_end",
        Float,
        "End of the namespace range, 0–1 (exclusive).",
        "0.5",
    ),
    opt(
        "primary_metrics",
        Json,
        "The metric the decision rests on (first) and any other success metrics, as a JSON array.",
        "[\"conversion\"]",
    ),
    opt(
        "guardrail_metrics",
        Json,
        "Metrics that must not get worse, as a JSON array; `name:lower` when a decrease is the good direction.",
        "[\"aov\",\"refund:lower\"]",
    ),
];

static EXPOSURES: &[Column] = &[
    req("experiment_id", Text, "Experiment.", "checkout-button"),
    req("user_id", Text, "User exposed.", "100001"),
    req("variant", Text, "Variant shown.", "treatment"),
    opt(
        "ts",
        Timestamp,
        "When the user was (first) exposed.",
        "2024-06-01 10:00:00+00",
    ),
];

/// Renders the data-model reference (docs/data-model.md) from the column declarations.
pub fn data_model_markdown() -> String {
    use std::fmt::Write as _;
    let mut out = String::from(DATA_MODEL_INTRO);
    for t in Table::ALL {
        let _ = writeln!(out, "\n## `{}`\n\n{}\n", t.name(), t.doc());
        if !t.key().is_empty() {
            let _ = writeln!(
                out,
                "Key: {} (duplicates within one ingest are quarantined).\n",
                t.key()
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            );
        }
        out.push_str(
            "| column | kind | required | meaning | example |\n| --- | --- | --- | --- | --- |\n",
        );
        for c in t.columns() {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | `{}` |",
                c.name,
                c.kind.name(),
                if c.required { "required" } else { "optional" },
                c.doc.replace('|', "\\|"),
                c.example.replace('|', "\\|"),
            );
        }
    }
    out
}

const DATA_MODEL_INTRO: &str = "# Canonical data model

<!-- Generated from crates/engine/src/storage/schema.rs by `SHOPLENS_BLESS=1 cargo test -p shoplens-engine data_model_doc`; edit the code, not this file. -->

Every analysis reads these tables. Ingest maps each source onto them (see presets.md and
mapping.md); each table is a set of Parquet files in the workspace (see storage in the README).

Kinds and their Arrow types:

| kind | Arrow type | notes |
| --- | --- | --- |
| text | Utf8 | ids are text even when a source writes numbers, so `00004` stays `00004` |
| int | Int64 | |
| float | Float64 | statistics and measurements, never money |
| money | Decimal128(18, 4) | the shop currency, four decimal places (unit prices like 0.001 exist); never a float |
| timestamp | Timestamp(µs, \"UTC\") | instants are stored in UTC; the workspace's time zone applies to days, hours and weekdays |
| date | Date32 | a calendar day in the shop's time zone |
| bool | Boolean | |
| json | Utf8 | a JSON object (attributes, properties) or array (tags, variants) as text |

A required column is never null in a stored row: a source row that lacks it is quarantined with
its reason. Optional columns are null when the source has no value; analyses that need one say so.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_round_trip_and_are_unique() {
        let mut names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
        for t in Table::ALL {
            assert_eq!(Table::from_name(t.name()), Some(t));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Table::ALL.len());
    }

    #[test]
    fn keys_and_time_columns_exist() {
        for t in Table::ALL {
            for k in t.key() {
                assert!(t.column(k).is_some_and(|c| c.required), "{}.{k}", t.name());
            }
            if let Some(c) = t.time_column() {
                assert!(t.column(c).is_some(), "{}.{c}", t.name());
            }
        }
    }

    #[test]
    fn money_is_decimal_never_float() {
        for t in Table::ALL {
            for c in t.columns() {
                if c.kind == Kind::Money {
                    assert_eq!(c.kind.data_type(), DataType::Decimal128(18, 4));
                }
            }
        }
    }

    /// docs/data-model.md is generated from this module; regenerate with
    /// `SHOPLENS_BLESS=1 cargo test -p shoplens-engine data_model_doc`.
    #[test]
    fn data_model_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/data-model.md");
        let want = data_model_markdown();
        if std::env::var_os("SHOPLENS_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/data-model.md is stale: run SHOPLENS_BLESS=1 cargo test -p shoplens-engine data_model_doc"
        );
    }
}
