//! The `sweeper` component: `POST /internal/sweep` (bearer `sweeper_token`)
//! writes down timeouts, repairs half-finished orders and trims old data.
//! Correctness never depends on it (every read enforces deadlines); it keeps
//! events flowing and the store within its key budget.

use serde::Deserialize;
use spin_sdk::http::{Method, Response};
use spin_sdk::http_component;
use spinpresso_adapter::flows::Env;
use spinpresso_adapter::http::{self, component_route};
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::request;
use spinpresso_domain::DomainError;
use spinpresso_domain::{lifecycle, robot, shop};

#[http_component]
fn handle(req: Request) -> Response {
    let started = spinpresso_adapter::request::now_ms();
    let mut routine = false;
    let response = http::respond(match (component_route(&req), req.method()) {
        ("/internal/sweep", Method::Post) => sweep(&req).map(|(response, changed)| {
            routine = !changed;
            response
        }),
        ("/internal/sweep", _) => http::route_methods(&[Method::Post]),
        _ => Ok(http::not_found()),
    });
    // A sweep runs every few seconds: one that found nothing to do is not logged.
    if routine {
        return response;
    }
    http::logged(&req, response, started)
}

/// `{}` for a routine sweep; `{"full": true}` also looks at every open
/// order, not only those whose deadline may have passed (an operator's
/// repair of a stuck shop, see docs/operations.md).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SweepRequest {
    #[serde(default)]
    full: bool,
}

/// The answer, and whether the sweep changed anything.
fn sweep(req: &Request) -> Result<(Response, bool), DomainError> {
    let env = Env::open()?;
    let Some(token) = env.secrets.sweeper_token() else {
        return Err(DomainError::refused(
            "not_configured",
            503,
            "no sweeper token is set: the operator sets the `sweeper_token` variable",
        ));
    };
    if !request::bearer_is(req, Some(&token)) {
        return Err(DomainError::Unauthorized {
            code: "unauthenticated",
            message: "the sweeper needs its bearer token".into(),
        });
    }
    let asked: SweepRequest = request::json_body(req)?;
    let report = lifecycle::sweep(&env.ctx(), asked.full)?;
    // The robot acts on the sweeper's schedule (a shop whose robot never started costs two small reads).
    let mut random = || u64::from_le_bytes(request::random_bytes());
    let mut robot_orders = 0;
    for shop in shop::list_shops(&env.kv)? {
        match robot::act(&env.ctx(), &shop, &mut random) {
            Ok(started) => robot_orders += started,
            Err(e) => eprintln!("robot of shop {shop}: {e}"),
        }
    }
    let changed = report.timed_out > 0 || report.trimmed > 0 || !report.failed.is_empty() || robot_orders > 0;
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    body["robotOrders"] = serde_json::json!(robot_orders);
    Ok((http::json(200, &body), changed))
}
