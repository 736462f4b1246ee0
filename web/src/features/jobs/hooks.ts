// The hooks that keep job pages live: one job's history plus its event stream, and the global status feed that
// keeps every job list fresh.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useReducer, useRef } from "react";
import { JOB_EVENT_TYPES, STATUS_EVENTS_URL, jobEventOf, jobEventsUrl, statusEventOf, type JobEvent } from "../../api/events";
import { withLastEventId } from "../../hooks/sse";
import { useSSE, type SSEState } from "../../hooks/useSSE";
import { generationKeys } from "../generate/api";
import { loraKeys } from "../loras/api";
import { isFinal, jobKeys, jobQueries, type Job, type JobKind } from "./api";
import { emptyLive, liveReducer, type LiveState } from "./live";

// A server-sent `error` event is told apart from a dropped connection by the SSE layer itself.
const STREAM_EVENT_TYPES = JOB_EVENT_TYPES.filter((type) => type !== "error");

/** Follow one job's events while `jobId` is set; each message is handed over as the typed event it carries.
 * With `since` (a history's cursor) the stream starts after what that history already holds. */
export function useJobEventStream(jobId: string | null, onEvent: (event: JobEvent) => void, since: string | null = null): SSEState {
  const { state } = useSSE(
    jobId ? withLastEventId(jobEventsUrl(jobId), since) : null,
    (message) => {
      const event = jobEventOf(message);
      if (event) onEvent(event);
    },
    { eventTypes: STREAM_EVENT_TYPES },
  );
  return state;
}

export function useActiveJobs(kind: JobKind | null = "training") {
  return useQuery(jobQueries.active(kind));
}

export function useActiveJobCount(): number {
  const { data } = useActiveJobs("training");
  return data?.items.length ?? 0;
}

/** Mounted once at the top: invalidates job queries when any job changes status. */
export function useGlobalJobEvents(): SSEState {
  const queryClient = useQueryClient();
  const { state } = useSSE(
    STATUS_EVENTS_URL,
    (message) => {
      if (!statusEventOf(message)) return;
      // A job's history is its page's to refresh (on its own final status): refetched on every status change of
      // every job, it would replace the live view with an older one.
      void queryClient.invalidateQueries({ queryKey: jobKeys.all, predicate: (query) => query.queryKey[1] !== "history" });
      void queryClient.invalidateQueries({ queryKey: loraKeys.all });
      void queryClient.invalidateQueries({ queryKey: generationKeys.all });
    },
    { eventTypes: ["status"] },
  );
  return state;
}

export function useJobLive(jobId: string): { job: Job | undefined; live: LiveState; connection: SSEState; historyError: unknown; jobError: unknown } {
  const queryClient = useQueryClient();
  const [live, dispatch] = useReducer(liveReducer, undefined, emptyLive);
  const job = useQuery(jobQueries.detail(jobId));
  const history = useQuery(jobQueries.history(jobId));
  useEffect(() => dispatch({ type: "reset" }), [jobId]);
  useEffect(() => {
    if (history.data) dispatch({ type: "history", history: history.data });
  }, [history.data]);

  const status = live.status ?? job.data?.status ?? null;
  // Follow live events only once the persisted part is in, and only while the run can still change.
  const following = !!history.data && !isFinal(history.data.job.status) && !isFinal(live.status);
  // The stream starts where the history that started the following ends, not from the job's first event: a
  // replay of an earlier attempt (its final status included) would stop the following and start it again.
  // The position is kept for as long as the page follows, so a later history refetch does not reconnect.
  const followFrom = useRef<{ following: boolean; since: string | null }>({ following: false, since: null });
  if (following !== followFrom.current.following) followFrom.current = { following, since: following ? (history.data?.cursor ?? null) : null };
  const connection = useJobEventStream(following ? jobId : null, (event) => {
    dispatch({ type: "event", event });
    if (event.type === "status") {
      void queryClient.invalidateQueries({ queryKey: jobKeys.detail(jobId) });
    }
    if (event.type === "status" && isFinal(event.status)) {
      // The artifacts written at the very end (final LoRA) are in the persisted history.
      void queryClient.invalidateQueries({ queryKey: jobKeys.history(jobId) });
      void queryClient.invalidateQueries({ queryKey: jobKeys.all, predicate: (query) => query.queryKey[1] !== "history" });
    }
  }, followFrom.current.since);
  const merged = useMemo(() => ({ ...live, status }), [live, status]);
  return { job: job.data, live: merged, connection, historyError: history.error, jobError: job.error };
}
