//! Readers of the Linux facts capacity is made of: a process's RSS, CPU time and open FDs from
//! `/proc/<pid>`, and the system's limits (`/proc/sys`, `/proc/meminfo`, cgroup v2). Each parser takes the
//! file's text so it is tested on real files; the `read_*` wrappers do the I/O.

use std::path::Path;

/// One process's resource use at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ProcessSample {
    pub rss_bytes: u64,
    /// User + system CPU time, in seconds.
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub threads: u64,
}

/// `VmRSS:  1234 kB` → bytes.
pub fn parse_status_rss(status: &str) -> Option<u64> {
    field_kb(status, "VmRSS:")
}

/// `Threads:  9`.
pub fn parse_status_threads(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

fn field_kb(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// utime + stime (fields 14 and 15 of `/proc/<pid>/stat`) in clock ticks. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its closing parenthesis.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")" come field 3 (state) onwards: utime is field 14 → index 11, stime index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Samples `/proc/<pid>` (`pid` = "self" works too).
pub fn sample_process(pid: &str) -> std::io::Result<ProcessSample> {
    let base = Path::new("/proc").join(pid);
    let status = std::fs::read_to_string(base.join("status"))?;
    let stat = std::fs::read_to_string(base.join("stat"))?;
    let fds = std::fs::read_dir(base.join("fd"))?.count() as u64;
    Ok(ProcessSample {
        rss_bytes: parse_status_rss(&status).unwrap_or(0),
        cpu_seconds: parse_stat_ticks(&stat).unwrap_or(0) as f64 / clock_ticks_per_second(),
        open_fds: fds,
        threads: parse_status_threads(&status).unwrap_or(0),
    })
}

/// `MemAvailable:` from `/proc/meminfo`, in bytes.
pub fn parse_meminfo_available(meminfo: &str) -> Option<u64> {
    field_kb(meminfo, "MemAvailable:")
}

/// `32768 60999` (tab-separated) → (32768, 60999).
pub fn parse_port_range(text: &str) -> Option<(u32, u32)> {
    let mut it = text.split_whitespace().map(str::parse::<u32>);
    Some((it.next()?.ok()?, it.next()?.ok()?))
}

/// cgroup v2 `cpu.max`: `max 100000` (no quota) or `200000 100000` (2 CPUs).
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota = it.next()?;
    let period: f64 = it.next()?.parse().ok()?;
    if quota == "max" || period <= 0.0 {
        return None;
    }
    Some(quota.parse::<f64>().ok()? / period)
}

/// A number or `max` (cgroup files): `None` for `max`.
pub fn parse_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// This process's cgroup v2 directory, from `/proc/self/cgroup` (`0::/system.slice/x.service`). Under
/// systemd a service has no cgroup namespace of its own, so its limits are in its own directory, not at
/// the root of `/sys/fs/cgroup`.
pub fn cgroup_dir(proc_self_cgroup: &str) -> String {
    let path = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::trim)
        .filter(|p| p.starts_with('/') && !p.contains(".."))
        .unwrap_or("/");
    format!("/sys/fs/cgroup{}", path.trim_end_matches('/'))
}

/// A cgroup file of this process: its own directory's, else the root's.
fn read_cgroup(file: &str) -> Option<String> {
    let dir = cgroup_dir(&read("/proc/self/cgroup").unwrap_or_default());
    read(&format!("{dir}/{file}")).or_else(|| read(&format!("/sys/fs/cgroup/{file}")))
}

/// The system's limits as this process sees them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SystemLimits {
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    pub file_max: Option<u64>,
    pub somaxconn: Option<u64>,
    pub port_range: Option<(u32, u32)>,
    /// cgroup `pids.max` (systemd's TasksMax), if limited.
    pub tasks_max: Option<u64>,
    /// CPUs available: the cgroup quota if there is one, else the CPUs this process may run on.
    pub cpus: f64,
    pub mem_available_bytes: Option<u64>,
    /// cgroup `memory.max`, if limited.
    pub mem_limit_bytes: Option<u64>,
}

impl SystemLimits {
    pub fn read() -> SystemLimits {
        let (nofile_soft, nofile_hard) = rlimit::Resource::NOFILE.get().unwrap_or((0, 0));
        let online = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        let quota = read_cgroup("cpu.max").as_deref().and_then(parse_cpu_max);
        SystemLimits {
            nofile_soft,
            nofile_hard,
            file_max: read("/proc/sys/fs/file-max").as_deref().and_then(parse_limit),
            somaxconn: read("/proc/sys/net/core/somaxconn").as_deref().and_then(parse_limit),
            port_range: read("/proc/sys/net/ipv4/ip_local_port_range")
                .as_deref()
                .and_then(parse_port_range),
            tasks_max: read_cgroup("pids.max").as_deref().and_then(parse_limit),
            cpus: quota.map_or(online, |q| q.min(online)),
            mem_available_bytes: read("/proc/meminfo").as_deref().and_then(parse_meminfo_available),
            mem_limit_bytes: read_cgroup("memory.max").as_deref().and_then(parse_limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup_directory_is_the_process_own() {
        assert_eq!(
            cgroup_dir("0::/system.slice/websocket_api.service\n"),
            "/sys/fs/cgroup/system.slice/websocket_api.service"
        );
        assert_eq!(cgroup_dir("0::/\n"), "/sys/fs/cgroup");
        assert_eq!(cgroup_dir("4:memory:/x\n0::/\n"), "/sys/fs/cgroup");
        assert_eq!(cgroup_dir(""), "/sys/fs/cgroup");
        assert_eq!(cgroup_dir("0::/../etc"), "/sys/fs/cgroup");
    }

    #[test]
    fn parses_this_process_real_files() {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        assert!(parse_status_rss(&status).is_some_and(|b| b > 100_000));
        assert!(parse_status_threads(&status).is_some_and(|t| t >= 1));
        let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
        assert!(parse_stat_ticks(&stat).is_some());
        let s = sample_process("self").expect("sample");
        assert!(s.open_fds >= 3 && s.rss_bytes > 0);
        let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
        assert!(parse_meminfo_available(&meminfo).is_some_and(|b| b > 0));
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").expect("range");
        assert!(parse_port_range(&range).is_some_and(|(lo, hi)| lo < hi));
        let limits = SystemLimits::read();
        assert!(limits.cpus >= 1.0 && limits.nofile_soft > 0);
    }

    #[test]
    fn parses_tricky_and_cgroup_forms() {
        // A command name with spaces and a parenthesis.
        let stat = "42 (web (socket) api) S 1 42 42 0 -1 4194560 100 0 0 0 700 300 0 0 20 0 9 0 123 456 789";
        assert_eq!(parse_stat_ticks(stat), Some(1000));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("4096\n"), Some(4096));
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_status_rss("Name:\tx\nVmRSS:\t  2048 kB\n"), Some(2048 * 1024));
    }
}
