//! The core's one error enum. Transports map each variant to their own shape (HTTP status,
//! MCP tool error) through [`Error::code`]; none of them ever shows internal detail.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{message}")]
    Conflict {
        message: String,
        /// The status the object is in, when the conflict is about a status.
        current_status: Option<String>,
    },
    #[error(
        "insufficient credits: this call costs {cost} credit(s) and the balance of account {account} is {balance}; add credits and retry"
    )]
    InsufficientCredits {
        account: String,
        cost: i64,
        balance: i64,
    },
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("rate limited: retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The database (or another dependency) cannot be reached right now. Nothing was
    /// done; the same call may be retried. Never reported as a credential problem.
    #[error("the service is temporarily unavailable; retry in {retry_after_secs} s")]
    Unavailable { retry_after_secs: u64 },
    /// Something failed inside the service. The message stays in the logs; callers only
    /// see a generic sentence.
    #[error("internal error")]
    Internal(#[source] anyhow_free::Internal),
}

impl Error {
    /// A stable, machine-readable code for the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_argument",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::InsufficientCredits { .. } => "insufficient_credits",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable { .. } => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// The message a caller may see. For internal errors this never includes the cause.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => {
                "internal error; the request was not completed, retry later".to_owned()
            }
            other => other.to_string(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let cause = cause.to_string();
        tracing::error!(error = %cause, "internal error");
        Error::Internal(anyhow_free::Internal(cause))
    }

    pub fn conflict_status(message: String, status: impl Into<String>) -> Self {
        Error::Conflict {
            message,
            current_status: Some(status.into()),
        }
    }
}

/// How long a caller is told to wait when the database is unreachable: long enough for a
/// restart or fail-over to begin, short enough that an agent's retry is not wasted.
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            Error::Unavailable {
                retry_after_secs: UNAVAILABLE_RETRY_SECS,
            }
        } else {
            Error::internal(e)
        }
    }
}

/// Holds the text of an internal failure for logs, without pulling `anyhow` into the core.
pub mod anyhow_free {
    #[derive(Debug)]
    pub struct Internal(pub String);
    impl std::fmt::Display for Internal {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Internal {}
}
