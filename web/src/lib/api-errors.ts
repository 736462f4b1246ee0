// Turns whatever the API (or the network) answered into one sentence a person can act on.

export interface ValidationItem {
  loc?: (string | number)[];
  msg?: string;
  type?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly correlationId?: string;

  constructor(message: string, status: number, body?: unknown, correlationId?: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.correlationId = correlationId;
  }
}

const LOCATION_PREFIXES = new Set(["body", "query", "path", "header"]);

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;

const isValidationItem = (value: unknown): value is ValidationItem =>
  isRecord(value) && (value.loc === undefined || Array.isArray(value.loc)) && (value.msg === undefined || typeof value.msg === "string");

/** The field-by-field items of a 422 from request validation (`detail` as a list); none for any other error. */
export function validationItems(error: unknown): ValidationItem[] {
  if (!(error instanceof ApiError) || !isRecord(error.body) || !Array.isArray(error.body.detail)) return [];
  return error.body.detail.filter(isValidationItem);
}

function describeItem(item: ValidationItem): string {
  const loc = (item.loc ?? []).filter((p) => !LOCATION_PREFIXES.has(String(p))).join(".");
  const msg = item.msg ?? "invalid value";
  return loc ? `${loc}: ${msg}` : msg;
}

/** The readable message inside an error body: `detail` (string or list of {loc,msg}), else `message`. */
export function messageFromBody(body: unknown): string | null {
  if (body == null) return null;
  if (typeof body === "string") return body.trim() || null;
  if (!isRecord(body)) return null;
  const record = body;
  const detail = record.detail;
  if (typeof detail === "string" && detail.trim()) return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    return detail
      .slice(0, 5)
      .map((item: unknown) => (typeof item === "string" ? item : isValidationItem(item) ? describeItem(item) : "invalid value"))
      .join("; ");
  }
  if (detail && typeof detail === "object") {
    const nested = messageFromBody(detail);
    if (nested) return nested;
  }
  if (typeof record.message === "string" && record.message.trim()) return record.message;
  if (typeof record.error === "string" && record.error.trim()) return record.error;
  return null;
}

const STATUS_TEXT: Record<number, string> = {
  400: "The request was not accepted",
  401: "You need to sign in (API token missing or wrong)",
  403: "This action is not allowed",
  404: "Not found",
  409: "This conflicts with the current state",
  413: "The upload is too large",
  422: "Some values are not valid",
  429: "Too many requests; wait a moment and try again",
  500: "The server hit an error",
  502: "The server is unreachable (bad gateway)",
  503: "A service the server needs is down",
};

export function fallbackForStatus(status: number): string {
  return STATUS_TEXT[status] ?? `The server answered ${status}`;
}

/** One line for any thrown value: ApiError, network failure, or anything else. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof DOMException && error.name === "AbortError") return "The request was cancelled";
  if (error instanceof TypeError) return "Cannot reach the Isengard server. Is it running?";
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === "string") return error;
  return "Something went wrong";
}
