//! shoplens engine: the canonical tables, the workspace on disk, ingest, and (as they land) the
//! analyses, on Apache DataFusion.
//!
//! It is not a server or a terminal program: the `shoplens` binary and the HTTP server render
//! what this crate returns. Example:
//!
//! ```no_run
//! # async fn run() -> shoplens_engine::Result<()> {
//! use shoplens_engine::{Workspace, ingest, query};
//! let ws = Workspace::open("shoplens-data")?;
//! let preset = ingest::presets::preset("cdnow")?;
//! ingest::ingest(&ws, &["CDNOW_master.txt".into()], &preset, &Default::default(), &|_| {})?;
//! for t in query::table_stats(&ws).await? {
//!     println!("{} {}", t.name, t.rows);
//! }
//! # Ok(()) }
//! ```

pub mod activity;
pub mod audiences;
pub mod baskets;
pub mod calendar;
pub mod cluster;
pub mod clv;
pub mod cohorts;
pub mod collect;
pub mod demo;
pub mod error;
pub mod experiments;
pub mod funnel;
pub mod goods;
pub mod ingest;
pub mod kpis;
pub mod lifecycle;
pub mod paths;
pub mod quarantine;
pub mod query;
pub mod recommend;
pub mod repurchase;
pub mod rfm;
pub mod schema;
pub mod sessions;
pub mod sql;
pub mod stages;
pub mod traffic;
pub mod wal;
pub mod workspace;

pub use datafusion;
pub use error::{Error, Result};
pub use shoplens_models as models;
pub use workspace::Workspace;
