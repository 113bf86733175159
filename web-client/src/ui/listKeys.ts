// Keyboard navigation in lists: ArrowUp/ArrowDown/Home/End move the focus between the
// list's items (elements with `data-nav-item`); Enter and Space act on the focused button.
import type { KeyboardEvent } from 'react';

export function onListKeyDown(e: KeyboardEvent<HTMLElement>) {
  if (!['ArrowDown', 'ArrowUp', 'Home', 'End'].includes(e.key)) return;
  const items = [...e.currentTarget.querySelectorAll<HTMLElement>('[data-nav-item]')];
  if (!items.length) return;
  const at = items.indexOf(document.activeElement as HTMLElement);
  let next = at;
  if (e.key === 'ArrowDown') next = at < 0 ? 0 : Math.min(items.length - 1, at + 1);
  if (e.key === 'ArrowUp') next = at < 0 ? 0 : Math.max(0, at - 1);
  if (e.key === 'Home') next = 0;
  if (e.key === 'End') next = items.length - 1;
  e.preventDefault();
  items[next].focus();
}
