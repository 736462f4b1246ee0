// One job's live state: the persisted history first (works after a reload and after the run ended), then live
// events merged in. Events the history already holds are recognised by step / artifact id / text.
// Pure: the hook in useJobLive.ts feeds it; the tests feed it directly.
import type { JobEvent } from "../../api/events";
import { isFinal, recordedProgress, type Job, type JobHistory, type JobStatus } from "./api";

export { isFinal };

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

export interface LogLine {
  at: string;
  level: string;
  message: string;
}

export interface LiveState {
  status: JobStatus | null;
  error: string | null;
  progress: LiveProgress | null;
  loss: Map<number, LossSample>;
  /** The attempt whose curve `loss` shows (0 for points that carry none). */
  lossAttempt: number;
  logs: LogLine[];
  samples: Map<string, MediaRef>;
  checkpoints: Map<string, MediaRef>;
  seenLogs: Set<string>;
  /** What the last status change said ("resumed from step 500 (attempt 2 of 3)"). */
  statusMessage: string | null;
  /** When the status shown changed (ms): an older status, replayed or fetched late, never replaces a newer one. */
  statusAt: number;
  /** The attempt whose progress is shown: a later attempt's progress replaces it, an earlier one's is ignored. */
  attempt: number;
}

export type LiveAction = { type: "history"; history: JobHistory } | { type: "event"; event: JobEvent } | { type: "reset" };

const MAX_LOG_LINES = 2000;

export function emptyLive(): LiveState {
  return { status: null, error: null, progress: null, loss: new Map(), lossAttempt: 0, logs: [], samples: new Map(), checkpoints: new Map(), seenLogs: new Set(), statusMessage: null, statusAt: 0, attempt: 0 };
}

function progressFromJob(job: Job): LiveProgress | null {
  const p = recordedProgress(job);
  if (p.step === null) return null;
  return { step: p.step, total: p.total ?? 0, loss: p.loss, smoothed: p.smoothedLoss, itPerS: p.itPerS, etaSeconds: p.etaSeconds, stage: p.stage };
}

/** One attempt's truth: progress of an earlier attempt is dropped, and within an attempt (and stage) the step
 * only moves forward, whatever order the history and the stream deliver it in. */
function setProgress(state: LiveState, progress: LiveProgress, attempt: number): void {
  if (attempt < state.attempt) return;
  const current = state.progress;
  const sameRun = attempt === state.attempt && current !== null && current.stage === progress.stage;
  if (sameRun && progress.step < current.step) return;
  state.attempt = attempt;
  state.progress = progress;
}

/** Take a status only if it is at least as new as the one shown (`at` in ms; 0 when unknown). */
function setStatus(state: LiveState, status: JobStatus, message: string | null, at: number): boolean {
  if (at < state.statusAt) return false;
  state.status = status;
  state.statusMessage = message;
  state.statusAt = at;
  return true;
}

const timeOf = (at: string | null | undefined) => (at ? Date.parse(at) || 0 : 0);

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

function addLog(state: LiveState, line: LogLine) {
  const key = `${line.at}|${line.message}`;
  if (state.seenLogs.has(key)) return;
  state.seenLogs.add(key);
  state.logs.push(line);
  if (state.logs.length > MAX_LOG_LINES) state.logs.splice(0, state.logs.length - MAX_LOG_LINES);
}

const metaText = (value: unknown) => (typeof value === "string" ? value : null);

function applyHistory(state: LiveState, history: JobHistory) {
  const lastChange = history.statuses.at(-1);
  if (setStatus(state, history.job.status, lastChange?.message ?? state.statusMessage, timeOf(lastChange?.at))) {
    state.error = history.job.error ?? null;
  }
  const recorded = progressFromJob(history.job);
  const recordedAttempt = typeof history.job.progress?.attempt === "number" ? history.job.progress.attempt : history.job.attempts;
  if (history.job.attempts > state.attempt) {
    // A newer attempt has started: the steps shown so far were the earlier attempt's.
    state.attempt = history.job.attempts;
    state.progress = null;
  }
  if (recorded) setProgress(state, recorded, recordedAttempt);
  for (const p of history.loss) addLossPoint(state, { step: p.step, loss: p.loss ?? null, smoothed: p.smoothed_loss ?? null }, p.attempt);
  for (const line of history.logs) addLog(state, line);
  for (const s of history.samples) {
    state.samples.set(s.id, { key: s.id, step: s.step ?? null, url: s.url, name: s.name, prompt: metaText(s.meta?.prompt) ?? "" });
  }
  for (const c of history.checkpoints) {
    state.checkpoints.set(c.id, { key: c.id, step: c.step ?? null, url: c.url, name: c.name, bytes: c.bytes, kind: c.kind, loraId: metaText(c.meta?.lora_id) });
  }
}

function applyEvent(state: LiveState, event: JobEvent) {
  switch (event.type) {
    case "progress": {
      const { step, loss, smoothed_loss: smoothed } = event;
      if (loss != null) addLossPoint(state, { step, loss, smoothed }, event.attempt);
      const attempt = event.attempt ?? state.attempt;
      const sameAttempt = attempt === state.attempt;
      setProgress(state, {
        step,
        total: event.total,
        loss: loss ?? (sameAttempt ? state.progress?.loss : null) ?? null,
        smoothed: smoothed ?? (sameAttempt ? state.progress?.smoothed : null) ?? null,
        itPerS: event.it_per_s,
        etaSeconds: event.eta_seconds,
        stage: event.stage,
      }, attempt);
      if (attempt === state.attempt && (!state.status || state.status === "queued")) state.status = "running";
      break;
    }
    case "status":
      if (!setStatus(state, event.status, event.message ?? null, timeOf(event.at))) break;
      if (event.status === "failed" && event.message) state.error = event.message;
      if (event.attempt != null && event.attempt > state.attempt) {
        // A new attempt started (a resume, or another worker taking over): its steps are not known yet.
        state.attempt = event.attempt;
        state.progress = null;
      }
      break;
    case "error":
      state.error = event.message;
      break;
    case "log":
      addLog(state, { at: event.at, level: event.level, message: event.message });
      break;
    case "sample": {
      const key = event.artifact_id ?? `${event.step}-${event.index}`;
      if (event.url) state.samples.set(key, { key, step: event.step, url: event.url, name: `step ${event.step}`, prompt: event.prompt });
      break;
    }
    case "checkpoint": {
      const key = event.artifact_id ?? `ckpt-${event.step}`;
      if (event.url) {
        const known = state.checkpoints.get(key);
        state.checkpoints.set(key, {
          ...known,
          key,
          step: event.step,
          url: event.url,
          name: known?.name ?? `step ${event.step}`,
          kind: known?.kind ?? "checkpoint",
          loraId: event.lora_id ?? known?.loraId ?? null,
        });
      }
      break;
    }
    case "artifact":
      // Artifacts the page lists (samples, checkpoints) arrive as their own events and in the history.
      break;
  }
}

export function liveReducer(previous: LiveState, action: LiveAction): LiveState {
  if (action.type === "reset") return emptyLive();
  const state: LiveState = {
    ...previous,
    loss: new Map(previous.loss),
    samples: new Map(previous.samples),
    checkpoints: new Map(previous.checkpoints),
    logs: [...previous.logs],
    seenLogs: new Set(previous.seenLogs),
  };
  if (action.type === "history") applyHistory(state, action.history);
  else applyEvent(state, action.event);
  return state;
}
