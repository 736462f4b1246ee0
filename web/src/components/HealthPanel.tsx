import { errorMessage } from "../lib/api-errors";
import { useHealth } from "../features/system/api";

function Row({ name, up, value, detail }: { name: string; up: boolean | null; value?: string; detail?: string | null }) {
  return (
    <div className="health-row" title={detail ?? undefined} data-testid={`health-${name.toLowerCase()}`}>
      <span className={`dot ${up === null ? "" : up ? "ok" : "danger"}`} aria-hidden />
      <span>{name}</span>
      <span className="value">{value ?? (up === null ? "…" : up ? "up" : "down")}</span>
    </div>
  );
}

/** Database, Redis and workers at a glance; when the API itself is unreachable it says so. */
export function HealthPanel() {
  const { data, error, isPending } = useHealth();
  if (error) {
    return (
      <div className="health" role="alert" data-testid="health-panel">
        <div className="health-row" style={{ color: "var(--danger)", fontWeight: 600 }}>
          <span className="dot danger" aria-hidden /> API unreachable
        </div>
        <div className="faint small">{errorMessage(error)}</div>
      </div>
    );
  }
  const workers = data?.workers;
  const lost = workers?.workers?.filter((w) => w.alive === false).length ?? 0;
  return (
    <div className="health" data-testid="health-panel" aria-live="polite">
      <div className="row between">
        <span className="label">System</span>
        {data ? <span className="faint small">{data.mode}</span> : null}
      </div>
      <Row name="API" up={isPending ? null : true} value={data ? `v${data.version}` : undefined} />
      <Row name="Database" up={data ? data.database.status === "up" : null} detail={data?.database.detail} />
      <Row name="Redis" up={data ? data.redis.status === "up" : null} detail={data?.redis.detail} />
      <Row
        name="Workers"
        up={workers ? workers.status === "up" : null}
        value={workers ? [(workers.count ?? 0) > 0 ? `${workers.count} up` : lost ? "" : "none", lost ? `${lost} lost` : ""].filter(Boolean).join(", ") : undefined}
        detail={workers?.detail}
      />
    </div>
  );
}
