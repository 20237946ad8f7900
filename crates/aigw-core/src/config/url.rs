//! Provider base URLs: `scheme://host[:port][/path]`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed base URL. Query strings, fragments and user info are rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub scheme: Scheme,
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash (`/v1`), or empty.
    pub path: String,
    explicit_port: bool,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<BaseUrl, String> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
            (Scheme::Https, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (Scheme::Http, r)
        } else {
            return Err(format!("{url:?} must start with http:// or https://"));
        };
        if rest.contains(['?', '#']) {
            return Err(format!("{url:?} must not have a query string or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!(
                "{url:?} must not carry credentials; give keys in `keys`"
            ));
        }
        let (host, port) = split_host_port(authority).map_err(|e| format!("{url:?}: {e}"))?;
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        if path.contains(char::is_whitespace) {
            return Err(format!("{url:?} has whitespace in its path"));
        }
        let default = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        Ok(BaseUrl {
            scheme,
            host: host.to_string(),
            port: port.unwrap_or(default),
            path: path.trim_end_matches('/').to_string(),
            explicit_port: port.is_some_and(|p| p != default),
        })
    }

    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// The `Host`/`:authority` to send: the port only when not the default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.explicit_port {
            format!("{host}:{}", self.port)
        } else {
            host
        }
    }

    /// True when the host is an IP literal (no DNS needed).
    pub fn host_is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed '[' in host")?;
        let host = &rest[..end];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or("expected ':' after ']'")?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("invalid port {p:?}")),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_provider_urls() {
        let u = BaseUrl::parse("https://api.openai.com/v1").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.path.as_str()),
            (Scheme::Https, "api.openai.com", 443, "/v1")
        );
        assert_eq!(u.authority(), "api.openai.com");
        let u = BaseUrl::parse("http://127.0.0.1:9101/compatible-mode/v1/").unwrap();
        assert_eq!((u.port, u.path.as_str()), (9101, "/compatible-mode/v1"));
        assert_eq!(u.authority(), "127.0.0.1:9101");
        assert!(u.host_is_ip());
        let u = BaseUrl::parse("http://[::1]:8000").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8000, "")
        );
        assert_eq!(u.authority(), "[::1]:8000");
        assert_eq!(BaseUrl::parse("https://h:443/v1").unwrap().authority(), "h");
    }

    #[test]
    fn rejects_what_is_not_a_base_url() {
        for bad in [
            "api.openai.com/v1",
            "ftp://x",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://u:p@h/v1",
            "http://h/v1?x=1",
            "http://[::1",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
