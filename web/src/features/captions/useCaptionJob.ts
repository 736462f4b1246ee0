// A caption job from submission to its end: live per-image progress over the job's event stream, and cancel.
import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useState } from "react";
import { jobEventOf, jobEventsUrl, type JobEvent } from "../../api/events";
import { useSSE, type SSEMessage } from "../../hooks/useSSE";
import { datasetKeys } from "../dataset/api";
import { cancelJob, isFinal, jobKeys, type JobStatus } from "../jobs/api";
import { submitCaptionJob, type CaptionEvent, type CaptionJobCreate } from "./api";

export interface CaptionProgress {
  jobId: string;
  status: JobStatus;
  done: number;
  total: number;
  written: number;
  kept: number;
  last: CaptionEvent | null;
  message: string | null;
}

const EVENT_TYPES = ["status", "progress", "caption", "log", "error"];

export { isFinal };

export function startProgress(jobId: string, total: number): CaptionProgress {
  return { jobId, status: "queued", done: 0, total, written: 0, kept: 0, last: null, message: null };
}

/** The next progress state after one event of the job's stream. */
export function reduceProgress(state: CaptionProgress, event: JobEvent): CaptionProgress {
  switch (event.type) {
    case "caption":
      return {
        ...state,
        done: Math.max(state.done, event.index),
        total: event.total,
        written: state.written + (event.written ? 1 : 0),
        kept: state.kept + (event.written ? 0 : 1),
        last: event,
      };
    case "status":
      return { ...state, status: event.status, message: event.message ?? state.message };
    case "error":
      return { ...state, message: event.message };
    default:
      return state;
  }
}

/** Submit caption jobs for one character and follow the latest one live. */
export function useCaptionJob(characterId: string) {
  const client = useQueryClient();
  const [progress, setProgress] = useState<CaptionProgress | null>(null);
  const following = progress && !isFinal(progress.status) ? progress.jobId : null;

  const onMessage = useCallback(
    (message: SSEMessage) => {
      const event = jobEventOf(message);
      if (!event) return;
      setProgress((state) => (state ? reduceProgress(state, event) : state));
      // Each caption is already stored: show it in the grid and re-run the linter at once.
      if (event.type === "caption" || event.type === "status") void client.invalidateQueries({ queryKey: datasetKeys.all });
    },
    [client],
  );
  const { state: connection } = useSSE(following ? jobEventsUrl(following) : null, onMessage, {
    eventTypes: EVENT_TYPES,
  });

  const start = useCallback(
    async (body: CaptionJobCreate) => {
      const job = await submitCaptionJob(characterId, body);
      setProgress(startProgress(job.id, Number(job.config?.images ?? 0)));
      void client.invalidateQueries({ queryKey: jobKeys.all });
      return job;
    },
    [characterId, client],
  );
  const cancel = useCallback(async () => {
    if (progress) await cancelJob(progress.jobId);
  }, [progress]);

  return { progress, start, cancel, connection, running: !!following };
}
