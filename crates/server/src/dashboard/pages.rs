//! The pages: each runs its analyses (the same commands and flags as the CLI) and draws their
//! JSON as charts and tables.

use std::fmt::Write as _;
use std::path::Path;

use crate::{ApiError, ApiErrorCode, PageResponse};
use serde_json::Value;
use shoplens_engine::customers::audiences;

use super::charts::{self, Bar, Interval, Link, Point, Series};
use super::html::{
    self, Fmt, cell, col, definitions, esc, section, stat, table, typed_col, typed_table,
};
use super::{AREAS, Call, Ctx, Lang, urlencode};

mod command_centre;
mod customers;
mod frame;
mod goods;
mod people;
mod practice;
mod traffic;

use command_centre::*;
pub(crate) use customers::export_audience;
use customers::*;
pub(crate) use frame::{error_page, layout, login, report};
use goods::*;
use people::*;
use practice::*;
use traffic::*;

/// A page of the dashboard.
pub(crate) struct Page {
    pub(crate) slug: &'static str,
    pub(crate) title: &'static str,
    pub(crate) summary: &'static str,
    /// Whether the date filter narrows this page.
    pub(crate) dates: bool,
    /// Whether the channel filter narrows this page.
    pub(crate) channel: bool,
    pub(crate) render: fn(&Ctx<'_>) -> Result<String, ApiError>,
}

pub(crate) const PAGES: &[Page] = &[
    Page {
        slug: "",
        title: "Command centre",
        summary: "The shop's KPIs over the period against the period before; each card opens the page that explains it.",
        dates: true,
        channel: false,
        render: home,
    },
    Page {
        slug: "funnel",
        title: "Funnel",
        summary: "Users who reach each step within the window, and where they drop.",
        dates: true,
        channel: true,
        render: funnel,
    },
    Page {
        slug: "activity",
        title: "Activity",
        summary: "When customers browse and buy: hour × weekday, by category, and daily actives.",
        dates: true,
        channel: false,
        render: activity,
    },
    Page {
        slug: "cohorts",
        title: "Cohorts",
        summary: "Retention and revenue per member of each first-purchase cohort.",
        dates: true,
        channel: true,
        render: cohorts,
    },
    Page {
        slug: "paths",
        title: "Paths",
        summary: "What sessions do after their first event: the commonest sequences as a flow.",
        dates: true,
        channel: false,
        render: paths,
    },
    Page {
        slug: "repurchase",
        title: "Repurchase",
        summary: "Share of new customers who buy again within 30 days, and the intervals between purchases.",
        dates: true,
        channel: false,
        render: repurchase,
    },
    Page {
        slug: "lifecycle",
        title: "Lifecycle",
        summary: "Active users each week: new, returning, resurrecting, and those gone dormant.",
        dates: true,
        channel: false,
        render: lifecycle,
    },
    Page {
        slug: "products",
        title: "Products",
        summary: "Sales × margin quadrants per item and category, with what to do about each.",
        dates: true,
        channel: false,
        render: products,
    },
    Page {
        slug: "returns",
        title: "Returns and reviews",
        summary: "Return rate against good-review rate per item, and the items flagged for quality risk.",
        dates: true,
        channel: false,
        render: returns,
    },
    Page {
        slug: "basket",
        title: "Market basket",
        summary: "Items bought together: association rules and bundle suggestions.",
        dates: true,
        channel: false,
        render: basket,
    },
    Page {
        slug: "inventory",
        title: "Inventory",
        summary: "Sell-through, share of SKUs sold, turnover and slow movers.",
        dates: true,
        channel: false,
        render: inventory,
    },
    Page {
        slug: "channels",
        title: "Channels",
        summary: "Traffic, conversion, order value, acquisition cost and return on spend per channel.",
        dates: true,
        channel: true,
        render: channels,
    },
    Page {
        slug: "campaigns",
        title: "Campaigns",
        summary: "What each campaign caused against its holdout or matched non-members, its ROI, and promotions' order value against margin.",
        dates: false,
        channel: false,
        render: campaigns,
    },
    Page {
        slug: "rfm",
        title: "RFM segments",
        summary: "Customers by recency, frequency and money: segments with actions, and how they moved.",
        dates: true,
        channel: false,
        render: rfm,
    },
    Page {
        slug: "clv",
        title: "Lifetime value",
        summary: "Expected value of each customer over the next year (BG/NBD and Gamma-Gamma).",
        dates: true,
        channel: false,
        render: clv,
    },
    Page {
        slug: "churn",
        title: "Churn and win-back",
        summary: "Buyers' stages over time and the customers worth winning back.",
        dates: true,
        channel: false,
        render: churn,
    },
    Page {
        slug: "recommend",
        title: "Recommendations",
        summary: "What to show a chosen customer, and what goes with a chosen item.",
        dates: false,
        channel: false,
        render: recommend,
    },
    Page {
        slug: "audiences",
        title: "Audiences",
        summary: "Saved customer audiences, their current sizes, and exports for the channels that act on them.",
        dates: true,
        channel: false,
        render: audiences,
    },
    Page {
        slug: "experiments",
        title: "Experiments",
        summary: "Each experiment's lift per metric with its interval, and the verdict.",
        dates: false,
        channel: false,
        render: experiments,
    },
];

pub(crate) fn find(slug: &str) -> Option<&'static Page> {
    PAGES.iter().find(|p| p.slug == slug)
}

pub(super) fn page_of(slug: &str) -> &'static Page {
    find(slug).unwrap_or(&PAGES[0])
}

// ---------- JSON helpers ----------

pub(super) use super::field_of;

pub(super) fn num(v: &Value, k: &str) -> f64 {
    field_of(v, k).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

pub(super) fn text(v: &Value, k: &str) -> String {
    match field_of(v, k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

pub(super) fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    field_of(v, k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// An endpoint with the date filter as its `from` and `to`.
pub(super) fn dated(ctx: &Ctx<'_>, words: &'static [&'static str]) -> Call {
    let mut a = Call::new(words);
    if let Some(f) = &ctx.filters.from {
        a.set("from", f);
    }
    if let Some(t) = &ctx.filters.to {
        a.set("to", t);
    }
    a
}

/// An endpoint with the date filter's end as the as-of date.
pub(super) fn as_of(ctx: &Ctx<'_>, words: &'static [&'static str]) -> Call {
    let mut a = Call::new(words);
    if let Some(t) = &ctx.filters.to {
        a.set("as_of", t);
    }
    a
}

pub(super) fn run(ctx: &Ctx<'_>, call: Call) -> Result<std::sync::Arc<Value>, ApiError> {
    ctx.source.run(&call, ctx.stamp)
}

/// The rows of a query over the workspace's tables (`{"columns": …, "rows": […]}`).
pub(super) fn sql(ctx: &Ctx<'_>, query: &str) -> Result<std::sync::Arc<Value>, ApiError> {
    ctx.source.sql(query, ctx.stamp)
}

pub(super) fn empty(ctx: &Ctx<'_>, what: &'static str) -> String {
    format!(r#"<p class="help">{}</p>"#, esc(ctx.t(what)))
}
