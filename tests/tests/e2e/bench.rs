//! The benchmark itself works: a small run of every part finishes with no
//! failed request (timings are printed by the benchmark, never asserted).

use spinpresso_e2e::{one_heavy_at_a_time, repo_root};
use std::process::Command;

#[test]
fn a_quick_benchmark_run_completes_without_errors() {
    let _heavy = one_heavy_at_a_time();
    let bench = repo_root().join("target/release/spinpresso-bench");
    assert!(bench.exists(), "{} is built by the test command", bench.display());
    let output = Command::new(&bench).arg("--quick").output().expect("running the benchmark");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}\n{}", String::from_utf8_lossy(&output.stderr));
    for section in ["### Requests", "### Live board", "### Conference rush", "### Components", "### Targets"] {
        assert!(report.contains(section), "missing {section}:\n{report}");
    }
    assert!(report.contains("| customer flow | redeem + submit |"), "{report}");
    assert!(report.contains("| 60 of 60 |"), "every rush order completed:\n{report}");
}
