//! Compiled components kept between starts (`.spin/wasmtime-cache` beside
//! the manifest): Cranelift takes seconds for the app's components, loading
//! them compiled takes milliseconds. A file is named by a SHA-256 of the
//! engine's compatibility hash (wasmtime's version and every setting that
//! changes compiled code) and of the `.wasm`, so a rebuilt component or an
//! upgraded host compiles afresh. Files unused for [`UNUSED_FOR`] are
//! removed at start.
//!
//! wasmtime's own cache does the same with compression and a configuration
//! file of its own; this is all the host needs of it, without compiling
//! zstd's C sources into every build.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wasmtime::component::Component;
use wasmtime::Engine;

/// A compiled component not loaded for this long is deleted.
const UNUSED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// A half-written file older than this was left by a host that died.
const ABANDONED_AFTER: Duration = Duration::from_secs(3600);
const EXTENSION: &str = "cwasm";

pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// The cache in `dir` (made when first written), its old files removed.
    pub fn open(dir: PathBuf) -> Self {
        remove_old_files(&dir, SystemTime::now());
        Self { dir }
    }

    /// The component in `wasm`, compiled: the kept copy when there is one,
    /// otherwise compiled now and kept.
    pub fn component(&self, engine: &Engine, wasm: &[u8]) -> Result<Component> {
        let path = self.dir.join(format!("{}.{EXTENSION}", key(engine, wasm)));
        if path.is_file() {
            // SAFETY: `deserialize_file` must be given what `serialize` made.
            // Only `keep` below writes here (into the app's own `.spin/`,
            // renamed into place once whole), under a name that commits to
            // this engine's settings and these exact bytes; wasmtime still
            // checks the file's header, version and settings before use.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    mark_used(&path);
                    return Ok(component);
                }
                Err(e) => eprintln!("[host] compiling again: the kept copy {} is unusable: {e}", path.display()),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.keep(&path, &component) {
            eprintln!("[host] the compiled component is not kept in {}: {e:#}", self.dir.display());
        }
        Ok(component)
    }

    fn keep(&self, path: &Path, component: &Component) -> Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let bytes = component.serialize()?;
        // Written aside, then renamed: no reader (another host starting) sees half a file.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, path)?;
        Ok(())
    }
}

/// Hex SHA-256 of the engine's compatibility hash and the `.wasm` bytes.
fn key(engine: &Engine, wasm: &[u8]) -> String {
    /// Feeds what `Hash` writes into SHA-256.
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0 // never asked for: the digest is read instead
        }
    }
    let mut sha = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut sha);
    sha.0.update(wasm);
    format!("{:x}", sha.0.finalize())
}

/// Loading a file counts as using it (its modification time is what ages).
fn mark_used(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Deletes compiled components unused for [`UNUSED_FOR`] and abandoned
/// half-written files; anything else in `dir` is left alone.
fn remove_old_files(dir: &Path, now: SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        let limit = match extension {
            EXTENSION => UNUSED_FOR,
            e if e.starts_with("partial-") => ABANDONED_AFTER,
            _ => continue,
        };
        let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(now);
        if now.duration_since(modified).unwrap_or_default() > limit {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::new(&wasmtime::Config::new()).unwrap()
    }

    /// The smallest component there is, as its binary encoding.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_component_is_compiled_once_then_loaded_from_its_kept_copy() {
        let dir = std::env::temp_dir().join(format!("spinpresso-compile-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = CompileCache::open(dir.clone());
        let engine = engine();
        cache.component(&engine, EMPTY_COMPONENT).unwrap();
        let kept: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0].extension().unwrap(), EXTENSION);
        // A second load reads the copy: an unusable copy is replaced, not trusted.
        std::fs::write(&kept[0], b"not a compiled component").unwrap();
        cache.component(&engine, EMPTY_COMPONENT).unwrap();
        let bytes = std::fs::read(&kept[0]).unwrap();
        assert_ne!(bytes, b"not a compiled component");
        assert!(cache.component(&engine, EMPTY_COMPONENT).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn another_wasm_or_another_engine_setting_is_another_file() {
        let plain = engine();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let interruptible = Engine::new(&config).unwrap();
        let other_wasm = b"\0asm\x0d\0\x01\0\0\x01\x00"; // plus an empty custom section
        let keys = [key(&plain, EMPTY_COMPONENT), key(&interruptible, EMPTY_COMPONENT), key(&plain, other_wasm)];
        assert!(keys[0] != keys[1] && keys[0] != keys[2] && keys[1] != keys[2], "{keys:?}");
    }

    #[test]
    fn only_old_copies_and_abandoned_partial_files_are_removed() {
        let dir = std::env::temp_dir().join(format!("spinpresso-compile-cache-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a.cwasm", "b.partial-7", "notes.txt"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        remove_old_files(&dir, SystemTime::now() + Duration::from_secs(2 * 3600));
        let left = |name: &str| dir.join(name).exists();
        assert!(left("a.cwasm") && !left("b.partial-7") && left("notes.txt"));
        remove_old_files(&dir, SystemTime::now() + UNUSED_FOR + Duration::from_secs(60));
        assert!(!left("a.cwasm") && left("notes.txt"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
