//! REST errors: a core error, or a request that could not even be read, answered as a
//! problem document ([`crate::api::problem`]). Refusals (`401`/`403`) go through the one
//! builder both faces share ([`Refusal::response`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::caller::Refusal;
use crate::api::problem::problem;
use crate::core::access::Operation;
use crate::core::error::Error;

/// One REST error: a core error, or a request that could not even be read.
#[derive(Debug)]
pub enum ApiError {
    Core {
        err: Error,
        op: Option<Operation>,
    },
    /// The body or query string is not what the route takes (syntax, unknown field, type).
    BadRequest(String),
    /// Well-formed JSON whose fields have the wrong shape.
    Unprocessable {
        message: String,
        /// The path of the field at fault (`limit`, `arguments.note`), when known.
        field: Option<String>,
    },
    PayloadTooLarge(usize),
    /// The body did not arrive in time.
    BodyTooSlow,
    UnsupportedMediaType,
    /// The caller is refused before the operation runs.
    Refused(Refusal),
}

impl ApiError {
    pub fn during(op: Operation) -> impl FnOnce(Error) -> ApiError {
        move |err| ApiError::Core { err, op: Some(op) }
    }
}

impl ApiError {
    /// A body whose JSON does not fit the route's type, naming the field when serde knows
    /// it (`.` is the whole body).
    pub fn shape(e: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        ApiError::Unprocessable {
            message: format!("invalid body: {e}"),
            field: (path != ".").then_some(path),
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError::Core { err, op: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        match self {
            ApiError::BadRequest(m) => {
                problem(S::BAD_REQUEST, "invalid_argument", &m).into_response()
            }
            ApiError::Unprocessable { message, field } => {
                let mut p = problem(S::UNPROCESSABLE_ENTITY, "invalid_argument", &message);
                p.field = field;
                p.into_response()
            }
            ApiError::PayloadTooLarge(max) => problem(
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!("request body over {max} bytes"),
            )
            .into_response(),
            ApiError::BodyTooSlow => problem(
                S::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time; send it again",
            )
            .into_response(),
            ApiError::UnsupportedMediaType => problem(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            )
            .into_response(),
            ApiError::Refused(r) => r.response(),
            ApiError::Core { err, op } => core_problem(&err, op),
        }
    }
}

fn core_problem(err: &Error, op: Option<Operation>) -> Response {
    use StatusCode as S;
    if let Some(refusal) = Refusal::from_core(err, op) {
        return refusal.response();
    }
    let status = match err {
        Error::Invalid { .. } => S::UNPROCESSABLE_ENTITY,
        Error::NotFound { .. } => S::NOT_FOUND,
        Error::Conflict { .. } => S::CONFLICT,
        Error::InsufficientCredits { .. } => S::PAYMENT_REQUIRED,
        Error::Unauthenticated(_) => S::UNAUTHORIZED,
        Error::Forbidden(_) => S::FORBIDDEN,
        Error::RateLimited { .. } => S::TOO_MANY_REQUESTS,
        Error::Unavailable { .. } => S::SERVICE_UNAVAILABLE,
        Error::Internal(_) => S::INTERNAL_SERVER_ERROR,
    };
    let mut p = problem(status, err.code(), &err.public_message());
    match err {
        Error::Invalid { field, .. } => p.field = Some((*field).to_owned()),
        Error::Conflict { current_status, .. } => p.current_status = current_status.clone(),
        Error::RateLimited { retry_after_secs } | Error::Unavailable { retry_after_secs } => {
            p.retry_after = Some(*retry_after_secs)
        }
        _ => {}
    }
    p.into_response()
}
