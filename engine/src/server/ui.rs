//! The web UI: the static files of `web/` (HTML, CSS, plain ES modules),
//! embedded in the binary, served with a strict Content-Security-Policy (no
//! inline scripts or styles, nothing from elsewhere).

/// The policy sent with every UI file.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page at `/`.
pub const INDEX: &str = include_str!("../../../web/index.html");

/// Embeds files of `web/` as (path, content type, text).
macro_rules! web_files {
    ($($path:literal => $ty:literal,)*) => {
        &[$(($path, $ty, include_str!(concat!("../../../web/", $path))),)*]
    };
}

/// The files under `/static/`: (path, content type, text).
const FILES: &[(&str, &str, &str)] = web_files! {
    "app.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "editor.js" => "text/javascript; charset=utf-8",
    "plan.js" => "text/javascript; charset=utf-8",
    "live.js" => "text/javascript; charset=utf-8",
    "pages/queries.js" => "text/javascript; charset=utf-8",
    "pages/new.js" => "text/javascript; charset=utf-8",
    "pages/query.js" => "text/javascript; charset=utf-8",
    "pages/udfs.js" => "text/javascript; charset=utf-8",
};

/// A static file by its path under `/static/`.
pub fn file(path: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ty, text)| (*ty, *text))
}

#[cfg(test)]
mod tests {
    /// Every module the UI imports is served.
    #[test]
    fn every_import_is_embedded() {
        for (path, _, text) in super::FILES {
            for line in text
                .lines()
                .filter(|l| l.trim_start().starts_with("import "))
            {
                let Some(from) = line.split(['\'', '"']).nth(1) else {
                    continue;
                };
                let base = path.rsplit_once('/').map_or("", |(d, _)| d);
                let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
                for seg in from.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = parts.join("/");
                assert!(
                    super::file(&target).is_some(),
                    "{path} imports {from} ({target}): not embedded"
                );
            }
        }
        assert!(super::INDEX.contains("/static/app.js"));
    }
}
