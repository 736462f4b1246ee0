import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SSEConnection, withLastEventId, type EventSourceLike, type SSEMessage, type SSEState } from "./sse";

// A stand-in for the browser's EventSource: the test drives its lifecycle.
class FakeEventSource implements EventSourceLike {
  static instances: FakeEventSource[] = [];
  readyState = 0;
  closed = false;
  private listeners = new Map<string, ((event: Event) => void)[]>();

  constructor(readonly url: string) {
    FakeEventSource.instances.push(this);
  }

  addEventListener(type: string, listener: (event: Event) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.closed = true;
    this.readyState = 2;
  }

  emit(type: string, init?: MessageEventInit): void {
    const event = init ? new MessageEvent(type, init) : new Event(type);
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }

  open(): void {
    this.readyState = 1;
    this.emit("open");
  }

  message(type: string, data: unknown, id: string): void {
    this.emit(type, { data: JSON.stringify(data), lastEventId: id });
  }

  failAndRetry(): void {
    this.readyState = 0; // the browser is retrying by itself
    this.emit("error");
  }

  failForGood(): void {
    this.readyState = 2; // the browser gave up
    this.emit("error");
  }
}

describe("SSEConnection", () => {
  let messages: SSEMessage[];
  let states: SSEState[];

  beforeEach(() => {
    vi.useFakeTimers();
    FakeEventSource.instances = [];
    messages = [];
    states = [];
  });
  afterEach(() => vi.useRealTimers());

  function connect(url = "/api/jobs/j1/events") {
    const connection = new SSEConnection(url, {
      factory: (u) => new FakeEventSource(u),
      onMessage: (m) => messages.push(m),
      onState: (s) => states.push(s),
      initialDelayMs: 100,
    });
    connection.start();
    return connection;
  }

  it("delivers named events with parsed JSON and remembers the last id", () => {
    const connection = connect();
    const source = FakeEventSource.instances[0];
    source.open();
    source.message("progress", { step: 3, loss: 0.5 }, "1700-0");
    source.message("log", { message: "hi" }, "1700-1");
    expect(messages).toEqual([
      { type: "progress", data: { step: 3, loss: 0.5 }, id: "1700-0" },
      { type: "log", data: { message: "hi" }, id: "1700-1" },
    ]);
    expect(connection.lastEventId).toBe("1700-1");
    expect(states).toEqual(["open"]);
  });

  it("lets the browser retry natively while it is still connecting", () => {
    connect();
    const source = FakeEventSource.instances[0];
    source.open();
    source.failAndRetry();
    vi.advanceTimersByTime(60_000);
    expect(FakeEventSource.instances).toHaveLength(1);
    expect(states.at(-1)).toBe("reconnecting");
    source.open();
    expect(states.at(-1)).toBe("open");
  });

  it("recreates a closed source with the last event id after a backoff", () => {
    connect("/api/jobs/j1/events?history=1");
    const first = FakeEventSource.instances[0];
    first.open();
    first.message("progress", { step: 1 }, "5-0");
    first.message("progress", { step: 2 }, "6-0");
    first.failForGood();
    expect(FakeEventSource.instances).toHaveLength(1);
    vi.advanceTimersByTime(99);
    expect(FakeEventSource.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeEventSource.instances).toHaveLength(2);
    const second = FakeEventSource.instances[1];
    expect(second.url).toBe("/api/jobs/j1/events?history=1&since=6-0");
    second.open();
    second.message("progress", { step: 3 }, "7-0");
    expect(messages.map((m) => m.data)).toEqual([{ step: 1 }, { step: 2 }, { step: 3 }]);
  });

  it("backs off exponentially while the server stays away, and resets after success", () => {
    connect();
    FakeEventSource.instances[0].failForGood();
    vi.advanceTimersByTime(100);
    FakeEventSource.instances[1].failForGood();
    vi.advanceTimersByTime(199);
    expect(FakeEventSource.instances).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeEventSource.instances).toHaveLength(3);
    FakeEventSource.instances[2].open();
    FakeEventSource.instances[2].failForGood();
    vi.advanceTimersByTime(100);
    expect(FakeEventSource.instances).toHaveLength(4);
  });

  it("treats a server-sent `error` event as data, not as a dropped connection", () => {
    connect();
    const source = FakeEventSource.instances[0];
    source.open();
    source.message("error", { message: "out of memory" }, "9-0");
    expect(messages).toEqual([{ type: "error", data: { message: "out of memory" }, id: "9-0" }]);
    expect(states.at(-1)).toBe("open");
  });

  it("stops for good on close and after a terminal event", () => {
    const connection = new SSEConnection("/x", {
      factory: (u) => new FakeEventSource(u),
      onMessage: (m) => messages.push(m),
      terminalTypes: ["end"],
    });
    connection.start();
    const source = FakeEventSource.instances[0];
    source.open();
    source.message("end", {}, "10-0");
    expect(source.closed).toBe(true);
    expect(connection.state).toBe("closed");
    source.failForGood();
    vi.advanceTimersByTime(60_000);
    expect(FakeEventSource.instances).toHaveLength(1);
  });
});

describe("withLastEventId", () => {
  it("adds or replaces the parameter", () => {
    expect(withLastEventId("/api/events", null)).toBe("/api/events");
    expect(withLastEventId("/api/events", "1-0")).toBe("/api/events?since=1-0");
    expect(withLastEventId("/api/events?since=1-0&a=b", "2-0")).toBe("/api/events?since=2-0&a=b");
    expect(withLastEventId("http://h:1/e?x=1", "3-0", "last_event_id")).toBe("http://h:1/e?x=1&last_event_id=3-0");
  });
});
