// One training run's full state: the persisted history first (works after a reload and after the run ended),
// then live events merged in. Events the history already holds are recognised by step / artifact id / text.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useReducer } from "react";
import { api } from "../lib/api";
import { keys } from "../lib/queries";
import type { Job, JobHistory, JobStatus } from "../lib/types";
import { useSSE, type SSEState } from "./useSSE";

export interface LossSample {
  step: number;
  loss: number | null;
  smoothed: number | null;
}

export interface MediaRef {
  key: string;
  step: number | null;
  url: string;
  name: string;
  prompt?: string;
  loraId?: string | null;
  bytes?: number;
  /** "lora" for the final LoRA of a run, "checkpoint" for an intermediate one. */
  kind?: string;
}

export interface LiveProgress {
  step: number;
  total: number;
  loss: number | null;
  smoothed: number | null;
  itPerS: number | null;
  etaSeconds: number | null;
  stage: string | null;
}

export interface LiveState {
  status: JobStatus | null;
  error: string | null;
  progress: LiveProgress | null;
  loss: Map<number, LossSample>;
  /** The attempt whose curve `loss` shows (0 for points that carry none). */
  lossAttempt: number;
  logs: { at: string; level: string; message: string }[];
  samples: Map<string, MediaRef>;
  checkpoints: Map<string, MediaRef>;
  seenLogs: Set<string>;
}

type Action = { type: "history"; history: JobHistory } | { type: "event"; kind: string; data: Record<string, unknown> } | { type: "reset" };

const FINAL: JobStatus[] = ["succeeded", "failed", "cancelled"];
export const isFinal = (status: JobStatus | null | undefined) => !!status && FINAL.includes(status);

const MAX_LOG_LINES = 2000;

function empty(): LiveState {
  return { status: null, error: null, progress: null, loss: new Map(), lossAttempt: 0, logs: [], samples: new Map(), checkpoints: new Map(), seenLogs: new Set() };
}

function progressFromJob(job: Job): LiveProgress | null {
  const p = (job.progress ?? {}) as Record<string, unknown>;
  if (typeof p.step !== "number") return null;
  return {
    step: p.step,
    total: Number(p.total ?? 0),
    loss: (p.loss as number) ?? null,
    smoothed: (p.smoothed_loss as number) ?? null,
    itPerS: (p.it_per_s as number) ?? null,
    etaSeconds: (p.eta_seconds as number) ?? null,
    stage: (p.stage as string) ?? null,
  };
}

/** Show the latest attempt's curve: a resumed attempt reports its steps again from its checkpoint on, so an
 * earlier attempt's points from there are replaced, and late points of an earlier attempt are left out. */
export function addLossPoint(state: Pick<LiveState, "loss" | "lossAttempt">, sample: LossSample, attempt?: number | null) {
  const current = attempt ?? 0;
  if (current < state.lossAttempt) return;
  if (current > state.lossAttempt) {
    for (const step of [...state.loss.keys()]) if (step >= sample.step) state.loss.delete(step);
    state.lossAttempt = current;
  }
  state.loss.set(sample.step, sample);
}

function addLog(state: LiveState, line: { at: string; level: string; message: string }) {
  const key = `${line.at}|${line.message}`;
  if (state.seenLogs.has(key)) return;
  state.seenLogs.add(key);
  state.logs.push(line);
  if (state.logs.length > MAX_LOG_LINES) state.logs.splice(0, state.logs.length - MAX_LOG_LINES);
}

function reducer(previous: LiveState, action: Action): LiveState {
  if (action.type === "reset") return empty();
  const state: LiveState = {
    ...previous,
    loss: new Map(previous.loss),
    samples: new Map(previous.samples),
    checkpoints: new Map(previous.checkpoints),
    logs: [...previous.logs],
    seenLogs: new Set(previous.seenLogs),
  };
  if (action.type === "history") {
    const { history } = action;
    state.status = history.job.status;
    state.error = history.job.error ?? null;
    state.progress = progressFromJob(history.job) ?? state.progress;
    for (const p of history.loss) addLossPoint(state, { step: p.step, loss: p.loss ?? null, smoothed: p.smoothed_loss ?? null }, p.attempt);
    for (const line of history.logs) addLog(state, line);
    for (const s of history.samples) state.samples.set(s.id, { key: s.id, step: s.step ?? null, url: s.url, name: s.name, prompt: String(s.meta?.prompt ?? "") });
    for (const c of history.checkpoints) {
      state.checkpoints.set(c.id, { key: c.id, step: c.step ?? null, url: c.url, name: c.name, bytes: c.bytes, kind: c.kind, loraId: (c.meta?.lora_id as string) ?? null });
    }
    return state;
  }
  const d = action.data;
  switch (action.kind) {
    case "progress": {
      const step = Number(d.step);
      const loss = (d.loss as number) ?? null;
      const smoothed = (d.smoothed_loss as number) ?? null;
      if (loss != null) addLossPoint(state, { step, loss, smoothed }, (d.attempt as number) ?? null);
      state.progress = {
        step,
        total: Number(d.total ?? 0),
        loss: loss ?? state.progress?.loss ?? null,
        smoothed: smoothed ?? state.progress?.smoothed ?? null,
        itPerS: (d.it_per_s as number) ?? null,
        etaSeconds: (d.eta_seconds as number) ?? null,
        stage: (d.stage as string) ?? null,
      };
      if (!state.status || state.status === "queued") state.status = "running";
      break;
    }
    case "status":
      state.status = d.status as JobStatus;
      if (d.status === "failed" && d.message) state.error = String(d.message);
      break;
    case "error":
      state.error = String(d.message ?? "the run failed");
      break;
    case "log":
      addLog(state, { at: String(d.at ?? ""), level: String(d.level ?? "info"), message: String(d.message ?? "") });
      break;
    case "sample": {
      const key = String(d.artifact_id ?? `${d.step}-${d.index}`);
      if (d.url) state.samples.set(key, { key, step: Number(d.step), url: String(d.url), name: `step ${d.step}`, prompt: String(d.prompt ?? "") });
      break;
    }
    case "checkpoint": {
      const key = String(d.artifact_id ?? `ckpt-${d.step}`);
      if (d.url) {
        const known = state.checkpoints.get(key);
        state.checkpoints.set(key, { ...known, key, step: Number(d.step), url: String(d.url), name: known?.name ?? `step ${d.step}`, kind: known?.kind ?? "checkpoint", loraId: (d.lora_id as string) ?? known?.loraId ?? null });
      }
      break;
    }
  }
  return state;
}

export function useJobLive(jobId: string): { job: Job | undefined; live: LiveState; connection: SSEState; historyError: unknown; jobError: unknown } {
  const client = useQueryClient();
  const [live, dispatch] = useReducer(reducer, undefined, empty);
  const job = useQuery({
    queryKey: keys.job(jobId),
    queryFn: ({ signal }) => api.get<Job>(`/api/jobs/${jobId}`, undefined, signal),
    refetchInterval: (q) => (isFinal(q.state.data?.status) ? false : 10_000),
  });
  const history = useQuery({
    queryKey: keys.jobHistory(jobId),
    queryFn: ({ signal }) => api.get<JobHistory>(`/api/jobs/${jobId}/history`, undefined, signal),
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  });
  useEffect(() => dispatch({ type: "reset" }), [jobId]);
  useEffect(() => {
    if (history.data) dispatch({ type: "history", history: history.data });
  }, [history.data]);

  const status = live.status ?? job.data?.status ?? null;
  // Follow live events only once the persisted part is in, and only while the run can still change.
  const url = history.data && !isFinal(history.data.job.status) && !isFinal(live.status) ? `/api/jobs/${jobId}/events` : null;
  const { state } = useSSE(url, (message) => {
    const data = (message.data ?? {}) as Record<string, unknown>;
    dispatch({ type: "event", kind: message.type === "message" ? String(data.type) : message.type, data });
    if (message.type === "status" || message.type === "checkpoint") {
      void client.invalidateQueries({ queryKey: keys.job(jobId) });
    }
    if (message.type === "status" && isFinal(data.status as JobStatus)) {
      // The artifacts written at the very end (final LoRA) are in the persisted history.
      void client.invalidateQueries({ queryKey: keys.jobHistory(jobId) });
      void client.invalidateQueries({ queryKey: ["jobs"] });
    }
  });
  const merged = useMemo(() => ({ ...live, status }), [live, status]);
  return { job: job.data, live: merged, connection: state, historyError: history.error, jobError: job.error };
}
