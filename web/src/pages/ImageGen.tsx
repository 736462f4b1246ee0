import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { StatusBadge } from "../components/training/JobBits";
import { Alert, Badge, Button, Card, Empty, ErrorNotice, Field, PageHeader, ProgressBar, Spinner, Switch } from "../components/ui";
import { useCharacters } from "../features/characters/api";
import { generate, generateGrid, generationKeys, generationQueries, type Generation } from "../features/generation/api";
import { isFinal, jobQueries, type JobStatus } from "../features/jobs/api";
import { useJobEventStream } from "../features/jobs/hooks";
import { loraQueries, type Lora } from "../features/loras/api";
import { healthQuery } from "../features/system/api";
import { timeAgo } from "../lib/format";

const SIZES = [
  { label: "Square 1024", w: 1024, h: 1024 },
  { label: "Portrait 832×1216", w: 832, h: 1216 },
  { label: "Landscape 1216×832", w: 1216, h: 832 },
  { label: "Square 512", w: 512, h: 512 },
  { label: "Preview 128", w: 128, h: 128 },
];

interface Settings {
  prompt: string;
  characterId: string;
  loras: { lora_id: string; weight: number }[];
  width: number;
  height: number;
  steps: number;
  guidance: number;
  seed: number;
  lockSeed: boolean;
  count: number;
  engine: string;
}

const randomSeed = () => Math.floor(Math.random() * 2 ** 31);

function LoraPicker({ value, onChange, loras }: { value: Settings["loras"]; onChange: (v: Settings["loras"]) => void; loras: Lora[] }) {
  const available = loras.filter((l) => !value.some((v) => v.lora_id === l.id));
  return (
    <div className="stack-sm">
      {value.map((sel) => {
        const lora = loras.find((l) => l.id === sel.lora_id);
        return (
          <div key={sel.lora_id} className="stack-sm" style={{ background: "var(--bg-elev-2)", padding: 8, borderRadius: 6 }} data-testid="lora-selected">
            <div className="row between small">
              <span>{lora?.name ?? sel.lora_id.slice(0, 8)}{lora?.step ? <span className="faint"> · step {lora.step}</span> : null}</span>
              <Button size="sm" variant="ghost" aria-label="Remove LoRA" onClick={() => onChange(value.filter((v) => v.lora_id !== sel.lora_id))}>✕</Button>
            </div>
            <div className="row">
              <input type="range" min={-2} max={2} step={0.05} value={sel.weight} aria-label="LoRA weight" style={{ flex: 1 }}
                onChange={(e) => onChange(value.map((v) => (v.lora_id === sel.lora_id ? { ...v, weight: Number(e.target.value) } : v)))} />
              <span className="mono small" style={{ width: 40, textAlign: "right" }}>{sel.weight.toFixed(2)}</span>
            </div>
          </div>
        );
      })}
      <select className="select" aria-label="Add a LoRA" value="" onChange={(e) => e.target.value && onChange([...value, { lora_id: e.target.value, weight: 1 }])}>
        <option value="">{available.length ? "+ Add a LoRA…" : "No other LoRAs"}</option>
        {available.map((l) => <option key={l.id} value={l.id}>{l.name}{l.step ? ` (step ${l.step})` : ""}</option>)}
      </select>
    </div>
  );
}

function GenerationCard({ item, onReuse }: { item: Generation; onReuse: (g: Generation) => void }) {
  return (
    <div className="media-card" data-testid="generation-card">
      <a className="media-thumb" href={item.url} target="_blank" rel="noreferrer">
        <img src={item.thumbnail_url ?? item.url} alt={item.prompt} className="pixelated" loading="lazy" />
      </a>
      <div className="media-body">
        <div className="small" title={item.prompt} style={{ overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>{item.prompt}</div>
        <div className="small faint">{item.width}×{item.height} · {item.steps} steps · cfg {item.guidance} · seed {item.seed}</div>
        {item.loras.length ? <div className="row" style={{ gap: 4 }}>{item.loras.map((l, i) => <Badge key={i} tone="accent">{l.name ?? "LoRA"} × {Number(l.weight ?? 1).toFixed(2)}</Badge>)}</div> : null}
        <div className="row" style={{ gap: 6 }}>
          <Button size="sm" onClick={() => onReuse(item)}>Reuse settings</Button>
          <a className="btn sm ghost" href={item.url} download>Download</a>
          <span className="spacer" />
          <span className="faint small" data-dynamic>{timeAgo(item.created_at)}</span>
        </div>
      </div>
    </div>
  );
}

function LiveJob({ jobId, onDone }: { jobId: string; onDone: () => void }) {
  const [progress, setProgress] = useState<{ step: number; total: number } | null>(null);
  const [status, setStatus] = useState<JobStatus>("queued");
  const [error, setError] = useState<string | null>(null);
  useJobEventStream(isFinal(status) ? null : jobId, (event) => {
    if (event.type === "progress") setProgress({ step: event.step, total: event.total });
    if (event.type === "status") {
      setStatus(event.status);
      if (event.status === "failed") setError(event.message ?? "generation failed");
      if (isFinal(event.status)) onDone();
    }
    if (event.type === "error") setError(event.message);
  });
  return (
    <div className="stack-sm" data-testid="generation-progress">
      <div className="row between small">
        <span className="muted">
          {status === "succeeded" ? "Done" : status === "failed" ? "Failed" : status === "cancelled" ? "Cancelled" : status === "queued" && !progress ? "Waiting for a worker…" : "Generating…"}
          {progress ? ` · step ${progress.step}/${progress.total}` : ""}
        </span>
        <StatusBadge status={status} />
      </div>
      <ProgressBar value={progress?.step ?? 0} max={progress?.total || 1} indeterminate={!progress} tone={status === "failed" ? "danger" : status === "succeeded" ? "ok" : undefined} />
      {error ? <Alert tone="danger" title="Generation failed">{error}</Alert> : null}
    </div>
  );
}

function ComparisonGrid({ prompt, characterId }: { prompt: string; characterId: string }) {
  const client = useQueryClient();
  const [jobId, setJobId] = useState("");
  const [seeds, setSeeds] = useState("1, 2");
  const [submitted, setSubmitted] = useState<string | null>(null);
  const runs = useQuery(jobQueries.list({ kind: "training", status: "succeeded", limit: 50 }));
  const submit = useMutation({
    mutationFn: () =>
      generateGrid({
        job_id: jobId,
        prompts: [prompt],
        seeds: seeds.split(/[\s,]+/).filter(Boolean).map(Number),
        character_id: characterId || null,
        include_base: true,
        width: 256,
        height: 256,
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
        <span className="small muted">Renders the prompt with every checkpoint of the run, side by side.</span>
        <Button variant="primary" size="sm" disabled={!jobId || !prompt.trim()} loading={submit.isPending} onClick={() => submit.mutate()}>Compare checkpoints</Button>
      </div>
      {submit.error ? <ErrorNotice error={submit.error} title="Could not start the comparison" /> : null}
      {submitted ? <LiveJob jobId={submitted} onDone={() => void client.invalidateQueries({ queryKey: generationKeys.all })} /> : null}
    </div>
  );
}

export default function ImageGen() {
  const [params] = useSearchParams();
  const client = useQueryClient();
  const characters = useCharacters();
  const [s, setS] = useState<Settings>(() => ({
    prompt: "",
    characterId: params.get("character") ?? "",
    loras: params.get("lora") ? [{ lora_id: params.get("lora")!, weight: 1 }] : [],
    width: 1024,
    height: 1024,
    steps: 28,
    guidance: 3.5,
    seed: randomSeed(),
    lockSeed: false,
    count: 1,
    engine: "diffusers",
  }));
  const set = <K extends keyof Settings>(key: K, value: Settings[K]) => setS((prev) => ({ ...prev, [key]: value }));
  const [activeJob, setActiveJob] = useState<string | null>(null);
  const loras = useQuery(loraQueries.list({ limit: 200 }));
  const gallery = useInfiniteQuery(generationQueries.gallery());
  const items = gallery.data?.pages.flatMap((p) => p.items) ?? [];
  const plugins = useQuery(generationQueries.plugins());
  const mode = useQuery({ ...healthQuery(), enabled: false });
  useEffect(() => {
    // The tiny fast-test model only makes sense at small sizes; start there when that is what runs.
    const health = mode.data;
    if (health?.mode === "fast-test") setS((prev) => (prev.width === 1024 && prev.height === 1024 ? { ...prev, width: 128, height: 128, steps: 4 } : prev));
  }, [mode.data]);

  const submit = useMutation({
    mutationFn: () =>
      generate({
        prompt: s.prompt,
        character_id: s.characterId || null,
        loras: s.loras,
        width: s.width,
        height: s.height,
        steps: s.steps,
        guidance: s.guidance,
        seed: s.seed,
        num_images: s.count,
        plugin: s.engine,
      }),
    onSuccess: (job) => {
      setActiveJob(job.id);
      if (!s.lockSeed) set("seed", randomSeed());
    },
  });
  const reuse = (g: Generation) =>
    setS((prev) => ({
      ...prev,
      prompt: g.prompt,
      characterId: g.character_id ?? "",
      loras: g.loras.map((l) => ({ lora_id: l.lora_id, weight: l.weight ?? 1 })),
      width: g.width,
      height: g.height,
      steps: g.steps,
      guidance: g.guidance,
      seed: g.seed,
      lockSeed: true,
    }));
  // Warn only when nothing can generate; an optional engine that is not set up (ComfyUI) is a footnote.
  const unavailable = plugins.data?.filter((p) => !p.capability.available) ?? [];
  const noneAvailable = !!plugins.data?.length && unavailable.length === plugins.data.length;

  return (
    <div className="page">
      <PageHeader title="Generate images" description="Prompt, pick LoRAs and weights, and generate. Every image keeps its parameters." />
      {noneAvailable ? (
        <Alert tone="warn" title="No image engine is available">{unavailable.map((p) => `${p.name}: ${p.capability.reason ?? "unavailable"}`).join(" · ")}</Alert>
      ) : unavailable.length ? (
        <div className="small faint" data-testid="engines-unavailable">Not set up: {unavailable.map((p) => `${p.name} (${p.capability.reason ?? "unavailable"})`).join(", ")}</div>
      ) : null}
      <div className="cols-side-main">
        <Card>
          <form className="stack" onSubmit={(e) => { e.preventDefault(); submit.mutate(); }}>
            <Field label="Prompt" htmlFor="gen-prompt">
              <textarea id="gen-prompt" className="textarea" rows={4} value={s.prompt} onChange={(e) => set("prompt", e.target.value)} placeholder="a portrait of the character in a forest, soft light" required
                onKeyDown={(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) submit.mutate(); }} />
            </Field>
            <Field label="Character" htmlFor="gen-character" hint="Adds the character's trigger word to the prompt">
              <select id="gen-character" className="select" value={s.characterId} onChange={(e) => set("characterId", e.target.value)}>
                <option value="">None</option>
                {characters.data?.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
              </select>
            </Field>
            {(plugins.data?.filter((p) => p.capability.available).length ?? 0) > 1 ? (
              <Field label="Engine" htmlFor="gen-engine" hint="Which image engine renders the request">
                <select id="gen-engine" className="select" value={s.engine} onChange={(e) => set("engine", e.target.value)}>
                  {plugins.data?.map((p) => <option key={p.name} value={p.name} disabled={!p.capability.available}>{p.capability.available ? p.name : `${p.name} (not set up)`}</option>)}
                </select>
              </Field>
            ) : null}
            <Field label="LoRAs"><LoraPicker value={s.loras} onChange={(v) => set("loras", v)} loras={loras.data?.items ?? []} /></Field>
            <Field label="Size" htmlFor="gen-size">
              <select id="gen-size" className="select" value={`${s.width}x${s.height}`} onChange={(e) => { const [w, h] = e.target.value.split("x").map(Number); setS((p) => ({ ...p, width: w, height: h })); }}>
                {SIZES.map((z) => <option key={z.label} value={`${z.w}x${z.h}`}>{z.label}</option>)}
                {!SIZES.some((z) => z.w === s.width && z.h === s.height) ? <option value={`${s.width}x${s.height}`}>{s.width}×{s.height}</option> : null}
              </select>
            </Field>
            <div className="grid-2">
              <Field label={`Steps (${s.steps})`} htmlFor="gen-steps"><input id="gen-steps" type="range" min={1} max={60} value={s.steps} onChange={(e) => set("steps", Number(e.target.value))} /></Field>
              <Field label={`Guidance (${s.guidance})`} htmlFor="gen-guidance"><input id="gen-guidance" type="range" min={0} max={10} step={0.5} value={s.guidance} onChange={(e) => set("guidance", Number(e.target.value))} /></Field>
            </div>
            <div className="grid-2">
              <Field label="Seed" htmlFor="gen-seed">
                <div className="row" style={{ flexWrap: "nowrap", gap: 6 }} data-dynamic>
                  <input id="gen-seed" className="input mono" type="number" min={0} value={s.seed} onChange={(e) => set("seed", Number(e.target.value))} />
                  <Button icon aria-label="Random seed" onClick={() => set("seed", randomSeed())}>⟳</Button>
                </div>
              </Field>
              <Field label="Images" htmlFor="gen-count"><input id="gen-count" className="input" type="number" min={1} max={8} value={s.count} onChange={(e) => set("count", Math.max(1, Math.min(8, Number(e.target.value))))} /></Field>
            </div>
            <Switch checked={s.lockSeed} onChange={(v) => set("lockSeed", v)} label="Lock seed (keep it after generating)" />
            {submit.error ? <ErrorNotice error={submit.error} title="Could not start" /> : null}
            <Button type="submit" variant="primary" loading={submit.isPending} disabled={!s.prompt.trim()}>Generate <span className="kbd">Ctrl ↵</span></Button>
            {activeJob ? <LiveJob key={activeJob} jobId={activeJob} onDone={() => void client.invalidateQueries({ queryKey: generationKeys.all })} /> : null}
          </form>
        </Card>
        <div className="stack">
          <Card title="Results" description="Newest first">
            {gallery.error ? <ErrorNotice error={gallery.error} title="Could not load the gallery" /> : gallery.isPending ? <Spinner /> : items.length === 0 ? (
              <Empty icon="✦" title="No images yet">Write a prompt and press Generate.</Empty>
            ) : (
              <div className="media-grid" data-testid="gallery">{items.map((g) => <GenerationCard key={g.id} item={g} onReuse={reuse} />)}</div>
            )}
            {gallery.hasNextPage ? <div className="row" style={{ justifyContent: "center", marginTop: 12 }}><Button onClick={() => void gallery.fetchNextPage()} loading={gallery.isFetchingNextPage}>Load more</Button></div> : null}
          </Card>
          <Card title="Checkpoint comparison" description="The same prompt and seeds across a run's checkpoints">
            <ComparisonGrid prompt={s.prompt} characterId={s.characterId} />
          </Card>
        </div>
      </div>
    </div>
  );
}
