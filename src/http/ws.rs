//! `GET /ws`: the WebSocket endpoint (protocol in `docs/protocol.md`).

use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;
use crate::realtime::connection;

/// Bytes the socket reads from the network at a time. Small: client frames are small, and
/// this buffer is held by every idle connection (a larger frame grows it as needed).
const READ_BUFFER: usize = 1024;

pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    if state.hub.connection_count() >= state.config.realtime.max_connections {
        return ApiError::Unavailable {
            code: "server_full",
            message: "this node holds as many connections as it may; try again or another node"
                .into(),
        }
        .into_response();
    }
    let max = state.config.realtime.max_frame_bytes;
    let ctx = state.ws.clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| connection::serve(socket, ctx))
}
