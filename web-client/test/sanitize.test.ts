// @vitest-environment jsdom
import { describe, expect, it } from 'vitest';
import { createSanitizer } from '../src/text/sanitize';

const s = createSanitizer(window);

describe('email html sanitiser (DOMPurify)', () => {
  it('strips_scripts_and_event_handlers_and_keeps_formatting', () => {
    const out = s.clean('<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script><b>ok</b>');
    expect(out).not.toMatch(/script/i);
    expect(out).not.toMatch(/onerror/i);
    expect(out).toContain('<b>ok</b>');
  });

  it('strips_javascript_urls_styles_frames_and_forms', () => {
    const out = s.clean(
      '<a href="javascript:alert(1)">x</a><p style="position:fixed" onclick="x()">p</p><iframe src="https://e.x"></iframe>' +
        '<form action="https://e.x"><input name=a></form><svg><script>1</script></svg><style>body{}</style>',
    );
    expect(out).not.toMatch(/javascript:|style=|onclick|iframe|<form|<input|<svg|<style/i);
    expect(out).toContain('<p>p</p>');
  });

  it('links_open_apart_without_the_referrer', () => {
    expect(s.clean('<a href="https://example.com">x</a>')).toBe('<a href="https://example.com" target="_blank" rel="noopener noreferrer nofollow">x</a>');
  });

  it('quoted_text_is_split_off_and_sanitised_too', () => {
    const r = s.split('<p>Новый ответ</p><div class="gmail_quote">Ольга wrote:<blockquote>старое<img src=x onerror=alert(1)></blockquote></div>');
    expect(r.main).toBe('<p>Новый ответ</p>');
    expect(r.quoted).toContain('старое');
    expect(r.quoted).not.toMatch(/onerror/);
    const b = s.split('<div>ответ</div><div>On Mon wrote:<blockquote>old</blockquote></div>');
    expect(b.main).toContain('ответ');
    expect(b.main).not.toContain('old');
    expect(b.quoted).toContain('<blockquote>old</blockquote>');
    expect(s.split('<b>без цитат</b>')).toEqual({ main: '<b>без цитат</b>', quoted: '' });
  });

  it('the_hostile_body_of_the_browser_test_runs_nothing_in_a_document', () => {
    const div = document.createElement('div');
    div.innerHTML = s.split('<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script><b>ok</b>').main;
    document.body.appendChild(div);
    expect(div.querySelector('script')).toBeNull();
    expect(div.querySelector('img')?.getAttribute('onerror')).toBeNull();
    expect(div.querySelector('b')?.textContent).toBe('ok');
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
  });
});
