// Email HTML for display. The hub sanitises HTML bodies already; the client does it again
// with DOMPurify (decision 23) before anything reaches the DOM, and splits off quoted text
// (`blockquote`, Gmail's `.gmail_quote`, Outlook's reply header) so it can be collapsed.
import createDOMPurify from 'dompurify';
import type { Config, DOMPurify } from 'dompurify';

const CONFIG: Config = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'frame', 'object', 'embed', 'link', 'meta', 'base', 'svg', 'math'],
  FORBID_ATTR: ['style', 'srcset', 'formaction', 'action', 'background', 'ping'],
  ALLOW_DATA_ATTR: false,
};

export interface EmailParts {
  /** The new text of the message, sanitised HTML. */
  main: string;
  /** The quoted earlier messages, sanitised HTML ('' when none was found). */
  quoted: string;
}

export interface Sanitizer {
  clean(html: string): string;
  split(html: string): EmailParts;
}

/** A sanitiser bound to a window (the page's, or jsdom's in the unit tests). */
export function createSanitizer(win: Window & typeof globalThis): Sanitizer {
  const purify: DOMPurify = createDOMPurify(win);
  purify.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A') {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer nofollow');
    }
    if (node.nodeName === 'IMG') node.setAttribute('referrerpolicy', 'no-referrer');
  });
  const clean = (html: string) => purify.sanitize(html, CONFIG) as string;
  return {
    clean,
    split(html) {
      const safe = clean(html);
      // An inert template: nothing in it loads or runs while it is taken apart.
      const tpl = win.document.createElement('template');
      tpl.innerHTML = safe;
      const root = tpl.content;
      const quotes = [
        ...root.querySelectorAll('.gmail_quote, blockquote, #divRplyFwdMsg, #appendonsend'),
      ].filter((el, _, all) => !all.some((other) => other !== el && other.contains(el)));
      if (!quotes.length) return { main: safe, quoted: '' };
      const holder = win.document.createElement('div');
      for (const q of quotes) {
        // Outlook: everything after the reply header is the quote.
        if (q.id === 'divRplyFwdMsg' || q.id === 'appendonsend') {
          let n: ChildNode | null = q;
          while (n) {
            const next: ChildNode | null = n.nextSibling;
            holder.appendChild(n);
            n = next;
          }
        } else {
          holder.appendChild(q);
        }
      }
      const box = win.document.createElement('div');
      box.appendChild(root);
      // Sanitised again after the move, in case re-serialising changed anything.
      return { main: clean(box.innerHTML), quoted: clean(holder.innerHTML) };
    },
  };
}

let pageSanitizer: Sanitizer | null = null;

/** The page's sanitiser (made on first use). */
export function sanitizer(): Sanitizer {
  pageSanitizer ??= createSanitizer(window);
  return pageSanitizer;
}

/** Plain-text quoting: lines starting with ">" at the end of a text, and an "On … wrote:" line before them. */
export function splitQuotedText(text: string): { main: string; quoted: string } {
  const lines = text.split('\n');
  let i = lines.length;
  while (i > 0 && (lines[i - 1].startsWith('>') || lines[i - 1].trim() === '')) i--;
  if (i === lines.length || !lines.slice(i).some((l) => l.startsWith('>'))) return { main: text, quoted: '' };
  if (i > 0 && /(wrote|писал|написал\(а\)|написала):\s*$/i.test(lines[i - 1])) i--;
  return { main: lines.slice(0, i).join('\n').trimEnd(), quoted: lines.slice(i).join('\n') };
}
