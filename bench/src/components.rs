//! Each component's .wasm size and instantiation time, as the host's
//! `measure` command reports them.

use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

pub struct ComponentFigures {
    pub id: String,
    pub wasm_bytes: u64,
    pub instantiate_p50_us: f64,
    pub instantiate_p99_us: f64,
}

pub fn measure(repo: &Path, manifest: &Path, rounds: u32) -> Result<Vec<ComponentFigures>> {
    let output = Command::new(repo.join("target/release/spinpresso-host"))
        .arg("measure")
        .arg("--from")
        .arg(manifest)
        .args(["--rounds", &rounds.to_string()])
        .output()
        .context("running spinpresso-host measure")?;
    if !output.status.success() {
        return Err(anyhow!("spinpresso-host measure failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|line| {
            let v: Value = serde_json::from_str(line)?;
            Ok(ComponentFigures {
                id: v["component"].as_str().unwrap_or_default().to_string(),
                wasm_bytes: v["wasmBytes"].as_u64().unwrap_or_default(),
                instantiate_p50_us: v["instantiateMicros"]["p50"].as_f64().unwrap_or_default(),
                instantiate_p99_us: v["instantiateMicros"]["p99"].as_f64().unwrap_or_default(),
            })
        })
        .collect()
}
