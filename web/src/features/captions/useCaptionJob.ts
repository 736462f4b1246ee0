// A caption job from submission to its end: live per-image progress over the job's event stream, and cancel.
import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useState } from "react";
import { useSSE, type SSEMessage } from "../../hooks/useSSE";
import type { JobStatus } from "../../lib/types";
import { cancelJob, submitCaptionJob, type CaptionEvent, type CaptionJobCreate } from "./api";

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

const FINAL: JobStatus[] = ["succeeded", "failed", "cancelled"];
const EVENT_TYPES = ["status", "progress", "caption", "log", "error"];

export function startProgress(jobId: string, total: number): CaptionProgress {
  return { jobId, status: "queued", done: 0, total, written: 0, kept: 0, last: null, message: null };
}

/** The next progress state after one event of the job's stream. */
export function reduceProgress(state: CaptionProgress, type: string, data: unknown): CaptionProgress {
  const event = (data ?? {}) as Record<string, unknown>;
  if (type === "caption") {
    const caption = event as unknown as CaptionEvent;
    return {
      ...state,
      done: Math.max(state.done, caption.index),
      total: caption.total,
      written: state.written + (caption.written ? 1 : 0),
      kept: state.kept + (caption.written ? 0 : 1),
      last: caption,
    };
  }
  if (type === "status") {
    return { ...state, status: event.status as JobStatus, message: (event.message as string | null) ?? state.message };
  }
  if (type === "error") return { ...state, message: String(event.message ?? "") };
  return state;
}

export function isFinal(status: JobStatus): boolean {
  return FINAL.includes(status);
}

/** Submit caption jobs for one character and follow the latest one live. */
export function useCaptionJob(characterId: string) {
  const client = useQueryClient();
  const [progress, setProgress] = useState<CaptionProgress | null>(null);
  const following = progress && !isFinal(progress.status) ? progress.jobId : null;

  const onMessage = useCallback(
    (message: SSEMessage) => {
      setProgress((state) => (state ? reduceProgress(state, message.type, message.data) : state));
      // Each caption is already stored: show it in the grid and re-run the linter at once.
      if (message.type === "caption" || message.type === "status") void client.invalidateQueries({ queryKey: ["images"] });
    },
    [client],
  );
  const { state: connection } = useSSE(following ? `/api/jobs/${following}/events` : null, onMessage, {
    eventTypes: EVENT_TYPES,
  });

  const start = useCallback(
    async (body: CaptionJobCreate) => {
      const job = await submitCaptionJob(characterId, body);
      setProgress(startProgress(job.id, Number(job.config?.images ?? 0)));
      void client.invalidateQueries({ queryKey: ["jobs"] });
      return job;
    },
    [characterId, client],
  );
  const cancel = useCallback(async () => {
    if (progress) await cancelJob(progress.jobId);
  }, [progress]);

  return { progress, start, cancel, connection, running: !!following };
}
