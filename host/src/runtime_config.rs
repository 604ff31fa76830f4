//! `--runtime-config-file`: Spin's runtime configuration, as far as this host
//! goes — key-value stores (`spin` = SQLite, `redis`) and variable providers
//! (`env`). Anything else is refused by name, rather than silently ignored.

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, toml::Table>,
    #[serde(default)]
    config_provider: Vec<toml::Table>,
    #[serde(default)]
    variables_provider: Vec<toml::Table>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite in Spin's schema; `None` = the default file.
    Spin {
        path: Option<PathBuf>,
    },
    Redis {
        url: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Store label → its backing store. `default` is SQLite unless set here.
    pub stores: BTreeMap<String, StoreConfig>,
    /// Prefix of the environment variables that carry application variables.
    pub env_prefix: Option<String>,
}

impl RuntimeConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, dir).with_context(|| format!("invalid runtime config {}", path.display()))
    }

    pub fn parse(text: &str, dir: &Path) -> Result<Self> {
        let raw: RawRuntimeConfig = toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        let mut config = RuntimeConfig::default();
        for (label, table) in raw.key_value_store {
            let at = format!("key_value_store.{label}");
            let kind = table.get("type").and_then(|t| t.as_str()).ok_or_else(|| anyhow!("`{at}.type` is missing"))?;
            let store = match kind {
                "spin" => {
                    only(&table, &at, &["type", "path"])?;
                    let path = table.get("path").map(|p| p.as_str().ok_or_else(|| anyhow!("`{at}.path` must be a string")));
                    StoreConfig::Spin { path: path.transpose()?.map(|p| dir.join(p)) }
                }
                "redis" => {
                    only(&table, &at, &["type", "url"])?;
                    let url = table.get("url").and_then(|u| u.as_str()).ok_or_else(|| anyhow!("`{at}.url` is missing"))?;
                    StoreConfig::Redis { url: url.to_string() }
                }
                other => bail!("`{at}.type = \"{other}\"` is not supported by this host (it runs `spin` and `redis`; use Spin itself for `{other}`)"),
            };
            config.stores.insert(label, store);
        }
        for (i, provider) in raw.config_provider.iter().chain(&raw.variables_provider).enumerate() {
            match provider.get("type").and_then(|t| t.as_str()) {
                Some("env") => {
                    only(provider, "config_provider", &["type", "prefix"])?;
                    config.env_prefix = provider.get("prefix").and_then(|p| p.as_str()).map(str::to_string);
                }
                Some(other) => {
                    bail!("variables provider #{i} `type = \"{other}\"` is not supported by this host (only `env`)")
                }
                None => bail!("variables provider #{i} has no `type`"),
            }
        }
        Ok(config)
    }
}

fn only(table: &toml::Table, at: &str, allowed: &[&str]) -> Result<()> {
    match table.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => bail!("`{at}.{unknown}` is not a known setting (expected one of: {})", allowed.join(", ")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_providers_are_read() {
        let text = r#"
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:6379"

[key_value_store.archive]
type = "spin"
path = "data/archive.db"

[[config_provider]]
type = "env"
prefix = "COFFEE"
"#;
        let config = RuntimeConfig::parse(text, Path::new("/app")).unwrap();
        assert_eq!(config.stores["default"], StoreConfig::Redis { url: "redis://127.0.0.1:6379".into() });
        assert_eq!(config.stores["archive"], StoreConfig::Spin { path: Some("/app/data/archive.db".into()) });
        assert_eq!(config.env_prefix.as_deref(), Some("COFFEE"));
    }

    #[test]
    fn unsupported_or_misspelt_settings_are_refused_by_name() {
        let cases = [
            (
                "[key_value_store.default]\ntype = \"aws_dynamo\"\ntable = \"t\"",
                "`key_value_store.default.type = \"aws_dynamo\"`",
            ),
            ("[key_value_store.default]\ntype = \"redis\"", "`key_value_store.default.url` is missing"),
            ("[key_value_store.default]\ntype = \"redis\"\nurl = \"x\"\nport = 1", "`key_value_store.default.port`"),
            ("[[config_provider]]\ntype = \"vault\"", "`type = \"vault\"` is not supported"),
            ("[sqlite_database.default]\ntype = \"spin\"", "unknown field `sqlite_database`"),
        ];
        for (text, expected) in cases {
            let message = format!("{:#}", RuntimeConfig::parse(text, Path::new(".")).unwrap_err());
            assert!(message.contains(expected), "`{expected}` not in `{message}`");
        }
    }
}
