//! WebSocket frames on the wire (RFC 6455), the server's side, shaped by what the hub
//! needs from thousands of mostly idle connections:
//!
//! - an idle connection holds no buffer: bytes are read into the stack and kept (on the
//!   heap) only while a frame is incomplete;
//! - frames queued for a connection leave in one vectored write, each payload written from
//!   where it lies: an event serialised once goes to every recipient without a copy.
//!
//! No extensions are negotiated, so the reserved bits must be clear.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Bytes read from the socket at a time, into the stack.
const READ_CHUNK: usize = 4096;
/// Frames given to one vectored write (two slices each; well under the system's limit).
const FRAMES_PER_WRITE: usize = 64;
/// A close frame's reason is at most this long (control frames carry ≤ 125 bytes).
const MAX_CLOSE_REASON: usize = 123;

/// A whole message or control frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    /// A binary message (the protocol has none; its bytes are dropped).
    Binary,
    Ping(Bytes),
    Pong,
    /// The client's close frame, with its code if it gave one.
    Close(Option<u16>),
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the connection ended without a close frame")]
    Ended,
    #[error("a message longer than {0} bytes")]
    TooBig(usize),
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    #[error("a text message that is not UTF-8")]
    InvalidUtf8,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One frame as read, unmasked.
struct Frame {
    fin: bool,
    op: u8,
    payload: Vec<u8>,
}

/// Reads client frames and puts fragmented messages together.
pub struct Reader<R> {
    io: R,
    /// Bytes of a frame not yet complete; empty (and unallocated) between frames.
    buf: Vec<u8>,
    /// Largest message (and frame) accepted.
    max: usize,
    /// A fragmented message so far: its opcode and bytes.
    message: Option<(u8, Vec<u8>)>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(io: R, max: usize) -> Self {
        Self {
            io,
            buf: Vec::new(),
            max,
            message: None,
        }
    }

    /// The next message or control frame. Cancel-safe: bytes read are kept for the next
    /// call.
    pub async fn next(&mut self) -> Result<Incoming, WireError> {
        loop {
            while let Some(frame) = self.take_frame()? {
                if let Some(message) = self.assemble(frame)? {
                    return Ok(message);
                }
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), WireError> {
        poll_fn(|cx| {
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Err(WireError::Ended));
            }
            self.buf.extend_from_slice(read.filled());
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// A whole frame from the buffer, if one is there.
    fn take_frame(&mut self) -> Result<Option<Frame>, WireError> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        if b[0] & 0x70 != 0 {
            return Err(WireError::Protocol("reserved bits set"));
        }
        let fin = b[0] & 0x80 != 0;
        let op = b[0] & 0x0F;
        if b[1] & 0x80 == 0 {
            return Err(WireError::Protocol("a client's frames must be masked"));
        }
        let (len, mut at) = match b[1] & 0x7F {
            126 => {
                if b.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([b[2], b[3]])), 4)
            }
            127 => {
                if b.len() < 10 {
                    return Ok(None);
                }
                let len = u64::from_be_bytes(b[2..10].try_into().expect("eight bytes"));
                if len >> 63 != 0 {
                    return Err(WireError::Protocol("frame length out of range"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        match op {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin || len > 125 {
                    return Err(WireError::Protocol(
                        "control frames are whole and at most 125 bytes",
                    ));
                }
            }
            OP_CONTINUATION | OP_TEXT | OP_BINARY => {
                // Refused from the header, before the payload arrives.
                let so_far = self.message.as_ref().map_or(0, |(_, m)| m.len()) as u64;
                if len.saturating_add(so_far) > self.max as u64 {
                    return Err(WireError::TooBig(self.max));
                }
            }
            _ => return Err(WireError::Protocol("unknown opcode")),
        }
        let len = len as usize;
        if b.len() < at + 4 {
            return Ok(None);
        }
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        at += 4;
        let end = at + len;
        if b.len() < end {
            let missing = end - self.buf.len();
            self.buf.reserve(missing);
            return Ok(None);
        }
        let mut payload = self.buf[at..end].to_vec();
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i & 3];
        }
        if end == self.buf.len() {
            // Nothing more: an idle connection keeps no buffer.
            self.buf = Vec::new();
        } else {
            self.buf.drain(..end);
        }
        Ok(Some(Frame { fin, op, payload }))
    }

    fn assemble(&mut self, frame: Frame) -> Result<Option<Incoming>, WireError> {
        let Frame { fin, op, payload } = frame;
        match op {
            OP_PING => Ok(Some(Incoming::Ping(Bytes::from(payload)))),
            OP_PONG => Ok(Some(Incoming::Pong)),
            OP_CLOSE => match payload.len() {
                0 => Ok(Some(Incoming::Close(None))),
                1 => Err(WireError::Protocol("a close frame with one byte")),
                _ => {
                    std::str::from_utf8(&payload[2..]).map_err(|_| WireError::InvalidUtf8)?;
                    Ok(Some(Incoming::Close(Some(u16::from_be_bytes([
                        payload[0], payload[1],
                    ])))))
                }
            },
            OP_TEXT | OP_BINARY => {
                if self.message.is_some() {
                    return Err(WireError::Protocol(
                        "a new message before the last one ended",
                    ));
                }
                if fin {
                    finish(op, payload).map(Some)
                } else {
                    self.message = Some((op, payload));
                    Ok(None)
                }
            }
            _ => {
                let Some((first, mut data)) = self.message.take() else {
                    return Err(WireError::Protocol("a continuation without a message"));
                };
                data.extend_from_slice(&payload);
                if fin {
                    finish(first, data).map(Some)
                } else {
                    self.message = Some((first, data));
                    Ok(None)
                }
            }
        }
    }
}

fn finish(op: u8, data: Vec<u8>) -> Result<Incoming, WireError> {
    if op == OP_TEXT {
        String::from_utf8(data)
            .map(Incoming::Text)
            .map_err(|_| WireError::InvalidUtf8)
    } else {
        Ok(Incoming::Binary)
    }
}

/// A server frame's header: FIN, the opcode, the length (servers do not mask).
struct Head {
    bytes: [u8; 10],
    len: usize,
}

fn head(op: u8, len: usize) -> Head {
    let mut bytes = [0u8; 10];
    bytes[0] = 0x80 | op;
    let n = if len < 126 {
        bytes[1] = len as u8;
        2
    } else if len <= usize::from(u16::MAX) {
        bytes[1] = 126;
        bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        bytes[1] = 127;
        bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    Head { bytes, len: n }
}

/// Writes server frames.
pub struct Writer<W> {
    io: W,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub fn new(io: W) -> Self {
        Self { io }
    }

    /// Writes the frames (opcode, payload) in order, many to one vectored write.
    pub async fn send(&mut self, frames: &[(u8, Bytes)]) -> io::Result<()> {
        for group in frames.chunks(FRAMES_PER_WRITE) {
            let heads: Vec<Head> = group.iter().map(|(op, p)| head(*op, p.len())).collect();
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(group.len() * 2);
            for (h, (_, payload)) in heads.iter().zip(group) {
                slices.push(IoSlice::new(&h.bytes[..h.len]));
                if !payload.is_empty() {
                    slices.push(IoSlice::new(payload));
                }
            }
            let mut rest = &mut slices[..];
            while !rest.is_empty() {
                let n = poll_fn(|cx| Pin::new(&mut self.io).poll_write_vectored(cx, rest)).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                IoSlice::advance_slices(&mut rest, n);
            }
        }
        self.io.flush().await
    }

    /// One text frame.
    pub async fn text(&mut self, text: impl Into<Bytes>) -> io::Result<()> {
        self.send(&[(OP_TEXT, text.into())]).await
    }

    /// A close frame with its code and reason, then the end of this side of the stream.
    pub async fn close(&mut self, code: u16, reason: &str) -> io::Result<()> {
        let mut cut = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut payload = Vec::with_capacity(2 + cut);
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..cut]);
        self.send(&[(OP_CLOSE, Bytes::from(payload))]).await?;
        self.io.shutdown().await
    }
}

/// The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A client frame: masked, with the given first byte's flags and opcode.
    fn client_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![if fin { 0x80 } else { 0 } | op];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 65535 {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    async fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Incoming, String>> {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(&bytes).await.unwrap();
        drop(client);
        let mut reader = Reader::new(server, max);
        let mut out = Vec::new();
        loop {
            match reader.next().await {
                Ok(m) => out.push(Ok(m)),
                Err(WireError::Ended) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[tokio::test]
    async fn messages_fragments_and_control_frames_are_read() {
        let mut bytes = client_frame(true, OP_TEXT, "привет".as_bytes());
        // A fragmented message with a ping between its parts.
        bytes.extend(client_frame(false, OP_TEXT, b"hel"));
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(false, OP_CONTINUATION, b"lo "));
        bytes.extend(client_frame(true, OP_CONTINUATION, b"world"));
        bytes.extend(client_frame(true, OP_BINARY, &[0, 1, 2]));
        bytes.extend(client_frame(true, OP_PONG, b""));
        let long = "x".repeat(70_000);
        bytes.extend(client_frame(true, OP_TEXT, long.as_bytes()));
        bytes.extend(client_frame(true, OP_CLOSE, &[0x03, 0xe8, b'o', b'k']));
        assert_eq!(
            read_all(bytes, 100_000).await,
            vec![
                Ok(Incoming::Text("привет".into())),
                Ok(Incoming::Ping(Bytes::from_static(b"p"))),
                Ok(Incoming::Text("hello world".into())),
                Ok(Incoming::Binary),
                Ok(Incoming::Pong),
                Ok(Incoming::Text(long)),
                Ok(Incoming::Close(Some(1000))),
            ]
        );
    }

    #[tokio::test]
    async fn a_frame_arriving_byte_by_byte_is_read_whole_and_nothing_stays_buffered() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = Reader::new(server, 1024);
        let bytes = client_frame(true, OP_TEXT, b"{\"type\":\"ping\"}");
        let writer = tokio::spawn(async move {
            for b in bytes {
                client.write_all(&[b]).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        assert_eq!(
            reader.next().await.unwrap(),
            Incoming::Text("{\"type\":\"ping\"}".into())
        );
        assert_eq!(reader.buf.capacity(), 0, "an idle reader holds no buffer");
        drop(writer.await.unwrap());
        assert!(matches!(reader.next().await, Err(WireError::Ended)));
    }

    #[tokio::test]
    async fn bad_frames_are_refused_with_the_reason() {
        let too_big = client_frame(true, OP_TEXT, &vec![b'a'; 2000]);
        // Refused from the header alone: the payload never needs to arrive.
        let header_only = too_big[..8].to_vec();
        let mut fragments_too_big = client_frame(false, OP_TEXT, &[b'a'; 600]);
        fragments_too_big.extend(client_frame(true, OP_CONTINUATION, &[b'a'; 600]));
        let mut unmasked = client_frame(true, OP_TEXT, b"hi");
        unmasked[1] &= 0x7f;
        let mut reserved = client_frame(true, OP_TEXT, b"hi");
        reserved[0] |= 0x40;
        let mut nested = client_frame(false, OP_TEXT, b"a");
        nested.extend(client_frame(true, OP_TEXT, b"b"));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (too_big, "a message longer than 1024 bytes"),
            (header_only, "a message longer than 1024 bytes"),
            (fragments_too_big, "a message longer than 1024 bytes"),
            (unmasked, "must be masked"),
            (reserved, "reserved bits"),
            (client_frame(true, 0x3, b""), "unknown opcode"),
            (client_frame(false, OP_PING, b""), "control frames"),
            (client_frame(true, OP_PING, &[0; 126]), "control frames"),
            (
                client_frame(true, OP_CONTINUATION, b"x"),
                "continuation without",
            ),
            (nested, "a new message before"),
            (client_frame(true, OP_TEXT, &[0xff, 0xfe]), "not UTF-8"),
            (client_frame(true, OP_CLOSE, &[3]), "one byte"),
        ];
        for (bytes, expected) in cases {
            let got = read_all(bytes, 1024).await;
            let last = got.last().cloned().expect("an answer");
            assert!(
                matches!(&last, Err(e) if e.contains(expected)),
                "{expected}: {got:?}"
            );
        }
    }

    #[tokio::test]
    async fn frames_are_written_with_the_right_headers_in_one_go() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut writer = Writer::new(server);
        let shared = Bytes::from("x".repeat(300));
        let big = Bytes::from("y".repeat(70_000));
        writer
            .send(&[
                (OP_TEXT, Bytes::from_static(b"hi")),
                (OP_TEXT, shared.clone()),
                (OP_PING, Bytes::new()),
                (OP_TEXT, big.clone()),
            ])
            .await
            .unwrap();
        writer.close(4008, &"é".repeat(100)).await.unwrap();
        let mut got = Vec::new();
        let mut client = client;
        client.read_to_end(&mut got).await.unwrap();
        let mut expected = vec![0x81, 2, b'h', b'i', 0x81, 126, 1, 44];
        expected.extend_from_slice(&shared);
        expected.extend_from_slice(&[0x89, 0]);
        expected.extend_from_slice(&[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        expected.extend_from_slice(&big);
        // The reason is cut to 123 bytes at a character boundary: 61 × "é".
        expected.extend_from_slice(&[0x88, 124, 0x0f, 0xa8]);
        expected.extend_from_slice("é".repeat(61).as_bytes());
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
    }

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
