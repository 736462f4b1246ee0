// The server-sent event streams, typed from the schema: each stream route names the model its events' data has
// (`JobEventData`, a union told apart by `type`, for one job; `StatusEvent` for the global feed).
import type { SSEMessage } from "../hooks/sse";
import type { paths } from "./schema";

type EventStreamPath = "/api/jobs/{job_id}/events" | "/api/events";
type StreamEvent<P extends EventStreamPath> = paths[P]["get"]["responses"][200]["content"]["text/event-stream"];

export type JobEvent = StreamEvent<"/api/jobs/{job_id}/events">;
export type JobEventType = JobEvent["type"];
export type StatusEvent = StreamEvent<"/api/events">;
export type EventOf<T extends JobEventType> = Extract<JobEvent, { type: T }>;

const TYPES = {
  status: true,
  progress: true,
  sample: true,
  checkpoint: true,
  log: true,
  error: true,
  artifact: true,
} satisfies Record<JobEventType, true>; // a type the schema adds and this list lacks fails the typecheck

export const JOB_EVENT_TYPES: readonly JobEventType[] = Object.keys(TYPES).filter(isJobEventType);

function isJobEventType(value: unknown): value is JobEventType {
  return typeof value === "string" && Object.hasOwn(TYPES, value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The event a message carries, or null for anything the stream should not have sent. The data is the server's
 * model dump for this route (the schema says every field is present), so telling the type apart is enough.
 */
export function jobEventOf(message: SSEMessage): JobEvent | null {
  const data = message.data;
  return isRecord(data) && isJobEventType(data.type) && isJobEvent(data) ? data : null;
}

function isJobEvent(data: Record<string, unknown>): data is JobEvent {
  return typeof data.job_id === "string";
}

export function statusEventOf(message: SSEMessage): StatusEvent | null {
  const event = jobEventOf(message);
  return event?.type === "status" ? event : null;
}

/** The URL of one job's event stream, made from its path in the schema. */
export function jobEventsUrl(jobId: string): string {
  const path: EventStreamPath = "/api/jobs/{job_id}/events";
  return path.replace("{job_id}", encodeURIComponent(jobId));
}

export const STATUS_EVENTS_URL: EventStreamPath = "/api/events";
