//! The components in `spin.toml` must run on a stock Spin 3.x/4.x host: they
//! may import only interfaces such a host provides.

use spinpresso_e2e::repo_root;

/// Interfaces every Spin 3.x/4.x host provides to HTTP components (those we use).
fn spin_provides(import: &str) -> bool {
    let (name, version) = import.split_once('@').unwrap_or((import, ""));
    let wasi_02 = version.starts_with("0.2.") && !version.contains('-');
    match name.split_once('/').map(|(package, _)| package) {
        Some(
            "wasi:cli" | "wasi:clocks" | "wasi:filesystem" | "wasi:io" | "wasi:random" | "wasi:sockets" | "wasi:http",
        ) => wasi_02,
        Some("wasi:keyvalue") => version == "0.2.0-draft2",
        Some("fermyon:spin") => {
            version == "2.0.0" && matches!(name, "fermyon:spin/key-value" | "fermyon:spin/variables")
        }
        _ => false,
    }
}

/// The outer component's imports (nested modules and components are skipped:
/// their imports are satisfied inside the component).
fn component_imports(wasm: &[u8]) -> Vec<String> {
    let mut imports = Vec::new();
    let mut depth = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.expect("a valid component") {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    imports.push(import.expect("a valid import").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    imports
}

#[test]
fn every_component_in_spin_toml_imports_only_what_stock_spin_provides() {
    let manifest: toml::Table = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap().parse().unwrap();
    let components = manifest["component"].as_table().unwrap();
    assert!(!components.is_empty());
    for (id, component) in components {
        let source = repo_root().join(component["source"].as_str().unwrap());
        let wasm = std::fs::read(&source).unwrap_or_else(|e| panic!("{}: {e} (build first)", source.display()));
        let imports = component_imports(&wasm);
        assert!(imports.iter().any(|i| i.starts_with("wasi:http/types@0.2.")), "{id} is a wasi:http component");
        let foreign: Vec<_> = imports.iter().filter(|i| !spin_provides(i)).collect();
        assert!(foreign.is_empty(), "component `{id}` imports what Spin does not provide: {foreign:?}");
    }
}

#[test]
fn the_allowlist_rejects_what_spin_lacks() {
    assert!(spin_provides("wasi:keyvalue/atomics@0.2.0-draft2"));
    assert!(spin_provides("wasi:http/types@0.2.6"));
    assert!(!spin_provides("wasi:http/types@0.3.0-rc-2026-01-06"));
    assert!(!spin_provides("fermyon:spin/llm@2.0.0"));
    assert!(!spin_provides("spinpresso:host/anything"));
}
