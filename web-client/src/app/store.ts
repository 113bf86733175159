// A minimal external store for React's useSyncExternalStore: state changes only by dispatch.
import { useSyncExternalStore } from 'react';

export interface Store<S, A> {
  getState(): S;
  dispatch(action: A): void;
  subscribe(listener: () => void): () => void;
}

export function createStore<S, A>(reducer: (s: S, a: A) => S, initial: S): Store<S, A> {
  let state = initial;
  const listeners = new Set<() => void>();
  return {
    getState: () => state,
    dispatch(action) {
      const next = reducer(state, action);
      if (next === state) return;
      state = next;
      for (const l of listeners) l();
    },
    subscribe(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}

/** A store that holds one value, replaced by `set`. */
export function valueStore<T>(initial: T): Store<T, T> & { set(v: T): void } {
  const s = createStore<T, T>((_, v) => v, initial);
  return { ...s, set: (v: T) => s.dispatch(v) };
}

export function useStore<S, A>(store: Store<S, A>): S {
  return useSyncExternalStore(store.subscribe, store.getState, store.getState);
}
