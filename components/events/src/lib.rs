//! The `events` component: a shop's event log as a JSON page (staff), and
//! live as server-sent events for three audiences (DESIGN §4):
//! - `/api/shops/:shop/events/staff` — every event (barista or admin token);
//! - `/api/shops/:shop/events/me` — the customer's own orders and config changes (customer token);
//! - `/api/shops/:shop/events/board` — public: numbers, drinks, names, states,
//!   the drinks left on a code's slot and the public part of config changes
//!   (what a display needs; see `streams::project`).

mod sse;

use spin_sdk::http::{IncomingRequest, Method, Response, ResponseOutparam};
use spin_sdk::http_component;
use spinpresso_adapter::flows::Env;
use spinpresso_adapter::http::{self, component_route, path_param};
use spinpresso_adapter::incoming::Request;
use spinpresso_adapter::request;
use spinpresso_domain::auth::Role;
use spinpresso_domain::events;
use spinpresso_domain::shop::{load_shop, ShopId};
use spinpresso_domain::streams::{resume_position, Audience};
use spinpresso_domain::DomainError;

/// Most events one JSON page answers with.
const PAGE_LIMIT: usize = 200;

const STREAMS: [&str; 3] =
    ["/api/shops/:shop/events/staff", "/api/shops/:shop/events/me", "/api/shops/:shop/events/board"];

#[http_component]
fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let started = request::now_ms();
    let req = sse::to_request(&incoming);
    let reply = |out, response| sse::send(out, http::logged(&req, response, started));
    let route = component_route(&req).to_string();
    let method = req.method().clone();
    match (route.as_str(), method) {
        ("/api/shops/:shop/events", Method::Get) => reply(out, http::respond(page(&req))),
        (stream, Method::Get) if STREAMS.contains(&stream) => match subscribe(&req, stream) {
            // The stream logs its own line when it ends.
            Ok(subscription) => sse::serve(out, subscription),
            Err(e) => reply(out, http::domain_error(&e)),
        },
        (route, _) if route == "/api/shops/:shop/events" || STREAMS.contains(&route) => {
            reply(out, http::method_not_allowed(&[Method::Get]))
        }
        _ => reply(out, http::not_found()),
    }
}

/// `GET /api/shops/:shop/events?after=<id>&limit=<n>` (barista): the events after `after`, in order.
fn page(req: &Request) -> Result<Response, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    let number = |name: &str, default: u64| -> Result<u64, DomainError> {
        match request::query_param(req, name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|_| {
                DomainError::invalid("invalid_query", format!("`{name}` must be a whole number, got `{raw}`"))
            }),
        }
    };
    let after = number("after", 0)?;
    let limit = number("limit", PAGE_LIMIT as u64)?;
    if !(1..=PAGE_LIMIT as u64).contains(&limit) {
        return Err(DomainError::invalid("invalid_query", format!("`limit` must be between 1 and {PAGE_LIMIT}")));
    }
    let limit = limit as usize;
    let env = Env::open()?;
    env.authorize(req, Role::Barista, Some(shop.as_str()))?;
    load_shop(&env.kv, &shop)?;
    Ok(http::json(200, &events::read_after(&env.kv, &shop, after, limit, env.now_ms)?))
}

/// Who is listening, to which shop, from where.
pub struct Subscription {
    pub env: Env,
    pub shop: ShopId,
    pub audience: Audience,
    /// The last event the client has; the stream starts after it.
    pub after: u64,
}

fn subscribe(req: &Request, stream: &str) -> Result<Subscription, DomainError> {
    let shop = ShopId::parse(path_param(req, "shop").unwrap_or_default())?;
    // The public board checks no token, so it needs no signing key either.
    let env = if stream == "/api/shops/:shop/events/board" { Env::open_public()? } else { Env::open()? };
    let audience = match stream {
        "/api/shops/:shop/events/staff" => {
            // Displays use the board stream: the staff stream carries customers' orders.
            env.authorize(req, Role::Barista, Some(shop.as_str()))?;
            Audience::Staff
        }
        "/api/shops/:shop/events/me" => {
            let customer = env.authorize(req, Role::Customer, None)?;
            Audience::Customer(customer.sub)
        }
        _ => Audience::Board,
    };
    load_shop(&env.kv, &shop)?;
    let header = req.header("last-event-id");
    let query = request::query_param(req, "lastEventId");
    // A browser resumes only from ids it was sent: anything else is a mistake to say so, not to guess at.
    for (name, raw) in [("Last-Event-ID", header), ("lastEventId", query.as_deref())] {
        if raw.is_some_and(|raw| raw.trim().parse::<u64>().is_err()) {
            return Err(DomainError::invalid(
                "invalid_query",
                format!("`{name}` must be an event id (a whole number)"),
            ));
        }
    }
    let after = match resume_position(header, query.as_deref()) {
        Some(position) => position,
        None => events::head(&env.kv, &shop)?,
    };
    Ok(Subscription { env, shop, audience, after })
}
