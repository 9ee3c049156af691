//! Routes (docs/routes.md): which agent takes a call, from its carrier and the number it reached, with the
//! dynamic variables the route adds and its share of the cap. The table is built from the checked
//! `[[routes]]` and swapped whole on SIGHUP; a call keeps the route it was admitted on.

use crate::carriers::Carrier;
use crate::config::routes::{digits, RouteConfig};
use crate::config::Config;
use crate::values::PhoneNumber;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The route every call takes when no `[[routes]]` are configured: to `elevenlabs.agent_id`.
pub const DEFAULT_ROUTE: &str = "default";

/// Where a call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub agent_id: String,
    /// Added to the call's own dynamic variables (which win on a clash: they describe the call).
    pub dynamic_variables: BTreeMap<String, serde_json::Value>,
    /// This route's share of the cap.
    pub max_calls: Option<usize>,
    carrier: Option<Carrier>,
    number: NumberMatch,
}

/// How well a route fits a call, compared as a whole: the kind of number match (exact 2, prefix 1, any
/// 0), the matched length, and whether the route names the carrier.
type Fit = (u8, usize, bool);

/// How a route matches the dialled number, by its digits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NumberMatch {
    Exact(String),
    Prefix(String),
    Any,
}

impl Route {
    /// How well the route fits a call, or `None`: an exact number beats a prefix, a longer prefix a shorter
    /// one, any of those a catch-all; then a route naming the carrier beats one that does not.
    fn fit(&self, carrier: Carrier, dialled: &str) -> Option<Fit> {
        if self.carrier.is_some_and(|c| c != carrier) {
            return None;
        }
        let named = self.carrier.is_some();
        match &self.number {
            NumberMatch::Exact(n) => (n == dialled).then_some((2, n.len(), named)),
            NumberMatch::Prefix(p) => {
                (!dialled.is_empty() && dialled.starts_with(p.as_str())).then_some((1, p.len(), named))
            }
            NumberMatch::Any => Some((0, 0, named)),
        }
    }

    fn from_config(r: &RouteConfig) -> Route {
        let number = match (&r.number, &r.prefix) {
            (Some(n), _) => NumberMatch::Exact(digits(n)),
            (None, Some(p)) => NumberMatch::Prefix(digits(p)),
            (None, None) => NumberMatch::Any,
        };
        Route {
            name: r.name.clone(),
            agent_id: r.agent_id.trim().to_string(),
            dynamic_variables: r.dynamic_variables.clone(),
            max_calls: r.max_calls,
            carrier: r.carrier.as_deref().and_then(Carrier::from_path),
            number,
        }
    }
}

/// Every route, in the order configured.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// The table of a checked configuration; with no `[[routes]]`, the one catch-all `default` route to
    /// `elevenlabs.agent_id`.
    pub fn from_config(cfg: &Config) -> RouteTable {
        if cfg.routes.is_empty() {
            let default = Route {
                name: DEFAULT_ROUTE.into(),
                agent_id: cfg.elevenlabs.agent_id.clone().unwrap_or_default(),
                dynamic_variables: BTreeMap::new(),
                max_calls: None,
                carrier: None,
                number: NumberMatch::Any,
            };
            return RouteTable {
                routes: vec![Arc::new(default)],
            };
        }
        RouteTable {
            routes: cfg.routes.iter().map(|r| Arc::new(Route::from_config(r))).collect(),
        }
    }

    /// The route of a call from `carrier` that reached `dialled`; `None` when no route takes it. Of routes
    /// that fit equally, the first configured.
    pub fn pick(&self, carrier: Carrier, dialled: Option<&PhoneNumber>) -> Option<Arc<Route>> {
        let dialled = dialled.map(|n| digits(n.as_str())).unwrap_or_default();
        let mut best: Option<(&Arc<Route>, Fit)> = None;
        for route in &self.routes {
            let Some(fit) = route.fit(carrier, &dialled) else {
                continue;
            };
            if best.as_ref().is_none_or(|(_, b)| fit > *b) {
                best = Some((route, fit));
            }
        }
        best.map(|(r, _)| r.clone())
    }

    /// Each route's name and share of the cap, for admission.
    pub fn shares(&self) -> impl Iterator<Item = (&str, Option<usize>)> {
        self.routes.iter().map(|r| (r.name.as_str(), r.max_calls))
    }

    /// Every agent a route names.
    pub fn agents(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.agent_id.as_str())
    }

    /// The routes whose agent is one of `agents`, by name.
    pub fn routes_of<'a>(&'a self, agents: &'a [String]) -> impl Iterator<Item = &'a str> + 'a {
        self.routes
            .iter()
            .filter(|r| agents.contains(&r.agent_id))
            .map(|r| r.name.as_str())
    }

    /// Whether every route's agent is one of `agents`: then no call at all can be taken.
    pub fn all_agents_in(&self, agents: &[String]) -> bool {
        self.routes.iter().all(|r| agents.contains(&r.agent_id))
    }
}

/// The table the webhooks route with, swapped whole on SIGHUP.
pub type SharedRoutes = Arc<RwLock<Arc<RouteTable>>>;

/// A new shared table for `cfg`.
pub fn shared_routes(cfg: &Config) -> SharedRoutes {
    Arc::new(RwLock::new(Arc::new(RouteTable::from_config(cfg))))
}

/// Swaps in the table of `cfg`: calls admitted from now on take it, live calls keep their route.
pub fn reload_routes(shared: &SharedRoutes, cfg: &Config) {
    let table = Arc::new(RouteTable::from_config(cfg));
    match shared.write() {
        Ok(mut current) => *current = table,
        Err(poisoned) => *poisoned.into_inner() = table,
    }
}

/// The table as it stands.
pub fn current_routes(shared: &SharedRoutes) -> Arc<RouteTable> {
    match shared.read() {
        Ok(table) => table.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// Each carrier's share of the cap, where `carriers.<name>.max_calls` sets one.
pub fn carrier_caps(cfg: &Config) -> std::collections::HashMap<Carrier, usize> {
    cfg.carriers
        .caps()
        .into_iter()
        .filter_map(|(name, cap)| Some((Carrier::from_path(name)?, cap?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &str) -> RouteTable {
        let cfg: Config = toml::from_str(routes).expect("config");
        let mut problems = Vec::new();
        crate::config::routes::check_routes(&cfg.routes, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        RouteTable::from_config(&cfg)
    }

    fn pick(t: &RouteTable, carrier: Carrier, number: &str) -> Option<String> {
        let n = PhoneNumber::parse("to", number).expect("number");
        t.pick(carrier, Some(&n)).map(|r| r.name.clone())
    }

    #[test]
    fn the_closest_route_wins_and_an_unrouted_number_gets_none() {
        let t = table(
            r#"
            [[routes]]
            name = "india"
            prefix = "+91"
            agent_id = "a1"
            [[routes]]
            name = "sales"
            number = "+91 80 4749 1899"
            agent_id = "a2"
            [[routes]]
            name = "plivo-india"
            carrier = "plivo"
            prefix = "91"
            agent_id = "a3"
            [[routes]]
            name = "bangalore"
            prefix = "+9180"
            agent_id = "a4"
            "#,
        );
        assert_eq!(pick(&t, Carrier::Mcube, "918047491899").as_deref(), Some("sales"));
        assert_eq!(pick(&t, Carrier::Mcube, "+918012345678").as_deref(), Some("bangalore"));
        assert_eq!(pick(&t, Carrier::Mcube, "+919912345678").as_deref(), Some("india"));
        assert_eq!(
            pick(&t, Carrier::Plivo, "+919912345678").as_deref(),
            Some("plivo-india")
        );
        assert_eq!(pick(&t, Carrier::Mcube, "+14155550100"), None, "no catch-all: unrouted");
        assert_eq!(t.pick(Carrier::Mcube, None), None);
    }

    #[test]
    fn without_routes_every_call_takes_the_default_to_the_configured_agent() {
        let t = table("[elevenlabs]\nagent_id = \"agent_main\"\n");
        let r = t.pick(Carrier::Twilio, None).expect("default");
        assert_eq!((r.name.as_str(), r.agent_id.as_str()), (DEFAULT_ROUTE, "agent_main"));
    }

    #[test]
    fn the_route_carriers_are_the_protocols() {
        let names: Vec<&str> = Carrier::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, crate::config::routes::CARRIER_NAMES);
    }
}
