//! The functions shoplens adds to SQL, one per file: the scalar `local_micros` (shop-local wall
//! clock) and the funnel aggregates `window_funnel` and `funnel_detail` (one accumulator).
//! Registered by name in every session and on every cluster process; each keeps no state, so an
//! executor needs only the registration.

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

pub mod funnel;
pub mod local_micros;

/// The scalar functions shoplens adds to SQL.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    vec![local_micros::local_micros_udf()]
}

/// The aggregate functions shoplens adds to SQL (`window_funnel`, `funnel_detail`).
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    vec![funnel::window_funnel(), funnel::funnel_detail()]
}

/// Registers shoplens's functions with a session.
pub fn register(ctx: &SessionContext) {
    for f in scalar_functions() {
        ctx.register_udf(f);
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f);
    }
}
