// A virtualised list: only the items near the visible part are in the DOM (plus the focused
// one), each positioned at its offset, with the rest of the list's height kept by the list
// element. Items may have any height: each rendered item is measured (ResizeObserver) and
// the offsets follow; items never rendered count with the average measured height.
//
// - `anchor="top"` (the inbox) starts at the first item; `anchor="bottom"` (timelines, chat)
//   starts at the last, stays there while the user is there when items are added, and keeps
//   the view on the same message when older pages are put above it or items above it change
//   height.
// - `onEndReached` / `onStartReached` ask for the next page as the view nears an end.
// - Keyboard (`keyboard`): the arrow keys, Home, End, PageUp and PageDown move the focus between the
//   items' `[data-nav-item]` elements (like listKeys.ts, over all items, not only the rendered
//   ones); the focused item is scrolled into view and stays rendered while it has the focus.
// The arithmetic lives in virtual.ts.
import { useCallback, useLayoutEffect, useMemo, useReducer, useRef, useState } from 'react';
import type { FocusEvent, HTMLAttributes, KeyboardEvent, ReactNode, Ref } from 'react';
import { flushSync } from 'react-dom';
import { SizeCache, anchorAt, anchorTop, layout, nextIndex, revealTop, visibleRange } from './virtual';
import type { Anchor } from './virtual';

type Attrs<E> = HTMLAttributes<E> & { [data: `data-${string}`]: string | number | boolean | undefined };

export interface VirtualListProps<T> {
  items: readonly T[];
  /** A stable, unique key of an item (kept across pages and re-sorts). */
  itemKey(item: T): string;
  renderItem(item: T, index: number): ReactNode;
  /** The height assumed for items until one has been measured (px). */
  estimateSize: number;
  as?: 'ul' | 'ol';
  anchor?: 'top' | 'bottom';
  /** How far beyond the visible part items are rendered (px). */
  overscan?: number;
  onEndReached?(): void;
  onStartReached?(): void;
  /** The arrow keys, Home, End, PageUp, PageDown move the focus between the items. */
  keyboard?: boolean;
  /** When this value changes the view goes to the end (e.g. the user sent a message). */
  followEnd?: unknown;
  /** Shown inside the scrolling area above and below the items (e.g. "load older"). */
  header?: ReactNode;
  footer?: ReactNode;
  scrollerProps?: Attrs<HTMLDivElement>;
  listProps?: Attrs<HTMLElement>;
}

/** Within this distance of the end, a bottom-anchored list counts as "at the end" (px). */
const STICK_PX = 40;

interface View {
  /** The view's top relative to the list's first item (px). */
  top: number;
  height: number;
}

export function VirtualList<T>(p: VirtualListProps<T>) {
  const { items, anchor = 'top', overscan = 600 } = p;
  const scrollerRef = useRef<HTMLDivElement>(null);
  const listRef = useRef<HTMLElement>(null);
  const [sizes] = useState(() => new SizeCache(p.estimateSize));
  const [version, bump] = useReducer((x: number) => x + 1, 0);
  const [, rerender] = useReducer((x: number) => x + 1, 0);
  const [focusKey, setFocusKey] = useState<string | null>(null);

  const keys = useMemo(() => items.map(p.itemKey), [items]);
  const indexOf = useMemo(() => new Map(keys.map((k, i) => [k, i])), [keys]);
  const offsets = useMemo(() => layout(keys, sizes), [keys, version]);

  // The latest of everything, for the event handlers and observers.
  const live = useRef({ keys, indexOf, offsets, props: p });
  live.current = { keys, indexOf, offsets, props: p };
  const view = useRef<View>({ top: 0, height: 0 });
  /** At the end (bottom anchor) or the start (top anchor): stay there when items come. */
  const stick = useRef(true);
  /** Otherwise the item the view is pinned to. */
  const pin = useRef<Anchor | null>(null);
  const pendingFocus = useRef<string | null>(null);
  const rendered = useRef<[number, number]>([0, 0]);

  const readView = (): View => {
    const s = scrollerRef.current;
    const l = listRef.current;
    if (!s || !l) return view.current;
    return { top: s.scrollTop - l.offsetTop, height: s.clientHeight };
  };

  /** What the DOM showed when the view was last looked at: its scroll position and layout. */
  const seen = useRef({ scrollTop: 0, scrollHeight: 0, offsets, keys });

  /**
   * Remembers where the view is: stuck to an end, or pinned to the item at its top, by the
   * layout the user saw (`shown`, the current one unless a render came since).
   */
  const note = (v: View, shown: { offsets: Float64Array; keys: readonly string[]; scrollHeight: number } | null = null) => {
    const s = scrollerRef.current;
    if (!s) return;
    const scrollHeight = shown?.scrollHeight ?? s.scrollHeight;
    view.current = v;
    stick.current = anchor === 'bottom' ? scrollHeight - s.scrollTop - s.clientHeight < STICK_PX : s.scrollTop < 1;
    pin.current = anchorAt(shown?.offsets ?? live.current.offsets, shown?.keys ?? live.current.keys, v.top);
    seen.current = { scrollTop: s.scrollTop, scrollHeight: s.scrollHeight, offsets: live.current.offsets, keys: live.current.keys };
  };

  const reach = (v: View) => {
    const { offsets: o, props } = live.current;
    // A few screens ahead, so a page has time to come before the view gets there.
    const distance = Math.max(3 * v.height, 2 * overscan);
    if (props.onEndReached && o[o.length - 1] - (v.top + v.height) < distance) props.onEndReached();
    if (props.onStartReached && v.top < distance) props.onStartReached();
  };

  const rangeChanged = (v: View) => {
    const [a, b] = visibleRange(live.current.offsets, v.top, v.height, overscan);
    return a !== rendered.current[0] || b !== rendered.current[1];
  };

  const onScroll = () => {
    const v = readView();
    note(v);
    if (rangeChanged(v)) flushSync(rerender);
    reach(v);
  };

  // One observer measures the rendered items (and the scroller, for its own height).
  const observer = useRef<ResizeObserver | null>(null);
  const observe = useCallback((el: HTMLElement | null) => {
    if (!el) return;
    if (!observer.current) {
      observer.current = new ResizeObserver((entries) => {
        let changed = false;
        for (const e of entries) {
          const target = e.target as HTMLElement;
          if (target === scrollerRef.current) {
            changed = true;
            continue;
          }
          const key = target.dataset.vkey;
          if (key === undefined || !target.isConnected) continue;
          const h = e.borderBoxSize?.[0]?.blockSize ?? target.getBoundingClientRect().height;
          if (sizes.set(key, h)) changed = true;
        }
        // Before the next paint, so the items never show at stale offsets.
        if (changed) flushSync(bump);
      });
    }
    const ro = observer.current;
    ro.observe(el);
    return () => ro.unobserve(el);
  }, []);
  const scrollerRefCallback = useCallback(
    (el: HTMLDivElement | null) => {
      scrollerRef.current = el;
      return el ? observe(el) : undefined;
    },
    [observe],
  );

  // The view goes to the end when asked (declared before the effect below, so it runs first).
  const followed = useRef(p.followEnd);
  useLayoutEffect(() => {
    if (followed.current === p.followEnd) return;
    followed.current = p.followEnd;
    if (anchor === 'bottom') stick.current = true;
  }, [p.followEnd]);

  // After every render: keep the view where it was, move the focus the keyboard asked for,
  // render more when the view shows more than was rendered, and ask for pages.
  useLayoutEffect(() => {
    const s = scrollerRef.current;
    const l = listRef.current;
    if (!s || !l) return;
    // Scrolled since the last look, its scroll event not handled yet: that is where the user
    // wants to be, on the layout they saw. (Not when the list got shorter and the browser
    // pulled the view up to its new end.)
    const moved = Math.abs(s.scrollTop - seen.current.scrollTop) >= 1;
    const clamped = s.scrollTop < seen.current.scrollTop && s.scrollTop + s.clientHeight >= s.scrollHeight - 1;
    if (moved && !clamped) note(readView(), seen.current);
    if (stick.current) {
      const want = anchor === 'bottom' ? s.scrollHeight - s.clientHeight : 0;
      if (Math.abs(s.scrollTop - want) >= 1) s.scrollTop = want;
    } else if (pin.current) {
      const top = anchorTop(offsets, indexOf, pin.current);
      if (top !== null && Math.abs(s.scrollTop - (l.offsetTop + top)) >= 1) s.scrollTop = l.offsetTop + top;
    }
    const wanted = pendingFocus.current;
    if (wanted !== null) {
      pendingFocus.current = null;
      const el = [...l.children].find((c) => (c as HTMLElement).dataset.vkey === wanted) as HTMLElement | undefined;
      if (el) {
        ((el.querySelector('[data-nav-item]') as HTMLElement | null) ?? el).focus({ preventScroll: true });
        const sr = s.getBoundingClientRect();
        const er = el.getBoundingClientRect();
        if (er.top < sr.top) s.scrollTop += er.top - sr.top;
        else if (er.bottom > sr.bottom) s.scrollTop += Math.min(er.top - sr.top, er.bottom - sr.bottom);
      }
    }
    const v = readView();
    note(v);
    if (rangeChanged(v)) rerender();
    reach(v);
  });

  function onKeyDown(e: KeyboardEvent<HTMLElement>) {
    p.listProps?.onKeyDown?.(e);
    if (!p.keyboard || e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const l = listRef.current;
    const s = scrollerRef.current;
    if (!l || !s) return;
    const item = (document.activeElement as HTMLElement | null)?.closest<HTMLElement>('[data-vkey]');
    const at = item && l.contains(item) ? indexOf.get(item.dataset.vkey ?? '') ?? -1 : -1;
    const pageItems = Math.floor(view.current.height / sizes.estimate()) - 1;
    const next = nextIndex(e.key, at, keys.length, pageItems);
    if (next === null) return;
    e.preventDefault();
    // Scroll to it first (by the offsets held), so it is among the rendered items.
    const top = revealTop(offsets, next, view.current.top, view.current.height);
    if (top !== null) {
      s.scrollTop = l.offsetTop + top;
      note(readView());
    }
    pendingFocus.current = keys[next];
    setFocusKey(keys[next]);
    rerender();
  }

  function onFocus(e: FocusEvent<HTMLElement>) {
    p.listProps?.onFocus?.(e);
    const key = (e.target as HTMLElement).closest<HTMLElement>('[data-vkey]')?.dataset.vkey ?? null;
    if (key !== focusKey) setFocusKey(key);
  }

  function onBlur(e: FocusEvent<HTMLElement>) {
    p.listProps?.onBlur?.(e);
    if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setFocusKey(null);
  }

  // What to render: the items near the view, and the focused one wherever it is.
  const [start, end] = visibleRange(offsets, view.current.top, view.current.height, overscan);
  rendered.current = [start, end];
  const shown: number[] = [];
  const focused = focusKey !== null ? indexOf.get(focusKey) : undefined;
  if (focused !== undefined && focused < start) shown.push(focused);
  for (let i = start; i < end; i++) shown.push(i);
  if (focused !== undefined && focused >= end) shown.push(focused);

  const List = (p.as ?? 'ul') as 'ul';
  const total = offsets[keys.length];
  return (
    <div
      {...p.scrollerProps}
      ref={scrollerRefCallback}
      onScroll={onScroll}
      className={`vscroll${p.scrollerProps?.className ? ` ${p.scrollerProps.className}` : ''}`}
      style={{ position: 'relative', overflowY: 'auto', overflowAnchor: 'none', ...p.scrollerProps?.style }}
    >
      {p.header}
      <List
        {...p.listProps}
        ref={listRef as Ref<HTMLUListElement>}
        className={`vlist${p.listProps?.className ? ` ${p.listProps.className}` : ''}`}
        style={{ position: 'relative', height: total, listStyle: 'none', margin: 0, padding: 0, ...p.listProps?.style }}
        data-count={keys.length}
        onKeyDown={onKeyDown}
        onFocus={onFocus}
        onBlur={onBlur}
      >
        {shown.map((i) => (
          <li
            key={keys[i]}
            ref={observe}
            data-vkey={keys[i]}
            data-index={i}
            aria-setsize={keys.length}
            aria-posinset={i + 1}
            style={{ position: 'absolute', top: 0, left: 0, right: 0, transform: `translateY(${offsets[i]}px)` }}
          >
            {p.renderItem(items[i], i)}
          </li>
        ))}
      </List>
      {p.footer}
    </div>
  );
}
