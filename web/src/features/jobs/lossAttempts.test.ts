import { describe, expect, it } from "vitest";
import { addLossPoint, type LossSample } from "./live";

const point = (step: number, loss: number): LossSample => ({ step, loss, smoothed: loss });

describe("the loss curve of a resumed run", () => {
  it("shows the latest attempt from its checkpoint on, never both attempts for one step", () => {
    const state = { loss: new Map<number, LossSample>(), lossAttempt: 0 };
    for (let step = 1; step <= 70; step++) addLossPoint(state, point(step, 1), 1);
    // The second attempt resumes from the checkpoint at step 50.
    for (let step = 51; step <= 120; step++) addLossPoint(state, point(step, 2), 2);
    // A late point of the first attempt (delivered after the resume) does not come back.
    addLossPoint(state, point(71, 1), 1);
    const steps = [...state.loss.keys()];
    expect(steps).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect([...state.loss.values()].map((p) => p.loss)).toEqual([...Array(50).fill(1), ...Array(70).fill(2)]);
  });
});
