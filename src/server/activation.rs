//! Socket activation (systemd's `sd_listen_fds` protocol): the listening
//! sockets a service manager opened for this process, as descriptor
//! numbers. Turning a number into a `TcpListener` is `unsafe` (the caller
//! vouches that the descriptor is theirs), so it is left to the caller,
//! then [`SecureListener::from_std`](crate::SecureListener::from_std).

use std::os::fd::RawFd;

use crate::error::{Error, Result};

/// The first descriptor passed (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// The descriptors of the sockets systemd (or any launcher following its
/// socket activation protocol) passed to this process: `LISTEN_FDS` of
/// them from descriptor 3, if `LISTEN_PID` is this process. Empty when the
/// process was not socket-activated (or the variables are for another
/// process, such as a parent that exec'd a child without clearing them).
/// A malformed `LISTEN_FDS` or `LISTEN_PID` is [`Error::InvalidInput`].
///
/// ```no_run
/// use std::os::fd::{FromRawFd, OwnedFd};
/// # fn main() -> securenet::Result<()> {
/// # let ctx = securenet::SecurityContext::empty();
/// for fd in securenet::listen_fds()? {
///     // SAFETY: systemd passed this descriptor to this process, open and
///     // listening, and nothing else here owns it.
///     let fd = unsafe { OwnedFd::from_raw_fd(fd) };
///     let listener = securenet::SecureListener::from_fd(fd, &ctx)?;
///     # let _ = listener;
/// }
/// # Ok(()) }
/// ```
pub fn listen_fds() -> Result<Vec<RawFd>> {
    listen_fds_from(std::process::id(), |name| std::env::var(name).ok())
}

fn listen_fds_from(pid: u32, var: impl Fn(&str) -> Option<String>) -> Result<Vec<RawFd>> {
    let Some(for_pid) = var("LISTEN_PID") else {
        return Ok(Vec::new());
    };
    let for_pid: u32 = for_pid.trim().parse().map_err(|_| {
        Error::invalid_input(
            format!("LISTEN_PID={for_pid}"),
            "not a process id: the service manager set it wrongly",
        )
    })?;
    if for_pid != pid {
        return Ok(Vec::new());
    }
    let count = var("LISTEN_FDS").unwrap_or_default();
    let n: RawFd = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=4096).contains(n))
        .ok_or_else(|| {
            Error::invalid_input(
                format!("LISTEN_FDS={count}"),
                "not a count of descriptors (0 to 4096): the service manager set it wrongly",
            )
        })?;
    Ok((FIRST_FD..FIRST_FD + n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            list.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn descriptors_are_ours_only_when_listen_pid_is() {
        assert_eq!(
            listen_fds_from(42, vars(&[("LISTEN_PID", "42"), ("LISTEN_FDS", "2")])).expect("ok"),
            [3, 4]
        );
        assert!(
            listen_fds_from(42, vars(&[("LISTEN_PID", "41"), ("LISTEN_FDS", "2")]))
                .expect("ok")
                .is_empty()
        );
        assert!(listen_fds_from(42, vars(&[])).expect("ok").is_empty());
        for bad in [
            &[("LISTEN_PID", "x"), ("LISTEN_FDS", "1")][..],
            &[("LISTEN_PID", "42"), ("LISTEN_FDS", "-1")][..],
            &[("LISTEN_PID", "42"), ("LISTEN_FDS", "99999999999")][..],
            &[("LISTEN_PID", "42")][..],
        ] {
            let list: &'static [(&'static str, &'static str)] = bad;
            let e = listen_fds_from(42, vars(list)).expect_err("malformed");
            assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        }
    }
}
