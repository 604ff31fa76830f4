//! Secrets for a local run with nothing configured: the host makes up the
//! optional secret variables left unset (a manifest publishes only empty
//! defaults for them) and keeps them in a file of their own, mode 0600, so
//! they stay the same from one start to the next.
//!
//! A variable set in the environment always wins, even when set to empty:
//! that is how an operator turns a sign-in off on purpose.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::manifest::Manifest;

/// Digits in a made-up staff PIN (the app accepts 6 or more).
const PIN_DIGITS: usize = 8;
/// Random bytes in any other made-up secret (signing keys want 32).
const SECRET_BYTES: usize = 32;

/// The secrets file and what it holds for this run.
pub struct LocalSecrets {
    pub path: PathBuf,
    pub values: BTreeMap<String, String>,
    /// Names written to the file by this start (not found there).
    pub created: Vec<String>,
}

impl LocalSecrets {
    /// The manifest's optional secrets without a value of their own
    /// (`unset`: not in the environment, default empty or absent) are read
    /// from `path`, or made up and written there.
    pub fn load_or_create(manifest: &Manifest, path: &Path, is_set: impl Fn(&str) -> bool) -> Result<Self> {
        let wanted: Vec<&String> = manifest
            .variables
            .iter()
            .filter(|(name, v)| {
                v.secret && !v.required && v.default.as_deref().unwrap_or("").is_empty() && !is_set(name)
            })
            .map(|(name, _)| name)
            .collect();
        let mut stored = read(path)?;
        let mut values = BTreeMap::new();
        let mut created = Vec::new();
        for name in wanted {
            let value = match stored.get(name.as_str()) {
                Some(value) if !value.is_empty() => value.clone(),
                _ => {
                    created.push(name.clone());
                    // The app turns off roles that share a PIN: never make up a duplicate.
                    loop {
                        let value = made_up(name)?;
                        if !stored.values().any(|other| *other == value) {
                            break value;
                        }
                    }
                }
            };
            stored.insert(name.clone(), value.clone());
            values.insert(name.clone(), value);
        }
        if !created.is_empty() {
            write(path, &stored)?;
        }
        Ok(Self { path: path.to_path_buf(), values, created })
    }

    /// The staff PINs (`*_pin`) this file provides, for the start banner.
    pub fn pins(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().filter(|(name, _)| name.ends_with("_pin")).map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A PIN of random digits for `*_pin`, otherwise 32 random bytes in base64url.
fn made_up(name: &str) -> Result<String> {
    use base64::Engine as _;
    if name.ends_with("_pin") {
        let mut digits = String::with_capacity(PIN_DIGITS);
        while digits.len() < PIN_DIGITS {
            let mut byte = [0u8; 1];
            getrandom::fill(&mut byte).map_err(|e| anyhow::anyhow!("no randomness for a PIN: {e}"))?;
            // 250 = 25 × 10: dropping 250..=255 keeps each digit equally likely.
            if byte[0] < 250 {
                digits.push(char::from(b'0' + byte[0] % 10));
            }
        }
        return Ok(digits);
    }
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a secret: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn read(path: &Path) -> Result<BTreeMap<String, String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{}: not a table of strings", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the whole file anew, readable by its owner only, through a
/// temporary file so a crash never leaves half a file.
fn write(path: &Path, values: &BTreeMap<String, String>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = format!(
        "# Secrets this host made up for variables left unset. Set SPIN_VARIABLE_<NAME> to use your own.\n{}",
        toml::to_string(values)?
    );
    let temporary = path.with_extension("toml.new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let text = r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
admin_pin = { default = "", secret = true }
signing_key = { secret = true }
given = { default = "", secret = true }
published = { default = "1234", secret = true }
needed = { required = true, secret = true }
plain = { default = "" }
[component.c]
source = "c.wasm"
"#;
        Manifest::parse(text, Path::new(".")).unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spinpresso-secrets-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join(".spin").join("secrets.toml")
    }

    /// Removes the folder `scratch` made for `path`.
    fn clean(path: &Path) {
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn unset_optional_secrets_are_made_up_once_and_kept() {
        let path = scratch("kept");
        let first = LocalSecrets::load_or_create(&manifest(), &path, |name| name == "given").unwrap();
        let names: Vec<&str> = first.values.keys().map(String::as_str).collect();
        assert_eq!(names, ["admin_pin", "signing_key"], "set, published, required and plain ones are left alone");
        assert_eq!(first.created.len(), 2);
        let pin = &first.values["admin_pin"];
        assert!(pin.len() == PIN_DIGITS && pin.bytes().all(|b| b.is_ascii_digit()), "{pin}");
        assert_eq!(first.values["signing_key"].len(), 43, "32 bytes in base64url");

        let again = LocalSecrets::load_or_create(&manifest(), &path, |name| name == "given").unwrap();
        assert_eq!(again.values, first.values);
        assert!(again.created.is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        clean(&path);
    }

    #[test]
    fn two_hosts_never_share_made_up_secrets() {
        let (path_a, path_b) = (scratch("a"), scratch("b"));
        let a = LocalSecrets::load_or_create(&manifest(), &path_a, |_| false).unwrap();
        let b = LocalSecrets::load_or_create(&manifest(), &path_b, |_| false).unwrap();
        assert_ne!(a.values["signing_key"], b.values["signing_key"]);
        clean(&path_a);
        clean(&path_b);
    }

    #[test]
    fn a_file_that_is_not_a_table_of_strings_stops_the_start() {
        let path = scratch("bad");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "admin_pin = 5").unwrap();
        assert!(LocalSecrets::load_or_create(&manifest(), &path, |_| false).is_err());
        clean(&path);
    }
}
