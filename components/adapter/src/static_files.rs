//! Mapping a URL path to a file under the mounted root, safely.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub struct StaticFile {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    /// Strong validator from the content, the same on every instance and host.
    pub etag: String,
}

pub enum Resolved {
    File(StaticFile),
    /// A directory asked for without its trailing slash: relative links in its
    /// `index.html` only work from `/dir/`, so send the browser there. The
    /// path is rebuilt from the checked segments (relative to the mount),
    /// so it always starts with exactly one `/` and stays on this site.
    RedirectToDirectory {
        path: String,
    },
    /// The path tries to leave the root or is not valid UTF-8.
    Invalid,
    NotFound,
}

/// Resolves a URL path (still percent-encoded, query already removed or not).
pub fn resolve(root: &Path, url_path: &str) -> Resolved {
    let url_path = url_path.split(['?', '#']).next().unwrap_or_default();
    let Some(relative) = safe_relative_path(url_path) else {
        return Resolved::Invalid;
    };
    let target = root.join(&relative);
    let file = match std::fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => {
            if !url_path.ends_with('/') {
                return Resolved::RedirectToDirectory { path: directory_path(&relative) };
            }
            target.join("index.html")
        }
        Ok(_) => target,
        Err(_) => return Resolved::NotFound,
    };
    match std::fs::read(&file) {
        Ok(body) => {
            let content_type = content_type(&file);
            Resolved::File(StaticFile {
                etag: etag(&body),
                cache_control: cache_control(content_type),
                content_type,
                body,
            })
        }
        Err(_) => Resolved::NotFound,
    }
}

/// `/a/b/` for the relative path `a/b`, each segment percent-encoded again.
fn directory_path(relative: &Path) -> String {
    let mut path = String::from("/");
    for segment in relative.iter() {
        let segment = segment.to_string_lossy();
        path.extend(utf8_percent_encode(&segment, SEGMENT));
        path.push('/');
    }
    path
}

/// What a path segment must escape (besides controls): URL syntax and spaces.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Decodes the path and keeps only plain segments: `..`, `.`, backslashes,
/// NULs and anything that decodes to a separator are refused, not cleaned up.
pub fn safe_relative_path(url_path: &str) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for raw in url_path.split('/').filter(|s| !s.is_empty()) {
        let segment = percent_decode_str(raw).decode_utf8().ok()?;
        if segment == "." || segment == ".." || segment.contains(['/', '\\', '\0']) || segment.contains(':') {
            return None;
        }
        relative.push(segment.as_ref());
    }
    Some(relative)
}

pub fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Pages and code revalidate every time (cheap with the ETag), so a new
/// release is picked up at once; media may be cached for a day.
pub fn cache_control(content_type: &str) -> &'static str {
    if content_type.starts_with("image/") || content_type.starts_with("font/") || content_type.starts_with("audio/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    }
}

pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// `If-None-Match` may list several tags, weak ones (`W/"..."`) or `*`.
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_odd_segments_are_refused() {
        for bad in ["/../etc/passwd", "/a/../../b", "/%2e%2e/x", "/a%2fb", "/a%5cb", "/a%00", "/./x", "/c:x", "/%ff"] {
            assert!(safe_relative_path(bad).is_none(), "{bad}");
        }
        assert_eq!(safe_relative_path("/display/app.js").unwrap(), PathBuf::from("display/app.js"));
        assert_eq!(safe_relative_path("//a//b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(safe_relative_path("/caf%C3%A9.txt").unwrap(), PathBuf::from("café.txt"));
        assert_eq!(safe_relative_path("/").unwrap(), PathBuf::new());
    }

    #[test]
    fn content_types_cover_the_web_apps() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("app.JS", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("i18n/en.json", "application/json"),
            ("logo.svg", "image/svg+xml"),
            ("chime.mp3", "audio/mpeg"),
            ("LICENSE", "application/octet-stream"),
        ];
        for (file, expected) in cases {
            assert_eq!(content_type(Path::new(file)), expected, "{file}");
        }
    }

    #[test]
    fn etags_follow_the_content_and_if_none_match_lists_are_understood() {
        let tag = etag(b"hello");
        assert_eq!(tag, etag(b"hello"));
        assert_ne!(tag, etag(b"hello!"));
        assert!(etag_matches(&tag, &tag));
        assert!(etag_matches(&format!("\"x\", W/{tag}"), &tag));
        assert!(etag_matches("*", &tag));
        assert!(!etag_matches("\"other\"", &tag));
    }

    #[test]
    fn files_directories_and_missing_paths_resolve_as_a_browser_expects() {
        let root = std::env::temp_dir().join(format!("spinpresso-web-test-{}", std::process::id()));
        std::fs::create_dir_all(root.join("display")).unwrap();
        std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
        std::fs::write(root.join("display/index.html"), "<h1>display</h1>").unwrap();
        std::fs::write(root.join("display/app.js"), "export {}").unwrap();

        let body = |r: Resolved| match r {
            Resolved::File(f) => String::from_utf8(f.body).unwrap(),
            _ => panic!("expected a file"),
        };
        assert_eq!(body(resolve(&root, "/")), "<h1>home</h1>");
        assert_eq!(body(resolve(&root, "/display/")), "<h1>display</h1>");
        assert_eq!(body(resolve(&root, "/display/app.js?v=2")), "export {}");
        let redirect = |url: &str| match resolve(&root, url) {
            Resolved::RedirectToDirectory { path } => path,
            _ => panic!("expected a redirect for {url}"),
        };
        assert_eq!(redirect("/display"), "/display/");
        assert_eq!(redirect(""), "/");
        // `//display` would be a protocol-relative URL: another site.
        assert_eq!(redirect("//display"), "/display/");
        assert_eq!(redirect("///display"), "/display/");
        assert!(matches!(resolve(&root, "/nope.html"), Resolved::NotFound));
        assert!(matches!(resolve(&root, "/../secret"), Resolved::Invalid));
        std::fs::remove_dir_all(root).unwrap();
    }
}
