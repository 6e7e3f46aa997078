//! Funnels: the `window_funnel` aggregate (ClickHouse `windowFunnel` semantics) and the funnel
//! analysis `shoplens funnel` prints.

pub mod udaf;

use datafusion::prelude::SessionContext;

/// Registers shoplens's funnel aggregates in a session.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(udaf::window_funnel());
    ctx.register_udaf(udaf::funnel_detail());
}
