import { describe, expect, it } from "vitest";
import { jobEventOf, type EventOf, type JobEvent } from "../../api/events";
import type { Job, JobHistory } from "./api";
import { emptyLive, liveReducer, type LiveState } from "./live";

const AT = "2026-01-01T00:00:00Z";

function job(patch: Partial<Job> = {}): Job {
  return {
    id: "j1", kind: "training", status: "running", plugin: "flux-lora", character_id: "c1", name: "run",
    attempts: 1, max_attempts: 3, created_at: AT, config: { steps: 100 }, progress: {}, ...patch,
  };
}

function history(patch: Partial<JobHistory> = {}): JobHistory {
  return { job: job(), loss: [], logs: [], statuses: [], samples: [], checkpoints: [], artifacts: [], ...patch };
}

const base = { job_id: "j1", at: AT };
const progress = (step: number, loss: number | null, patch: Partial<EventOf<"progress">> = {}): JobEvent => ({
  ...base, type: "progress", step, total: 100, loss, smoothed_loss: loss === null ? null : loss / 2, lr: null,
  it_per_s: 2.5, eta_seconds: 40, stage: "training", attempt: 1, ...patch,
});

function run(actions: Parameters<typeof liveReducer>[1][], from: LiveState = emptyLive()): LiveState {
  return actions.reduce(liveReducer, from);
}

describe("the live job reducer", () => {
  it("starts from the persisted history: progress, loss, logs, samples and checkpoints", () => {
    const state = run([{
      type: "history",
      history: history({
        job: job({ progress: { step: 7, total: 100, loss: 0.4, smoothed_loss: 0.5, it_per_s: 3, stage: "training" } }),
        loss: [{ step: 7, total: 100, loss: 0.4, smoothed_loss: 0.5, at: AT }],
        logs: [{ at: AT, level: "info", message: "loaded" }],
        samples: [{ id: "s1", job_id: "j1", kind: "sample", name: "s.png", step: 5, bytes: 1, created_at: AT, url: "/s1", meta: { prompt: "a cat" } }],
        checkpoints: [{ id: "k1", job_id: "j1", kind: "lora", name: "final.safetensors", bytes: 9, created_at: AT, url: "/k1", meta: { lora_id: "l1" } }],
      }),
    }]);
    expect(state.status).toBe("running");
    expect(state.progress).toEqual({ step: 7, total: 100, loss: 0.4, smoothed: 0.5, itPerS: 3, etaSeconds: null, stage: "training" });
    expect([...state.loss.values()]).toEqual([{ step: 7, loss: 0.4, smoothed: 0.5 }]);
    expect(state.logs).toHaveLength(1);
    expect(state.samples.get("s1")?.prompt).toBe("a cat");
    expect(state.checkpoints.get("k1")).toMatchObject({ kind: "lora", loraId: "l1", bytes: 9 });
  });

  it("ignores a recorded progress without a step and meta values of the wrong type", () => {
    const state = run([{
      type: "history",
      history: history({
        job: job({ progress: { step: "7" } }),
        checkpoints: [{ id: "k1", job_id: "j1", kind: "checkpoint", name: "c", bytes: 1, created_at: AT, url: "/k1", meta: { lora_id: 5 } }],
      }),
    }]);
    expect(state.progress).toBeNull();
    expect(state.checkpoints.get("k1")?.loraId).toBeNull();
  });

  it("follows progress events: the step, the loss curve, speed and ETA, and a queued job is now running", () => {
    const state = run([
      { type: "event", event: { ...base, type: "status", attempt: null, status: "queued", message: null } },
      { type: "event", event: progress(1, 0.9) },
      { type: "event", event: progress(2, null, { it_per_s: null, eta_seconds: null, stage: null }) },
    ]);
    expect(state.status).toBe("running");
    expect([...state.loss.keys()]).toEqual([1]);
    // A step without a loss keeps the last known one on display.
    expect(state.progress).toEqual({ step: 2, total: 100, loss: 0.9, smoothed: 0.45, itPerS: null, etaSeconds: null, stage: null });
  });

  it("records why a job failed, from its final status or an error event", () => {
    const failed = run([{ type: "event", event: { ...base, type: "status", attempt: null, status: "failed", message: "out of memory" } }]);
    expect(failed).toMatchObject({ status: "failed", error: "out of memory" });
    const errored = run([{ type: "event", event: { ...base, type: "error", message: "CUDA error" } }]);
    expect(errored.error).toBe("CUDA error");
    const cancelled = run([{ type: "event", event: { ...base, type: "status", attempt: null, status: "cancelled", message: "by user" } }]);
    expect(cancelled).toMatchObject({ status: "cancelled", error: null });
  });

  it("adds log lines once, even when the history already had them", () => {
    const line = { at: AT, level: "warning", message: "slow disk" };
    const state = run([
      { type: "history", history: history({ logs: [line] }) },
      { type: "event", event: { ...base, type: "log", level: line.level, message: line.message } },
      { type: "event", event: { ...base, at: "2026-01-01T00:00:01Z", type: "log", level: "info", message: "step done" } },
    ]);
    expect(state.logs.map((l) => l.message)).toEqual(["slow disk", "step done"]);
  });

  it("adds samples with a file, and merges a checkpoint event into the history's entry", () => {
    const state = run([
      { type: "history", history: history({ checkpoints: [{ id: "a2", job_id: "j1", kind: "checkpoint", name: "step-20.safetensors", step: 20, bytes: 5, created_at: AT, url: "/a2" }] }) },
      { type: "event", event: { ...base, type: "sample", step: 10, index: 0, prompt: "a dog", artifact_id: "a1", url: "/a1" } },
      { type: "event", event: { ...base, type: "sample", step: 10, index: 1, prompt: "", artifact_id: null, url: null } },
      { type: "event", event: { ...base, type: "checkpoint", step: 20, artifact_id: "a2", lora_id: "l9", url: "/a2" } },
    ]);
    expect([...state.samples.values()]).toEqual([{ key: "a1", step: 10, url: "/a1", name: "step 10", prompt: "a dog" }]);
    expect(state.checkpoints.get("a2")).toMatchObject({ name: "step-20.safetensors", bytes: 5, kind: "checkpoint", loraId: "l9" });
  });

  it("starts over on reset", () => {
    const state = run([{ type: "event", event: progress(3, 0.2) }, { type: "reset" }]);
    expect(state).toEqual(emptyLive());
  });
});

describe("jobEventOf", () => {
  it("hands over the event a message carries", () => {
    const event = progress(4, 0.3);
    expect(jobEventOf({ type: "progress", data: event, id: "1-0" })).toEqual(event);
  });

  it("refuses what is not a job event", () => {
    expect(jobEventOf({ type: "progress", data: "not json", id: null })).toBeNull();
    expect(jobEventOf({ type: "progress", data: { ...base, type: "nonsense" }, id: null })).toBeNull();
    expect(jobEventOf({ type: "progress", data: [{ ...base, type: "progress" }], id: null })).toBeNull();
    expect(jobEventOf({ type: "progress", data: { type: "progress" }, id: null })).toBeNull();
  });

  it("shows one attempt's truth: older statuses, earlier attempts and steps going back are ignored", () => {
    const later = "2026-01-01T00:01:00Z";
    const resumed = run([
      { type: "history", history: history({
        job: job({ status: "queued", attempts: 1, progress: { step: 45, total: 100, attempt: 1, stage: "training" } }),
        statuses: [{ status: "cancelled", at: AT }, { status: "queued", message: "resuming from the checkpoint of step 40", at: later }],
      }) },
      { type: "event", event: { ...base, type: "status", attempt: null, status: "cancelled", message: null } },
      { type: "event", event: progress(41, 0.5, { attempt: 2 }) },
      { type: "event", event: progress(44, 0.5, { attempt: 1 }) },
      { type: "event", event: progress(42, 0.5, { attempt: 2 }) },
      { type: "event", event: progress(41, 0.5, { attempt: 2 }) },
    ]);
    expect(resumed.status).toBe("running");
    expect(resumed.attempt).toBe(2);
    expect(resumed.progress?.step).toBe(42);
  });

  it("a history that knows of a newer attempt drops the earlier attempt's steps", () => {
    const stopped = run([{ type: "event", event: progress(43, 0.5, { attempt: 1 }) }]);
    const started = run([{ type: "history", history: history({ job: job({ attempts: 2, progress: { step: 43, total: 100, attempt: 1 } }) }) }], stopped);
    expect(started.attempt).toBe(2);
    expect(started.progress).toBeNull();
  });

  it("a status that starts a newer attempt shows that attempt, its steps not known yet", () => {
    const before = run([{ type: "event", event: progress(43, 0.5, { attempt: 1 }) }]);
    const taken = run([{ type: "event", event: { ...base, at: "2026-01-01T00:02:00Z", type: "status", attempt: 2, status: "running", message: "resumed from step 40 (attempt 2 of 3)" } }], before);
    expect(taken.attempt).toBe(2);
    expect(taken.progress).toBeNull();
    expect(taken.statusMessage).toContain("attempt 2 of 3");
  });
});
