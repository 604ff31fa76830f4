//! `spinpresso-host measure`: the size of each component's .wasm and how
//! long a request waits for its instance (fresh store + instantiation from
//! the pre-instantiated component), with the same engine settings as `up`.

use anyhow::Result;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::compile_cache::CompileCache;
use crate::engine::{self, LoadedComponent};
use crate::kv::{KvBackend, SqliteKv};
use crate::manifest::Manifest;
use crate::variables::Variables;

const WARM_UP: u32 = 50;

pub async fn instantiation(manifest_path: &Path, rounds: u32) -> Result<()> {
    let manifest = Manifest::from_file(manifest_path)?;
    let app_dir = manifest_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let engine = engine::new_engine(engine::InstanceLimits::default())?;
    let cache = CompileCache::open(crate::cache_dir(&app_dir)?);
    let kv: Arc<dyn KvBackend> = Arc::new(SqliteKv::in_memory()?);
    let variables =
        Arc::new(Variables::resolve(&manifest, None, |name| std::env::var(name).ok(), &Default::default())?);
    let served: Vec<_> = manifest
        .components
        .into_iter()
        .filter(|(id, _)| manifest.triggers.iter().any(|t| &t.component == id))
        .map(|(_, spec)| spec)
        .collect();
    for spec in served {
        let wasm_bytes = std::fs::metadata(&spec.source)?.len();
        let started = Instant::now();
        let component = LoadedComponent::load(&engine, spec, &cache)?;
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut micros = Vec::with_capacity(rounds as usize);
        for round in 0..WARM_UP + rounds {
            let started = Instant::now();
            let mut store =
                component.new_store(kv.clone(), variables.clone(), Default::default(), Default::default())?;
            let instance = component.pre().instantiate_async(&mut store).await?;
            let elapsed = started.elapsed();
            drop((instance, store));
            if round >= WARM_UP {
                micros.push(elapsed.as_secs_f64() * 1e6);
            }
        }
        micros.sort_by(f64::total_cmp);
        let at = |q: f64| micros.get(((micros.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        let line = serde_json::json!({
            "component": &*component.id,
            "wasmBytes": wasm_bytes,
            "loadMs": (load_ms * 10.0).round() / 10.0,
            "instantiateMicros": {
                "p50": (at(0.5) * 10.0).round() / 10.0,
                "p99": (at(0.99) * 10.0).round() / 10.0,
                "mean": (micros.iter().sum::<f64>() / micros.len().max(1) as f64 * 10.0).round() / 10.0,
            },
        });
        println!("{line}");
    }
    Ok(())
}
