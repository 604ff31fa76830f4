//! `up --build`: runs each component's `[component.x.build]` commands first.

use anyhow::{bail, Context, Result};
use std::process::Command;

use crate::manifest::Manifest;

pub fn build_all(manifest: &Manifest) -> Result<()> {
    for component in manifest.components.values() {
        let Some(build) = &component.build else { continue };
        for command in &build.commands {
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
