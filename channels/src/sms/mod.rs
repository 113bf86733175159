//! SMS providers: Kannel (self-hosted gateway), Twilio-compatible HTTP APIs, SMS.ru.

pub mod kannel;
pub mod smsru;
pub mod twilio;

/// A failure a simulator plays on its next request (before accepting anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status.
    Status(u16),
    /// Take this long, then answer 504 (the caller's timeout is usually shorter).
    Hang(std::time::Duration),
    /// Answer 200 with something that is not the provider's format.
    Garbage,
}

/// Plays the next queued fault, if any: `Some(response)` to answer with instead.
pub(crate) async fn play_fault(
    faults: &std::sync::Mutex<std::collections::VecDeque<Fault>>,
) -> Option<(axum::http::StatusCode, String)> {
    let fault = faults.lock().expect("not poisoned").pop_front()?;
    Some(match fault {
        Fault::Status(code) => (
            axum::http::StatusCode::from_u16(code)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
            "simulated failure".into(),
        ),
        Fault::Hang(d) => {
            tokio::time::sleep(d).await;
            (axum::http::StatusCode::GATEWAY_TIMEOUT, "too slow".into())
        }
        Fault::Garbage => (
            axum::http::StatusCode::OK,
            "<html>Service temporarily unavailable</html>".into(),
        ),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// Characters of the GSM 03.38 basic set.
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the extension table (two septets each).
const GSM7_EXT: &str = "^{}\\[~]|€\u{c}";

/// The encoding a text needs and how many SMS it takes: GSM-7 160 characters (153 per
/// part when split), UCS-2 70 (67) — Cyrillic is UCS-2.
pub fn segments(text: &str) -> (Encoding, usize) {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        if GSM7.contains(c) {
            septets += 1;
        } else if GSM7_EXT.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    if gsm {
        let n = if septets <= 160 {
            1
        } else {
            septets.div_ceil(153)
        };
        return (Encoding::Gsm7, n.max(1));
    }
    // UCS-2 counts UTF-16 code units.
    let units: usize = text.chars().map(char::len_utf16).sum();
    let n = if units <= 70 { 1 } else { units.div_ceil(67) };
    (Encoding::Ucs2, n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_the_encoding() {
        assert_eq!(segments("Hello"), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"€".repeat(81)), (Encoding::Gsm7, 2));
        assert_eq!(segments("Привет"), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"я".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"я".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(segments(&"я".repeat(134)), (Encoding::Ucs2, 2));
        assert_eq!(segments(&"я".repeat(135)), (Encoding::Ucs2, 3));
    }
}
