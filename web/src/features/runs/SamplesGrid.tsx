import { useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { Lightbox } from "../../components/Lightbox";
import { Empty, Field } from "../../components/ui";
import { formatScore, type SampleScore } from "../evaluation/api";
import type { MediaRef } from "../jobs/live";

/**
 * Samples as a table: a row per prompt, a column per sampled step (same seed along a row), so the best step shows at
 * a glance; below, one prompt at two chosen steps side by side. A step with a checkpoint offers to generate with it.
 */
export function SamplesGrid({ samples, checkpoints, characterId, scores }: { samples: MediaRef[]; checkpoints: MediaRef[]; characterId: string | null; scores?: Map<string, SampleScore> }) {
  const steps = useMemo(() => [...new Set(samples.map((s) => s.step ?? 0))].sort((a, b) => a - b), [samples]);
  const prompts = useMemo(() => [...new Set(samples.map((s) => s.prompt ?? ""))], [samples]);
  const cell = (prompt: string, step: number) => samples.find((s) => (s.prompt ?? "") === prompt && (s.step ?? 0) === step);
  const loraAt = (step: number) => checkpoints.find((c) => c.step === step && c.loraId)?.loraId;
  const ordered = useMemo(() => prompts.flatMap((p) => steps.map((st) => cell(p, st)).filter((s): s is MediaRef => !!s)), [prompts, steps, samples]); // eslint-disable-line react-hooks/exhaustive-deps
  const [viewing, setViewing] = useState<number | null>(null);
  const [prompt, setPrompt] = useState<string | null>(null);
  const [a, setA] = useState<number | null>(null);
  const [b, setB] = useState<number | null>(null);
  if (samples.length === 0) return <Empty icon="◧" title="No samples yet">Sample images appear at each sampling step.</Empty>;
  const chosenPrompt = prompt ?? prompts[0];
  const left = a ?? steps[0];
  const right = b ?? steps.at(-1)!;
  const open = (s: MediaRef) => setViewing(ordered.indexOf(s));
  return (
    <div className="stack" data-testid="samples-panel" data-count={samples.length}>
      <div className="table-wrap">
        <table className="table samples-grid" data-testid="samples-grid">
          <thead>
            <tr>
              <th>Prompt</th>
              {steps.map((step) => (
                <th key={step}>
                  <span>step {step}</span>
                  {loraAt(step) ? (
                    <Link className="link small samples-use" to={`/generate?lora=${loraAt(step)}${characterId ? `&character=${characterId}` : ""}`} aria-label={`Generate with step ${step}`}>
                      use
                    </Link>
                  ) : null}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {prompts.map((p) => (
              <tr key={p} data-testid="samples-row">
                <td className="small samples-prompt">{p || <span className="faint">(no prompt)</span>}</td>
                {steps.map((step) => {
                  const s = cell(p, step);
                  return (
                    <td key={step}>
                      {s ? (
                        <>
                          <button type="button" className="sample" data-testid="sample" onClick={() => open(s)} aria-label={`Open the sample at step ${step}: ${p}`}>
                            <img src={s.url} alt={`Sample at step ${step}: ${p}`} loading="lazy" />
                          </button>
                          <SampleScores score={scores?.get(s.key)} />
                        </>
                      ) : <span className="faint">—</span>}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="form-grid">
        <Field label="Compare prompt" htmlFor="compare-prompt">
          <select id="compare-prompt" className="select" value={chosenPrompt} onChange={(e) => setPrompt(e.target.value)}>
            {prompts.map((p) => <option key={p} value={p}>{p}</option>)}
          </select>
        </Field>
        <Field label="Step" htmlFor="compare-a">
          <select id="compare-a" className="select" value={left} onChange={(e) => setA(Number(e.target.value))}>
            {steps.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </Field>
        <Field label="against step" htmlFor="compare-b">
          <select id="compare-b" className="select" value={right} onChange={(e) => setB(Number(e.target.value))}>
            {steps.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </Field>
      </div>
      <div className="compare" data-testid="samples-compare">
        {[left, right].map((step, i) => {
          const s = cell(chosenPrompt, step);
          return (
            <figure key={`${i}-${step}`} style={{ margin: 0 }} className="stack-sm">
              {s ? <img src={s.url} alt={`Sample at step ${step}`} /> : <div className="empty">No sample</div>}
              <figcaption className="small muted">step {step} · {chosenPrompt}</figcaption>
            </figure>
          );
        })}
      </div>
      <Lightbox
        items={ordered.map((s) => ({ key: s.key, url: s.url, alt: `Sample at step ${s.step}`, caption: `step ${s.step} · ${s.prompt ?? ""}` }))}
        index={viewing}
        onIndex={setViewing}
      />
    </div>
  );
}

/** A cell's scores: identity (or why there is none), adherence, copying. */
function SampleScores({ score }: { score: SampleScore | undefined }) {
  if (!score) return null;
  const identity = score.identity != null ? `id ${formatScore(score.identity)}` : score.subject === "no_face" ? "no face" : null;
  return (
    <div className="small faint" data-testid="sample-scores">
      {[identity, score.adherence != null ? `adh ${formatScore(score.adherence)}` : null, score.copying != null ? `copy ${formatScore(score.copying)}` : null]
        .filter(Boolean)
        .join(" · ")}
    </div>
  );
}
