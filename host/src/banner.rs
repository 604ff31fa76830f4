//! What the host prints once it serves: the application's pages, and where
//! the staff PINs come from, so a first run needs no reading to get going.

use std::path::Path;

use crate::local_secrets::LocalSecrets;
use crate::manifest::Manifest;
use crate::variables::env_name;

/// The pages a static-file mount serves: each folder with an `index.html`,
/// as `(folder, url)`, in name order.
pub fn pages(manifest: &Manifest, origin: &str) -> Vec<(String, String)> {
    let base = manifest.base.trim_end_matches('/');
    let mut pages = Vec::new();
    for trigger in &manifest.triggers {
        let route = trigger.route.raw.as_str();
        // A fixed prefix that serves everything under it, as file servers are routed.
        let Some(prefix) = route.strip_suffix("/...") else { continue };
        if prefix.contains(':') {
            continue;
        }
        let Some(component) = manifest.components.get(&trigger.component) else { continue };
        for (dir, destination) in &component.files {
            let mounted = destination.trim_end_matches('/');
            for name in folders_with_index(dir) {
                pages.push((name.clone(), format!("{origin}{base}{prefix}{mounted}/{name}/")));
            }
        }
    }
    pages
}

fn folders_with_index(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("index.html").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// The banner's lines.
pub fn lines(manifest: &Manifest, origin: &str, secrets: &LocalSecrets) -> Vec<String> {
    let mut lines = Vec::new();
    let pages = pages(manifest, origin);
    if !pages.is_empty() {
        let width = pages.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        lines.push(format!("`{}` is ready:", manifest.name));
        for (name, url) in &pages {
            lines.push(format!("  {name:width$}  {url}"));
        }
    }
    let pins: Vec<String> = secrets.pins().map(|(name, pin)| format!("{name} {pin}")).collect();
    if !pins.is_empty() {
        lines.push(format!("staff PINs (kept in {}): {}", secrets.path.display(), pins.join(", ")));
    }
    let from_env: Vec<String> = manifest
        .variables
        .iter()
        .filter(|(name, v)| v.secret && name.ends_with("_pin") && !secrets.values.contains_key(*name))
        .map(|(name, _)| env_name(name))
        .collect();
    if !from_env.is_empty() {
        lines.push(format!("staff PINs set by the environment: {}", from_env.join(", ")));
    }
    lines.push("one log line per request: --log-requests".to_string());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_with_an_index_under_a_file_mount_are_the_pages() {
        let dir = std::env::temp_dir().join(format!("spinpresso-banner-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for folder in ["order", "display", "shared"] {
            std::fs::create_dir_all(dir.join("static").join(folder)).unwrap();
        }
        std::fs::write(dir.join("static/order/index.html"), "").unwrap();
        std::fs::write(dir.join("static/display/index.html"), "").unwrap();
        let text = r#"
spin_manifest_version = 2
[application]
name = "app"
[application.trigger.http]
base = "/coffee"
[[trigger.http]]
route = "/..."
component = "web"
[[trigger.http]]
route = "/api/:shop/..."
component = "web"
[component.web]
source = "web.wasm"
files = [{ source = "static", destination = "/" }]
"#;
        let manifest = Manifest::parse(text, &dir).unwrap();
        assert_eq!(
            pages(&manifest, "http://127.0.0.1:3000"),
            [
                ("display".to_string(), "http://127.0.0.1:3000/coffee/display/".to_string()),
                ("order".to_string(), "http://127.0.0.1:3000/coffee/order/".to_string()),
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
