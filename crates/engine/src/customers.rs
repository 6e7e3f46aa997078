//! Customer operations: RFM segments and clusters, lifetime value and churn risk, customer stages,
//! audiences exported to the channels that act on them, and recommendations.

pub mod audiences;
pub mod clv;
pub mod recommend;
pub mod rfm;
pub mod stages;
