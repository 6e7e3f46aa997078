//! shoplens models: pure numerics on compact in-memory inputs — no DataFusion, no I/O, no clock.
//!
//! Every model takes its parameters explicitly and, where it is randomised, a seed. So far:
//! experiment assignment compatible with GrowthBook's SDK hashing ([`assign`]).
//!
//! ```
//! use shoplens_models::assign::{hash_v2, choose_variant};
//! let h = hash_v2("checkout-button", "123");
//! assert!((0.0..1.0).contains(&h));
//! assert_eq!(choose_variant("checkout-button", "123", &[0.5, 0.5], 1.0), Some(1));
//! ```

pub mod abtest;
pub mod assign;
pub mod baskets;
pub mod clv;
pub mod did;
pub mod error;
pub mod funnel;
pub mod recommend;
pub mod rfm;
pub mod stats;

pub use error::Error;
