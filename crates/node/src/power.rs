//! Where the power state comes from: the battery on desktops, or a fixed
//! setting (a venue box on mains, tests).
//!
//! "No battery" is mains: a desktop or a venue box. A battery that is
//! charging counts as mains too (see `PowerState::from_battery`).

use std::time::Duration;

use festival_core::policy::PowerState;

/// How often the battery is read. Levels move by about 1 % a minute at most,
/// and the policy changes at 20 % and 50 %: a minute is plenty, and reading
/// costs a few syscalls.
pub const POLL_INTERVAL: Duration = Duration::from_secs(60);

/// A source of power readings.
pub trait PowerSource: Send {
    fn read(&mut self) -> PowerState;
}

/// Always the same state: `--power mains`, `--power battery:15`, tests.
pub struct FixedPower(pub PowerState);

impl PowerSource for FixedPower {
    fn read(&mut self) -> PowerState {
        self.0
    }
}

/// The machine's batteries through starship-battery.
#[cfg(not(any(target_os = "android", target_os = "ios")))]
pub struct BatteryPower {
    manager: Option<starship_battery::Manager>,
}

#[cfg(not(any(target_os = "android", target_os = "ios")))]
impl BatteryPower {
    pub fn new() -> Self {
        let manager = starship_battery::Manager::new()
            .map_err(|e| tracing::info!(error = %e, "no battery interface; assuming mains power"))
            .ok();
        Self { manager }
    }
}

#[cfg(not(any(target_os = "android", target_os = "ios")))]
impl Default for BatteryPower {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(any(target_os = "android", target_os = "ios")))]
impl PowerSource for BatteryPower {
    fn read(&mut self) -> PowerState {
        use starship_battery::State;
        let Some(manager) = &self.manager else { return PowerState::Mains };
        let Ok(batteries) = manager.batteries() else { return PowerState::Mains };
        // Several batteries (some laptops): the fullest one decides, and any
        // charging battery means we are plugged in.
        let mut best: Option<(u8, bool)> = None;
        for b in batteries.flatten() {
            let pct = (b.state_of_charge().value * 100.0).round().clamp(0.0, 100.0) as u8;
            let charging = matches!(b.state(), State::Charging | State::Full);
            best = Some(match best {
                Some((p, c)) => (p.max(pct), c || charging),
                None => (pct, charging),
            });
        }
        match best {
            Some((pct, charging)) => PowerState::from_battery(Some(pct), charging),
            None => PowerState::Mains,
        }
    }
}

/// Parse `mains` or `battery:NN` (a percentage) for `--power`.
pub fn parse_power(s: &str) -> Result<PowerState, String> {
    match s {
        "mains" => Ok(PowerState::Mains),
        _ => s
            .strip_prefix("battery:")
            .and_then(|p| p.parse::<u8>().ok())
            .filter(|p| *p <= 100)
            .map(|percent| PowerState::Battery { percent })
            .ok_or_else(|| format!("expected `mains` or `battery:NN` (0-100), got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_flag_parses_and_refuses_nonsense() {
        assert_eq!(parse_power("mains"), Ok(PowerState::Mains));
        assert_eq!(parse_power("battery:15"), Ok(PowerState::Battery { percent: 15 }));
        assert!(parse_power("battery:101").is_err());
        assert!(parse_power("solar").is_err());
    }

    #[test]
    fn reading_the_battery_never_fails() {
        // On a machine without a battery (CI) this is mains; with one, a level.
        let _ = BatteryPower::new().read();
    }
}
