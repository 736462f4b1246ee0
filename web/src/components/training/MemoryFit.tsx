import { ApiError, messageFromBody } from "../../lib/api-errors";

const REFUSAL_PREFIX = "config.memory_profile: ";

/** Why the chosen memory profile was refused, when the estimate's error is that refusal; else null. */
export function memoryRefusal(error: unknown): string | null {
  if (!(error instanceof ApiError) || error.status !== 422) return null;
  const message = messageFromBody(error.body);
  return message?.startsWith(REFUSAL_PREFIX) ? message.slice(REFUSAL_PREFIX.length) : null;
}

/** The memory planner's verdict for a run: "fits your 24 GB GPU with int8 (est. 17.8 GB)", or why it cannot run. */
export function MemoryFit({ summary, error }: { summary?: string | null; error?: unknown }) {
  const refused = memoryRefusal(error);
  if (refused) {
    return (
      <div className="small" role="alert" style={{ color: "var(--danger)", marginTop: 8 }} data-testid="memory-fit" data-dynamic>
        GPU memory: {refused}
      </div>
    );
  }
  if (!summary) return null;
  return (
    <div className="small" style={{ marginTop: 8 }} data-testid="memory-fit" data-dynamic>
      GPU memory: {summary}
    </div>
  );
}
