//! shoplens engine: the canonical tables, the workspace on disk, ingest, and the analyses, on
//! Apache DataFusion. Modules follow the product: [`people`], [`goods`], [`traffic`],
//! [`customers`] and [`practice`] hold the analyses; [`ingest`], [`storage`] and [`collector`]
//! bring data in and keep it; [`query`], [`sql`], [`calendar`] and [`cluster`] serve them all.
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

pub mod calendar;
pub mod cluster;
pub mod collector;
pub mod customers;
pub mod demo;
pub mod error;
pub mod functions;
pub mod goods;
pub mod ingest;
pub mod params;
pub mod people;
pub mod practice;
pub mod query;
pub mod sql;
pub mod storage;
pub mod traffic;

pub use datafusion;
pub use error::{Error, Result};
pub use shoplens_models as models;
pub use storage::workspace::Workspace;
