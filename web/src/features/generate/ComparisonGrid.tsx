import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button, ErrorNotice, Field } from "../../components/ui";
import { generateGrid, generationKeys, useFinishedRuns, type GenerationParams } from "./api";
import { LiveJob } from "./LiveJob";

/** The form's prompt, size, steps and guidance rendered with every checkpoint of a finished run. */
export function ComparisonGrid({ prompt, characterId, params }: { prompt: string; characterId: string; params: GenerationParams }) {
  const client = useQueryClient();
  const [jobId, setJobId] = useState("");
  const [seeds, setSeeds] = useState("1, 2");
  const [submitted, setSubmitted] = useState<string | null>(null);
  const runs = useFinishedRuns();
  const submit = useMutation({
    mutationFn: () =>
      generateGrid({
        job_id: jobId,
        prompts: [prompt],
        seeds: seeds.split(/[\s,]+/).filter(Boolean).map(Number),
        character_id: characterId || null,
        include_base: true,
        ...params,
      }),
    onSuccess: (job) => setSubmitted(job.id),
  });
  return (
    <div className="stack">
      <div className="form-grid">
        <Field label="Training run" htmlFor="grid-run">
          <select id="grid-run" className="select" value={jobId} onChange={(e) => setJobId(e.target.value)}>
            <option value="">Choose a finished run…</option>
            {runs.data?.items.map((j) => <option key={j.id} value={j.id}>{j.name || j.id.slice(0, 8)}</option>)}
          </select>
        </Field>
        <Field label="Seeds" htmlFor="grid-seeds" hint="One row per seed"><input id="grid-seeds" className="input" value={seeds} onChange={(e) => setSeeds(e.target.value)} /></Field>
      </div>
      <div className="row between">
        <span className="small muted">Renders the prompt with every checkpoint of the run, side by side, at {params.width}×{params.height} · {params.steps} steps.</span>
        <Button variant="primary" size="sm" disabled={!jobId || !prompt.trim()} loading={submit.isPending} onClick={() => submit.mutate()}>Compare checkpoints</Button>
      </div>
      {submit.error ? <ErrorNotice error={submit.error} title="Could not start the comparison" /> : null}
      {submitted ? <LiveJob jobId={submitted} onDone={() => void client.invalidateQueries({ queryKey: generationKeys.all })} /> : null}
    </div>
  );
}
