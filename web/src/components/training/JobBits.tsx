import type { JobStatus } from "../../features/jobs/api";
import { Badge, type Tone } from "../ui";

const TONES: Record<JobStatus, Tone> = { queued: "neutral", running: "info", succeeded: "ok", failed: "danger", cancelled: "warn" };

export function StatusBadge({ status }: { status: JobStatus | null | undefined }) {
  if (!status) return null;
  return (
    <Badge tone={TONES[status]}>
      {status === "running" ? <span className="dot pulse" style={{ background: "var(--info)" }} aria-hidden /> : null}
      {status}
    </Badge>
  );
}

export function ConnectionBadge({ state }: { state: string }) {
  const tone: Tone = state === "open" ? "ok" : state === "closed" ? "neutral" : "warn";
  const label = state === "open" ? "live" : state === "closed" ? "not live" : state;
  return <Badge tone={tone} title="Live event connection">{label}</Badge>;
}
