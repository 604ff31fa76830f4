//! `docs/openapi.yaml` describes exactly the routes the application serves:
//! every (route, method) the real host answers is documented, and every
//! documented operation is answered.

use spinpresso_e2e::*;
use std::collections::BTreeSet;

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

fn documented() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("docs/openapi.yaml")).unwrap();
    let spec: Value = serde_yaml_ng::from_str(&text).expect("openapi.yaml is valid YAML");
    assert_eq!(spec["openapi"], "3.1.0");
    let mut operations = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method.to_lowercase()) {
                assert!(operation.get("x-role").is_some(), "{method} {path} names its role");
                assert!(operation.get("responses").is_some(), "{method} {path} has responses");
                operations.insert((path.clone(), method.to_string()));
            }
        }
    }
    operations
}

/// `/api/orders/:id/claim` → `/api/orders/{id}/claim`.
fn openapi_path(route: &str) -> String {
    route
        .split('/')
        .map(|s| s.strip_prefix(':').map(|p| format!("{{{p}}}")).unwrap_or_else(|| s.to_string()))
        .collect::<Vec<_>>()
        .join("/")
}

fn served(host: &Host) -> BTreeSet<(String, String)> {
    let manifest: toml::Table = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap().parse().unwrap();
    let mut operations = BTreeSet::new();
    for trigger in manifest["trigger"]["http"].as_array().unwrap() {
        let route = trigger["route"].as_str().unwrap();
        if route.ends_with("/...") {
            continue; // the web apps' static files, not the API
        }
        let concrete = route.replace(":shop", "main").replace(":id", "no-such-order");
        for method in METHODS {
            let body = (method != "GET").then_some("{}");
            let headers: &[(&str, &str)] = if body.is_some() { &[("content-type", "application/json")] } else { &[] };
            if method == "GET" && route.contains("/events/") {
                // An event stream: its status is all there is to see (the body goes on for 25 s).
                if SseStream::connect(&host.url(&concrete), &[]).status != 405 {
                    operations.insert((openapi_path(route), method.to_string()));
                }
                continue;
            }
            let reply = request(&host.url(&concrete), method, headers, body);
            let not_served = reply.status == 405
                || (reply.status == 404 && reply.header("content-type") != Some("application/json"));
            if !not_served {
                operations.insert((openapi_path(route), method.to_string()));
            }
        }
    }
    operations
}

#[test]
fn the_openapi_document_lists_exactly_the_served_routes() {
    let scratch = Scratch::new("openapi");
    let host = Host::start(&HostOptions::new("spin.toml", &scratch));
    let documented = documented();
    let served = served(&host);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "served but not in docs/openapi.yaml: {undocumented:?}");
    assert!(unserved.is_empty(), "in docs/openapi.yaml but not served: {unserved:?}");
}
