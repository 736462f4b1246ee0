import { useEffect, useRef, useState } from "react";
import { SSEConnection, type SSEMessage, type SSEOptions, type SSEState } from "./sse";

export type { SSEMessage, SSEState } from "./sse";

/**
 * Subscribe to a server-sent-events URL for as long as the component is mounted and `url` is not null.
 * The handler may change between renders without reconnecting; the connection state is returned for display.
 */
export function useSSE(
  url: string | null,
  onMessage: (message: SSEMessage) => void,
  options: Omit<SSEOptions, "onMessage" | "onState"> = {},
): { state: SSEState; lastEventId: string | null } {
  const handler = useRef(onMessage);
  handler.current = onMessage;
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const [state, setState] = useState<SSEState>(url ? "connecting" : "closed");
  const [lastEventId, setLastEventId] = useState<string | null>(null);

  useEffect(() => {
    if (!url) {
      setState("closed");
      return;
    }
    const connection = new SSEConnection(url, {
      ...optionsRef.current,
      onMessage: (message) => {
        if (message.id) setLastEventId(message.id);
        handler.current(message);
      },
      onState: setState,
    });
    connection.start();
    return () => connection.close();
  }, [url]);

  return { state, lastEventId };
}
