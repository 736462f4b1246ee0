import type { UseQueryResult } from "@tanstack/react-query";
import { MemoryFit } from "../../components/training/MemoryFit";
import { Card, ErrorNotice, Stat } from "../../components/ui";
import { formatDuration } from "../../lib/format";
import type { Estimate } from "./api";

export function EstimateCard({ estimate, steps }: { estimate: UseQueryResult<Estimate>; steps: number }) {
  return (
    <Card title="Estimate">
      {/* Measured speed makes the estimate differ run to run. */}
      <div className="stats" data-dynamic>
        <Stat label="Steps" value={estimate.data?.steps ?? (steps || "—")} />
        <Stat label="Time" value={estimate.data ? `~${formatDuration(estimate.data.estimated_seconds)}` : "—"} hint="The run page shows the measured speed" />
      </div>
      {estimate.data ? <div className="small faint" style={{ marginTop: 8 }} data-dynamic>{estimate.data.basis}</div> : null}
      <MemoryFit summary={estimate.data?.memory_summary} error={estimate.error} />
      {estimate.error ? <div style={{ marginTop: 8 }}><ErrorNotice error={estimate.error} title="This run would not start" /></div> : null}
      {estimate.data?.warnings?.map((w) => <div key={w} className="small" style={{ color: "var(--warn)", marginTop: 4 }}>{w}</div>)}
    </Card>
  );
}
