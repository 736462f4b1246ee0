import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { afterEach, describe, expect, it } from "vitest";
import type { BaseModel } from "../system/api";
import { CheckpointField } from "./CheckpointField";
import type { Settings } from "./GenerateForm";

const defaults = (steps: number, guidance: number) => ({ resolution: 1024, sample_steps: steps, guidance });
const BASES = [
  { name: "flux1-dev", label: "FLUX.1 [dev]", defaults: defaults(28, 3.5), distilled_defaults: null },
  { name: "flux2-klein-4b", label: "FLUX.2 [klein] 4B", defaults: defaults(50, 4), distilled_defaults: defaults(4, 1) },
] as unknown as BaseModel[];

const START: Settings = {
  prompt: "x", characterId: "", loras: [], width: 128, height: 128, steps: 28, guidance: 3.5, seed: 1, lockSeed: false,
  count: 1, engine: "diffusers", checkpoint: "base",
};

function renderField(base: string | null, start: Partial<Settings> = {}) {
  const client = new QueryClient();
  client.setQueryData(["bases"], BASES);
  const seen: { s: Settings } = { s: { ...START, ...start } };
  function Harness() {
    const [s, setS] = useState<Settings>(seen.s);
    seen.s = s;
    return <CheckpointField s={s} setS={setS} base={base} />;
  }
  render(<QueryClientProvider client={client}><Harness /></QueryClientProvider>);
  return seen;
}

afterEach(cleanup);

describe("CheckpointField", () => {
  it("offers the distilled checkpoint of a base that has one, with its registry steps and guidance", () => {
    const seen = renderField("flux2-klein-4b");
    const select = screen.getByLabelText("Checkpoint") as HTMLSelectElement;
    expect([...select.options].map((o) => o.textContent)).toEqual(["Base (50 steps)", "Distilled (4 steps)"]);
    act(() => { fireEvent.change(select, { target: { value: "distilled" } }); });
    expect([seen.s.checkpoint, seen.s.steps, seen.s.guidance]).toEqual(["distilled", 4, 1]);
    act(() => { fireEvent.change(select, { target: { value: "base" } }); });
    expect([seen.s.checkpoint, seen.s.steps, seen.s.guidance]).toEqual(["base", 50, 4]);
  });

  it("is absent for a base without one, and never leaves a hidden distilled choice", () => {
    const seen = renderField("flux1-dev", { checkpoint: "distilled" });
    expect(screen.queryByLabelText("Checkpoint")).toBeNull();
    expect(seen.s.checkpoint).toBe("base");
  });
});
