// Desktop notifications and a short sound for threads newly assigned to the user and for
// mentions in notes. The user turns them on and off (kept in localStorage); everything is
// guarded, because the Notification API is missing in some browsers and contexts (and
// permission may be refused), and audio may be blocked until the user has interacted.

const KEY = 'jobers.notify';

export interface NotifyOptions {
  title: string;
  body: string;
  tag: string;
  onClick?: () => void;
}

export function notificationsSupported(): boolean {
  return typeof globalThis.Notification === 'function';
}

export function notificationsEnabled(): boolean {
  try {
    return localStorage.getItem(KEY) !== 'off';
  } catch {
    return true;
  }
}

/** Turns notifications on or off; turning on asks for permission when not yet decided. */
export async function setNotificationsEnabled(on: boolean): Promise<NotificationPermission | 'unsupported'> {
  try {
    localStorage.setItem(KEY, on ? 'on' : 'off');
  } catch {
    // private mode: lasts for this page
  }
  if (!notificationsSupported()) return 'unsupported';
  if (on && Notification.permission === 'default') {
    try {
      return await Notification.requestPermission();
    } catch {
      return Notification.permission;
    }
  }
  return Notification.permission;
}

let audio: AudioContext | null = null;

/** A short two-tone chime through Web Audio (no sound file to load). */
export function chime() {
  try {
    const Ctx = globalThis.AudioContext ?? (globalThis as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
    if (!Ctx) return;
    audio ??= new Ctx();
    const now = audio.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.12);
      gain.gain.exponentialRampToValueAtTime(0.15, now + i * 0.12 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.12 + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.12);
      osc.stop(now + i * 0.12 + 0.22);
    }
  } catch {
    // audio blocked or unavailable
  }
}

/** Shows a desktop notification and plays the chime, when the user wants them. */
export function notify(o: NotifyOptions): boolean {
  if (!notificationsEnabled()) return false;
  chime();
  if (!notificationsSupported() || Notification.permission !== 'granted') return false;
  try {
    const n = new Notification(o.title, { body: o.body, tag: o.tag });
    n.onclick = () => {
      globalThis.focus?.();
      o.onClick?.();
      n.close();
    };
    return true;
  } catch {
    // e.g. Chrome on Android: only service-worker notifications
    return false;
  }
}
