//! Policy as pure functions and small value types: what the node may do under
//! a given power state, and when a route is worth trying.

mod breaker;
mod power;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use power::{limits, Limits, PowerState, LOW_BATTERY_PERCENT};
