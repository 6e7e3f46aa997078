//! The engine's one error type: each variant says what went wrong and where.

use std::path::{Path, PathBuf};

/// Result with the engine's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model refused its input (a threshold, a control, weights).
    #[error(transparent)]
    Model(#[from] shoplens_models::Error),
    /// A file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// No workspace at a path where one was expected.
    #[error("no shoplens workspace at {}: ingest data first (`shoplens ingest …` or `shoplens demo`), or pass --workspace", path.display())]
    NoWorkspace {
        /// The path.
        path: PathBuf,
    },
    /// Another process holds the writer lock.
    #[error("another shoplens process ({holder}) is writing to the workspace {}; wait for it to finish and try again", path.display())]
    Locked {
        /// The workspace.
        path: PathBuf,
        /// Who holds the lock.
        holder: String,
    },
    /// A workspace file is unreadable.
    #[error("{}: unreadable workspace file: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A collector log segment was compacted away while being read (the reader's manifest is
    /// stale; read again).
    #[error("{}: the collector's log was compacted while being read; run the query again", path.display())]
    LogMoved {
        /// The segment.
        path: PathBuf,
    },
    /// A mapping file or preset is invalid.
    #[error("{origin}: invalid mapping: {reason}")]
    Mapping {
        /// The mapping file or preset name.
        origin: String,
        /// Why.
        reason: String,
    },
    /// A file's columns do not match its mapping.
    #[error(
        "{file}: columns do not match the mapping `{mapping}`: expected {expected}; found {found}. Nothing was stored"
    )]
    ColumnMismatch {
        /// The source file.
        file: String,
        /// The mapping.
        mapping: String,
        /// Expected columns.
        expected: String,
        /// Found columns.
        found: String,
    },
    /// The source's time zone differs from the workspace's.
    #[error(
        "{file}: the mapping `{mapping}` is in time zone {source_zone} but the workspace is in {workspace_zone}; use a separate workspace for this shop. Nothing was stored"
    )]
    ZoneMismatch {
        /// The source file.
        file: String,
        /// The mapping.
        mapping: String,
        /// The mapping's zone.
        source_zone: String,
        /// The workspace's zone.
        workspace_zone: String,
    },
    /// The same file content was ingested before.
    #[error(
        "{file}: already ingested (same content as `{previous}`, commit {commit}); pass --force to ingest it again"
    )]
    AlreadyIngested {
        /// The file.
        file: String,
        /// The earlier file name.
        previous: String,
        /// The commit that stored it.
        commit: String,
    },
    /// A whole file is unusable (not a row: the file).
    #[error("{file}: {reason}")]
    BadFile {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// A user-supplied parameter is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A query failed.
    #[error("query failed: {0}")]
    Query(datafusion::error::DataFusionError),
    /// Arrow failed.
    #[error("arrow: {0}")]
    Arrow(datafusion::arrow::error::ArrowError),
    /// Something that should not happen; a bug.
    #[error("internal error (please report): {0}")]
    Internal(String),
}

// Not `#[from]`: the message already holds the cause, and a source would print it twice.
impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Error {
        Error::Query(e)
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Error {
        Error::Arrow(e)
    }
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            cause: source,
        }
    }

    pub(crate) fn parquet(path: &Path, e: datafusion::parquet::errors::ParquetError) -> Error {
        Error::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}
