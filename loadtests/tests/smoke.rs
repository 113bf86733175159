//! Runs `jobers-load smoke`: every load scenario at a small size against a real hub,
//! checking correctness (nothing lost, no gaps, no duplicates, complete presence views).
//! The cluster scenario needs the PostgreSQL and Redis servers the test command starts.

use std::process::Command;

#[test]
fn every_load_scenario_works_at_test_size() {
    let load = env!("CARGO_BIN_EXE_jobers-load");
    // The hub binary is built into the same directory by the workspace's tests.
    let jobers = std::path::Path::new(load).with_file_name("jobers");
    assert!(
        jobers.exists(),
        "build the jobers binary first ({})",
        jobers.display()
    );
    let out = tempfile_dir();
    let output = Command::new(load)
        .arg("--bin")
        .arg(&jobers)
        .arg("--out")
        .arg(&out)
        .arg("smoke")
        .env_remove("JOBERS_TEST_DATABASE_URL")
        .output()
        .expect("jobers-load runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    let _ = std::fs::remove_dir_all(&out);
    assert!(output.status.success(), "smoke failed:\n{stdout}");
    assert!(stdout.contains("8 passed, 0 failed"), "{stdout}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jobers-load-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
