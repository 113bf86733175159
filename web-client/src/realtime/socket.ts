// The WebSocket client of protocol version 1 (docs/protocol.md): the `hello` handshake with
// the last remembered position, reconnection with backoff and jitter, a heartbeat of `ping`
// frames, and the close codes' documented reactions. Frames are handed to `onFrame`; the
// chat state decides what they mean.
import type { ServerFrame } from '../api/types';

export type ConnectionState =
  /** Not started, or stopped for good (logged out, session ended). */
  | 'idle'
  /** The first connection is being made. */
  | 'connecting'
  /** Connected: handshake, presence snapshot and replay are running. */
  | 'syncing'
  | 'live'
  /** The connection was lost; a new one is being attempted after a delay. */
  | 'reconnecting'
  /** Another connection of the user pushed this one out (4009): reconnect on request only. */
  | 'displaced';

export type CloseAction = 'reconnect' | 'reconnect_now' | 'refresh' | 'login' | 'manual' | 'stop';

/** What to do when the hub closes the connection with `code` (protocol.md, "Close codes"). */
export function closeAction(code: number, reason: string): CloseAction {
  switch (code) {
    case 1001: // server_shutdown: another node will take us
      return 'reconnect_now';
    case 4001:
      return reason === 'invalid_token' ? 'refresh' : 'stop';
    case 4002: // token_expired
      return 'refresh';
    case 4003: // session_revoked
    case 4004: // account_deactivated
      return 'login';
    case 4009: // too_many_connections: reconnecting would push out another tab
      return 'manual';
    default:
      // 1000, 1006 (network), 1009, 1011, 4008 slow_consumer, 4011, 4012, 4013
      // resume_required, 4029 rate_limited: resume with `since`.
      return 'reconnect';
  }
}

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30_000;

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from 0.5 s up to 30 s,
 * with "equal jitter" (half fixed, half random) so that a node restart does not bring every
 * client back in the same millisecond.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/** The least wait after 4029 rate_limited. */
const RATE_LIMITED_MIN_MS = 5000;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

/** The subset of the browser's WebSocket the client uses. */
export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface RealtimeOptions {
  url: string;
  /** The access token to put in `hello`. */
  token(): string | null;
  /**
   * A fresh access token (after 4002 / 4001 invalid_token); `stale` is the token the hub
   * refused (or null when there was none). Rejects when the session is over.
   */
  refresh(stale: string | null): Promise<string>;
  /** The position to resume from (`since`), or null on a first connect. */
  position(): number | null;
  onFrame(frame: ServerFrame): void;
  onState?(state: ConnectionState): void;
  /** The session ended (4003, 4004, or refreshing failed): go to the login page. */
  onSessionEnded?(code: string): void;
  createSocket?(url: string): SocketLike;
  timers?: Timers;
  random?: () => number;
  /** Interval of application `ping` frames. */
  pingIntervalMs?: number;
  /** A `pong` must follow within this, else the connection is taken as dead. */
  pongTimeoutMs?: number;
}

type Waiter = { resolve(frame: ServerFrame): void; reject(err: Error): void };

export class RealtimeClient {
  private ws: SocketLike | null = null;
  private state: ConnectionState = 'idle';
  private attempt = 0;
  private everLive = false;
  private running = false;
  private retryTimer: unknown = null;
  private pingTimer: unknown = null;
  private pongTimer: unknown = null;
  private refSeq = 0;
  private waiters = new Map<string, Waiter>();
  /** Why the client itself closed the socket, if it did. */
  private selfClose: 'heartbeat' | 'stop' | 'test_drop' | null = null;
  private holdUntil = 0;
  /** The token sent in the last `hello`. */
  private usedToken: string | null = null;
  private readonly timers: Timers;
  private readonly random: () => number;

  constructor(private readonly opts: RealtimeOptions) {
    this.timers = opts.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (id) => globalThis.clearTimeout(id as ReturnType<typeof setTimeout>),
    };
    this.random = opts.random ?? Math.random;
  }

  get connectionState(): ConnectionState {
    return this.state;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.running = false;
    this.clearTimers();
    this.failWaiters('stopped');
    if (this.ws) {
      this.selfClose = 'stop';
      this.ws.close(1000, 'bye');
      this.ws = null;
    }
    this.setState('idle');
  }

  /** After 4009: the user asked to reconnect. */
  reconnectNow() {
    if (!this.running) this.running = true;
    this.holdUntil = 0;
    this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (!this.ws) this.connect();
  }

  /** The browser says the network is back: do not wait out the backoff. */
  networkBack() {
    if (this.running && this.state === 'reconnecting' && !this.ws && Date.now() >= this.holdUntil) {
      this.reconnectNow();
    }
  }

  /** Sends a frame after the handshake; false when there is no live connection. */
  send(frame: Record<string, unknown>): boolean {
    if (!this.ws || this.state !== 'live' || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends a frame with a fresh `ref` and resolves with its `ack`; rejects on its `error`. */
  request(frame: Record<string, unknown>): Promise<ServerFrame> {
    const ref = `r${++this.refSeq}`;
    return new Promise((resolve, reject) => {
      if (!this.send({ ...frame, ref })) {
        reject(new RealtimeError('disconnected', 'not connected'));
        return;
      }
      this.waiters.set(ref, { resolve, reject });
    });
  }

  /**
   * Test hook: drop the connection as a network failure would, and stay away for `holdMs`
   * (by default until `reconnectNow`).
   */
  dropForTest(holdMs = Infinity) {
    this.holdUntil = Date.now() + holdMs;
    if (this.ws) {
      this.selfClose = 'test_drop';
      this.ws.close(4000, 'test_drop');
    }
  }

  private setState(s: ConnectionState) {
    if (this.state === s) return;
    this.state = s;
    this.opts.onState?.(s);
  }

  private connect() {
    if (!this.running) return;
    this.setState(this.everLive ? 'reconnecting' : 'connecting');
    const token = this.opts.token();
    this.usedToken = token;
    if (!token) {
      this.refreshThen();
      return;
    }
    const create = this.opts.createSocket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike);
    let ws: SocketLike;
    try {
      ws = create(this.opts.url);
    } catch {
      this.scheduleReconnect(this.attempt++);
      return;
    }
    this.ws = ws;
    this.selfClose = null;
    ws.onopen = () => {
      const since = this.opts.position();
      const hello: Record<string, unknown> = { type: 'hello', v: 1, token, ref: 'hello' };
      if (since !== null) hello.since = since;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(ev.data) as ServerFrame;
      } catch {
        return;
      }
      this.handleFrame(frame);
    };
    ws.onerror = () => {
      // The close event follows and decides.
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.clearTimers();
      this.failWaiters('disconnected');
      this.handleClose(ev.code, ev.reason);
    };
  }

  private handleFrame(frame: ServerFrame) {
    switch (frame.type) {
      case 'welcome':
        this.setState('syncing');
        break;
      case 'live':
        this.attempt = 0;
        this.everLive = true;
        this.setState('live');
        this.startHeartbeat();
        break;
      case 'pong':
        this.timers.clearTimeout(this.pongTimer);
        this.pongTimer = null;
        return;
      case 'ack':
      case 'error': {
        const ref = frame.ref;
        const w = ref ? this.waiters.get(ref) : undefined;
        if (w && ref) {
          this.waiters.delete(ref);
          if (frame.type === 'ack') w.resolve(frame);
          else w.reject(new RealtimeError(frame.code, frame.message));
        }
        break;
      }
    }
    this.opts.onFrame(frame);
  }

  private handleClose(code: number, reason: string) {
    if (!this.running) return;
    const self = this.selfClose;
    this.selfClose = null;
    if (self === 'stop') return;
    const action: CloseAction = self ? 'reconnect' : closeAction(code, reason);
    switch (action) {
      case 'reconnect_now':
        this.scheduleReconnect(0, 0);
        break;
      case 'reconnect': {
        const delay = backoffDelay(this.attempt++, this.random);
        this.scheduleReconnect(0, code === 4029 ? Math.max(delay, RATE_LIMITED_MIN_MS) : delay);
        break;
      }
      case 'refresh':
        this.refreshThen();
        break;
      case 'login':
        this.running = false;
        this.setState('idle');
        this.opts.onSessionEnded?.(reason || 'session_revoked');
        break;
      case 'manual':
        this.setState('displaced');
        break;
      case 'stop':
        this.running = false;
        this.setState('idle');
        break;
    }
  }

  private refreshThen() {
    this.setState(this.everLive ? 'reconnecting' : 'connecting');
    this.opts.refresh(this.usedToken).then(
      () => this.scheduleReconnect(0, 0),
      (e: { name?: string; code?: string }) => {
        if (e?.name !== 'SessionExpiredError') {
          // The hub could not be reached or failed: try again later.
          this.scheduleReconnect(this.attempt++);
          return;
        }
        this.running = false;
        this.setState('idle');
        this.opts.onSessionEnded?.(e.code ?? 'session_expired');
      },
    );
  }

  private scheduleReconnect(attempt: number, delay = backoffDelay(attempt, this.random)) {
    if (!this.running) return;
    this.setState(this.everLive ? 'reconnecting' : 'connecting');
    this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.holdUntil === Infinity) return;
    const wait = Math.max(delay, this.holdUntil - Date.now());
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, wait);
  }

  private startHeartbeat() {
    const interval = this.opts.pingIntervalMs ?? 20_000;
    const timeout = this.opts.pongTimeoutMs ?? 10_000;
    const tick = () => {
      this.pingTimer = this.timers.setTimeout(() => {
        if (!this.ws || this.state !== 'live') return;
        this.ws.send(JSON.stringify({ type: 'ping', ref: `p${++this.refSeq}` }));
        this.timers.clearTimeout(this.pongTimer);
        this.pongTimer = this.timers.setTimeout(() => {
          // No answer: the connection is dead even if the browser has not noticed.
          const ws = this.ws;
          if (!ws) return;
          this.selfClose = 'heartbeat';
          ws.close(4000, 'heartbeat');
          // Some browsers take long to report the close of a dead connection.
          ws.onclose?.({ code: 4000, reason: 'heartbeat' });
        }, timeout);
        tick();
      }, interval);
    };
    tick();
  }

  private clearTimers() {
    this.timers.clearTimeout(this.pingTimer);
    this.timers.clearTimeout(this.pongTimer);
    this.pingTimer = null;
    this.pongTimer = null;
  }

  private failWaiters(code: string) {
    for (const w of this.waiters.values()) w.reject(new RealtimeError(code, code));
    this.waiters.clear();
  }
}

export class RealtimeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RealtimeError';
  }
}
