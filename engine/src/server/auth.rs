//! Who may call the API: a random 128-bit token, presented as
//! `Authorization: Bearer <token>` or as the HttpOnly, SameSite=Strict
//! cookie `/login?token=...` sets (an `EventSource` cannot send headers).
//! Tokens are compared in constant time. Requests must name this server in
//! `Host` (a page elsewhere cannot reach it through DNS rebinding), and a
//! state-changing call authenticated by cookie must come with an `Origin`
//! of this server (a page elsewhere cannot make the browser send it).

use std::io::Read;

/// The cookie `/login` sets.
pub const COOKIE: &str = "eddy_token";

/// A fresh random token: 128 bits from the operating system, as hex.
///
/// # Errors
/// The system's random source cannot be read.
pub fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares two tokens in time that depends only on their lengths.
pub fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer`.
    Bearer,
    /// The login cookie.
    Cookie,
}

/// The credential of a request whose bearer header or cookie carries
/// `token`, if any.
pub fn credential(
    token: &str,
    authorization: Option<&str>,
    cookie: Option<&str>,
) -> Option<Credential> {
    if let Some(h) = authorization
        && let Some(t) = h.strip_prefix("Bearer ")
        && same_token(t.trim(), token)
    {
        return Some(Credential::Bearer);
    }
    let from_cookie = cookie.and_then(|c| {
        c.split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v.to_string())
    });
    match from_cookie {
        Some(t) if same_token(&t, token) => Some(Credential::Cookie),
        _ => None,
    }
}

/// The `Host` values this server answers to: its address, and `localhost`
/// for a loopback address.
pub fn allowed_hosts(addr: std::net::SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut out = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        for h in [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ] {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

/// Whether an `Origin` header names this server (`http://<allowed host>`).
pub fn origin_allowed(origin: &str, hosts: &[String]) -> bool {
    origin
        .strip_prefix("http://")
        .is_some_and(|h| hosts.iter().any(|a| a.eq_ignore_ascii_case(h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cookies_and_origins() {
        let t = random_token().unwrap();
        assert_eq!(t.len(), 32);
        assert_ne!(t, random_token().unwrap());
        assert!(same_token(&t, &t.clone()));
        assert!(!same_token(&t, &t[1..]));
        let bearer = format!("Bearer {t}");
        assert_eq!(
            credential(&t, Some(&bearer), None),
            Some(Credential::Bearer)
        );
        let cookie = format!("a=b; {COOKIE}={t}; c=d");
        assert_eq!(
            credential(&t, None, Some(&cookie)),
            Some(Credential::Cookie)
        );
        assert_eq!(credential(&t, Some("Bearer nope"), Some("x=y")), None);
        let hosts = allowed_hosts("127.0.0.1:7878".parse().unwrap());
        assert!(origin_allowed("http://localhost:7878", &hosts));
        assert!(!origin_allowed("http://evil.example:7878", &hosts));
        assert!(!origin_allowed("https://localhost:7878", &hosts));
    }
}
