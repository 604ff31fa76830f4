//! The domain's flow context built from a request: store, time, writer id, key.

use spinpresso_domain::lifecycle::Ctx;
use spinpresso_domain::DomainError;

use crate::incoming::Request;
use crate::kv::SpinKv;
use crate::request::{authorize, customer_or_staff, now_ms, request_id, Secrets};
use spinpresso_domain::auth::{Claims, Role};

/// Everything a flow borrows, owned for the length of one request.
pub struct Env {
    pub kv: SpinKv,
    pub now_ms: i64,
    pub writer: String,
    pub secrets: Secrets,
}

impl Env {
    pub fn open() -> Result<Self, DomainError> {
        Ok(Self { kv: SpinKv::open_default()?, now_ms: now_ms(), writer: request_id(), secrets: Secrets::load()? })
    }

    /// For public reads (the board, the wait), which neither sign nor check
    /// anything: the signing key is not read (a host call less on the routes
    /// displays and phones poll most).
    pub fn open_public() -> Result<Self, DomainError> {
        Ok(Self { kv: SpinKv::open_default()?, now_ms: now_ms(), writer: request_id(), secrets: Secrets::none() })
    }

    /// The caller, checked for `role` (and `shop`, when the route names one); see [`authorize`].
    pub fn authorize(&self, req: &Request, role: Role, shop: Option<&str>) -> Result<Claims, DomainError> {
        authorize(req, &self.secrets, &self.kv, role, shop, self.now_ms)
    }

    /// The owner of an order or a barista/admin (see [`customer_or_staff`]).
    pub fn customer_or_staff(&self, req: &Request, shop: Option<&str>) -> Result<Claims, DomainError> {
        customer_or_staff(req, &self.secrets, &self.kv, shop, self.now_ms)
    }

    pub fn ctx(&self) -> Ctx<'_, SpinKv> {
        Ctx { kv: &self.kv, now_ms: self.now_ms, writer: &self.writer, signing_key: &self.secrets.signing_key }
    }
}
