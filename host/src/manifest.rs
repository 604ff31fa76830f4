//! Reading `spin.toml` (manifest version 2): the part of Spin's format this
//! host runs. Anything it does not understand is refused with a message that
//! names the field, rather than silently ignored.

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::routes::RoutePattern;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    trigger: Option<RawApplicationTriggers>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplicationTriggers {
    #[serde(default)]
    http: Option<RawHttpSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpSettings {
    #[serde(default)]
    base: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    #[serde(default)]
    id: Option<String>,
    route: RawRoute,
    component: String,
    #[serde(default)]
    executor: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    files: Vec<RawFileMount>,
    #[serde(default)]
    exclude_files: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    build: Option<RawBuild>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawFileMount {
    Path(String),
    Mapping { source: String, destination: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    command: toml::Value,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    watch: Vec<String>,
}

/// A validated manifest, paths resolved against the manifest's folder.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub base: String,
    pub variables: BTreeMap<String, Variable>,
    pub triggers: Vec<HttpTrigger>,
    pub components: BTreeMap<String, Component>,
}

#[derive(Debug, Clone)]
pub struct Variable {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

#[derive(Debug, Clone)]
pub struct HttpTrigger {
    pub route: RoutePattern,
    pub component: String,
}

#[derive(Debug, Clone)]
pub struct Component {
    pub id: String,
    pub source: PathBuf,
    /// Host directory or file → path inside the guest.
    pub files: Vec<(PathBuf, String)>,
    pub key_value_stores: Vec<String>,
    /// Variable name → template such as `{{ signing_key }}`.
    pub variables: BTreeMap<String, String>,
    pub environment: BTreeMap<String, String>,
    pub build: Option<Build>,
}

#[derive(Debug, Clone)]
pub struct Build {
    pub commands: Vec<String>,
    pub workdir: PathBuf,
}

impl Manifest {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read manifest {}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        Self::parse(&text, &dir).with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Parses and validates manifest text; `dir` is the folder relative paths start from.
    pub fn parse(text: &str, dir: &Path) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        match raw.spin_manifest_version {
            toml::Value::Integer(2) => {}
            toml::Value::String(ref s) if s == "2" => {}
            other => bail!("`spin_manifest_version` must be 2 (this host reads manifest v2), found {other}"),
        }
        if raw.application.name.trim().is_empty() {
            bail!("`application.name` must not be empty");
        }
        let _ = (&raw.application.version, &raw.application.authors, &raw.application.description);
        let base = raw.application.trigger.and_then(|t| t.http).and_then(|h| h.base).unwrap_or_else(|| "/".to_string());
        if !base.starts_with('/') {
            bail!("`application.trigger.http.base` must start with `/`, found `{base}`");
        }

        let mut variables = BTreeMap::new();
        for (name, v) in raw.variables {
            check_variable_name(&name).with_context(|| format!("`variables.{name}`"))?;
            if v.required && v.default.is_some() {
                bail!("`variables.{name}`: a variable cannot be both `required` and have a `default`");
            }
            variables.insert(name, Variable { default: v.default, required: v.required, secret: v.secret });
        }

        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let at = format!("component.{id}");
            check_component_id(&id).with_context(|| format!("`{at}`"))?;
            let source = match c.source {
                toml::Value::String(s) if !s.is_empty() => dir.join(s),
                toml::Value::Table(_) => {
                    bail!("`{at}.source`: remote sources ({{ url, digest }}) are not supported; build the .wasm and give its path")
                }
                other => bail!("`{at}.source` must be a path to a .wasm file, found {other}"),
            };
            let mut files = Vec::new();
            for mount in c.files {
                let (source, destination) = match mount {
                    RawFileMount::Path(p) => {
                        if p.contains(['*', '?', '[']) {
                            bail!("`{at}.files`: glob patterns (`{p}`) are not supported; mount a folder with {{ source, destination }}");
                        }
                        let destination = format!("/{}", p.trim_start_matches("./").trim_start_matches('/'));
                        (p, destination)
                    }
                    RawFileMount::Mapping { source, destination } => {
                        if !destination.starts_with('/') {
                            bail!("`{at}.files`: destination `{destination}` must be an absolute path");
                        }
                        (source, destination)
                    }
                };
                files.push((dir.join(source), destination));
            }
            if !c.exclude_files.is_empty() {
                bail!("`{at}.exclude_files` is not supported by this host");
            }
            for store in &c.key_value_stores {
                if store.is_empty() {
                    bail!("`{at}.key_value_stores`: a store label must not be empty");
                }
            }
            for (name, template) in &c.variables {
                check_variable_name(name).with_context(|| format!("`{at}.variables.{name}`"))?;
                for reference in template_references(template).with_context(|| format!("`{at}.variables.{name}`"))? {
                    if !variables.contains_key(&reference) {
                        bail!("`{at}.variables.{name}` refers to `{reference}`, which is not in [variables]");
                    }
                }
            }
            let _ = (&c.description, &c.allowed_outbound_hosts);
            let build = match c.build {
                None => None,
                Some(b) => {
                    let commands = match b.command {
                        toml::Value::String(s) => vec![s],
                        toml::Value::Array(items) => items
                            .into_iter()
                            .map(|i| match i {
                                toml::Value::String(s) => Ok(s),
                                other => Err(anyhow!("`{at}.build.command` entries must be strings, found {other}")),
                            })
                            .collect::<Result<_>>()?,
                        other => bail!("`{at}.build.command` must be a string or a list of strings, found {other}"),
                    };
                    let _ = b.watch;
                    Some(Build {
                        commands,
                        workdir: b.workdir.map(|w| dir.join(w)).unwrap_or_else(|| dir.to_path_buf()),
                    })
                }
            };
            components.insert(
                id.clone(),
                Component {
                    id,
                    source,
                    files,
                    key_value_stores: c.key_value_stores,
                    variables: c.variables,
                    environment: c.environment,
                    build,
                },
            );
        }

        let mut triggers = Vec::new();
        for (i, t) in raw.trigger.http.into_iter().enumerate() {
            let at = format!("trigger.http[{i}]");
            let _ = t.id;
            if let Some(executor) = &t.executor {
                match executor.get("type").and_then(|v| v.as_str()) {
                    Some("spin") | None => {}
                    Some(other) => bail!("`{at}.executor`: only the `spin` executor is supported, found `{other}`"),
                }
            }
            if !components.contains_key(&t.component) {
                bail!("`{at}.component` names `{}`, which has no [component.{}] section", t.component, t.component);
            }
            let route = match t.route {
                RawRoute::Path(path) => RoutePattern::parse(&path).with_context(|| format!("`{at}.route`"))?,
                RawRoute::Private { private: true } => continue,
                RawRoute::Private { private: false } => bail!("`{at}.route`: `private = false` is not a route"),
            };
            triggers.push(HttpTrigger { route, component: t.component });
        }
        for (i, a) in triggers.iter().enumerate() {
            if let Some(b) = triggers[i + 1..].iter().find(|b| b.route.raw == a.route.raw) {
                bail!(
                    "`trigger.http`: route `{}` is given to both `{}` and `{}`",
                    a.route.raw,
                    a.component,
                    b.component
                );
            }
        }

        Ok(Manifest { name: raw.application.name, base, variables, triggers, components })
    }
}

/// Spin's variable names: lowercase letters, digits and underscores, starting with a letter.
pub fn check_variable_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_');
    if ok {
        Ok(())
    } else {
        bail!("`{name}` is not a valid variable name: use lowercase letters, digits and single underscores, starting with a letter")
    }
}

/// Spin's component ids: kebab-case words of lowercase letters and digits.
fn check_component_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.split('-').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && id.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        bail!("`{id}` is not a valid component id: use lowercase words joined by dashes")
    }
}

/// The application variables a template such as `Bearer {{ sweeper_token }}` refers to.
pub fn template_references(template: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| anyhow!("unclosed `{{{{` in `{template}`"))?;
        let name = after[..end].trim();
        check_variable_name(name)?;
        names.push(name.to_string());
        rest = &after[end + 2..];
    }
    Ok(names)
}

/// Fills a template's `{{ name }}` references with `lookup(name)`.
pub fn expand_template(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| anyhow!("unclosed `{{{{` in `{template}`"))?;
        let name = after[..end].trim();
        out.push_str(&lookup(name).ok_or_else(|| anyhow!("variable `{name}` has no value"))?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
spin_manifest_version = 2

[application]
name = "app"
version = "1.0.0"

[variables]
signing_key = { required = true, secret = true }
greeting = { default = "hi" }

[[trigger.http]]
route = "/api/:id"
component = "api"

[[trigger.http]]
route = "/..."
component = "web"

[component.api]
source = "target/api.wasm"
key_value_stores = ["default"]
variables = { key = "{{ signing_key }}", hello = "{{greeting}}, world" }
[component.api.build]
command = "cargo build"

[component.web]
source = "web.wasm"
files = [{ source = "static", destination = "/" }]
"#;

    fn error_of(text: &str) -> String {
        format!("{:#}", Manifest::parse(text, Path::new("/app")).unwrap_err())
    }

    #[test]
    fn a_good_manifest_is_read_with_paths_resolved() {
        let m = Manifest::parse(GOOD, Path::new("/app")).unwrap();
        assert_eq!(m.name, "app");
        assert_eq!(m.triggers.len(), 2);
        let api = &m.components["api"];
        assert_eq!(api.source, PathBuf::from("/app/target/api.wasm"));
        assert_eq!(api.key_value_stores, ["default"]);
        assert_eq!(api.build.as_ref().unwrap().commands, ["cargo build"]);
        assert_eq!(m.components["web"].files, [(PathBuf::from("/app/static"), "/".to_string())]);
        assert!(m.variables["signing_key"].required && m.variables["signing_key"].secret);
    }

    #[test]
    fn invalid_manifests_are_refused_naming_the_bad_field() {
        let cases = [
            (GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1"), "spin_manifest_version"),
            (GOOD.replace("name = \"app\"", "name = \"app\"\nflavour = \"x\""), "unknown field `flavour`"),
            (GOOD.replace("component = \"web\"", "component = \"nope\""), "`trigger.http[1].component` names `nope`"),
            (GOOD.replace("route = \"/api/:id\"", "route = \"api\""), "`trigger.http[0].route`"),
            (GOOD.replace("route = \"/api/:id\"", "route = \"/a/.../b\""), "`trigger.http[0].route`"),
            (GOOD.replace("route = \"/api/:id\"", "route = \"/...\""), "route `/...` is given to both"),
            (GOOD.replace("{{ signing_key }}", "{{ missing }}"), "`component.api.variables.key` refers to `missing`"),
            (GOOD.replace("[component.web]", "[component.Web]"), "`component.Web`"),
            (GOOD.replace("greeting = {", "Greeting = {"), "`variables.Greeting`"),
            (GOOD.replace("source = \"web.wasm\"", "source = 3"), "`component.web.source`"),
            (GOOD.replace("key_value_stores", "key_value_store"), "unknown field `key_value_store`"),
            (
                GOOD.replace("required = true, secret", "required = true, default = \"x\", secret"),
                "`variables.signing_key`",
            ),
            (GOOD.replace("[{ source = \"static\", destination = \"/\" }]", "[\"static/**/*\"]"), "glob patterns"),
        ];
        for (text, expected) in cases {
            let message = error_of(&text);
            assert!(message.contains(expected), "expected `{expected}` in `{message}`");
        }
    }

    #[test]
    fn templates_expand_and_report_unknown_references() {
        let lookup = |n: &str| (n == "a").then(|| "1".to_string());
        assert_eq!(expand_template("x{{ a }}y{{a}}", lookup).unwrap(), "x1y1");
        assert!(expand_template("{{ b }}", lookup).is_err());
        assert_eq!(template_references("{{ a }} and {{ b_c }}").unwrap(), ["a", "b_c"]);
        assert!(template_references("{{ a ").is_err());
    }

    #[test]
    fn variable_names_follow_spin() {
        for ok in ["a", "signing_key", "pin2"] {
            assert!(check_variable_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "1a", "a-b", "a__b", "a_", "_a"] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
    }
}
