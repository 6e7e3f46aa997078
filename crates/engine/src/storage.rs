//! Storage: the canonical tables' schema, the workspace on disk (manifest, writer lock, staged
//! commits), the collector's write-ahead log, and the quarantine of rows set aside.

pub mod quarantine;
pub mod schema;
pub mod wal;
pub mod workspace;
