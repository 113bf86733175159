//! `GET /ws`: the WebSocket endpoint (protocol in `docs/protocol.md`). The opening
//! handshake is answered here; frames are read and written by [`crate::realtime::wire`].

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

use super::AppState;
use crate::error::ApiError;
use crate::realtime::connection;
use crate::realtime::wire::{accept_key, Reader, Writer};

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn not_a_websocket(message: &str) -> Response {
    ApiError::BadRequest {
        code: "websocket_required",
        message: message.into(),
    }
    .into_response()
}

pub async fn upgrade(State(state): State<AppState>, mut request: Request) -> Response {
    if state.hub.connection_count() >= state.config.realtime.max_connections {
        return ApiError::Unavailable {
            code: "server_full",
            message: "this node holds as many connections as it may; try again or another node"
                .into(),
        }
        .into_response();
    }
    let headers = request.headers();
    if request.version() > axum::http::Version::HTTP_11 {
        return not_a_websocket("WebSockets are served over HTTP/1.1");
    }
    if !header_has_token(headers, header::CONNECTION, "upgrade")
        || !header_has_token(headers, header::UPGRADE, "websocket")
    {
        return not_a_websocket("this endpoint speaks WebSocket only (Upgrade: websocket)");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut response = not_a_websocket("WebSocket version 13 is the one spoken here");
        *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return not_a_websocket("Sec-WebSocket-Key is missing");
    };
    let accept = accept_key(key.as_bytes());
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return not_a_websocket("this connection cannot be upgraded");
    };
    let max = state.config.realtime.max_frame_bytes;
    let ctx = state.ws.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let (read, write) = tokio::io::split(TokioIo::new(upgraded));
                connection::serve(Reader::new(read, max), Writer::new(write), ctx).await;
            }
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .expect("a valid response")
}
