// The one way the web app talks to the API: a client typed from the OpenAPI schema (src/api/schema.d.ts, made by
// `make api-types`), so a call's path, parameters, body and answer are tied together; errors become one readable
// ApiError (lib/api-errors.ts), and the optional bearer token rides along. Cookies (the session) are the browser's.
import createClient, { type ClientOptions, type Middleware } from "openapi-fetch";
import { ApiError, fallbackForStatus, messageFromBody } from "../lib/api-errors";
import type { components, paths } from "./schema";

export type { paths };
export type Schemas = components["schemas"];

const TOKEN_KEY = "isengard.apiToken";
const UNREACHABLE = "Cannot reach the Isengard server. Is it running?";

export function apiToken(): string | null {
  try {
    return window.localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function authHeaders(): Record<string, string> {
  const token = apiToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

const auth: Middleware = {
  onRequest({ request }) {
    for (const [key, value] of Object.entries(authHeaders())) if (!request.headers.has(key)) request.headers.set(key, value);
    if (!request.headers.has("Accept")) request.headers.set("Accept", "application/json");
    return request;
  },
};

/** A client for this API. Only JSON answers are typed as data: file routes are links, not calls. */
export function createApiClient(options: ClientOptions = {}) {
  // fetch is looked up per call, not once here, so a replaced global (tests, polyfills) is used.
  const client = createClient<paths, "application/json">({ baseUrl: "", fetch: (request) => globalThis.fetch(request), ...options });
  client.use(auth);
  return client;
}

export type ApiClient = ReturnType<typeof createApiClient>;

export const client: ApiClient = createApiClient();

/** The ApiError for a refused call: the body's readable message (else one for the status) and its correlation id. */
export function apiError(status: number, body: unknown, correlationHeader?: string | null): ApiError {
  const message = messageFromBody(body) ?? fallbackForStatus(status);
  const fromBody = body && typeof body === "object" && "correlation_id" in body ? body.correlation_id : undefined;
  const correlationId = (typeof fromBody === "string" && fromBody) || correlationHeader || undefined;
  return new ApiError(message, status, body, correlationId);
}

/** What openapi-fetch answers: data for a 2xx, the parsed error body otherwise. */
type Answer<D> = { data: D; error?: never; response: Response } | { data?: never; error: unknown; response: Response };
type DataOf<A> = A extends { data: infer D } ? D : never;

/**
 * The data of a call, or an ApiError: `await unwrap(client.GET("/api/characters/{character_id}", {...}))`.
 * A network failure is an ApiError with status 0; an aborted call stays an AbortError (React Query expects it).
 */
export function unwrap<A extends Answer<unknown>>(call: Promise<A>): Promise<DataOf<A>>;
export async function unwrap(call: Promise<Answer<unknown>>): Promise<unknown> {
  let answer: Answer<unknown>;
  try {
    answer = await call;
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(UNREACHABLE, 0);
  }
  const { response } = answer;
  if ("error" in answer || !response.ok) throw apiError(response.status, answer.error, response.headers.get("x-correlation-id"));
  return answer.data;
}

/** The cursor that asks a paged list for its first page. */
export const FIRST_PAGE: string | null = null;

export interface UploadProgress {
  loaded: number;
  total: number;
}

type MultipartPath = "/api/characters/{character_id}/images" | "/api/loras/import";
type MultipartAnswer<P extends MultipartPath> = paths[P]["post"]["responses"][201]["content"]["application/json"];

interface MultipartParams {
  path?: Record<string, string>;
  query?: Record<string, string | null | undefined>;
}

function urlFor(path: string, params: MultipartParams): string {
  const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params.path?.[name] ?? ""));
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params.query ?? {})) if (value != null && value !== "") query.set(key, value);
  const search = query.toString();
  return search ? `${filled}?${search}` : filled;
}

/**
 * A multipart POST with upload progress (fetch cannot report it; XMLHttpRequest can), for the routes that take
 * files; the answer is typed from the path's schema.
 */
export function postFilesWithProgress<P extends MultipartPath>(
  path: P,
  params: MultipartParams,
  form: FormData,
  onProgress: (progress: UploadProgress) => void,
): { promise: Promise<MultipartAnswer<P>>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<MultipartAnswer<P>>((resolve, reject) => {
    xhr.open("POST", urlFor(path, params));
    for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => onProgress({ loaded: event.loaded, total: event.lengthComputable ? event.total : 0 });
    xhr.onerror = () => reject(new ApiError(UNREACHABLE, 0));
    xhr.onabort = () => reject(new ApiError("The upload was cancelled", 0));
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = xhr.responseText;
      }
      // As for every JSON answer (openapi-fetch does the same), the schema of `path` is trusted for a 2xx body.
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as MultipartAnswer<P>);
      else reject(apiError(xhr.status, body, xhr.getResponseHeader("x-correlation-id")));
    };
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
