//! Reading a mailbox folder over IMAP (async-imap): resumable by UID, restarting from the
//! beginning when UIDVALIDITY changes, waiting with IDLE where the server has it.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

use super::{parse_email, ImapSettings, InboundEmail, MailboxSettings, Security};
use crate::ErrorClass;

/// At most this many messages are read by one [`fetch_since`] call; call again while it
/// returns messages.
pub const FETCH_BATCH: usize = 50;

/// Where reading stopped. The hub persists it only after storing the messages read, so a
/// restart neither loses nor duplicates mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImapCursor {
    pub uid_validity: u32,
    /// The highest UID read (0: none yet).
    pub last_uid: u32,
}

/// Why a mailbox could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    /// Try again later (no connection, timeouts, the server failing).
    #[error("{message}")]
    Retryable { class: ErrorClass, message: String },
    /// The server refused the credentials: the account needs a new login.
    #[error("{message}")]
    Auth { message: String },
    /// The settings name something the server does not have (the folder): fix the settings.
    #[error("{message}")]
    Mailbox { message: String },
}

impl FetchError {
    /// The health class of the account.
    pub fn class(&self) -> ErrorClass {
        match self {
            FetchError::Retryable { class, .. } => *class,
            FetchError::Auth { .. } => ErrorClass::AuthFailure,
            FetchError::Mailbox { .. } => ErrorClass::NoInbound,
        }
    }
}

/// What [`wait_for_change`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The folder changed (new mail, most likely): fetch now.
    Changed,
    /// Nothing within the timeout (or the server has no IDLE and the timeout passed): poll.
    Timeout,
}

/// Reads up to [`FETCH_BATCH`] messages after `cursor` from the folder of
/// `settings.imap`, oldest first, and the cursor to persist once they are stored.
///
/// Without a cursor, or when the folder's UIDVALIDITY is not the cursor's, it reads from the
/// beginning of the folder (the hub deduplicates by Message-ID). Messages are read with
/// `BODY.PEEK[]`, so their \Seen flags stay as they were for people reading the same mailbox.
pub async fn fetch_since(
    settings: &MailboxSettings,
    cursor: Option<ImapCursor>,
) -> Result<(Vec<InboundEmail>, ImapCursor), FetchError> {
    let t = settings.timeout();
    let mut session = connect(&settings.imap, t).await?;
    let result = fetch_in(&mut session, settings, cursor, t).await;
    logout(session, t).await;
    result
}

async fn fetch_in(
    session: &mut Session<MailStream>,
    settings: &MailboxSettings,
    cursor: Option<ImapCursor>,
    t: Duration,
) -> Result<(Vec<InboundEmail>, ImapCursor), FetchError> {
    let folder = &settings.imap.folder;
    let mailbox = step(t, "SELECT", session.select(folder))
        .await?
        .map_err(|e| select_error(folder, e))?;
    let uid_validity = mailbox.uid_validity.unwrap_or(0);
    let start = match cursor {
        Some(c) if c.uid_validity == uid_validity => c.last_uid.saturating_add(1),
        Some(c) => {
            tracing::warn!(
                folder = folder.as_str(),
                old = c.uid_validity,
                new = uid_validity,
                "UIDVALIDITY changed: reading the folder again from the beginning"
            );
            1
        }
        None => 1,
    };
    let unchanged = ImapCursor {
        uid_validity,
        last_uid: start - 1,
    };
    if mailbox.exists == 0 || mailbox.uid_next.is_some_and(|next| next <= start) {
        return Ok((Vec::new(), unchanged));
    }

    let found = step(
        t,
        "UID SEARCH",
        session.uid_search(format!("UID {start}:*")),
    )
    .await?
    .map_err(|e| imap_error("UID SEARCH", e))?;
    // `n:*` also matches the highest UID when it is below n.
    let mut uids: Vec<u32> = found.into_iter().filter(|&u| u >= start).collect();
    uids.sort_unstable();
    let truncated = uids.len() > FETCH_BATCH;
    uids.truncate(FETCH_BATCH);
    if uids.is_empty() {
        // UIDs below UIDNEXT that SEARCH did not find are gone (expunged): skip past them,
        // or a caller waiting for UIDNEXT to move would spin.
        let last_uid = mailbox
            .uid_next
            .map(|n| n.saturating_sub(1))
            .unwrap_or(0)
            .max(start - 1);
        return Ok((
            Vec::new(),
            ImapCursor {
                uid_validity,
                last_uid,
            },
        ));
    }

    let set = uids
        .iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let fetches = step(t, "UID FETCH", async {
        let stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
        stream.try_collect::<Vec<_>>().await
    })
    .await?
    .map_err(|e| imap_error("UID FETCH", e))?;

    let mut emails: Vec<InboundEmail> = fetches
        .iter()
        .filter_map(|f| {
            let uid = f.uid?;
            if uid < start {
                return None;
            }
            let mut email = parse_email(f.body().unwrap_or_default());
            email.imap_uid = Some(uid);
            Some(email)
        })
        .collect();
    emails.sort_by_key(|e| e.imap_uid);
    emails.dedup_by_key(|e| e.imap_uid);

    let mut last_uid = *uids.last().expect("not empty");
    if !truncated {
        if let Some(next) = mailbox.uid_next {
            last_uid = last_uid.max(next.saturating_sub(1));
        }
    }
    Ok((
        emails,
        ImapCursor {
            uid_validity,
            last_uid,
        },
    ))
}

/// Waits up to `timeout` for the folder to change, with IDLE when the server advertises it;
/// otherwise it just waits out the timeout, so the caller polls with [`fetch_since`].
///
/// With `cursor`, it answers [`Change::Changed`] at once when mail arrived after the cursor
/// (between the last fetch and this call), so nothing waits for the next timeout.
pub async fn wait_for_change(
    settings: &MailboxSettings,
    cursor: Option<ImapCursor>,
    timeout: Duration,
) -> Result<Change, FetchError> {
    let t = settings.timeout();
    let mut session = connect(&settings.imap, t).await?;
    let folder = &settings.imap.folder;
    let mailbox = match step(t, "SELECT", session.select(folder)).await? {
        Ok(m) => m,
        Err(e) => {
            logout(session, t).await;
            return Err(select_error(folder, e));
        }
    };
    if let Some(c) = cursor {
        let moved = mailbox.uid_validity != Some(c.uid_validity)
            || mailbox.uid_next.is_some_and(|next| next > c.last_uid + 1);
        if moved {
            logout(session, t).await;
            return Ok(Change::Changed);
        }
    }
    let capabilities = step(t, "CAPABILITY", session.capabilities())
        .await?
        .map_err(|e| imap_error("CAPABILITY", e))?;
    if !capabilities.has_str("IDLE") {
        logout(session, t).await;
        tokio::time::sleep(timeout).await;
        return Ok(Change::Timeout);
    }

    let mut idle = session.idle();
    step(t, "IDLE", idle.init())
        .await?
        .map_err(|e| imap_error("IDLE", e))?;
    let outcome = {
        let (wait, _stop) = idle.wait_with_timeout(timeout);
        // The library's timeout restarts on every keep-alive; this one does not.
        tokio::time::timeout(timeout + Duration::from_millis(200), wait).await
    };
    let change = match outcome {
        Ok(Ok(IdleResponse::NewData(_))) => Change::Changed,
        Ok(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) | Err(_) => Change::Timeout,
        Ok(Err(e)) => return Err(imap_error("IDLE", e)),
    };
    // Leave IDLE and log out politely; a failure here changes nothing for the caller.
    if let Ok(Ok(session)) = tokio::time::timeout(t, idle.done()).await {
        logout(session, t).await;
    }
    Ok(change)
}

/// Runs one network step with the timeout.
async fn step<T>(t: Duration, what: &str, fut: impl Future<Output = T>) -> Result<T, FetchError> {
    tokio::time::timeout(t, fut)
        .await
        .map_err(|_| FetchError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: format!("the IMAP server did not answer {what} in {} s", t.as_secs()),
        })
}

async fn logout(mut session: Session<MailStream>, t: Duration) {
    let _ = tokio::time::timeout(t, session.logout()).await;
}

fn select_error(folder: &str, e: async_imap::error::Error) -> FetchError {
    match e {
        async_imap::error::Error::No(text) => FetchError::Mailbox {
            message: format!("the IMAP folder {folder:?} cannot be opened: {text}"),
        },
        e => imap_error("SELECT", e),
    }
}

fn imap_error(what: &str, e: async_imap::error::Error) -> FetchError {
    use async_imap::error::Error;
    let class = match &e {
        Error::Io(io) if is_network(io) => ErrorClass::NoNetwork,
        Error::ConnectionLost => ErrorClass::NoNetwork,
        _ => ErrorClass::ServiceUnreachable,
    };
    FetchError::Retryable {
        class,
        message: format!("IMAP {what} failed: {e}"),
    }
}

fn is_network(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// Connects, secures the connection as configured, reads the greeting and logs in.
async fn connect(imap: &ImapSettings, t: Duration) -> Result<Session<MailStream>, FetchError> {
    let address = format!("{}:{}", imap.host, imap.port);
    let no_network = |detail: String| FetchError::Retryable {
        class: ErrorClass::NoNetwork,
        message: format!("could not connect to the IMAP server {address}: {detail}"),
    };
    let tcp =
        match tokio::time::timeout(t, TcpStream::connect((imap.host.as_str(), imap.port))).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(no_network(e.to_string())),
            Err(_) => return Err(no_network(format!("no answer in {} s", t.as_secs()))),
        };
    let _ = tcp.set_nodelay(true);

    let client = match imap.security {
        Security::Tls => {
            let tls = tls_handshake(&imap.host, tcp, t).await?;
            let mut client = Client::new(MailStream::Tls(Box::new(tls)));
            greeting(&mut client, t).await?;
            client
        }
        Security::Plain => {
            let mut client = Client::new(MailStream::Plain(tcp));
            greeting(&mut client, t).await?;
            client
        }
        Security::Starttls => {
            let mut client = Client::new(MailStream::Plain(tcp));
            greeting(&mut client, t).await?;
            step(
                t,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?
            .map_err(|e| FetchError::Retryable {
                class: ErrorClass::ServiceUnreachable,
                message: format!("the IMAP server refused STARTTLS: {e}"),
            })?;
            let MailStream::Plain(tcp) = client.into_inner() else {
                unreachable!("a plain stream before STARTTLS")
            };
            let tls = tls_handshake(&imap.host, tcp, t).await?;
            Client::new(MailStream::Tls(Box::new(tls)))
        }
    };

    match step(t, "LOGIN", client.login(&imap.username, &imap.password)).await? {
        Ok(session) => Ok(session),
        Err((async_imap::error::Error::No(text), _))
        | Err((async_imap::error::Error::Bad(text), _)) => Err(FetchError::Auth {
            message: format!(
                "the IMAP server refused the login of {}: {text}",
                imap.username
            ),
        }),
        Err((e, _)) => Err(imap_error("LOGIN", e)),
    }
}

async fn greeting(client: &mut Client<MailStream>, t: Duration) -> Result<(), FetchError> {
    match step(t, "the greeting", client.read_response()).await? {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(FetchError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: "the IMAP server closed the connection before its greeting".to_string(),
        }),
        Err(e) => Err(FetchError::Retryable {
            class: if is_network(&e) {
                ErrorClass::NoNetwork
            } else {
                ErrorClass::ServiceUnreachable
            },
            message: format!("the IMAP greeting could not be read: {e}"),
        }),
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

async fn tls_handshake(
    host: &str,
    tcp: TcpStream,
    t: Duration,
) -> Result<TlsStream<TcpStream>, FetchError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        FetchError::Mailbox {
            message: format!("{host:?} is not a valid TLS server name: {e}"),
        }
    })?;
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    match tokio::time::timeout(t, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(FetchError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: format!("TLS with the IMAP server {host} failed: {e}"),
        }),
        Err(_) => Err(FetchError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: format!("the TLS handshake with {host} took over {} s", t.as_secs()),
        }),
    }
}

/// A plain or TLS connection.
pub(crate) enum MailStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for MailStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailStream::Plain(_) => f.write_str("MailStream::Plain"),
            MailStream::Tls(_) => f.write_str("MailStream::Tls"),
        }
    }
}

impl AsyncRead for MailStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MailStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
