//! `up --build`: runs each component's `[component.x.build]` commands first
//! (a command shared by several components once).
//!
//! Build commands that cross-compile with `--target <triple>` need that
//! target's standard library. rustup adds the targets of a
//! `rust-toolchain.toml` only when it installs the toolchain itself, and a
//! machine without `RUSTUP_AUTO_INSTALL` never does: the first build would
//! fail with "can't find crate for `core`". So the targets the commands name
//! are added with rustup first, when it is there and they are missing.

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::manifest::Manifest;

pub fn build_all(manifest: &Manifest) -> Result<()> {
    let builds: Vec<_> = manifest.components.values().filter_map(|c| c.build.as_ref().map(|b| (c, b))).collect();
    let mut checked = BTreeSet::new();
    for (_, build) in &builds {
        let targets: BTreeSet<String> = build.commands.iter().flat_map(|c| targets_named(c)).collect();
        if !targets.is_empty() && checked.insert((build.workdir.clone(), targets.clone())) {
            ensure_targets(&build.workdir, &targets)?;
        }
    }
    // A command several components share (one cargo run building them all) runs once.
    let mut ran = BTreeSet::new();
    for (component, build) in builds {
        for command in &build.commands {
            if !ran.insert((build.workdir.clone(), command.clone())) {
                continue;
            }
            crate::log::out!("[host] building `{}`: {command}", component.id);
            let status = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&build.workdir)
                .status()
                .with_context(|| format!("cannot run the build command of `{}`", component.id))?;
            if !status.success() {
                bail!("the build command of `{}` failed ({status}): {command}", component.id);
            }
        }
    }
    Ok(())
}

/// The `--target` triples a command passes (`--target x` or `--target=x`).
fn targets_named(command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut targets = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if let Some(triple) = word.strip_prefix("--target=") {
            targets.push(triple.to_string());
        } else if *word == "--target" {
            if let Some(triple) = words.get(i + 1) {
                targets.push(triple.to_string());
            }
        }
    }
    targets.retain(|t| !t.is_empty() && !t.ends_with(".json")); // a custom target spec is a file, not a rustup target
    targets
}

/// Adds the missing `targets` to the toolchain `workdir` builds with, when
/// rustup manages it; otherwise says what to install if the build then fails.
fn ensure_targets(workdir: &Path, targets: &BTreeSet<String>) -> Result<()> {
    let listed = Command::new("rustup").args(["target", "list", "--installed"]).current_dir(workdir).output();
    let installed: BTreeSet<String> = match listed {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).lines().map(|l| l.trim().to_string()).collect()
        }
        // No rustup: the toolchain is managed some other way; let the build tell.
        _ => return Ok(()),
    };
    let missing: Vec<&String> = targets.iter().filter(|t| !installed.contains(*t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|t| t.as_str()).collect();
    crate::log::out!("[host] adding the Rust target(s) the build needs: rustup target add {}", names.join(" "));
    let status = Command::new("rustup")
        .args(["target", "add"])
        .args(&names)
        .current_dir(workdir)
        .status()
        .context("cannot run rustup")?;
    if !status.success() {
        bail!(
            "could not add the Rust target(s) {}: run `rustup target add {}` and try again",
            names.join(", "),
            names.join(" ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::targets_named;

    #[test]
    fn the_targets_a_build_command_names_are_found() {
        let cases: [(&str, &[&str]); 5] = [
            ("cargo build --target wasm32-wasip2 --profile component -p qr", &["wasm32-wasip2"]),
            ("cargo build --target=wasm32-wasip1 --release", &["wasm32-wasip1"]),
            ("cargo build --release", &[]),
            ("cargo build --target", &[]),
            ("cargo build --target my-target.json", &[]),
        ];
        for (command, expected) in cases {
            assert_eq!(targets_named(command), expected, "{command}");
        }
    }
}
