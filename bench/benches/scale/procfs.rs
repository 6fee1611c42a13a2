//! What a process holds, read from `/proc`: resident memory, threads,
//! descriptors, memory mappings, the stack its threads touched, and the
//! limits that stop it.

use std::collections::HashMap;
use std::fs;

/// One reading of a server process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub rss_kib: f64,
    pub threads: f64,
    pub fds: f64,
    pub maps: f64,
    /// Resident KiB of the thread stacks of `stack` bytes, per stack (NaN
    /// where none was found).
    pub stack_touched_kib: f64,
}

fn status_field(pid: u32, name: &str) -> f64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(f64::NAN)
}

pub fn usage(pid: u32, stack: Option<usize>) -> Usage {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).map_or(f64::NAN, |d| d.count() as f64);
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_or(f64::NAN, |m| m.lines().count() as f64);
    Usage {
        rss_kib: status_field(pid, "VmRSS:"),
        threads: status_field(pid, "Threads:"),
        fds,
        maps,
        stack_touched_kib: stack.map_or(f64::NAN, |s| stack_touched(pid, s)),
    }
}

/// The mean resident size of the mappings that are thread stacks of
/// `size` bytes: anonymous read-write mappings within a few pages of that
/// size (glibc adds its thread descriptor and TLS, Rust the guard's
/// page).
fn stack_touched(pid: u32, size: usize) -> f64 {
    let Ok(smaps) = fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return f64::NAN;
    };
    let slack = 64 * 1024;
    let (mut count, mut rss) = (0usize, 0f64);
    let mut in_stack = false;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            let perms = words.next().unwrap_or("");
            let inode = words.nth(2).unwrap_or("0");
            let anonymous = words.next().is_none() && inode == "0";
            let len = usize::from_str_radix(end, 16).unwrap_or(0)
                - usize::from_str_radix(start, 16).unwrap_or(0);
            in_stack = perms == "rw-p" && anonymous && len + slack >= size && len <= size + slack;
            if in_stack {
                count += 1;
            }
        } else if in_stack && first == "Rss:" {
            rss += words.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        }
    }
    if count == 0 {
        f64::NAN
    } else {
        rss / count as f64
    }
}

/// A process's soft limit on open files (`/proc/PID/limits`).
pub fn open_files_limit(pid: u32) -> f64 {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    limits
        .lines()
        .find_map(|l| {
            l.strip_prefix("Max open files")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(f64::NAN)
}

/// A number from `/proc/sys`, e.g. `kernel/pid_max`.
pub fn sysctl(name: &str) -> f64 {
    fs::read_to_string(format!("/proc/sys/{name}"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Threads (tasks) alive on the machine, from `/proc/loadavg`.
pub fn machine_threads() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `MemAvailable` in KiB.
pub fn mem_available_kib() -> f64 {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemAvailable:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(f64::NAN)
}

/// The CPU time each thread of a process has run so far, by thread id
/// (`/proc/PID/task/*/schedstat`, in nanoseconds).
pub fn thread_cpu(pid: u32) -> HashMap<u32, u64> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let tid = t.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(t.path().join("schedstat")).ok()?;
            Some((tid, stat.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The CPU seconds a process ran between two [`thread_cpu`] readings:
/// what each thread alive at the second ran since the first (all of it,
/// for a thread started since). A thread that ended in between is not
/// counted: read around work whose threads outlive it.
pub fn cpu_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> f64 {
    let ns: u64 = after
        .iter()
        .map(|(tid, &ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    ns as f64 / 1e9
}
