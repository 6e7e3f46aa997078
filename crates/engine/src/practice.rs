//! Practice: the command centre's KPIs and A/B experiments (exposures, outcomes, definitions).

pub mod experiments;
pub mod kpis;
