//! `deploy/`: the systemd unit is valid and hardened, checked by systemd's own tools.

use std::process::Command;

use crate::helpers::required;

/// The unit as installed, with `ExecStart` pointing at the binary under test (`verify` checks
/// that the command exists).
fn installed_unit(dir: &std::path::Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/portcullis.service"
    ))
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/portcullis "));
    let path = dir.join("portcullis.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/portcullis",
            env!("CARGO_BIN_EXE_portcullis"),
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_systemd_unit_verifies_and_its_exposure_is_low() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return required(
            "systemd",
            "install systemd (systemd-analyze) for the unit test",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = installed_unit(dir.path());

    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{complaints}");
    assert!(
        !complaints.contains("portcullis.service"),
        "systemd-analyze verify complains about the unit:\n{complaints}"
    );

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for portcullis.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    // systemd rates 0–10: below 2 is "OK", the best band.
    assert!(level < 2.0, "exposure {level}:\n{report}");
}
