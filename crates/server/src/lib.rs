//! shoplens server.
