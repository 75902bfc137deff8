//! systemctl for containers without systemd (in progress).

fn main() -> std::process::ExitCode {
    eprintln!("kdind-systemctl is not implemented yet");
    std::process::ExitCode::FAILURE
}
