//! People (人): who comes, how far they get and whether they come back — funnels, paths and
//! sessions, activity by hour and weekday, repurchase, cohort retention and lifecycle.

pub mod activity;
pub mod cohorts;
pub mod funnel;
pub mod lifecycle;
pub mod paths;
pub mod repurchase;
pub mod sessions;
