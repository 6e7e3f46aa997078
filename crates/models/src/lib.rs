//! shoplens models.
