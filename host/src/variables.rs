//! Application variables: `[variables]` defaults, overridden by
//! `SPIN_VARIABLE_<NAME>` environment variables, as Spin's env provider does.
//! Components see them through the templates of their own `variables` table.

use anyhow::{bail, Result};
use std::collections::BTreeMap;

use crate::manifest::{expand_template, Component, Manifest};

#[derive(Debug, Clone, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
    /// Secrets running on a non-empty default written in the manifest.
    defaulted_secrets: Vec<String>,
}

impl Variables {
    /// Resolves every application variable; a required one without a value stops the start.
    /// The environment comes first (`prefix`, from the runtime config's env
    /// provider, before `SPIN_VARIABLE`), then `local` (the host's own
    /// secrets file), then the manifest's default.
    pub fn resolve(
        manifest: &Manifest,
        prefix: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
        local: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        let mut defaulted_secrets = Vec::new();
        for (name, variable) in &manifest.variables {
            let given = from_environment(name, prefix, &env).or_else(|| local.get(name).cloned());
            if given.is_none() && variable.secret && variable.default.as_deref().is_some_and(|d| !d.is_empty()) {
                defaulted_secrets.push(name.clone());
            }
            match given.or_else(|| variable.default.clone()) {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None if variable.required => missing.push(format!("`{name}` (set {})", env_name(name))),
                None => {}
            }
        }
        if !missing.is_empty() {
            bail!("required variables have no value: {}", missing.join(", "));
        }
        Ok(Self { values, defaulted_secrets })
    }

    /// Secret variables still on their manifest default: fine for development only.
    pub fn defaulted_secrets(&self) -> &[String] {
        &self.defaulted_secrets
    }

    /// An application variable's value.
    pub fn app(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// What `fermyon:spin/variables.get(name)` answers for a component.
    pub fn for_component(&self, component: &Component, name: &str) -> Result<String, ComponentVariableError> {
        if crate::manifest::check_variable_name(name).is_err() {
            return Err(ComponentVariableError::InvalidName(format!("`{name}` is not a valid variable name")));
        }
        let template = component
            .variables
            .get(name)
            .ok_or_else(|| ComponentVariableError::Undefined(format!("no variable for `{name}`")))?;
        expand_template(template, |reference| self.values.get(reference).cloned())
            .map_err(|e| ComponentVariableError::Undefined(e.to_string()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentVariableError {
    InvalidName(String),
    Undefined(String),
}

/// A variable's value in the environment, if it is set there (even to empty).
pub fn from_environment(name: &str, prefix: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let custom = prefix.and_then(|p| env(&format!("{p}_{}", name.to_ascii_uppercase())));
    custom.or_else(|| env(&env_name(name)))
}

/// `signing_key` → `SPIN_VARIABLE_SIGNING_KEY`.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest(variables: &str) -> Manifest {
        let text = format!(
            r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
{variables}
[component.c]
source = "c.wasm"
variables = {{ token = "Bearer {{{{ token }}}}", greeting = "{{{{ greeting }}}}" }}
"#
        );
        Manifest::parse(&text, Path::new(".")).unwrap()
    }

    #[test]
    fn environment_overrides_defaults() {
        let m = manifest("token = { default = \"dev\" }\ngreeting = { default = \"hi\" }");
        let env = |k: &str| (k == "SPIN_VARIABLE_TOKEN").then(|| "prod".to_string());
        let v = Variables::resolve(&m, None, env, &BTreeMap::new()).unwrap();
        assert_eq!(v.app("token"), Some("prod"));
        assert!(v.defaulted_secrets().is_empty());
        let c = &m.components["c"];
        assert_eq!(v.for_component(c, "token").unwrap(), "Bearer prod");
        assert_eq!(v.for_component(c, "greeting").unwrap(), "hi");
    }

    #[test]
    fn a_runtime_config_prefix_is_tried_first() {
        let m = manifest("token = { default = \"dev\" }\ngreeting = { default = \"hi\" }");
        let env = |k: &str| match k {
            "COFFEE_TOKEN" => Some("from-prefix".to_string()),
            "SPIN_VARIABLE_GREETING" => Some("from-spin".to_string()),
            _ => None,
        };
        let v = Variables::resolve(&m, Some("COFFEE"), env, &BTreeMap::new()).unwrap();
        assert_eq!((v.app("token"), v.app("greeting")), (Some("from-prefix"), Some("from-spin")));
    }

    #[test]
    fn a_required_variable_without_a_value_is_a_start_up_error_naming_it() {
        let m = manifest("token = { required = true }\ngreeting = { default = \"hi\" }");
        let err = Variables::resolve(&m, None, |_| None, &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("`token`") && err.contains("SPIN_VARIABLE_TOKEN"), "{err}");
        assert!(Variables::resolve(&m, None, |k| (k == "SPIN_VARIABLE_TOKEN").then(|| "x".into()), &BTreeMap::new())
            .is_ok());
    }

    #[test]
    fn secrets_left_on_their_defaults_are_reported() {
        let m = manifest("token = { default = \"dev\", secret = true }\ngreeting = { default = \"hi\" }");
        let v = Variables::resolve(&m, None, |_| None, &BTreeMap::new()).unwrap();
        assert_eq!(v.defaulted_secrets(), ["token"]);
    }

    #[test]
    fn the_local_secrets_file_comes_after_the_environment_even_an_empty_one() {
        let m = manifest("token = { default = \"\", secret = true }\ngreeting = { default = \"\", secret = true }");
        let local = BTreeMap::from([("token".to_string(), "made-up".to_string()), ("greeting".into(), "x".into())]);
        let env = |k: &str| (k == "SPIN_VARIABLE_GREETING").then(String::new);
        let v = Variables::resolve(&m, None, env, &local).unwrap();
        assert_eq!((v.app("token"), v.app("greeting")), (Some("made-up"), Some("")));
        assert!(v.defaulted_secrets().is_empty(), "empty defaults publish nothing");
    }

    #[test]
    fn components_see_only_their_own_variables() {
        let m = manifest("token = { default = \"t\" }\ngreeting = { default = \"hi\" }");
        let v = Variables::resolve(&m, None, |_| None, &BTreeMap::new()).unwrap();
        let c = &m.components["c"];
        assert!(matches!(v.for_component(c, "other"), Err(ComponentVariableError::Undefined(_))));
        assert!(matches!(v.for_component(c, "Bad-Name"), Err(ComponentVariableError::InvalidName(_))));
    }

    #[test]
    fn an_optional_variable_without_a_value_is_undefined_for_the_component() {
        let m = manifest("token = { default = \"t\" }\ngreeting = {}");
        let v = Variables::resolve(&m, None, |_| None, &BTreeMap::new()).unwrap();
        assert!(matches!(v.for_component(&m.components["c"], "greeting"), Err(ComponentVariableError::Undefined(_))));
    }
}
