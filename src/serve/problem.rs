//! RFC 9457 problem details: every error answer of the service.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: status, a sentence, and for validation failures the
/// offending field and the rule it breaks.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub detail: String,
    /// The request field (query parameter or JSON member) at fault.
    pub field: Option<String>,
    /// The rule the field breaks, e.g. `an integer in 1..=100`.
    pub rule: Option<String>,
}

impl Problem {
    /// A problem with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
            field: None,
            rule: None,
        }
    }

    /// A 400 naming `field` and the `rule` it breaks.
    pub fn invalid(
        field: impl Into<String>,
        rule: impl Into<String>,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
            field: Some(field.into()),
            rule: Some(rule.into()),
        }
    }

    /// A 404 for a layer that does not exist.
    pub fn unknown_layer(name: &str) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, format!("no layer named '{name}'"))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        if let Some(rule) = self.rule {
            body["rule"] = json!(rule);
        }
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// A library error met while answering: parameters at fault give a 400
/// naming them; an unknown point id a 404; a conflicting change a 409;
/// anything else is still the request's fault here (a query of the wrong
/// kind), so also a 400.
impl From<crate::Error> for Problem {
    fn from(e: crate::Error) -> Problem {
        match e {
            crate::Error::InvalidParameter {
                name,
                value,
                reason,
            } => Problem::invalid(name, reason.clone(), format!("{name} = {value}: {reason}")),
            e @ crate::Error::UnknownPoint { .. } => {
                Problem::new(StatusCode::NOT_FOUND, e.to_string())
            }
            e @ crate::Error::Conflict { .. } => Problem::new(StatusCode::CONFLICT, e.to_string()),
            other => Problem::new(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }
}
