// The arithmetic of virtualised lists (VirtualList.tsx), kept apart from React so it can be
// tested on its own: item heights by key (measured, or an estimate until an item has been
// rendered), the offsets of the items, which items a scroll position shows, the anchor that
// keeps the view still when items above it change height or are put above it (older
// pages), and the scroll position that brings an item into view.

/** Heights of a list's items by key; an item never rendered gets the average of the measured ones. */
export class SizeCache {
  private sizes = new Map<string, number>();
  private sum = 0;

  constructor(private readonly fallback: number) {}

  /** The height assumed for an item not yet measured. */
  estimate(): number {
    return this.sizes.size ? this.sum / this.sizes.size : this.fallback;
  }

  get(key: string): number {
    return this.sizes.get(key) ?? this.estimate();
  }

  has(key: string): boolean {
    return this.sizes.has(key);
  }

  /** Records a measured height; true when it differs from the one held (by half a pixel or more). */
  set(key: string, height: number): boolean {
    const held = this.sizes.get(key);
    if (held !== undefined && Math.abs(held - height) < 0.5) return false;
    this.sum += height - (held ?? 0);
    this.sizes.set(key, height);
    return true;
  }

  /** Forgets items no longer in the list (a new filter), so the estimate follows the list. */
  retain(keys: Iterable<string>) {
    const keep = new Set(keys);
    for (const [k, h] of this.sizes) {
      if (!keep.has(k)) {
        this.sizes.delete(k);
        this.sum -= h;
      }
    }
  }

  get measured(): number {
    return this.sizes.size;
  }
}

/**
 * The top of every item and, last, the total height: `offsets[i]` is where item `i` starts,
 * `offsets[keys.length]` where the list ends. One estimate for all unmeasured items, taken
 * once, so the offsets are consistent with each other.
 */
export function layout(keys: readonly string[], sizes: SizeCache): Float64Array {
  const offsets = new Float64Array(keys.length + 1);
  const estimate = sizes.estimate();
  let y = 0;
  for (let i = 0; i < keys.length; i++) {
    offsets[i] = y;
    y += sizes.has(keys[i]) ? sizes.get(keys[i]) : estimate;
  }
  offsets[keys.length] = y;
  return offsets;
}

/** The index of the item at height `y` (clamped to the list), by binary search. */
export function indexAt(offsets: Float64Array, y: number): number {
  const n = offsets.length - 1;
  if (n <= 0) return 0;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The items to render, `[start, end)`: those within `overscan` pixels of the visible part. */
export function visibleRange(offsets: Float64Array, top: number, height: number, overscan: number): [number, number] {
  const n = offsets.length - 1;
  if (n <= 0) return [0, 0];
  const start = indexAt(offsets, Math.max(0, top - overscan));
  const end = indexAt(offsets, Math.max(0, top + height + overscan)) + 1;
  return [start, Math.min(n, end)];
}

/** What the view is pinned to: an item and the distance of the view's top below the item's top. */
export interface Anchor {
  key: string;
  delta: number;
}

/** The anchor for the view whose top is at `top` (relative to the list): the item there. */
export function anchorAt(offsets: Float64Array, keys: readonly string[], top: number): Anchor | null {
  if (!keys.length) return null;
  const i = indexAt(offsets, top);
  return { key: keys[i], delta: top - offsets[i] };
}

/** Where the view's top must be (relative to the list) to show `anchor` as before; null when its item left. */
export function anchorTop(offsets: Float64Array, indexOf: ReadonlyMap<string, number>, anchor: Anchor): number | null {
  const i = indexOf.get(anchor.key);
  return i === undefined ? null : offsets[i] + anchor.delta;
}

/**
 * The view top that shows item `i` entirely (or its beginning, when it is taller than the
 * view), moving as little as possible; null when it is in view already.
 */
export function revealTop(offsets: Float64Array, i: number, top: number, height: number): number | null {
  const a = offsets[i];
  const b = offsets[i + 1];
  if (a < top) return a;
  if (b > top + height) return Math.min(a, b - height);
  return null;
}

/** The item keyboard navigation moves to from `at` (-1: none focused) in a list of `count`. */
export function nextIndex(key: string, at: number, count: number, pageItems: number): number | null {
  if (!count) return null;
  const last = count - 1;
  switch (key) {
    case 'ArrowDown':
      return at < 0 ? 0 : Math.min(last, at + 1);
    case 'ArrowUp':
      return at < 0 ? 0 : Math.max(0, at - 1);
    case 'PageDown':
      return Math.min(last, Math.max(0, at) + Math.max(1, pageItems));
    case 'PageUp':
      return Math.max(0, at - Math.max(1, pageItems));
    case 'Home':
      return 0;
    case 'End':
      return last;
    default:
      return null;
  }
}
