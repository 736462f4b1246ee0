import { useEffect, useMemo, useRef, useState } from "react";
import { formatLoss } from "../../lib/format";
import type { LossSample } from "../../features/jobs/live";
import { Button } from "../ui";

const HEIGHT = 280;
const PAD = { left: 52, right: 16, top: 14, bottom: 28 };

/** Exponential moving average, for runs whose events carry no smoothed value. */
export function ema(values: (number | null)[], alpha = 0.1): (number | null)[] {
  let current: number | null = null;
  return values.map((v) => {
    if (v == null || !Number.isFinite(v)) return current;
    current = current == null ? v : current + alpha * (v - current);
    return current;
  });
}

function niceTicks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const step = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(step));
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((m) => m >= step) ?? step;
  const ticks = [];
  for (let t = Math.ceil(min / nice) * nice; t <= max + 1e-9; t += nice) ticks.push(Number(t.toPrecision(6)));
  return ticks;
}

function useWidth<T extends HTMLElement>(): [React.RefObject<T | null>, number] {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(800);
  useEffect(() => {
    if (!ref.current || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(([entry]) => setWidth(Math.max(280, Math.floor(entry.contentRect.width))));
    observer.observe(ref.current);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

export interface ValidationPoint {
  step: number;
  loss: number;
}

/** Raw and smoothed loss by step, validation loss as dots; drag across the chart to zoom into a range of steps. */
export function LossChart({ points, totalSteps, validation = [] }: { points: LossSample[]; totalSteps?: number; validation?: ValidationPoint[] }) {
  const [container, width] = useWidth<HTMLDivElement>();
  const [zoom, setZoom] = useState<[number, number] | null>(null);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const [hover, setHover] = useState<number | null>(null);
  const [showRaw, setShowRaw] = useState(true);

  const sorted = useMemo(() => [...points].sort((a, b) => a.step - b.step), [points]);
  const smoothed = useMemo(() => {
    const fallback = ema(sorted.map((p) => p.loss));
    return sorted.map((p, i) => p.smoothed ?? fallback[i]);
  }, [sorted]);

  const fullMax = Math.max(totalSteps ?? 0, sorted.at(-1)?.step ?? 1, 1);
  const [x0, x1] = zoom ?? [sorted[0]?.step ?? 0, fullMax];
  const visible = sorted.map((p, i) => ({ ...p, s: smoothed[i] })).filter((p) => p.step >= x0 && p.step <= x1);
  const checks = validation.filter((v) => v.step >= x0 && v.step <= x1 && Number.isFinite(v.loss));
  const ys = [...visible.flatMap((p) => [showRaw ? p.loss : null, p.s]), ...checks.map((v) => v.loss)].filter((v): v is number => v != null && Number.isFinite(v));
  let yMin = ys.length ? Math.min(...ys) : 0;
  let yMax = ys.length ? Math.max(...ys) : 1;
  if (yMax - yMin < 1e-6) {
    yMin -= 0.05;
    yMax += 0.05;
  }
  const padY = (yMax - yMin) * 0.08;
  yMin -= padY;
  yMax += padY;
  const innerW = width - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const sx = (step: number) => PAD.left + ((step - x0) / Math.max(1e-9, x1 - x0)) * innerW;
  const sy = (value: number) => PAD.top + (1 - (value - yMin) / (yMax - yMin)) * innerH;
  const stepAt = (clientX: number, rect: DOMRect) => x0 + ((clientX - rect.left - PAD.left) / innerW) * (x1 - x0);
  const path = (key: "loss" | "s") =>
    visible
      .flatMap((p) => {
        const value = p[key];
        return value == null ? [] : [{ step: p.step, value }];
      })
      .map((p, i) => `${i === 0 ? "M" : "L"}${sx(p.step).toFixed(1)},${sy(p.value).toFixed(1)}`)
      .join("");

  const hovered = hover == null ? null : visible.reduce<(typeof visible)[number] | null>((best, p) => (!best || Math.abs(p.step - hover) < Math.abs(best.step - hover) ? p : best), null);

  return (
    <div className="stack-sm" ref={container} data-testid="loss-chart" data-points={sorted.length} data-validation-points={validation.length}>
      <div className="row between">
        <div className="legend">
          <span><i style={{ background: "rgba(124,108,242,0.7)" }} />raw</span>
          <span><i style={{ background: "#c2b8ff" }} />smoothed</span>
          {validation.length ? <span title="Loss on held-out timesteps and noise, the same at every check"><i style={{ background: "var(--warn)" }} />validation</span> : null}
          <span className="faint">{sorted.length} points</span>
        </div>
        <div className="row" style={{ gap: 6 }}>
          <label className="checkbox-row small muted">
            <input type="checkbox" checked={showRaw} onChange={(e) => setShowRaw(e.target.checked)} /> raw
          </label>
          {zoom ? <Button size="sm" onClick={() => setZoom(null)}>Reset zoom</Button> : <span className="small faint">Drag to zoom</span>}
        </div>
      </div>
      {sorted.length === 0 ? (
        <div className="empty" style={{ height: HEIGHT }}>No loss values yet; they appear with the first training steps.</div>
      ) : (
        <svg
          className="chart"
          width={width}
          height={HEIGHT}
          role="img"
          aria-label={`Loss chart, ${sorted.length} points, latest ${formatLoss(sorted.at(-1)?.loss)}`}
          onMouseDown={(e) => {
            const step = stepAt(e.clientX, e.currentTarget.getBoundingClientRect());
            setDrag([step, step]);
          }}
          onMouseMove={(e) => {
            const step = stepAt(e.clientX, e.currentTarget.getBoundingClientRect());
            setHover(step);
            if (drag) setDrag([drag[0], step]);
          }}
          onMouseLeave={() => {
            setHover(null);
            setDrag(null);
          }}
          onMouseUp={() => {
            if (drag) {
              const [a, b] = [Math.min(...drag), Math.max(...drag)];
              if (b - a >= Math.max(2, (x1 - x0) * 0.02)) setZoom([Math.max(0, Math.floor(a)), Math.ceil(b)]);
            }
            setDrag(null);
          }}
        >
          {niceTicks(yMin, yMax, 5).map((t) => (
            <g key={`y${t}`}>
              <line className="grid-line" x1={PAD.left} x2={width - PAD.right} y1={sy(t)} y2={sy(t)} />
              <text className="axis-label" x={PAD.left - 8} y={sy(t) + 4} textAnchor="end">{formatLoss(t)}</text>
            </g>
          ))}
          {niceTicks(x0, x1, Math.max(2, Math.floor(innerW / 90))).map((t) => (
            <text key={`x${t}`} className="axis-label" x={sx(t)} y={HEIGHT - 8} textAnchor="middle">{t}</text>
          ))}
          <clipPath id="loss-clip"><rect x={PAD.left} y={PAD.top} width={innerW} height={innerH} /></clipPath>
          <g clipPath="url(#loss-clip)">
            {showRaw ? <path className="raw" d={path("loss")} /> : null}
            <path className="smooth" d={path("s")} />
            {checks.map((v) => (
              <circle key={`v${v.step}`} cx={sx(v.step)} cy={sy(v.loss)} r={5} className="validation-dot">
                <title>validation loss at step {v.step}: {formatLoss(v.loss)}</title>
              </circle>
            ))}
          </g>
          {drag ? <rect className="brush" x={sx(Math.min(...drag))} y={PAD.top} width={Math.abs(sx(drag[1]) - sx(drag[0]))} height={innerH} /> : null}
          {hovered ? (
            <g>
              <line className="hover-line" x1={sx(hovered.step)} x2={sx(hovered.step)} y1={PAD.top} y2={PAD.top + innerH} />
              <rect x={Math.min(sx(hovered.step) + 8, width - 170)} y={PAD.top + 4} width={160} height={40} rx={6} fill="#000" opacity={0.85} />
              <text className="axis-label" x={Math.min(sx(hovered.step) + 16, width - 162)} y={PAD.top + 20} style={{ fill: "var(--text)" }}>step {hovered.step} · loss {formatLoss(hovered.loss)}</text>
              <text className="axis-label" x={Math.min(sx(hovered.step) + 16, width - 162)} y={PAD.top + 36}>smoothed {formatLoss(hovered.s)}</text>
            </g>
          ) : null}
        </svg>
      )}
    </div>
  );
}
