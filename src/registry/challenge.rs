//! Parsing `WWW-Authenticate` challenges (RFC 7235 syntax, as registries send them):
//! `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"`.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme, lower-cased (`basic`, `bearer`).
    pub scheme: String,
    /// Parameters with lower-cased names.
    pub params: HashMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

fn is_token_char(c: char) -> bool {
    !c.is_whitespace() && c != ',' && c != '=' && c != '"'
}

fn take_token(text: &str) -> (&str, &str) {
    let end = text.find(|c| !is_token_char(c)).unwrap_or(text.len());
    text.split_at(end)
}

/// A quoted string starting at `text[0] == '"'`; returns the unescaped value and the rest.
fn take_quoted(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((index, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &text[index + 1..]),
            other => value.push(other),
        }
    }
    (value, "")
}

/// All challenges in one header value. Unparsable parts are skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut challenges: Vec<Challenge> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        let (token, after) = take_token(rest);
        if token.is_empty() {
            // A separator or stray character: skip it.
            let mut chars = rest.chars();
            chars.next();
            rest = chars.as_str().trim_start();
            continue;
        }
        let after = after.trim_start();
        match (after.strip_prefix('='), challenges.last_mut()) {
            (Some(value_part), Some(current)) => {
                let value_part = value_part.trim_start();
                let (value, remaining) = if value_part.starts_with('"') {
                    take_quoted(value_part)
                } else {
                    let (value, remaining) = take_token(value_part);
                    (value.to_string(), remaining)
                };
                current.params.insert(token.to_ascii_lowercase(), value);
                rest = remaining.trim_start();
            }
            (Some(_), None) => {
                // A parameter before any scheme: skip the token and its '='.
                rest = after[1..].trim_start();
            }
            (None, _) => {
                challenges.push(Challenge {
                    scheme: token.to_ascii_lowercase(),
                    params: HashMap::new(),
                });
                rest = after;
            }
        }
    }
    challenges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_quoted_scope_containing_commas() {
        let challenges = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:acme/app:pull,push""#,
        );
        assert_eq!(challenges.len(), 1);
        let bearer = &challenges[0];
        assert_eq!(bearer.scheme, "bearer");
        assert_eq!(bearer.param("realm"), Some("https://auth.example/token"));
        assert_eq!(bearer.param("service"), Some("registry.example"));
        assert_eq!(bearer.param("scope"), Some("repository:acme/app:pull,push"));
    }

    #[test]
    fn basic_and_multiple_challenges() {
        let challenges = parse_challenges(r#"Basic realm="Registry Realm", Bearer realm=x"#);
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0].scheme, "basic");
        assert_eq!(challenges[0].param("realm"), Some("Registry Realm"));
        assert_eq!(challenges[1].scheme, "bearer");
        assert_eq!(challenges[1].param("realm"), Some("x"));
        assert_eq!(parse_challenges("Basic")[0].scheme, "basic");
    }

    #[test]
    fn escapes_in_quoted_strings() {
        let challenges = parse_challenges(r#"Bearer realm="a\"b""#);
        assert_eq!(challenges[0].param("realm"), Some("a\"b"));
    }
}
