//! Provider credentials at rest (channel account secrets: SMS passwords and keys, mailbox
//! passwords, board OAuth tokens) are sealed with AES-256-GCM under the node's secrets key
//! (`secrets_key`, or a key generated once in the data directory). Every node of a cluster
//! needs the same key.
//!
//! Sealed values look like `v1:<base64(nonce ‖ ciphertext)>`. Values written before a key
//! was set up (`plain:` or no prefix) are still read.

use std::sync::OnceLock;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

static KEY: OnceLock<Aes256Gcm> = OnceLock::new();

/// Sets the process's secrets key (32 bytes). The first call wins.
pub fn init(key: &[u8]) -> anyhow::Result<()> {
    anyhow::ensure!(key.len() == 32, "the secrets key must be 32 bytes");
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| anyhow::anyhow!("bad key"))?;
    let _ = KEY.set(cipher);
    Ok(())
}

/// Seals a value for storage. Without a key (tools that never serve), the value is kept
/// as `plain:` and a warning is logged.
pub fn seal(value: &str) -> String {
    let Some(cipher) = KEY.get() else {
        tracing::warn!("no secrets key set up: a credential is stored unsealed");
        return format!("plain:{value}");
    };
    let mut nonce = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), value.as_bytes())
        .expect("encryption does not fail");
    let mut out = nonce.to_vec();
    out.extend(sealed);
    format!(
        "v1:{}",
        base64::engine::general_purpose::STANDARD.encode(out)
    )
}

/// Opens a stored value; `None` when it was sealed under another key or is damaged.
pub fn open(stored: &str) -> Option<String> {
    if let Some(rest) = stored.strip_prefix("v1:") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let cipher = KEY.get()?;
        let plain = cipher
            .decrypt(Nonce::from_slice(&bytes[..12]), &bytes[12..])
            .ok()?;
        return String::from_utf8(plain).ok();
    }
    Some(stored.strip_prefix("plain:").unwrap_or(stored).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_and_do_not_show_the_secret() {
        init(&[7u8; 32]).unwrap();
        let sealed = seal("twilio-auth-token-123");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("twilio-auth-token-123"));
        assert_ne!(seal("same"), seal("same"), "a fresh nonce every time");
        assert_eq!(open(&sealed).as_deref(), Some("twilio-auth-token-123"));
        // Tampering is detected.
        let mut bad = sealed.clone();
        bad.pop();
        bad.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(open(&bad), None);
        assert_eq!(open("plain:old").as_deref(), Some("old"));
    }
}
