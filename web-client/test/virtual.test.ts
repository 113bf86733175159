import { describe, expect, it } from 'vitest';
import { SizeCache, anchorAt, anchorTop, indexAt, layout, nextIndex, revealTop, visibleRange } from '../src/ui/virtual';

const keys = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `k${from + i}`);
const indexOf = (ks: string[]) => new Map(ks.map((k, i) => [k, i]));

describe('SizeCache', () => {
  it('estimates unmeasured items with the average of the measured ones', () => {
    const c = new SizeCache(50);
    expect(c.get('a')).toBe(50);
    expect(c.set('a', 100)).toBe(true);
    expect(c.set('b', 200)).toBe(true);
    expect(c.get('c')).toBe(150);
    expect(c.get('a')).toBe(100);
  });

  it('reports a change only when a height moves by half a pixel or more', () => {
    const c = new SizeCache(50);
    c.set('a', 100);
    expect(c.set('a', 100.2)).toBe(false);
    expect(c.set('a', 120)).toBe(true);
    expect(c.estimate()).toBe(120);
  });
});

describe('layout and the visible range', () => {
  it('offsets add measured heights and the estimate for the rest', () => {
    const c = new SizeCache(10);
    c.set('k1', 30);
    // estimate is now 30 (the only measurement)
    expect([...layout(['k0', 'k1', 'k2'], c)]).toEqual([0, 30, 60, 90]);
    c.set('k0', 10);
    // estimate 20: k2 counts 20
    expect([...layout(['k0', 'k1', 'k2'], c)]).toEqual([0, 10, 40, 60]);
  });

  it('finds the item at a height by binary search, clamped to the list', () => {
    const o = layout(keys(100), new SizeCache(20));
    expect(indexAt(o, 0)).toBe(0);
    expect(indexAt(o, 19.9)).toBe(0);
    expect(indexAt(o, 20)).toBe(1);
    expect(indexAt(o, 1990)).toBe(99);
    expect(indexAt(o, 1e9)).toBe(99);
    expect(indexAt(o, -5)).toBe(0);
    expect(indexAt(layout([], new SizeCache(20)), 10)).toBe(0);
  });

  it('renders only the items near the view, however long the list', () => {
    const o = layout(keys(10_000), new SizeCache(70));
    const [a, b] = visibleRange(o, 350_000, 700, 600);
    expect(a).toBe(Math.floor((350_000 - 600) / 70));
    expect(b).toBe(Math.floor((350_000 + 700 + 600) / 70) + 1);
    expect(b - a).toBeLessThan(40);
    expect(visibleRange(o, 0, 700, 600)).toEqual([0, 19]);
    expect(visibleRange(o, 700_000 - 700, 700, 600)[1]).toBe(10_000);
    expect(visibleRange(layout([], new SizeCache(70)), 0, 700, 600)).toEqual([0, 0]);
  });
});

describe('anchoring', () => {
  it('keeps the view on the same item when an older page is put above it', () => {
    const c = new SizeCache(50);
    const before = keys(50, 100);
    const o1 = layout(before, c);
    const anchor = anchorAt(o1, before, 1234)!;
    expect(anchor.key).toBe('k124');
    expect(anchor.delta).toBe(34);
    const after = [...keys(50, 50), ...before];
    const o2 = layout(after, c);
    expect(anchorTop(o2, indexOf(after), anchor)).toBe(1234 + 50 * 50);
  });

  it('keeps the view still when items above it are measured taller than estimated', () => {
    const c = new SizeCache(50);
    const ks = keys(40);
    const anchor = anchorAt(layout(ks, c), ks, 1000)!; // k20 at its top
    expect(anchor).toEqual({ key: 'k20', delta: 0 });
    for (let i = 10; i < 20; i++) c.set(`k${i}`, 80);
    // the estimate moved too (average 80), so every unmeasured item above counts 80
    expect(anchorTop(layout(ks, c), indexOf(ks), anchor)).toBe(20 * 80);
  });

  it('has nothing to pin to when the item left the list', () => {
    const c = new SizeCache(50);
    expect(anchorTop(layout(['a'], c), indexOf(['a']), { key: 'gone', delta: 0 })).toBeNull();
    expect(anchorAt(layout([], c), [], 0)).toBeNull();
  });
});

describe('revealing an item', () => {
  const o = layout(keys(100), new SizeCache(50));
  it('scrolls as little as possible', () => {
    expect(revealTop(o, 5, 0, 500)).toBeNull();
    expect(revealTop(o, 20, 0, 500)).toBe(21 * 50 - 500);
    expect(revealTop(o, 2, 500, 500)).toBe(100);
  });
  it('shows the beginning of an item taller than the view', () => {
    const c = new SizeCache(50);
    c.set('k3', 900);
    const t = layout(keys(10), c);
    expect(revealTop(t, 3, 0, 500)).toBe(t[3]);
  });
});

describe('keyboard moves', () => {
  it('moves by one, by a page and to the ends, staying in the list', () => {
    expect(nextIndex('ArrowDown', -1, 10, 5)).toBe(0);
    expect(nextIndex('ArrowDown', 3, 10, 5)).toBe(4);
    expect(nextIndex('ArrowDown', 9, 10, 5)).toBe(9);
    expect(nextIndex('ArrowUp', 0, 10, 5)).toBe(0);
    expect(nextIndex('ArrowUp', 4, 10, 5)).toBe(3);
    expect(nextIndex('PageDown', 3, 10, 5)).toBe(8);
    expect(nextIndex('PageDown', 8, 10, 5)).toBe(9);
    expect(nextIndex('PageUp', 3, 10, 5)).toBe(0);
    expect(nextIndex('PageDown', 0, 10, 0)).toBe(1);
    expect(nextIndex('Home', 7, 10, 5)).toBe(0);
    expect(nextIndex('End', 0, 10_000, 5)).toBe(9_999);
    expect(nextIndex('Enter', 0, 10, 5)).toBeNull();
    expect(nextIndex('ArrowDown', -1, 0, 5)).toBeNull();
  });
});
