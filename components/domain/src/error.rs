//! The domain's one error type. Every variant has a stable machine `code()`;
//! the HTTP status is mapped in exactly one place (`status()`).

use crate::kv::KvError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// The request is malformed or breaks a validation rule.
    Invalid { code: &'static str, message: String },
    /// No valid credentials were sent.
    Unauthorized { code: &'static str, message: String },
    /// The caller is known but may not do this.
    Forbidden { code: &'static str, message: String },
    /// The thing asked for does not exist.
    NotFound { code: &'static str, message: String },
    /// The request conflicts with the current state (a lost race, a wrong transition).
    Conflict { code: &'static str, message: String },
    /// A business rule refuses the request right now (shop closed, code used up, …).
    Refused { code: &'static str, status: u16, message: String },
    /// Slow down.
    TooManyRequests { code: &'static str, message: String },
    /// The key-value store failed or could not be reached.
    Store(KvError),
}

impl DomainError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { code, message: message.into() }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    pub fn refused(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self::Refused { code, status, message: message.into() }
    }

    /// Stable, machine-readable error code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Refused { code, .. }
            | Self::TooManyRequests { code, .. } => code,
            Self::Store(_) => "store_unavailable",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::Conflict { .. } => 409,
            Self::Refused { status, .. } => *status,
            Self::TooManyRequests { .. } => 429,
            Self::Store(_) => 503,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Invalid { message, .. }
            | Self::Unauthorized { message, .. }
            | Self::Forbidden { message, .. }
            | Self::NotFound { message, .. }
            | Self::Conflict { message, .. }
            | Self::Refused { message, .. }
            | Self::TooManyRequests { message, .. } => message.clone(),
            Self::Store(e) => format!("the key-value store is unavailable: {e}"),
        }
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for DomainError {}

impl From<KvError> for DomainError {
    fn from(e: KvError) -> Self {
        Self::Store(e)
    }
}
