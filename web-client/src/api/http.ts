// The REST client: JSON over `/api/v1` with the access token in memory and the refresh token
// in the hub's HttpOnly cookie (docs/api.md, "Refresh and rotation").
//
// Refresh tokens are rotated on every use and a reused one revokes the whole session, so
// refreshes are serialised twice: inside a tab one refresh is in flight at a time and every
// request that met a 401 waits for it; across tabs a named lock (Web Locks, or a localStorage
// lock where those are missing) lets one tab refresh at a time, and the new access token is
// shared with the other tabs, which then need no refresh of their own.

export interface ErrorBody {
  error: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Raised when the session cannot be continued: the user must log in again. */
export class SessionExpiredError extends ApiError {
  constructor(code: string) {
    super(401, code, 'session expired');
    this.name = 'SessionExpiredError';
  }
}

/** Runs `fn` while holding a lock shared by every tab of the origin. */
export interface RefreshLock {
  run<T>(fn: () => Promise<T>): Promise<T>;
}

/** Tells other tabs about a new access token (or a logout) and hears theirs. */
export interface TokenChannel {
  publish(message: TokenMessage): void;
  subscribe(listener: (message: TokenMessage) => void): () => void;
}

export type TokenMessage = { type: 'token'; token: string } | { type: 'logout' };

export interface LoginResponse {
  access_token: string;
  expires_in: number;
  refresh_token: string;
  user: import('./types').User;
}

type Fetch = typeof fetch;

export interface ApiClientOptions {
  fetch?: Fetch;
  lock?: RefreshLock;
  channel?: TokenChannel;
  base?: string;
}

const SESSION_END_CODES = new Set([
  'session_revoked',
  'account_deactivated',
  'invalid_refresh_token',
  'refresh_token_reused',
]);

export class ApiClient {
  private token: string | null = null;
  private refreshing: Promise<string> | null = null;
  private readonly fetchImpl: Fetch;
  private readonly lock: RefreshLock;
  private readonly channel?: TokenChannel;
  private readonly base: string;
  private expiredListeners = new Set<(code: string) => void>();
  private tokenListeners = new Set<(token: string | null) => void>();

  constructor(options: ApiClientOptions = {}) {
    this.fetchImpl = options.fetch ?? ((...args) => fetch(...args));
    this.lock = options.lock ?? inProcessLock();
    this.channel = options.channel;
    this.base = options.base ?? '/api/v1';
    this.channel?.subscribe((m) => {
      if (m.type === 'token') {
        if (this.token !== null) this.setToken(m.token);
      } else if (this.token !== null) {
        this.setToken(null);
        this.expired('session_revoked');
      }
    });
  }

  get accessToken(): string | null {
    return this.token;
  }

  /** Called once per loss of the session (refresh refused, session revoked). */
  onSessionExpired(listener: (code: string) => void): () => void {
    this.expiredListeners.add(listener);
    return () => this.expiredListeners.delete(listener);
  }

  onToken(listener: (token: string | null) => void): () => void {
    this.tokenListeners.add(listener);
    return () => this.tokenListeners.delete(listener);
  }

  private setToken(token: string | null) {
    this.token = token;
    for (const l of this.tokenListeners) l(token);
  }

  private expired(code: string) {
    for (const l of this.expiredListeners) l(code);
  }

  async login(tenant: string, email: string, password: string): Promise<LoginResponse> {
    const res = await this.raw('POST', '/auth/login', { tenant, email, password });
    const body = (await res.json()) as LoginResponse;
    this.setToken(body.access_token);
    this.channel?.publish({ type: 'token', token: body.access_token });
    return body;
  }

  /**
   * A new access token from the refresh cookie. Concurrent callers share one refresh.
   * `stale` is the token the caller saw refused: when another tab has meanwhile produced a
   * different one, that one is used and no refresh is made.
   */
  refresh(stale: string | null = this.token): Promise<string> {
    if (this.refreshing) return this.refreshing;
    const run = this.lock.run(async () => {
      if (this.token !== null && this.token !== stale) return this.token;
      const res = await this.fetchImpl(`${this.base}/auth/refresh`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        credentials: 'same-origin',
        body: '{}',
      });
      if (!res.ok) {
        const err = await readError(res);
        if (res.status !== 401) throw err;
        this.setToken(null);
        throw new SessionExpiredError(err.code);
      }
      const body = (await res.json()) as LoginResponse;
      this.setToken(body.access_token);
      this.channel?.publish({ type: 'token', token: body.access_token });
      return body.access_token;
    });
    this.refreshing = run.finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** Restores a session after a page load (the access token lives only in memory). */
  async resume(): Promise<boolean> {
    try {
      await this.refresh(null);
      return true;
    } catch (e) {
      if (e instanceof SessionExpiredError) return false;
      throw e;
    }
  }

  async logout(): Promise<void> {
    try {
      await this.raw('POST', '/auth/logout', undefined, this.token);
    } finally {
      this.setToken(null);
      this.channel?.publish({ type: 'logout' });
    }
  }

  async logoutAll(): Promise<number> {
    const { revoked } = await this.request<{ revoked: number }>('POST', '/auth/logout-all');
    this.setToken(null);
    this.channel?.publish({ type: 'logout' });
    return revoked;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }
  delete<T = void>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /** An authenticated JSON request; a 401 refreshes the token once and repeats the request. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.authed((token) => this.raw(method, path, body, token, false));
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  /** Uploads raw bytes (`POST /uploads?name=`). */
  async upload<T>(name: string, file: Blob): Promise<T> {
    const res = await this.authed((token) =>
      this.fetchImpl(`${this.base}/uploads?name=${encodeURIComponent(name)}`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': file.type || 'application/octet-stream',
        },
        body: file,
      }),
    );
    if (!res.ok) throw await readError(res);
    return (await res.json()) as T;
  }

  /** Downloads a file that needs the Authorization header (uploads). */
  async blob(path: string): Promise<Blob> {
    const res = await this.authed((token) =>
      this.fetchImpl(`${this.base}${path}`, { headers: { Authorization: `Bearer ${token}` } }),
    );
    if (!res.ok) throw await readError(res);
    return res.blob();
  }

  private async authed(send: (token: string) => Promise<Response>): Promise<Response> {
    let token = this.token ?? (await this.refreshOrExpire(null));
    let res = await send(token);
    if (res.status === 401) {
      const err = await readError(res.clone());
      if (SESSION_END_CODES.has(err.code)) {
        this.setToken(null);
        this.expired(err.code);
        throw new SessionExpiredError(err.code);
      }
      token = await this.refreshOrExpire(token);
      res = await send(token);
      if (res.status === 401) {
        const again = await readError(res);
        this.setToken(null);
        this.expired(again.code);
        throw new SessionExpiredError(again.code);
      }
    }
    if (!res.ok) throw await readError(res);
    return res;
  }

  private async refreshOrExpire(stale: string | null): Promise<string> {
    try {
      return await this.refresh(stale);
    } catch (e) {
      if (e instanceof SessionExpiredError) this.expired(e.code);
      throw e;
    }
  }

  private async raw(
    method: string,
    path: string,
    body: unknown,
    token?: string | null,
    throwOnError = true,
  ): Promise<Response> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await this.fetchImpl(`${this.base}${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (throwOnError && !res.ok) throw await readError(res);
    return res;
  }
}

export async function readError(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = res.statusText;
  try {
    const body = (await res.json()) as Partial<ErrorBody>;
    if (typeof body.error === 'string') code = body.error;
    if (typeof body.message === 'string') message = body.message;
  } catch {
    // not a JSON error body
  }
  const retry = res.headers.get('Retry-After');
  return new ApiError(res.status, code, message, retry ? Number(retry) : undefined);
}

/** A lock for one tab only (tests, or browsers with neither Web Locks nor localStorage). */
export function inProcessLock(): RefreshLock {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run<T>(fn: () => Promise<T>): Promise<T> {
      const next = tail.then(fn, fn);
      tail = next.catch(() => undefined);
      return next;
    },
  };
}

const LOCK_NAME = 'jobers-refresh';

/** The cross-tab lock: Web Locks where available, else a localStorage lease. */
export function browserLock(): RefreshLock {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (locks) {
    return { run: (fn) => locks.request(LOCK_NAME, fn) as ReturnType<typeof fn> };
  }
  if (typeof localStorage !== 'undefined') return storageLock(localStorage);
  return inProcessLock();
}

/**
 * A lease in localStorage: `{owner, until}`. A tab takes it when it is free or its lease has
 * run out (a tab that died holding it), then reads it back to see that it won.
 */
export function storageLock(
  storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>,
  leaseMs = 10_000,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): RefreshLock {
  const local = inProcessLock();
  const me = Math.random().toString(36).slice(2);
  const key = `${LOCK_NAME}-lock`;
  const read = () => {
    try {
      return JSON.parse(storage.getItem(key) ?? 'null') as { owner: string; until: number } | null;
    } catch {
      return null;
    }
  };
  return {
    run: (fn) =>
      local.run(async () => {
        for (;;) {
          const held = read();
          if (!held || held.until < Date.now()) {
            storage.setItem(key, JSON.stringify({ owner: me, until: Date.now() + leaseMs }));
            await sleep(20);
            if (read()?.owner === me) break;
          } else {
            await sleep(50);
          }
        }
        try {
          return await fn();
        } finally {
          if (read()?.owner === me) storage.removeItem(key);
        }
      }),
  };
}

/** Shares tokens between tabs over a BroadcastChannel (where the browser has one). */
export function broadcastTokenChannel(): TokenChannel | undefined {
  if (typeof BroadcastChannel === 'undefined') return undefined;
  const bc = new BroadcastChannel('jobers-auth');
  return {
    publish: (m) => bc.postMessage(m),
    subscribe: (listener) => {
      const h = (e: MessageEvent) => listener(e.data as TokenMessage);
      bc.addEventListener('message', h);
      return () => bc.removeEventListener('message', h);
    },
  };
}
