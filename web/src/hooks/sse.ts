// A server-sent-events connection that survives drops without losing events.
//
// While the browser's EventSource retries by itself (readyState CONNECTING) it sends Last-Event-ID natively.
// When it gives up (readyState CLOSED: a non-200 answer, a proxy cut), we build a new one after a backoff and
// pass the last id we saw as a query parameter (`?since=` on the job routes), so the API resumes right after it.

export type SSEState = "connecting" | "open" | "reconnecting" | "closed";

export interface SSEMessage {
  type: string;
  data: unknown;
  id: string | null;
}

export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: Event) => void): void;
  close(): void;
}

export type EventSourceFactory = (url: string) => EventSourceLike;

export const DEFAULT_EVENT_TYPES = ["message", "status", "progress", "sample", "checkpoint", "log", "artifact", "job", "end"];

const CLOSED = 2;

export interface SSEOptions {
  eventTypes?: string[];
  onMessage: (message: SSEMessage) => void;
  onState?: (state: SSEState) => void;
  factory?: EventSourceFactory;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Event types after which the stream is complete (the server will send nothing more). */
  terminalTypes?: string[];
  /** Query parameter the API reads the resume id from when a source is recreated by hand. */
  resumeParam?: string;
}

export function withLastEventId(url: string, lastEventId: string | null, param = "since"): string {
  if (!lastEventId) return url;
  const parsed = new URL(url, "http://relative.invalid");
  parsed.searchParams.set(param, lastEventId);
  const isAbsolute = /^[a-z][a-z0-9+.-]*:\/\//i.test(url);
  return isAbsolute ? parsed.toString() : `${parsed.pathname}${parsed.search}${parsed.hash}`;
}

function parseData(raw: unknown): unknown {
  if (typeof raw !== "string") return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

const defaultFactory: EventSourceFactory = (url) => new EventSource(url);

export class SSEConnection {
  lastEventId: string | null = null;
  state: SSEState = "connecting";
  private source: EventSourceLike | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private attempts = 0;
  private stopped = false;
  private readonly url: string;
  private readonly options: SSEOptions;

  constructor(url: string, options: SSEOptions, lastEventId: string | null = null) {
    this.url = url;
    this.options = options;
    this.lastEventId = lastEventId;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  close(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.source?.close();
    this.source = null;
    this.setState("closed");
  }

  private setState(state: SSEState): void {
    if (this.state === state) return;
    this.state = state;
    this.options.onState?.(state);
  }

  private open(): void {
    const factory = this.options.factory ?? defaultFactory;
    const source = factory(withLastEventId(this.url, this.lastEventId, this.options.resumeParam));
    this.source = source;
    this.setState(this.attempts > 0 ? "reconnecting" : "connecting");
    source.addEventListener("open", () => {
      this.attempts = 0;
      this.setState("open");
    });
    const types = this.options.eventTypes ?? DEFAULT_EVENT_TYPES;
    for (const type of types) source.addEventListener(type, (event) => this.handle(type, event as MessageEvent));
    source.addEventListener("error", (event) => {
      // A named `error` event from the server carries data; the transport's error event does not.
      const message = event as MessageEvent;
      if (typeof message.data === "string") {
        this.handle("error", message);
        return;
      }
      this.onTransportError(source);
    });
  }

  private handle(type: string, event: MessageEvent): void {
    if (event.lastEventId) this.lastEventId = event.lastEventId;
    this.options.onMessage({ type, data: parseData(event.data), id: event.lastEventId || null });
    if (this.options.terminalTypes?.includes(type)) this.close();
  }

  private onTransportError(source: EventSourceLike): void {
    if (this.stopped || source !== this.source) return;
    if (source.readyState !== CLOSED) {
      // The browser is retrying and will send Last-Event-ID itself.
      this.setState("reconnecting");
      return;
    }
    source.close();
    this.attempts += 1;
    this.setState("reconnecting");
    const initial = this.options.initialDelayMs ?? 1000;
    const max = this.options.maxDelayMs ?? 15000;
    const delay = Math.min(max, initial * 2 ** Math.min(this.attempts - 1, 6));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.open();
    }, delay);
  }
}
