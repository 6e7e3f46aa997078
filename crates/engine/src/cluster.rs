//! Where queries run: in this process (the default), or on an Apache DataFusion Ballista
//! cluster (`--engine ballista://HOST:PORT`, cargo feature `ballista`). Either way a query sees
//! the same tables (exactly the files the manifest publishes) and the same functions, so results
//! are the same; docs/scale-out.md says what differs.

use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};

pub use crate::storage::workspace::Engine;

/// Whether `ctx` was made for a cluster (see [`session`]).
pub(crate) fn is_cluster(ctx: &SessionContext) -> bool {
    ctx.state()
        .config()
        .get_extension::<Engine>()
        .is_some_and(|e| e.is_cluster())
}

pub use crate::functions::{aggregate_functions, scalar_functions};

/// A session on `engine`: in-process, or a client of its Ballista scheduler. The session's
/// config carries the engine (see [`is_cluster`]).
pub(crate) async fn session(engine: &Engine, config: SessionConfig) -> Result<SessionContext> {
    let config = config.with_extension(Arc::new(engine.clone()));
    let ctx = match engine {
        Engine::Embedded => SessionContext::new_with_config(config),
        #[cfg(feature = "ballista")]
        Engine::Ballista { scheduler } => {
            let url = format!("df://{scheduler}");
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
        Engine::Ballista { scheduler } => {
            return Err(Error::Invalid(format!(
                "ballista://{scheduler}: this shoplens was built without Ballista support"
            )));
        }
    };
    crate::functions::register(&ctx);
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_urls_are_checked() {
        assert!(Engine::parse(Some("ballista://")).is_err());
        assert!(Engine::parse(Some("http://h:1")).is_err());
        assert!(Engine::parse(Some("ballista://h:notaport")).is_err());
        assert_eq!(Engine::parse(None).unwrap(), Engine::Embedded);
        assert_eq!(Engine::parse(Some("embedded")).unwrap(), Engine::Embedded);
        let cluster = Engine::parse(Some("ballista://h:50050"));
        if cfg!(feature = "ballista") {
            let e = cluster.unwrap();
            assert!(e.is_cluster());
            assert_eq!(e.flag().as_deref(), Some("ballista://h:50050"));
        } else {
            assert!(cluster.is_err());
        }
    }

    /// A context knows the engine it was made for; the workspace's engine is a value, so two
    /// workspaces in one process can differ.
    #[tokio::test]
    async fn a_context_carries_its_engine() {
        let embedded = session(&Engine::Embedded, SessionConfig::new())
            .await
            .unwrap();
        assert!(!is_cluster(&embedded));
        assert!(!is_cluster(&SessionContext::new()));
        let config = SessionConfig::new().with_extension(Arc::new(Engine::Ballista {
            scheduler: "h:1".into(),
        }));
        assert!(is_cluster(&SessionContext::new_with_config(config)));
    }
}
