import type { CheckpointScores } from "./api";
import { formatScore } from "./api";

const HEIGHT = 200;
const PAD = { left: 52, right: 16, top: 14, bottom: 28 };
const SERIES = [
  { key: "identity", label: "identity", color: "var(--accent, #4f7cff)" },
  { key: "adherence", label: "adherence", color: "var(--ok, #2e9e5b)" },
] as const;

/**
 * Identity and prompt adherence per sampled step, on the loss chart's step axis (0 to the run's last step), each
 * series scaled to its own range (their units differ); the recommended step is marked.
 */
export function ScoreChart({ checkpoints, totalSteps, recommended }: { checkpoints: CheckpointScores[]; totalSteps: number; recommended: number | null }) {
  const width = 800;
  const innerW = width - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const xMax = Math.max(totalSteps, ...checkpoints.map((c) => c.step), 1);
  const sx = (step: number) => PAD.left + (step / xMax) * innerW;
  const lines = SERIES.map((series) => {
    const points = checkpoints.flatMap((c) => {
      const value = c[series.key];
      return value != null ? [{ step: c.step, value }] : [];
    });
    const values = points.map((p) => p.value);
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    if (!(hi - lo > 1e-6)) {
      lo -= 0.05;
      hi += 0.05;
    }
    const sy = (v: number) => PAD.top + (1 - (v - lo) / (hi - lo)) * innerH;
    return { ...series, points: points.map((p) => ({ ...p, x: sx(p.step), y: sy(p.value) })) };
  });
  return (
    <figure className="stack-sm" style={{ margin: 0 }} data-testid="score-chart">
      <svg viewBox={`0 0 ${width} ${HEIGHT}`} width="100%" role="img" aria-label="Identity and adherence by step">
        <line x1={PAD.left} x2={width - PAD.right} y1={HEIGHT - PAD.bottom} y2={HEIGHT - PAD.bottom} stroke="var(--border, #ccc)" />
        {[0, xMax / 2, xMax].map((t) => (
          <text key={t} x={sx(t)} y={HEIGHT - 8} fontSize="11" textAnchor="middle" fill="currentColor" opacity={0.6}>{Math.round(t)}</text>
        ))}
        {recommended != null ? (
          <g data-testid="score-chart-recommended">
            <line x1={sx(recommended)} x2={sx(recommended)} y1={PAD.top} y2={HEIGHT - PAD.bottom} stroke="currentColor" strokeDasharray="4 3" opacity={0.5} />
            <text x={sx(recommended) + 4} y={PAD.top + 10} fontSize="11" fill="currentColor">recommended</text>
          </g>
        ) : null}
        {lines.map((line) => (
          <g key={line.key} data-series={line.key}>
            <polyline fill="none" stroke={line.color} strokeWidth={2} points={line.points.map((p) => `${p.x},${p.y}`).join(" ")} />
            {line.points.map((p) => (
              <circle key={p.step} cx={p.x} cy={p.y} r={3.5} fill={line.color}>
                <title>{`step ${p.step}: ${line.label} ${formatScore(p.value)}`}</title>
              </circle>
            ))}
          </g>
        ))}
      </svg>
      <figcaption className="small muted row">
        {SERIES.map((s) => (
          <span key={s.key}><span style={{ color: s.color }}>●</span> {s.label}</span>
        ))}
        <span className="faint">each on its own scale · steps as on the loss chart</span>
      </figcaption>
    </figure>
  );
}
