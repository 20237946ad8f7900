//! Model-name patterns: `*` matches any run of characters, `?` exactly one.
//! `gpt-*` is a prefix match, `*-preview` a suffix match.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcard: plain equality.
    Exact,
    /// `prefix*` with no other wildcard: the common case, kept fast.
    Prefix(String),
    /// Anything else.
    General(Vec<char>),
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let wildcards = pattern.chars().filter(|c| *c == '*' || *c == '?').count();
        let kind = if wildcards == 0 {
            Kind::Exact
        } else if wildcards == 1 && pattern.ends_with('*') {
            Kind::Prefix(pattern[..pattern.len() - 1].to_string())
        } else {
            Kind::General(pattern.chars().collect())
        };
        Glob {
            source: pattern.to_string(),
            kind,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_literal(&self) -> bool {
        matches!(self.kind, Kind::Exact)
    }

    pub fn matches(&self, text: &str) -> bool {
        match &self.kind {
            Kind::Exact => self.source == text,
            Kind::Prefix(prefix) => text.starts_with(prefix.as_str()),
            Kind::General(pattern) => {
                let text: Vec<char> = text.chars().collect();
                wildcard_match(pattern, &text)
            }
        }
    }
}

/// Iterative wildcard matching with single backtrack point: linear in practice,
/// O(n*m) worst case, no recursion.
fn wildcard_match(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_suffix_and_infix_patterns() {
        assert!(Glob::new("gpt-*").matches("gpt-4o"));
        assert!(Glob::new("gpt-*").matches("gpt-"));
        assert!(!Glob::new("gpt-*").matches("gpt4"));
        assert!(Glob::new("*-preview").matches("o1-preview"));
        assert!(!Glob::new("*-preview").matches("o1-preview-2"));
        assert!(Glob::new("claude-*-4-*").matches("claude-sonnet-4-5"));
        assert!(Glob::new("qwen?-*").matches("qwen3-max"));
        assert!(!Glob::new("qwen?-*").matches("qwen-max"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a*b*c").matches("aXXbYYc"));
        assert!(!Glob::new("a*b*c").matches("aXXbYY"));
    }

    #[test]
    fn literal_is_equality() {
        let g = Glob::new("deepseek-chat");
        assert!(g.is_literal());
        assert!(g.matches("deepseek-chat"));
        assert!(!g.matches("deepseek-chat-2"));
    }

    #[test]
    fn non_ascii_names_match_by_character() {
        assert!(Glob::new("模型-?").matches("模型-1"));
    }
}
