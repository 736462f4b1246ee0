import { useMemo, useState } from "react";
import type { MediaRef } from "../../features/jobs/live";
import { Empty } from "../ui";

/** Sample images grouped by step; pick two to compare side by side (the first and the latest by default). */
export function SampleImagesPanel({ samples }: { samples: MediaRef[] }) {
  const byStep = useMemo(() => [...samples].sort((a, b) => (a.step ?? 0) - (b.step ?? 0)), [samples]);
  const [picked, setPicked] = useState<string[]>([]);
  if (byStep.length === 0) return <Empty icon="◧" title="No samples yet">Sample images appear at each sampling step.</Empty>;
  const chosen = picked.length ? picked : [byStep[0].key, byStep.at(-1)!.key].filter((k, i, a) => a.indexOf(k) === i);
  const compare = chosen.map((k) => byStep.find((s) => s.key === k)).filter((s): s is MediaRef => !!s);
  const toggle = (key: string) =>
    setPicked((list) => {
      const base = list.length ? list : chosen;
      return base.includes(key) ? base.filter((k) => k !== key) : [...base, key].slice(-2);
    });
  return (
    <div className="stack" data-testid="samples-panel" data-count={byStep.length}>
      <div className="compare">
        {compare.map((s) => (
          <figure key={s.key} style={{ margin: 0 }} className="stack-sm">
            <img src={s.url} alt={`Sample at step ${s.step}`} />
            <figcaption className="small muted">Step {s.step}{s.prompt ? ` · ${s.prompt}` : ""}</figcaption>
          </figure>
        ))}
      </div>
      <div className="small faint">Click two samples to compare them.</div>
      <div className="sample-strip">
        {byStep.map((s) => (
          <button
            key={s.key}
            type="button"
            className={`sample${chosen.includes(s.key) ? " selected" : ""}`}
            onClick={() => toggle(s.key)}
            aria-pressed={chosen.includes(s.key)}
            style={{ background: "none", color: "inherit", font: "inherit", textAlign: "left" }}
            data-testid="sample"
          >
            <img src={s.url} alt={`Sample at step ${s.step}`} loading="lazy" />
            <span className="small muted">step {s.step}</span>
          </button>
        ))}
      </div>
    </div>
  );
}
