//! Where queries run: in this process (the default), or on an Apache DataFusion Ballista
//! cluster (`--engine ballista://HOST:PORT`, cargo feature `ballista`). Either way a query sees
//! the same tables (exactly the files the manifest publishes) and the same functions, so results
//! are the same; docs/scale-out.md says what differs.

use std::sync::RwLock;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};

static ENGINE: RwLock<Option<String>> = RwLock::new(None);

/// Runs every later query on the Ballista scheduler named by `url` (`ballista://HOST:PORT`), or
/// in-process when None. Refused when this build has no Ballista support.
pub fn set_engine(url: Option<&str>) -> Result<()> {
    let parsed = match url.map(str::trim).filter(|u| !u.is_empty()) {
        None | Some("embedded") => None,
        Some(u) => {
            let rest = u
                .strip_prefix("ballista://")
                .or_else(|| u.strip_prefix("df://"))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "--engine `{u}`: use `embedded` or `ballista://HOST:PORT`"
                    ))
                })?;
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
                Error::Invalid(format!("--engine `{u}`: the scheduler's port is missing"))
            })?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(Error::Invalid(format!(
                    "--engine `{u}`: expected ballista://HOST:PORT"
                )));
            }
            if !cfg!(feature = "ballista") {
                return Err(Error::Invalid(
                    "this shoplens was built without Ballista support: build it with \
                     `cargo build --release --features ballista`"
                        .into(),
                ));
            }
            Some(format!("df://{host}:{port}"))
        }
    };
    if let Ok(mut e) = ENGINE.write() {
        *e = parsed;
    }
    Ok(())
}

/// The Ballista scheduler queries run on (`df://HOST:PORT`), if any.
pub fn engine() -> Option<String> {
    ENGINE.read().ok().and_then(|e| e.clone())
}

/// The scalar functions shoplens adds to SQL.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    vec![crate::calendar::local_micros_udf()]
}

/// The aggregate functions shoplens adds to SQL (`window_funnel`, `funnel_detail`).
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    crate::funnel::udafs()
}

/// Registers shoplens's functions with a session.
pub fn register_functions(ctx: &SessionContext) {
    for f in scalar_functions() {
        ctx.register_udf(f);
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f);
    }
}

/// A session: in-process, or a client of the configured Ballista scheduler.
pub(crate) async fn session(config: SessionConfig) -> Result<SessionContext> {
    let ctx = match engine() {
        None => SessionContext::new_with_config(config),
        #[cfg(feature = "ballista")]
        Some(url) => {
            use ballista::prelude::SessionContextExt as _;
            let state = datafusion::execution::SessionStateBuilder::new()
                .with_config(config)
                .with_default_features()
                .build();
            let ctx = SessionContext::remote_with_state(&url, state)
                .await
                .map_err(|e| Error::Invalid(format!("the Ballista scheduler at {url}: {e}")))?;
            // Ballista 55's adaptive planner leaves a query waiting forever when a window
            // function's input is empty (`lag()` over a cohort with no one in it, as in the
            // repurchase of customers too new to have had the time); its static planner
            // answers the same query at once.
            ctx.sql("SET ballista.planner.adaptive.enabled = false")
                .await?
                .collect()
                .await?;
            ctx
        }
        #[cfg(not(feature = "ballista"))]
        Some(url) => {
            return Err(Error::Invalid(format!(
                "{url}: this shoplens was built without Ballista support"
            )));
        }
    };
    register_functions(&ctx);
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_urls_are_checked() {
        assert!(set_engine(Some("ballista://")).is_err());
        assert!(set_engine(Some("http://h:1")).is_err());
        assert!(set_engine(Some("ballista://h:notaport")).is_err());
        set_engine(None).unwrap();
        assert_eq!(engine(), None);
    }
}
