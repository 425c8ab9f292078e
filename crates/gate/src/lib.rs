//! The gate: the cheap first layer of the funnel, at request time.
//!
//! - [`gcra`]: the pure GCRA core; [`clock`]: real and fake clocks;
//! - [`store`]: limiter state in memory (sharded, bounded) or Redis (fleet);
//! - [`challenge`]: proof-of-work and CAPTCHA challenges, signed tokens and passes;
//! - [`risk`]: request features and the [`risk::RiskScorer`] trait;
//! - [`policy`]: the TOML policy; [`engine`]: the decision; [`server`]: the HTTP service.

pub mod challenge;
pub mod clock;
pub mod engine;
pub mod gcra;
mod http1_auth;
pub mod model_scorer;
pub mod policy;
pub mod risk;
pub mod server;
pub mod store;

pub use engine::{DecideInput, Decision, Gate, Stores, Subject, Verdict};
pub use policy::Policy;
