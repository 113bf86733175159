//! A WebSocket client for tests: connects to `/ws`, says hello, reads frames as JSON.
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub welcome: Value,
    /// Presence as seen so far: every `presence` / `presence_snapshot` frame read (also
    /// those skipped by `next_of`) updates it.
    pub presence: std::collections::HashMap<String, Value>,
}

pub async fn connect_raw(base: &str) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let url = format!("{}/ws", base.replacen("http", "ws", 1));
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connects");
    stream
}

impl WsClient {
    /// A client around a socket that has not said hello.
    pub fn raw(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> WsClient {
        WsClient {
            stream,
            welcome: Value::Null,
            presence: Default::default(),
        }
    }

    /// Connects and says hello; returns after `welcome` (replay and `live` follow).
    pub async fn connect(base: &str, token: &str, since: Option<i64>) -> WsClient {
        let mut stream = connect_raw(base).await;
        let hello = match since {
            Some(s) => json!({"type": "hello", "v": 1, "token": token, "since": s}),
            None => json!({"type": "hello", "v": 1, "token": token}),
        };
        stream
            .send(Message::Text(hello.to_string().into()))
            .await
            .unwrap();
        let mut client = WsClient::raw(stream);
        let welcome = client.next().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client.welcome = welcome;
        client
    }

    /// Reads frames until `user` shows `status` (at once if they already do); returns that
    /// entry.
    pub async fn wait_presence(&mut self, user: &str, status: &str) -> Value {
        loop {
            if let Some(p) = self.presence.get(user).filter(|p| p["status"] == status) {
                return p.clone();
            }
            self.next().await;
        }
    }

    /// Reads the `presence_snapshot` frames that follow `welcome`; returns their users.
    pub async fn snapshot(&mut self) -> Vec<Value> {
        let mut users = Vec::new();
        loop {
            let f = self.next_of("presence_snapshot", None).await;
            users.extend(f["users"].as_array().cloned().unwrap_or_default());
            if f["last"] == true {
                return users;
            }
        }
    }

    /// Connects and reads up to `live`, returning the replayed frames.
    pub async fn resume(base: &str, token: &str, since: i64) -> (WsClient, Vec<Value>) {
        let mut c = Self::connect(base, token, Some(since)).await;
        let mut frames = Vec::new();
        loop {
            let f = c.next().await;
            if f["type"] == "presence_snapshot" {
                continue;
            }
            if f["type"] == "live" {
                frames.push(f);
                break;
            }
            frames.push(f);
        }
        (c, frames)
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    /// The next text frame (within 10 s), as JSON. Panics on close.
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("a frame within 10 s")
                .expect("stream open")
                .expect("frame ok");
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).expect("frames are JSON");
                    if v["type"] == "presence" || v["type"] == "presence_snapshot" {
                        for p in v["users"].as_array().into_iter().flatten() {
                            self.presence.insert(
                                p["user_id"].as_str().unwrap_or_default().to_string(),
                                p.clone(),
                            );
                        }
                    }
                    return v;
                }
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of `type` (and, for events, `kind`), skipping others.
    pub async fn next_of(&mut self, ty: &str, kind: Option<&str>) -> Value {
        loop {
            let f = self.next().await;
            if f["type"] == ty && kind.is_none_or(|k| f["kind"] == k) {
                return f;
            }
        }
    }

    /// Waits for the server to close; returns the close code.
    pub async fn closed(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(Duration::from_secs(15), self.stream.next())
                .await
                .expect("closed within 15 s")
            {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) => return u16::from(CloseCode::Status),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return 0,
            }
        }
    }

    /// Asserts no frame of `type` arrives within `wait`.
    pub async fn quiet(&mut self, ty: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, self.stream.next()).await {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_ne!(v["type"], ty, "unexpected frame {v}");
            }
        }
    }
}
