//! WebSocket clients of the generator: spread over many 127.0.0.x source addresses (one
//! address has only ~28,000 ephemeral ports), with small buffers so that tens of
//! thousands fit in one process.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Source addresses used: 127.0.0.2 … 127.0.0.(1 + SOURCES).
const SOURCES: usize = 40;

/// Nanoseconds since the Unix epoch: the clock both ends of a latency measurement share.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// Opens a socket from the `n`-th source address and says hello. Returns the socket and
/// the frames up to and including `live`.
pub async fn connect(
    hub: SocketAddr,
    n: usize,
    token: &str,
    since: Option<i64>,
) -> anyhow::Result<(Ws, Vec<Value>)> {
    let source = Ipv4Addr::new(127, 0, 0, 2 + (n % SOURCES) as u8);
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let stream = tokio::time::timeout(Duration::from_secs(30), socket.connect(hub)).await??;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://{hub}/ws");
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
    )
    .await??;
    let hello = match since {
        Some(s) => json!({"type": "hello", "v": 1, "token": token, "since": s}),
        None => json!({"type": "hello", "v": 1, "token": token}),
    };
    ws.send(Message::Text(hello.to_string().into())).await?;
    let mut frames = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("closed during hello"))??;
        match msg {
            Message::Text(t) => {
                // Snapshot frames are kept whole but parsed only for the users' ids and
                // statuses (the generator must not become the bottleneck).
                let v: Value = if t.starts_with("{\"type\":\"presence_snapshot\"") {
                    json!({"type": "presence_snapshot", "raw": t.as_str()})
                } else {
                    serde_json::from_str(&t)?
                };
                let live = v["type"] == "live";
                frames.push(v);
                if live {
                    return Ok((ws, frames));
                }
            }
            Message::Close(c) => anyhow::bail!("closed during hello: {c:?}"),
            _ => {}
        }
    }
}

/// `(user_id, status)` of each entry of a presence frame, found without a full parse
/// (entries are flat objects: split on `}`, read both keys inside each).
pub fn presence_entries(frame: &str) -> impl Iterator<Item = (&str, &str)> {
    fn value_of<'a>(entry: &'a str, key: &str) -> Option<&'a str> {
        let at = entry.find(key)? + key.len();
        let rest = &entry[at..];
        Some(&rest[..rest.find('"')?])
    }
    let users = frame
        .find("\"users\":[")
        .map(|at| &frame[at + 9..])
        .unwrap_or_default();
    users.split('}').filter_map(|entry| {
        let id = value_of(entry, "\"user_id\":\"")?;
        Some((id, value_of(entry, "\"status\":\"").unwrap_or_default()))
    })
}

/// A chat body carrying its send time: `t=<nanos>;` padded to `len` bytes.
pub fn stamped_body(len: usize) -> String {
    let mut body = format!("t={};", now_nanos());
    while body.len() < len {
        body.push('x');
    }
    body
}

/// The send time in a frame carrying a stamped body, found without parsing the JSON.
pub fn stamp_of(frame: &str) -> Option<u64> {
    let at = frame.find("\"body\":\"t=")? + 10;
    let digits = &frame[at..];
    let end = digits.find(';')?;
    digits[..end].parse().ok()
}

/// The send time stamped in a frame after `key` (e.g. `"text":"t=`), without parsing JSON.
pub fn stamp_in(frame: &str, key: &str) -> Option<u64> {
    let at = frame.find(key)? + key.len();
    let digits = &frame[at..];
    let end = digits.find(';')?;
    digits[..end].parse().ok()
}

/// The `position` of an event frame, found without parsing the JSON.
pub fn position_of(frame: &str) -> Option<i64> {
    let at = frame.find("\"position\":")? + 11;
    let digits = &frame[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    digits[..end].parse().ok()
}

pub fn raise_fd_limit() {
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}
