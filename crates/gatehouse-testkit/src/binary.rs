//! Where the `gatehouse` binary under test is, for test crates other than the binary's own
//! (which use `env!("CARGO_BIN_EXE_gatehouse")`).

use std::path::PathBuf;

/// Overrides where the binary is looked for.
pub const BIN_ENV: &str = "GATEHOUSE_BIN";

/// The `gatehouse` binary: `$GATEHOUSE_BIN`, else the one cargo built beside this test (a test
/// runs from `target/<profile>/deps/`, the binary is `target/<profile>/gatehouse`).
/// `cargo test --workspace` builds it before any test runs; a test crate run on its own
/// (`cargo test -p gatehouse-gateway`) needs `cargo build -p gatehouse` first, and says so.
pub fn gatehouse_bin() -> PathBuf {
    if let Some(p) = std::env::var_os(BIN_ENV) {
        return PathBuf::from(p);
    }
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let profile_dir = exe.parent()?.parent()?;
        Some(profile_dir.join(format!("gatehouse{}", std::env::consts::EXE_SUFFIX)))
    });
    match beside {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "the gatehouse binary was not found beside the test executable: run `cargo build -p gatehouse` \
             first (cargo test --workspace does), or set {BIN_ENV}"
        ),
    }
}
