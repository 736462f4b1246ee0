// Client logger: console always; errors also to POST /api/logs, redacted before they leave the browser.
import { redactText, redactUrl, redactValue } from "../log-redaction/redact";

type Level = "debug" | "info" | "warn" | "error";

const MAX_REPORTS_PER_MINUTE = 10;
const sentAt: number[] = [];
const recentMessages = new Map<string, number>();

function allowed(message: string): boolean {
  const now = Date.now();
  while (sentAt.length && now - sentAt[0] > 60_000) sentAt.shift();
  if (sentAt.length >= MAX_REPORTS_PER_MINUTE) return false;
  // The same error repeating (a render loop, a polling failure) is reported once every 30 s.
  const last = recentMessages.get(message);
  if (last && now - last < 30_000) return false;
  recentMessages.set(message, now);
  sentAt.push(now);
  return true;
}

export interface LogEntry {
  level: Level;
  message: string;
  url: string;
  context: Record<string, unknown>;
}

export function buildEntry(level: Level, message: string, context: Record<string, unknown> = {}): LogEntry {
  const href = typeof window !== "undefined" ? window.location.href : "";
  let contextJson = redactValue(context) as Record<string, unknown>;
  // The server refuses context over 8000 characters; trim rather than lose the report.
  if (JSON.stringify(contextJson).length > 7000) contextJson = { truncated: JSON.stringify(contextJson).slice(0, 6900) };
  return {
    level,
    message: redactText(message).slice(0, 4000) || "(empty message)",
    url: redactUrl(href).slice(0, 2000),
    context: contextJson,
  };
}

function send(entry: LogEntry): void {
  if (typeof fetch === "undefined") return;
  fetch("/api/logs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(entry),
    keepalive: true,
  }).catch(() => {
    // The server is unreachable: nothing more to do, the console has it.
  });
}

export const logger = {
  debug(message: string, context?: Record<string, unknown>) {
    console.debug(message, context ?? "");
  },
  info(message: string, context?: Record<string, unknown>) {
    console.info(message, context ?? "");
  },
  warn(message: string, context?: Record<string, unknown>) {
    console.warn(message, context ?? "");
  },
  error(message: string, context?: Record<string, unknown>) {
    // warn, not error: an error the app already handled must not look like an uncaught one in the console.
    console.warn(message, context ?? "");
    if (allowed(message)) send(buildEntry("error", message, context));
  },
};

export function installGlobalErrorReporting(): void {
  window.addEventListener("error", (event) => {
    logger.error(event.message || "uncaught error", { source: event.filename, line: event.lineno, stack: String(event.error?.stack ?? "") });
  });
  window.addEventListener("unhandledrejection", (event) => {
    const reason = event.reason;
    logger.error(reason instanceof Error ? reason.message : String(reason), { stack: String(reason?.stack ?? ""), kind: "unhandledrejection" });
  });
}
