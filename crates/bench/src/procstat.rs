//! What the kernel says about a process (`/proc/<pid>`), and percentiles:
//! the measuring tools the benchmarks share.

use anyhow::Context;

/// Clock ticks per second of `utime`/`stime` (USER_HZ: 100 on every Linux
/// this runs on).
pub const TICKS_PER_SEC: f64 = 100.0;

/// CPU time a process has used, user plus system, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat.rsplit_once(')').context("stat")?.1.split_whitespace().collect();
    // After the command: state is field 0, utime 11, stime 12.
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// Bytes a process has written so far: `wchar` (passed to write calls,
/// page cache included) and `write_bytes` (sent to storage), from
/// `/proc/<pid>/io`.
pub fn written_bytes(pid: u32) -> anyhow::Result<(u64, u64)> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = io.lines().find_map(|l| l.strip_prefix(name)).context("io field")?;
        Ok(line.trim().parse()?)
    };
    Ok((field("wchar:")?, field("write_bytes:")?))
}

/// Resident set size of a process, in MB.
pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    status_mb(pid, "VmRSS:")
}

/// Peak resident set size (`VmHWM`) of a process, in MB.
pub fn hwm_mb(pid: u32) -> anyhow::Result<f64> {
    status_mb(pid, "VmHWM:")
}

/// A kB field of `/proc/<pid>/status`, in MB.
fn status_mb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .with_context(|| field.to_owned())?
        .parse()?;
    Ok(kb / 1024.0)
}

/// The `p` quantile (0..=1, nearest rank) of `v`, rounded to 3 decimals;
/// `None` for no samples. Sorts `v`.
pub fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    Some((v[i] * 1000.0).round() / 1000.0)
}
