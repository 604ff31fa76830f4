//! Spin's HTTP routing: exact routes, `:name` segments and trailing `/...`
//! wildcards. An exact route beats a wildcard; then the longer route wins;
//! then the one with more literal segments.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    /// As written in the manifest, e.g. `/api/shops/:shop/...`.
    pub raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

impl RoutePattern {
    pub fn parse(raw: &str) -> Result<Self> {
        if !raw.starts_with('/') {
            bail!("`{raw}` must start with `/`");
        }
        let (body, wildcard) = match raw.strip_suffix("/...") {
            Some(body) => (body, true),
            None => (raw, false),
        };
        let mut segments = Vec::new();
        for part in body.split('/').skip(1) {
            if part.is_empty() {
                if body == "/" {
                    continue;
                }
                bail!("`{raw}` has an empty segment");
            }
            if part == "..." {
                bail!("`{raw}`: `...` may only end a route");
            }
            if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    bail!("`{raw}`: `:{name}` is not a valid parameter name");
                }
                if segments.iter().any(|s| matches!(s, Segment::Param(p) if p == name)) {
                    bail!("`{raw}`: parameter `:{name}` appears twice");
                }
                segments.push(Segment::Param(name.to_string()));
            } else {
                segments.push(Segment::Literal(part.to_string()));
            }
        }
        Ok(Self { raw: raw.to_string(), segments, wildcard })
    }

    /// The route without its `/...` suffix (Spin's `spin-component-route`).
    pub fn without_wildcard(&self) -> &str {
        if self.wildcard {
            let trimmed = &self.raw[..self.raw.len() - "/...".len()];
            if trimmed.is_empty() {
                ""
            } else {
                trimmed
            }
        } else {
            &self.raw
        }
    }

    /// Matches a request path (no query) and returns what Spin passes on.
    fn matches(&self, path: &str) -> Option<RouteMatch> {
        let parts: Vec<&str> = if path == "/" { Vec::new() } else { path.split('/').skip(1).collect() };
        if parts.len() < self.segments.len() || (!self.wildcard && parts.len() != self.segments.len()) {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(&parts) {
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Param(name) if !part.is_empty() => params.push((name.clone(), part.to_string())),
                _ => return None,
            }
        }
        // Below a wildcard, the rest of the path as sent: `/...` and `/` give `/`.
        let path_info = if self.wildcard {
            let prefix_len: usize = parts[..self.segments.len()].iter().map(|p| p.len() + 1).sum();
            path[prefix_len..].to_string()
        } else {
            String::new()
        };
        Some(RouteMatch { params, path_info })
    }

    /// Higher ranks win: exact over wildcard, then longer, then more literal.
    fn rank(&self) -> (bool, usize, usize) {
        let literals = self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count();
        (!self.wildcard, self.segments.len(), literals)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// `:name` segments and their values.
    pub params: Vec<(String, String)>,
    /// For a wildcard route, the path below the route (`/a/b`), else empty.
    pub path_info: String,
}

/// The routes of an application, each leading to a component index.
pub struct Router<T> {
    routes: Vec<(RoutePattern, T)>,
}

impl<T: Clone> Router<T> {
    pub fn new(mut routes: Vec<(RoutePattern, T)>) -> Self {
        // Best first; stable, so manifest order breaks exact ties.
        routes.sort_by_key(|(route, _)| std::cmp::Reverse(route.rank()));
        Self { routes }
    }

    pub fn route(&self, path: &str) -> Option<(&RoutePattern, T, RouteMatch)> {
        self.routes.iter().find_map(|(route, target)| route.matches(path).map(|m| (route, target.clone(), m)))
    }

    pub fn contains_exact(&self, path: &str) -> bool {
        self.routes.iter().any(|(route, _)| route.raw == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router<String> {
        Router::new(routes.iter().map(|r| (RoutePattern::parse(r).unwrap(), r.to_string())).collect())
    }

    #[test]
    fn requests_go_to_the_most_specific_route() {
        let r = router(&[
            "/...",
            "/api/...",
            "/api/shops/:shop/config",
            "/api/shops/main/config",
            "/api/shops/:shop/...",
            "/api/orders/:id",
            "/healthz",
            "/static/...",
        ]);
        let table = [
            ("/", Some("/...")),
            ("/index.html", Some("/...")),
            ("/healthz", Some("/healthz")),
            ("/healthz/x", Some("/...")),
            ("/api/shops/main/config", Some("/api/shops/main/config")),
            ("/api/shops/booth/config", Some("/api/shops/:shop/config")),
            ("/api/shops/booth/config/x", Some("/api/shops/:shop/...")),
            ("/api/shops/booth/qr", Some("/api/shops/:shop/...")),
            ("/api/shops/booth", Some("/api/shops/:shop/...")),
            ("/api/orders/abc", Some("/api/orders/:id")),
            ("/api/orders", Some("/api/...")),
            ("/api/orders/abc/claim", Some("/api/...")),
            ("/static", Some("/static/...")),
            ("/staticx", Some("/...")),
        ];
        for (path, expected) in table {
            let got = r.route(path).map(|(_, t, _)| t);
            assert_eq!(got.as_deref(), expected, "{path}");
        }
    }

    #[test]
    fn without_a_catch_all_unknown_paths_match_nothing() {
        let r = router(&["/api/:id", "/exact"]);
        for path in ["/", "/api", "/api/a/b", "/exact/", "/other"] {
            assert!(r.route(path).is_none(), "{path}");
        }
        assert!(r.route("/api/").is_none(), "an empty parameter matches nothing");
    }

    #[test]
    fn matches_carry_parameters_and_the_path_below_a_wildcard() {
        let r = router(&["/shops/:shop/files/...", "/users/:id"]);
        let (_, _, m) = r.route("/shops/main/files/a/b.css").unwrap();
        assert_eq!(m.params, [("shop".to_string(), "main".to_string())]);
        assert_eq!(m.path_info, "/a/b.css");
        let (_, _, m) = r.route("/shops/main/files").unwrap();
        assert_eq!(m.path_info, "");
        let (_, _, m) = r.route("/users/42").unwrap();
        assert_eq!((m.params[0].1.as_str(), m.path_info.as_str()), ("42", ""));
        let catch_all = router(&["/...", "/s/..."]);
        let (route, _, m) = catch_all.route("/a/b").unwrap();
        assert_eq!((route.without_wildcard(), m.path_info.as_str()), ("", "/a/b"));
        assert_eq!(catch_all.route("/").unwrap().2.path_info, "/");
        assert_eq!(catch_all.route("/s/").unwrap().2.path_info, "/");
        assert_eq!(catch_all.route("/s").unwrap().2.path_info, "");
    }

    #[test]
    fn bad_routes_are_refused() {
        for bad in ["", "api", "/a//b", "/a/.../b", "/:", "/:a/:a", "/:a b"] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(RoutePattern::parse("/a/...").unwrap().without_wildcard(), "/a");
        assert_eq!(RoutePattern::parse("/a/:b").unwrap().without_wildcard(), "/a/:b");
    }
}
