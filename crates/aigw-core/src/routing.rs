//! Model routing: from the `model` a client names to the route that serves it.
//!
//! Precedence, first hit wins:
//! 1. an exact model name or alias;
//! 2. the `provider/model` form, when `provider` is a provider that allows it;
//! 3. patterns (`gpt-*`), in the order they are configured.

use std::collections::HashMap;

use crate::glob::Glob;
use crate::schema::openai::ModelObject;

/// How a model name was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    Alias,
    ProviderPrefix,
    Pattern,
}

/// The outcome of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// Route id that Envoy's route table matches on.
    pub route: &'a str,
    pub kind: MatchKind,
}

/// A compiled model table.
#[derive(Debug, Clone, Default)]
pub struct ModelTable {
    exact: HashMap<String, (usize, MatchKind)>,
    prefixes: HashMap<String, String>,
    patterns: Vec<(Glob, usize)>,
    routes: Vec<String>,
    listed: Vec<ModelObject>,
}

impl ModelTable {
    pub fn builder() -> ModelTableBuilder {
        ModelTableBuilder::default()
    }

    /// Finds the route for `model`, or `None` for an unknown model.
    pub fn resolve(&self, model: &str) -> Option<Resolved<'_>> {
        if let Some((i, kind)) = self.exact.get(model) {
            return self.routes.get(*i).map(|r| Resolved {
                route: r,
                kind: *kind,
            });
        }
        if let Some((provider, rest)) = model.split_once('/') {
            if !rest.is_empty() {
                if let Some(route) = self.prefixes.get(provider) {
                    return Some(Resolved {
                        route,
                        kind: MatchKind::ProviderPrefix,
                    });
                }
            }
        }
        self.patterns
            .iter()
            .find(|(g, _)| g.matches(model))
            .and_then(|(_, i)| self.routes.get(*i))
            .map(|r| Resolved {
                route: r,
                kind: MatchKind::Pattern,
            })
    }

    /// Models shown by `GET /v1/models`: every exact name and alias, in config order.
    pub fn listed(&self) -> &[ModelObject] {
        &self.listed
    }
}

/// Builds a [`ModelTable`]; duplicates are reported by the config compiler, the
/// builder keeps the first entry for a name.
#[derive(Debug, Default)]
pub struct ModelTableBuilder {
    table: ModelTable,
}

impl ModelTableBuilder {
    /// Adds a model entry: its names (first is the canonical name), then aliases.
    pub fn model(
        &mut self,
        name: &str,
        aliases: &[String],
        route: &str,
        owned_by: &str,
    ) -> &mut Self {
        let i = self.push_route(route);
        self.add_exact(name, i, MatchKind::Exact, owned_by);
        for alias in aliases {
            self.add_exact(alias, i, MatchKind::Alias, owned_by);
        }
        self
    }

    pub fn pattern(&mut self, pattern: &str, route: &str) -> &mut Self {
        let i = self.push_route(route);
        self.table.patterns.push((Glob::new(pattern), i));
        self
    }

    /// Enables `provider/model` for one provider.
    pub fn provider_prefix(&mut self, provider: &str, route: &str) -> &mut Self {
        self.table
            .prefixes
            .entry(provider.to_string())
            .or_insert_with(|| route.to_string());
        self
    }

    pub fn build(&mut self) -> ModelTable {
        std::mem::take(&mut self.table)
    }

    fn push_route(&mut self, route: &str) -> usize {
        self.table.routes.push(route.to_string());
        self.table.routes.len() - 1
    }

    fn add_exact(&mut self, name: &str, i: usize, kind: MatchKind, owned_by: &str) {
        if !self.table.exact.contains_key(name) {
            self.table.exact.insert(name.to_string(), (i, kind));
            self.table.listed.push(ModelObject::new(name, owned_by));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ModelTable {
        ModelTable::builder()
            .model("gpt-4o-mini", &["mini".to_string()], "m0", "openai")
            .model("deepseek/deepseek-chat", &[], "m1", "deepseek")
            .pattern("gpt-*", "m2")
            .pattern("*", "m3")
            .provider_prefix("deepseek", "p:deepseek")
            .build()
    }

    #[test]
    fn exact_and_alias_first() {
        let t = table();
        assert_eq!(
            t.resolve("gpt-4o-mini"),
            Some(Resolved {
                route: "m0",
                kind: MatchKind::Exact
            })
        );
        assert_eq!(
            t.resolve("mini"),
            Some(Resolved {
                route: "m0",
                kind: MatchKind::Alias
            })
        );
        // An exact name wins over the provider/model form.
        assert_eq!(t.resolve("deepseek/deepseek-chat").unwrap().route, "m1");
    }

    #[test]
    fn provider_prefix_before_patterns() {
        let t = table();
        assert_eq!(
            t.resolve("deepseek/deepseek-reasoner"),
            Some(Resolved {
                route: "p:deepseek",
                kind: MatchKind::ProviderPrefix
            })
        );
        // Unknown provider prefix falls through to patterns.
        assert_eq!(t.resolve("nobody/x").unwrap().route, "m3");
        // Empty model after the prefix is not the provider form.
        assert_eq!(t.resolve("deepseek/").unwrap().route, "m3");
    }

    #[test]
    fn patterns_in_order() {
        let t = table();
        assert_eq!(
            t.resolve("gpt-5").unwrap(),
            Resolved {
                route: "m2",
                kind: MatchKind::Pattern
            }
        );
        assert_eq!(t.resolve("claude").unwrap().route, "m3");
    }

    #[test]
    fn unknown_model_without_catch_all() {
        let t = ModelTable::builder().model("a", &[], "m0", "p").build();
        assert_eq!(t.resolve("b"), None);
        assert_eq!(t.resolve("A"), None);
    }

    #[test]
    fn listing_has_names_and_aliases_once() {
        let t = table();
        let ids: Vec<_> = t.listed().iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["gpt-4o-mini", "mini", "deepseek/deepseek-chat"]);
    }
}
