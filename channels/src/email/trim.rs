//! Display trimming: the new part of a reply without the quoted original and the signature.
//! The hub shows the trimmed text and keeps the full message.

/// What [`trim_quoted`] leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmed {
    /// The text without quoted replies and signature (the text unchanged when nothing was
    /// found, or when nothing but the quote would be left).
    pub text_without_quote: String,
    /// The HTML without `blockquote`, Gmail / Thunderbird / Yahoo quote containers, Outlook
    /// reply headers and everything after them, and signature blocks; `None` when no HTML was
    /// given. Not sanitised: the hub sanitises it like any HTML.
    pub html_without_quote: Option<String>,
    pub had_quote: bool,
}

/// Removes quoted replies and signatures for display.
///
/// Text: lines starting with `>`; everything from a reply header on — "On … wrote:",
/// "… пишет:" / "… написал(а):", a Gmail-style "date, name <address>:" line before `>`
/// lines, "-----Original Message-----" / "Исходное сообщение", Outlook "From: … Sent: …" /
/// "От: … Отправлено: …" header blocks; the signature from `-- ` on, and a last "Sent from my
/// iPhone"-style line. HTML: see [`Trimmed::html_without_quote`]. When the text has no
/// recognisable quote but the HTML had one, the text is made from the trimmed HTML.
pub fn trim_quoted(text: &str, html: Option<&str>) -> Trimmed {
    let text_trimmed = trim_text(text);
    let html_trimmed = html.and_then(trim_html);
    let had_quote = text_trimmed.is_some() || html_trimmed.is_some();
    let text_without_quote = match (&text_trimmed, &html_trimmed) {
        (Some(t), _) => t.clone(),
        (None, Some(h)) => {
            let from_html = mail_parser::decoders::html::html_to_text(h);
            let from_html = from_html.trim();
            if from_html.is_empty() {
                text.to_string()
            } else {
                from_html.to_string()
            }
        }
        (None, None) => text.to_string(),
    };
    Trimmed {
        text_without_quote,
        html_without_quote: html.map(|h| html_trimmed.unwrap_or_else(|| h.to_string())),
        had_quote,
    }
}

// ---------------------------------------------------------------------------------------
// Text

const WROTE: &[&str] = &[
    "wrote:",
    "writes:",
    "пишет:",
    "написал(а):",
    "написал:",
    "написала:",
    "schrieb:",
    "a écrit :",
    "a écrit:",
];

/// The trimmed text, or `None` when there was nothing to trim (or only the quote).
fn trim_text(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut cut = lines.len();
    for i in 0..lines.len() {
        if is_signature_separator(lines[i]) || is_reply_header(&lines, i) {
            cut = i;
            break;
        }
    }
    let mut kept: Vec<&str> = lines[..cut]
        .iter()
        .copied()
        .filter(|l| !l.trim_start().starts_with('>'))
        .collect();
    // Blank lines and a mobile client's "Sent from" line at the end.
    loop {
        match kept.last() {
            Some(l) if l.trim().is_empty() || is_sent_from(l) => {
                kept.pop();
            }
            _ => break,
        }
    }
    while kept.first().is_some_and(|l| l.trim().is_empty()) {
        kept.remove(0);
    }
    let removed_something =
        kept.len() != lines.iter().filter(|l| !l.trim().is_empty()).count() || cut < lines.len();
    if kept.is_empty() || !removed_something {
        return None;
    }
    let result = kept.join("\n");
    // Only blank lines were dropped: not a quote.
    if result.trim() == text.trim() {
        return None;
    }
    Some(result)
}

fn is_signature_separator(line: &str) -> bool {
    line == "-- " || line == "--" || line == "-- \r"
}

fn is_sent_from(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    [
        "sent from my ",
        "sent from mail for windows",
        "get outlook for ",
        "отправлено с ",
        "отправлено из ",
        "отправлено со ",
    ]
    .iter()
    .any(|p| l.starts_with(p))
        && l.len() < 120
}

/// Whether a reply header ("On … wrote:", Outlook's block, …) starts at line `i`.
fn is_reply_header(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    if line.is_empty() {
        return false;
    }
    let lower = line.to_lowercase();

    // "-----Original Message-----", "-------- Исходное сообщение --------".
    if lower.starts_with("---")
        && [
            "original message",
            "исходное сообщение",
            "ursprüngliche nachricht",
        ]
        .iter()
        .any(|p| lower.contains(p))
    {
        return true;
    }

    // Outlook's rule before its header block.
    if line.len() >= 10 && line.chars().all(|c| c == '_') {
        return (i + 1..(i + 3).min(lines.len())).any(|j| is_outlook_block(lines, j));
    }

    if is_outlook_block(lines, i) {
        return true;
    }

    // "On Mon, 1 Dec 2025 at 10:00, Anna <a@b> wrote:" — Gmail wraps it over two or three lines.
    if lower.starts_with("on ") {
        let mut joined = String::new();
        for l in lines.iter().skip(i).take(3) {
            joined.push_str(l.trim());
            joined.push(' ');
            if WROTE
                .iter()
                .any(|w| joined.trim_end().to_lowercase().ends_with(w))
            {
                return true;
            }
        }
    }

    // "01.12.2025 10:00, Анна пишет:", "1 дек. 2025 г., в 10:00, HR <hr@x> написал(а):".
    if WROTE.iter().any(|w| lower.ends_with(w)) && (has_digit(line) || next_is_quote(lines, i)) {
        return true;
    }

    // Gmail in other languages: "пн, 1 дек. 2025 г. в 10:00, HR <hr@jobers.test>:" before `>` lines.
    if line.ends_with(':') && (line.contains('@') || has_digit(line)) && next_is_quote(lines, i) {
        return true;
    }
    false
}

fn has_digit(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_digit())
}

fn next_is_quote(lines: &[&str], i: usize) -> bool {
    lines
        .iter()
        .skip(i + 1)
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with('>'))
}

/// Outlook's header block: "From:" followed within a few lines by "Sent:"/"Date:" and
/// "To:"/"Subject:" (or the Russian "От:", "Отправлено:"/"Дата:", "Кому:"/"Тема:").
fn is_outlook_block(lines: &[&str], i: usize) -> bool {
    let label = |l: &str| -> Option<&'static str> {
        let l = l.trim().trim_start_matches('*').to_lowercase();
        const LABELS: &[(&str, &str)] = &[
            ("from:", "from"),
            ("от:", "from"),
            ("von:", "from"),
            ("sent:", "sent"),
            ("date:", "sent"),
            ("отправлено:", "sent"),
            ("дата:", "sent"),
            ("gesendet:", "sent"),
            ("to:", "to"),
            ("кому:", "to"),
            ("an:", "to"),
            ("subject:", "subject"),
            ("тема:", "subject"),
            ("betreff:", "subject"),
            ("cc:", "cc"),
            ("копия:", "cc"),
        ];
        LABELS
            .iter()
            .find(|(p, _)| l.starts_with(p) || l.starts_with(&p.replace(':', "*:")))
            .map(|(_, k)| *k)
    };
    if label(lines[i]) != Some("from") {
        return false;
    }
    let following: Vec<&str> = lines
        .iter()
        .skip(i + 1)
        .take(5)
        .filter_map(|l| label(l))
        .collect();
    following.contains(&"sent") && (following.contains(&"to") || following.contains(&"subject"))
}

// ---------------------------------------------------------------------------------------
// HTML

struct Tag<'a> {
    start: usize,
    end: usize,
    name: String,
    closing: bool,
    self_closing: bool,
    attrs: &'a str,
}

/// The tags of an HTML document, in order (comments, doctypes and processing instructions
/// are skipped; the content of script and style is not looked into).
fn tags(html: &str) -> Vec<Tag<'_>> {
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(rel) = html[i..].find('<') {
        let start = i + rel;
        let rest = &html[start..];
        if rest.starts_with("<!--") {
            i = match rest.find("-->") {
                Some(e) => start + e + 3,
                None => html.len(),
            };
            continue;
        }
        let after = bytes.get(start + 1).copied().unwrap_or(b' ');
        if after == b'!' || after == b'?' {
            i = match rest.find('>') {
                Some(e) => start + e + 1,
                None => html.len(),
            };
            continue;
        }
        let closing = after == b'/';
        let name_start = start + 1 + usize::from(closing);
        let name_len = html[name_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ':'))
            .unwrap_or(html.len() - name_start);
        if name_len == 0 {
            i = start + 1;
            continue;
        }
        // The end of the tag, skipping quoted attribute values.
        let mut j = name_start + name_len;
        let mut quote: Option<u8> = None;
        while j < bytes.len() {
            let b = bytes[j];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if b == b'>' => break,
                None => {}
            }
            j += 1;
        }
        let end = (j + 1).min(html.len());
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let attrs_end = if j < bytes.len() { j } else { html.len() };
        let attrs = &html[name_start + name_len..attrs_end];
        let self_closing = attrs.trim_end().ends_with('/');
        let raw_text = !closing && (name == "script" || name == "style");
        out.push(Tag {
            start,
            end,
            name: name.clone(),
            closing,
            self_closing,
            attrs,
        });
        i = end;
        if raw_text {
            let close = format!("</{name}");
            match html[i..].to_ascii_lowercase().find(&close) {
                Some(e) => i += e,
                None => break,
            }
        }
    }
    out
}

/// The value of an attribute (lower-cased), if present.
fn attr(attrs: &str, name: &str) -> Option<String> {
    let lower = attrs.to_ascii_lowercase();
    let mut search = 0;
    while let Some(pos) = lower[search..].find(name) {
        let at = search + pos;
        search = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[at + name.len()..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value = rest[1..].trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or("").to_string(),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or("")
                .to_string(),
        });
    }
    None
}

fn has_class(attrs: &str, class: &str) -> bool {
    attr(attrs, "class").is_some_and(|v| v.split_whitespace().any(|c| c == class))
}

/// Elements removed with their content.
fn is_quote_element(tag: &Tag<'_>) -> bool {
    if tag.name == "blockquote" {
        return true;
    }
    const CLASSES: &[&str] = &[
        "gmail_quote",
        "gmail_quote_container",
        "gmail_signature",
        "moz-cite-prefix",
        "moz-signature",
        "yahoo_quoted",
        "protonmail_quote",
    ];
    CLASSES.iter().any(|c| has_class(tag.attrs, c))
        || attr(tag.attrs, "data-smartmail").is_some_and(|v| v == "gmail_signature")
}

/// Elements from which everything to the end is the quoted original (Outlook).
fn starts_quoted_tail(tag: &Tag<'_>) -> bool {
    if let Some(id) = attr(tag.attrs, "id") {
        if matches!(
            id.as_str(),
            "divrplyfwdmsg"
                | "appendonsend"
                | "mail-editor-reference-message-container"
                | "stopspelling"
        ) {
            return true;
        }
    }
    // Outlook desktop: the reply header sits in a div with a thin top border.
    if tag.name == "div" {
        if let Some(style) = attr(tag.attrs, "style") {
            let style: String = style.chars().filter(|c| !c.is_whitespace()).collect();
            if style.contains("border-top:solid#e1e1e1")
                || style.contains("border-top:solid#b5c4df")
            {
                return true;
            }
        }
    }
    false
}

/// The trimmed HTML, or `None` when nothing was removed or nothing visible would be left.
fn trim_html(html: &str) -> Option<String> {
    let tags = tags(html);
    let mut out = String::with_capacity(html.len());
    // Where removed quotes were, in `out` (to take the attribution line before them too).
    let mut quote_positions = Vec::new();
    let mut copied_to = 0;
    let mut removed = false;
    let mut k = 0;
    while k < tags.len() {
        let tag = &tags[k];
        if tag.closing {
            k += 1;
            continue;
        }
        if starts_quoted_tail(tag) {
            out.push_str(&html[copied_to..tag.start]);
            copied_to = html.len();
            removed = true;
            quote_positions.push(out.len());
            break;
        }
        if is_quote_element(tag) && !tag.self_closing {
            out.push_str(&html[copied_to..tag.start]);
            quote_positions.push(out.len());
            removed = true;
            let mut depth = 1;
            let mut j = k + 1;
            let mut end = html.len();
            while j < tags.len() {
                let t = &tags[j];
                if t.name == tag.name && !t.self_closing {
                    if t.closing {
                        depth -= 1;
                        if depth == 0 {
                            end = t.end;
                            break;
                        }
                    } else {
                        depth += 1;
                    }
                }
                j += 1;
            }
            copied_to = end;
            k = j + 1;
            continue;
        }
        k += 1;
    }
    if !removed {
        return None;
    }
    if copied_to < html.len() {
        out.push_str(&html[copied_to..]);
    }
    // An attribution line just before a removed quote ("On … wrote:", "…, HR <hr@x>:").
    for &pos in quote_positions.iter().rev() {
        if let Some(start) = attribution_before(&out[..pos]) {
            out.replace_range(start..pos, "");
        }
    }
    let mut result = out.trim_end().to_string();
    // Outlook leaves a rule and line breaks before its header.
    loop {
        let lower = result.to_ascii_lowercase();
        let Some(last_open) = lower.rfind('<') else {
            break;
        };
        let tail = &lower[last_open..];
        if (tail.starts_with("<hr") || tail.starts_with("<br")) && tail.ends_with('>') {
            result.truncate(last_open);
            result = result.trim_end().to_string();
        } else {
            break;
        }
    }
    let visible = mail_parser::decoders::html::html_to_text(&result);
    if visible.trim().is_empty() {
        return None;
    }
    Some(result)
}

/// The start of an attribution element ending right at the end of `prefix`, if any.
fn attribution_before(prefix: &str) -> Option<usize> {
    // Skip trailing whitespace and tags (closing tags of the attribution, <br>s).
    let mut end = prefix.len();
    loop {
        let trimmed = prefix[..end].trim_end();
        end = trimmed.len();
        if trimmed.ends_with('>') {
            let open = trimmed.rfind('<')?;
            end = open;
        } else {
            break;
        }
    }
    let text_start = prefix[..end].rfind('>').map(|p| p + 1).unwrap_or(0);
    let text = prefix[text_start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&#160;", " ");
    let text = text.trim();
    let lower = text.to_lowercase();
    let looks_like = text.ends_with(':')
        && text.chars().count() < 300
        && (WROTE.iter().any(|w| lower.ends_with(w)) || text.contains('@') || has_digit(text));
    if !looks_like {
        return None;
    }
    // Remove from the tag that opens the attribution's element.
    let open = prefix[..text_start].rfind('<').unwrap_or(text_start);
    let open_tag = &prefix[open..text_start];
    if open_tag.starts_with("</") {
        Some(text_start)
    } else {
        Some(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> (String, bool) {
        let r = trim_quoted(t, None);
        (r.text_without_quote, r.had_quote)
    }

    #[test]
    fn gmail_english_with_wrapped_attribution() {
        let t = "Yes, 10:00 works for me.\n\nThanks,\nAnna\n\nOn Mon, 1 Dec 2025 at 10:00, HR Department of Jobers <\nhr@jobers.test> wrote:\n\n> Dear Anna,\n>\n> We invite you to an interview.\n>\n";
        assert_eq!(
            text(t),
            ("Yes, 10:00 works for me.\n\nThanks,\nAnna".into(), true)
        );
    }

    #[test]
    fn gmail_russian_attribution_without_a_verb() {
        let t = "Здравствуйте!\nДа, приду к 10:00.\n\nпн, 1 дек. 2025 г. в 10:00, Отдел кадров <hr@jobers.test>:\n\n> Анна, добрый день!\n> Приглашаем вас на собеседование.\n";
        assert_eq!(text(t), ("Здравствуйте!\nДа, приду к 10:00.".into(), true));
    }

    #[test]
    fn outlook_english_header_block() {
        let t = "Thank you, I will be there.\r\n\r\nBest regards,\r\nJohn Smith\r\n\r\n________________________________\r\nFrom: HR <hr@jobers.test>\r\nSent: Monday, December 1, 2025 10:00 AM\r\nTo: John Smith <john@example.test>\r\nSubject: Interview\r\n\r\nDear John,\r\nWe invite you.\r\n";
        assert_eq!(
            text(t),
            (
                "Thank you, I will be there.\n\nBest regards,\nJohn Smith".into(),
                true
            )
        );
    }

    #[test]
    fn outlook_russian_header_block_and_original_message() {
        let t = "Добрый день!\nРезюме во вложении.\n\nОт: Отдел кадров <hr@jobers.test>\nОтправлено: 1 декабря 2025 г. 10:00\nКому: Иван <ivan@example.test>\nТема: Вакансия курьера\n\nИван, пришлите резюме.";
        assert_eq!(text(t), ("Добрый день!\nРезюме во вложении.".into(), true));

        let t = "OK\n\n-----Original Message-----\nFrom: HR\nSent: today\nHello";
        assert_eq!(text(t), ("OK".into(), true));
        let t = "Хорошо\n\n-------- Исходное сообщение --------\nОт: HR\nТема: x\nТекст";
        assert_eq!(text(t), ("Хорошо".into(), true));
    }

    #[test]
    fn apple_mail_iphone_and_mac() {
        let t = "Sure, see you tomorrow.\n\nSent from my iPhone\n\n> On 1 Dec 2025, at 10:00, HR <hr@jobers.test> wrote:\n> \n> Dear Anna,\n> see you at 10.\n";
        assert_eq!(text(t), ("Sure, see you tomorrow.".into(), true));
        let t = "Да, буду.\n\n> 1 дек. 2025 г., в 10:00, Отдел кадров <hr@jobers.test> написал(а):\n> \n> Ждём вас завтра.\n";
        assert_eq!(text(t), ("Да, буду.".into(), true));
        let t = "Буду.\n\nОтправлено с iPhone\n\n1 дек. 2025 г., в 10:00, Отдел кадров <hr@jobers.test> написал(а):\n\n> Ждём вас.";
        assert_eq!(text(t), ("Буду.".into(), true));
    }

    #[test]
    fn thunderbird_russian_and_signature() {
        let t = "Спасибо, подходит.\n\n-- \nАнна Петрова\n+7 999 123-45-67\n\n01.12.2025 10:00, Отдел кадров пишет:\n> Ждём вас.";
        assert_eq!(text(t), ("Спасибо, подходит.".into(), true));
    }

    #[test]
    fn inline_answers_are_kept() {
        let t = "> When can you start?\nNext Monday.\n> Do you have a car?\nNo.";
        assert_eq!(text(t), ("Next Monday.\nNo.".into(), true));
    }

    #[test]
    fn plain_messages_are_left_alone() {
        for t in [
            "Hello!\nI saw your vacancy.\nFrom: Moscow, can move.\n",
            "Мой опыт:\n- склад\n- доставка",
            "Я написал: готов выйти завтра",
            "",
        ] {
            let r = trim_quoted(t, None);
            assert_eq!(r.text_without_quote, t);
            assert!(!r.had_quote, "{t}");
        }
        // Nothing but a quote: shown as it is.
        let t = "> forwarded line\n> another";
        assert_eq!(text(t), (t.to_string(), false));
    }

    #[test]
    fn gmail_html() {
        let html = r#"<div dir="ltr"><div>Да, приду.</div><div><br></div><div>Анна</div></div><br><div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">пн, 1 дек. 2025 г. в 10:00, Отдел кадров &lt;<a href="mailto:hr@jobers.test">hr@jobers.test</a>&gt;:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><div>Ждём вас <blockquote>вложенная</blockquote> завтра.</div></blockquote></div>"#;
        let r = trim_quoted("", Some(html));
        assert!(r.had_quote);
        let h = r.html_without_quote.unwrap();
        assert_eq!(
            h,
            r#"<div dir="ltr"><div>Да, приду.</div><div><br></div><div>Анна</div></div>"#
        );
        assert!(r.text_without_quote.contains("Да, приду."));
        assert!(
            !r.text_without_quote.contains("Ждём"),
            "{}",
            r.text_without_quote
        );
    }

    #[test]
    fn outlook_html() {
        let html = r#"<html><body><div style="font-family: Aptos">Thank you, I will come.</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>From:</b> HR &lt;hr@jobers.test&gt;<br><b>Sent:</b> Monday, December 1, 2025 10:00<br><b>Subject:</b> Interview</font></div><div>Dear John, we invite you.</div></body></html>"#;
        let r = trim_quoted("Thank you, I will come.\n\n________________________________\nFrom: HR <hr@jobers.test>\nSent: Monday, December 1, 2025 10:00\nSubject: Interview\n\nDear John", Some(html));
        assert!(r.had_quote);
        assert_eq!(r.text_without_quote, "Thank you, I will come.");
        let h = r.html_without_quote.unwrap();
        assert!(h.ends_with("Thank you, I will come.</div>"), "{h}");

        let desktop = r#"<div class=WordSection1><p class=MsoNormal>Хорошо, буду.<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p class=MsoNormal><b>От:</b> Отдел кадров<br><b>Отправлено:</b> 1 декабря 2025 г. 10:00</p></div></div><p>Ждём вас.</p></div>"#;
        let r = trim_quoted("", Some(desktop));
        let h = r.html_without_quote.unwrap();
        assert!(h.contains("Хорошо, буду.") && !h.contains("Ждём"), "{h}");
    }

    #[test]
    fn apple_mail_and_thunderbird_html() {
        let apple = r#"<html><body dir="auto">Да, буду.<br><div dir="ltr"><br><blockquote type="cite">1 дек. 2025 г., в 10:00, Отдел кадров &lt;hr@jobers.test&gt; написал(а):<br><br></blockquote></div><blockquote type="cite"><div dir="ltr">Ждём вас.</div></blockquote></body></html>"#;
        let r = trim_quoted("", Some(apple));
        let h = r.html_without_quote.unwrap();
        assert!(
            h.contains("Да, буду.") && !h.contains("Ждём") && !h.contains("написал"),
            "{h}"
        );

        let thunderbird = r#"<p>Спасибо!</p><div class="moz-cite-prefix">01.12.2025 10:00, Отдел кадров пишет:<br></div><blockquote type="cite">Ждём вас.</blockquote><pre class="moz-signature" cols="72">-- 
Анна</pre>"#;
        let h = trim_quoted("", Some(thunderbird))
            .html_without_quote
            .unwrap();
        assert_eq!(h, "<p>Спасибо!</p>");
    }

    #[test]
    fn yandex_html_attribution_before_blockquote() {
        let html = "<div>Приду.</div><div>&nbsp;</div><div>01.12.2025, 10:00, \"Отдел кадров\" &lt;hr@jobers.test&gt;:</div><blockquote><div>Ждём вас.</div></blockquote>";
        let h = trim_quoted("", Some(html)).html_without_quote.unwrap();
        assert!(
            h.contains("Приду.") && !h.contains("01.12.2025") && !h.contains("Ждём"),
            "{h}"
        );
    }

    #[test]
    fn html_without_quotes_is_untouched() {
        let html = "<p>Здравствуйте, <b>резюме</b> во вложении.</p><style>.a{}</style>";
        let r = trim_quoted("Здравствуйте, резюме во вложении.", Some(html));
        assert!(!r.had_quote);
        assert_eq!(r.html_without_quote.as_deref(), Some(html));
        assert_eq!(r.text_without_quote, "Здравствуйте, резюме во вложении.");
    }
}
