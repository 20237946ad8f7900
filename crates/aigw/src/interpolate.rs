//! `${VAR}` and `${VAR:-default}` in the gateway file, expanded from the
//! environment before parsing. `$$` is a literal `$`. Meant for addresses and
//! hosts that differ between environments; secrets belong in `keys[].env`,
//! which is resolved inside Envoy and never written to the rendered config.

pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (code, comment) = line.split_at(comment_start(line).unwrap_or(line.len()));
        out.push_str(&expand_part(code, env)?);
        out.push_str(comment);
    }
    Ok(out)
}

/// Byte offset of a YAML comment in `line`: a `#` at the start or after
/// whitespace, outside quotes. Comments are never expanded.
fn comment_start(line: &str) -> Option<usize> {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && prev != '\\' => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return Some(i),
            _ => {}
        }
        prev = c;
    }
    None
}

fn expand_part(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {:?}", line_of(text, i)))?;
            let expr = &r[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if !is_env_name(name) {
                return Err(format!("invalid variable name {name:?} in ${{{expr}}}"));
            }
            match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(format!("environment variable {name} is not set (used as ${{{name}}}; give a default with ${{{name}:-value}})")),
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn line_of(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    text[start..end].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("mock".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(
            expand("http://${HOST}:1/v1", &env).unwrap(),
            "http://mock:1/v1"
        );
        assert_eq!(expand("${NOPE:-127.0.0.1}", &env).unwrap(), "127.0.0.1");
        assert_eq!(expand("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(expand("cost $$5 and $x", &env).unwrap(), "cost $5 and $x");
    }

    #[test]
    fn comments_are_left_alone() {
        let text =
            "# uses ${UNSET_IN_COMMENT}\nhost: ${HOST} # or ${ALSO_UNSET}\nq: \"a # ${HOST}\"\n";
        assert_eq!(
            expand(text, &env).unwrap(),
            "# uses ${UNSET_IN_COMMENT}\nhost: mock # or ${ALSO_UNSET}\nq: \"a # mock\"\n"
        );
    }

    #[test]
    fn errors_name_the_variable() {
        assert!(expand("${NOPE}", &env).unwrap_err().contains("NOPE"));
        assert!(expand("a: ${HOST", &env).unwrap_err().contains("unclosed"));
        assert!(expand("${1X}", &env).unwrap_err().contains("1X"));
    }
}
