import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../lib/api-errors";
import { MemoryFit, memoryRefusal } from "./MemoryFit";

describe("MemoryFit", () => {
  it("shows the planner's summary", () => {
    render(<MemoryFit summary="fits your 24 GB GPU with int8 (est. 17.0 GB)" />);
    expect(screen.getByTestId("memory-fit").textContent).toBe("GPU memory: fits your 24 GB GPU with int8 (est. 17.0 GB)");
  });

  it("shows why a forced profile was refused, over any summary", () => {
    const detail = "config.memory_profile: profile bf16 needs an estimated 28.2 GB, more than this 24 GB GPU; int8 fits (est. 17.0 GB)";
    render(<MemoryFit summary="stale" error={new ApiError(detail, 422, { detail })} />);
    const line = screen.getByRole("alert");
    expect(line.textContent).toBe("GPU memory: profile bf16 needs an estimated 28.2 GB, more than this 24 GB GPU; int8 fits (est. 17.0 GB)");
  });

  it("ignores other errors and empty summaries", () => {
    expect(memoryRefusal(new ApiError("x", 422, { detail: "config.steps: too many" }))).toBeNull();
    expect(memoryRefusal(new Error("network"))).toBeNull();
    const { container } = render(<MemoryFit summary={null} />);
    expect(container.textContent).toBe("");
  });
});
