//! Carries a `Retry-After` header on a `429`/`503` into the error the caller sees.
//!
//! kube turns an error response into `kube::Error::Api(Status)` from the body alone, so the
//! header would be lost. The real API server's throttling filters answer `429` with the header
//! and a plain-text body. This layer rewrites such a response's body into a `kind: Status` whose
//! `details.retryAfterSeconds` holds the delay, which [`super::K8sError`] then reports through
//! `Retryable::retry_after`. Every other response passes through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header::RETRY_AFTER};
use http_body_util::BodyExt;
use kube::client::{Body, DynBody};
use serde_json::{Value, json};
use tower::{BoxError, Layer, Service};

use crate::registry::error::parse_retry_after;

#[derive(Debug, Clone, Copy, Default)]
pub struct RetryAfterLayer;

impl<S> Layer<S> for RetryAfterLayer {
    type Service = RetryAfterService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryAfterService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RetryAfterService<S> {
    inner: S,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Box<DynBody>>, BoxError>> + Send + 'static>>;

impl<S> Service<Request<Body>> for RetryAfterService<S>
where
    S: Service<Request<Body>, Response = Response<Box<DynBody>>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let status = response.status();
            if !matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                return Ok(response);
            }
            let Some(seconds) = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, time::OffsetDateTime::now_utc()))
                // Round a partial second up: waiting slightly longer is what the server asked.
                .map(|delay| delay.as_secs() + u64::from(delay.subsec_nanos() > 0))
            else {
                return Ok(response);
            };
            let (parts, body) = response.into_parts();
            let text = body.collect().await?.to_bytes();
            let rewritten = with_retry_after(status, &text, seconds);
            let body: Box<DynBody> = Box::new(
                Body::from(Bytes::from(rewritten)).map_err(|error| Box::new(error) as BoxError),
            );
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// The error body as a `kind: Status` with `details.retryAfterSeconds` set (kept when the server
/// already set it).
pub fn with_retry_after(status: StatusCode, body: &[u8], seconds: u64) -> Vec<u8> {
    let mut document = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) if object.get("kind") == Some(&json!("Status")) => {
            Value::Object(object)
        }
        _ => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": String::from_utf8_lossy(body).trim(),
            "reason": status_reason(status),
            "code": status.as_u16(),
        }),
    };
    let seconds = u32::try_from(seconds).unwrap_or(u32::MAX);
    if let Some(object) = document.as_object_mut() {
        let details = object.entry("details").or_insert_with(|| json!({}));
        if let Some(details) = details.as_object_mut() {
            details
                .entry("retryAfterSeconds")
                .or_insert_with(|| json!(seconds));
        }
    }
    serde_json::to_vec(&document).unwrap_or_else(|_| body.to_vec())
}

fn status_reason(status: StatusCode) -> &'static str {
    match status {
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        _ => "ServiceUnavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_text_429_becomes_a_status_with_retry_after() {
        let body = with_retry_after(
            StatusCode::TOO_MANY_REQUESTS,
            b"Too many requests, please try again later.\n",
            3,
        );
        let status: kube::core::Status = serde_json::from_slice(&body).expect("a Status");

        assert_eq!(status.code, 429);
        assert_eq!(status.reason, "TooManyRequests");
        assert_eq!(status.message, "Too many requests, please try again later.");
        assert_eq!(
            status.details.map(|details| details.retry_after_seconds),
            Some(3)
        );
    }

    #[test]
    fn a_status_body_keeps_its_fields_and_an_existing_retry_after() {
        let original = json!({
            "kind": "Status", "code": 503, "reason": "ServiceUnavailable", "message": "etcd",
            "details": {"retryAfterSeconds": 9}
        });
        let body = with_retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            original.to_string().as_bytes(),
            2,
        );

        assert_eq!(
            serde_json::from_slice::<Value>(&body).expect("JSON"),
            original
        );
    }
}
