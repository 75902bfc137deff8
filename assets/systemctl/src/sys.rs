//! The handful of POSIX calls the standard library does not wrap, declared against the C
//! library that std already links. Each wrapper is safe to call and says why it is needed.

use std::io;
use std::os::fd::RawFd;

mod ffi {
    extern "C" {
        pub fn setsid() -> i32;
        pub fn kill(pid: i32, signal: i32) -> i32;
        pub fn dup2(old: i32, new: i32) -> i32;
        pub fn close(fd: i32) -> i32;
        pub fn fcntl(fd: i32, command: i32, ...) -> i32;
        pub fn flock(fd: i32, operation: i32) -> i32;
        pub fn signal(signum: i32, handler: usize) -> usize;
    }
}

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGKILL: i32 = 9;
const SIGPIPE: i32 = 13;
const SIG_DFL: usize = 0;
pub const SIGUSR1: i32 = 10;
pub const SIGUSR2: i32 = 12;
pub const SIGTERM: i32 = 15;
pub const SIGCONT: i32 = 18;
pub const SIGWINCH: i32 = 28;

const LOCK_EX: i32 = 2;
const F_GETFD: i32 = 1;
const FD_CLOEXEC: i32 = 1;
/// How far `close_inherited_in_child` looks.
const DESCRIPTOR_LIMIT: RawFd = 4096;

fn check(result: i32) -> io::Result<()> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Send `signal` to a process (`pid > 0`) or a process group (`pid < 0`).
/// A target that is already gone is not an error.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    match check(unsafe { ffi::kill(pid, signal) }) {
        Err(error) if error.raw_os_error() == Some(3) => Ok(()), // ESRCH
        other => other,
    }
}

/// Die quietly on a closed stdout (`systemctl status x | head -1`), as C tools do, rather
/// than the Rust runtime's default of ignoring SIGPIPE and panicking in `println!`.
pub fn default_sigpipe() {
    // SAFETY: resetting a signal to its default disposition installs no handler of ours.
    unsafe {
        ffi::signal(SIGPIPE, SIG_DFL);
    }
}

/// Hold an exclusive advisory lock on `fd` until it is closed (blocking). std's own
/// `File::lock` needs Rust 1.89; the image builds with 1.85.
pub fn lock_exclusive(fd: RawFd) -> io::Result<()> {
    loop {
        // SAFETY: flock(2) on a descriptor we own; no memory is shared.
        match check(unsafe { ffi::flock(fd, LOCK_EX) }) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Only for use between fork and exec (`CommandExt::pre_exec`): become a session leader so
/// the service has no controlling terminal and no tie to the caller's session.
pub fn setsid_in_child() -> io::Result<()> {
    // SAFETY: setsid(2) is async-signal-safe and takes no arguments.
    check(unsafe { ffi::setsid() })
}

/// Only for use between fork and exec: make `old` available as descriptor `new` (dup2
/// clears close-on-exec on the copy, which is what socket activation needs).
pub fn dup2_in_child(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: dup2(2) is async-signal-safe.
    check(unsafe { ffi::dup2(old, new) })
}

/// Only for use between fork and exec: close a descriptor (a temporary copy).
pub fn close_in_child(fd: RawFd) -> io::Result<()> {
    // SAFETY: close(2) is async-signal-safe.
    check(unsafe { ffi::close(fd) })
}

/// Only for use between fork and exec: close every descriptor from 3 up that would survive
/// the exec (those without close-on-exec), as a service manager does, so that nothing the
/// caller happened to leave open reaches the supervisor and its services. Descriptors
/// marked close-on-exec (the standard library's own exec-error pipe) are left alone.
pub fn close_inherited_in_child() -> io::Result<()> {
    for fd in 3..DESCRIPTOR_LIMIT {
        // SAFETY: fcntl(2) with F_GETFD and close(2) are async-signal-safe.
        let flags = unsafe { ffi::fcntl(fd, F_GETFD) };
        if flags >= 0 && flags & FD_CLOEXEC == 0 {
            unsafe { ffi::close(fd) };
        }
    }
    Ok(())
}

/// Point this process's descriptor `new` at `old` (used by the supervisor to swap its
/// start-up pipe for the log file).
pub fn redirect(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: as above; both descriptors are ours.
    check(unsafe { ffi::dup2(old, new) })
}

/// The signal number for a `KillSignal=` value.
pub fn signal_number(name: &str) -> Option<i32> {
    let name = name.trim();
    let name = name.strip_prefix("SIG").unwrap_or(name);
    Some(match name {
        "HUP" => SIGHUP,
        "INT" => SIGINT,
        "QUIT" => SIGQUIT,
        "KILL" => SIGKILL,
        "USR1" => SIGUSR1,
        "USR2" => SIGUSR2,
        "TERM" => SIGTERM,
        "CONT" => SIGCONT,
        "WINCH" => SIGWINCH,
        other => return other.parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_and_numbers() {
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("INT"), Some(2));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGBOGUS"), None);
    }

    #[test]
    fn killing_a_process_that_is_gone_is_fine() {
        // A pid far above pid_max can never exist: ESRCH is reported as success.
        assert!(kill(0x3fff_ffff, SIGTERM).is_ok());
    }
}
