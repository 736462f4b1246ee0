import { act, render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { useSSE } from "./useSSE";
import type { EventSourceLike } from "./sse";

class Source implements EventSourceLike {
  static all: Source[] = [];
  readyState = 0;
  closed = false;
  listeners: Record<string, ((e: Event) => void)[]> = {};
  constructor(readonly url: string) {
    Source.all.push(this);
  }
  addEventListener(type: string, fn: (e: Event) => void) {
    (this.listeners[type] ??= []).push(fn);
  }
  close() {
    this.closed = true;
  }
  fire(type: string, init?: MessageEventInit) {
    for (const fn of this.listeners[type] ?? []) fn(init ? new MessageEvent(type, init) : new Event(type));
  }
}

function Probe({ url, seen }: { url: string | null; seen: unknown[] }) {
  const { state, lastEventId } = useSSE(url, (m) => seen.push(m.data), { factory: (u) => new Source(u) });
  return <div data-testid="probe">{`${state}|${lastEventId ?? ""}`}</div>;
}

describe("useSSE", () => {
  it("shows the connection state, delivers messages and closes on unmount", () => {
    Source.all = [];
    const seen: unknown[] = [];
    const view = render(<Probe url="/api/events" seen={seen} />);
    expect(view.getByTestId("probe").textContent).toBe("connecting|");
    act(() => {
      Source.all[0].readyState = 1;
      Source.all[0].fire("open");
      Source.all[0].fire("status", { data: '{"status":"running"}', lastEventId: "4-0" });
    });
    expect(view.getByTestId("probe").textContent).toBe("open|4-0");
    expect(seen).toEqual([{ status: "running" }]);
    view.unmount();
    expect(Source.all[0].closed).toBe(true);
  });

  it("does not connect without a URL", () => {
    Source.all = [];
    const view = render(<Probe url={null} seen={[]} />);
    expect(Source.all).toHaveLength(0);
    expect(view.getByTestId("probe").textContent).toBe("closed|");
  });
});
