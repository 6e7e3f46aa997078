//! Who a row belongs to, and sessions: shared SQL fragments of the behaviour analyses.
//!
//! A person is `user_id`, or `anonymous_id` for a visitor who is not logged in. A session is the
//! source's `session_id`; when a source has none, a person's events split into sessions at every
//! gap of more than 30 minutes of inactivity (the convention of Google Analytics and PostHog).

/// SQL expression of the person an event belongs to.
pub const PERSON: &str = "COALESCE(user_id, anonymous_id)";

/// Inactivity that ends a session, in microseconds (30 minutes).
pub const GAP_US: i64 = 30 * 60 * 1_000_000;

/// `inner` (a query over events with a `person` column) with a `unit` column naming the session:
/// `session_id` when present, else `person#n` with n counting the person's gaps over `gap_us`.
pub fn sessionised(inner: &str, gap_us: i64) -> String {
    format!(
        "SELECT *, COALESCE(session_id, person || '#' || CAST(sum(CASE WHEN s_prev IS NULL \
         OR CAST(ts AS BIGINT) - CAST(s_prev AS BIGINT) > {gap_us} THEN 1 ELSE 0 END) \
         OVER (PARTITION BY person ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS VARCHAR)) AS unit \
         FROM (SELECT *, lag(ts) OVER (PARTITION BY person ORDER BY ts) AS s_prev FROM ({inner}))"
    )
}

/// Whether some event lacks a session id, so that sessions must be cut at gaps of inactivity.
pub(crate) async fn need_split(ctx: &datafusion::prelude::SessionContext) -> crate::Result<bool> {
    Ok(crate::query::count(ctx, "SELECT count(*) FROM events WHERE session_id IS NULL").await? > 0)
}

/// `inner` (a query over events with a `person` column) with a `unit` column naming the session.
/// With `split` (some event lacks a session id, see [`need_split`]) that is [`sessionised`];
/// otherwise every event has its session id, which [`sessionised`] would take as it is, so the
/// unit is the session id without the window over every event.
pub fn with_units(inner: &str, split: bool, gap_us: i64) -> String {
    if split {
        sessionised(inner, gap_us)
    } else {
        format!("SELECT *, session_id AS unit FROM ({inner})")
    }
}
