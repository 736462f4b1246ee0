import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { DatasetChecklist } from "../components/dataset/DatasetChecklist";
import { MemoryFit } from "../components/training/MemoryFit";
import { defaultsOf, SchemaFields } from "../components/training/SchemaForm";
import { Alert, Button, Card, Empty, ErrorNotice, Field, PageHeader, Spinner, Stat } from "../components/ui";
import { useCharacters } from "../features/characters/api";
import { jobKeys } from "../features/jobs/api";
import { savePreset as savePresetCall, startTraining, trainingKeys, trainingQueries } from "../features/training/api";
import { ApiError } from "../lib/api-errors";
import { formatDuration } from "../lib/format";

// The knobs most runs touch; everything else sits in the advanced section.
const BASIC = ["steps", "learning_rate", "rank", "alpha", "batch_size", "resolutions", "sample_every", "checkpoint_every", "sample_prompts"];

function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError) || !error.body || typeof error.body !== "object") return {};
  const detail = (error.body as { detail?: unknown }).detail;
  if (!Array.isArray(detail)) return {};
  const out: Record<string, string> = {};
  for (const item of detail as { loc?: (string | number)[]; msg?: string }[]) {
    const key = item.loc?.filter((p) => !["body", "config"].includes(String(p)))[0];
    if (key !== undefined) out[String(key)] = item.msg ?? "invalid";
  }
  return out;
}

export default function StartTraining() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const client = useQueryClient();
  const characters = useCharacters();
  const [characterId, setCharacterId] = useState(params.get("character") ?? "");
  const [pluginName, setPluginName] = useState("");
  const [name, setName] = useState("");
  const [values, setValues] = useState<Record<string, unknown>>({});
  const [presetName, setPresetName] = useState("");
  const plugins = useQuery(trainingQueries.plugins());
  const presets = useQuery(trainingQueries.presets());
  // Start on an engine that can run here (ai-toolkit needs its own install; flux-lora always runs).
  const plugin =
    plugins.data?.find((p) => p.name === pluginName) ?? plugins.data?.find((p) => p.capability?.available !== false) ?? plugins.data?.[0];
  const schema = plugin?.config_schema;

  useEffect(() => {
    if (plugin && schema) {
      setPluginName(plugin.name);
      setValues({ ...defaultsOf(schema), ...(plugin.defaults ?? {}) });
    }
  }, [plugin?.name, schema]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    if (!characterId && characters.data?.length === 1) setCharacterId(characters.data[0].id);
  }, [characters.data, characterId]);

  const allKeys = Object.keys(schema?.properties ?? {});
  const basic = allKeys.filter((k) => BASIC.includes(k));
  const advanced = allKeys.filter((k) => !BASIC.includes(k));
  const character = characters.data?.find((c) => c.id === characterId);
  const steps = Number(values.steps ?? 0);

  // The server's estimate knows the dataset and the measured speed.
  const serverEstimate = useQuery({
    ...trainingQueries.estimate({ character_id: characterId, plugin: plugin?.name, config: values }),
    enabled: !!characterId && !!plugin && plugin.capability?.available !== false && Object.keys(values).length > 0,
  });

  const submit = useMutation({
    mutationFn: () => startTraining({ character_id: characterId, plugin: plugin?.name, config: values, name: name || undefined }),
    onSuccess: (job) => {
      void client.invalidateQueries({ queryKey: jobKeys.all });
      navigate(`/training/${job.id}`);
    },
  });
  const savePreset = useMutation({
    mutationFn: () => savePresetCall({ name: presetName, plugin: plugin?.name, config: values }),
    onSuccess: () => {
      setPresetName("");
      void client.invalidateQueries({ queryKey: trainingKeys.presets });
    },
  });
  const errors = fieldErrors(submit.error);

  return (
    <div className="page">
      <PageHeader title="Start training" description="Train a LoRA for a character. Defaults are tuned for characters; change what you need." />
      {plugins.error ? <ErrorNotice error={plugins.error} title="Could not load the training engines" onRetry={() => void plugins.refetch()} /> : null}
      <div className="cols-main-side">
        <form className="stack" onSubmit={(e) => { e.preventDefault(); submit.mutate(); }}>
          <Card title="What to train">
            <div className="form-grid">
              <Field label="Character" htmlFor="train-character">
                <select id="train-character" className="select" value={characterId} onChange={(e) => setCharacterId(e.target.value)} required>
                  <option value="">Choose a character…</option>
                  {characters.data?.map((c) => <option key={c.id} value={c.id}>{c.name} ({c.image_count} images)</option>)}
                </select>
              </Field>
              <Field label="Engine" htmlFor="train-plugin" hint={plugin?.description}>
                <select id="train-plugin" className="select" value={plugin?.name ?? ""} onChange={(e) => setPluginName(e.target.value)}>
                  {plugins.data?.map((p) => <option key={p.name} value={p.name} disabled={p.capability && !p.capability.available}>{p.name}{p.capability && !p.capability.available ? " (unavailable)" : ""}</option>)}
                </select>
              </Field>
              <Field label="Run name" htmlFor="train-name" hint="Optional">
                <input id="train-name" className="input" value={name} onChange={(e) => setName(e.target.value)} placeholder={character ? `${character.name} LoRA` : ""} maxLength={200} />
              </Field>
            </div>
            {characters.data && characters.data.length === 0 ? <Empty title="No characters yet" action={<Link className="btn" to="/characters">Create one</Link>} /> : null}
          </Card>
          {plugins.isPending ? <Spinner label="Loading the engines" /> : schema ? (
            <Card title="Settings" description={`${allKeys.length} settings from the ${plugin?.name} engine`}>
              <div className="stack">
                <SchemaFields root={schema} keys={basic} values={values} onChange={(k, v) => setValues((prev) => ({ ...prev, [k]: v }))} errors={errors} />
                {advanced.length ? (
                  <details className="advanced">
                    <summary>Advanced ({advanced.length})</summary>
                    <SchemaFields root={schema} keys={advanced} values={values} onChange={(k, v) => setValues((prev) => ({ ...prev, [k]: v }))} errors={errors} />
                  </details>
                ) : null}
                <div className="row"><Button size="sm" variant="ghost" onClick={() => setValues({ ...defaultsOf(schema), ...(plugin?.defaults ?? {}) })}>Reset to defaults</Button></div>
              </div>
            </Card>
          ) : null}
          {submit.error ? <ErrorNotice error={submit.error} title="The run was not started" /> : null}
          <div className="row" style={{ justifyContent: "flex-end" }}>
            <Button type="submit" variant="primary" loading={submit.isPending} disabled={!characterId || !plugin || (plugin.capability && !plugin.capability.available)}>Start training</Button>
          </div>
        </form>
        <div className="stack">
          <Card title="Estimate">
            {/* Measured speed makes the estimate differ run to run. */}
            <div className="stats" data-dynamic>
              <Stat label="Steps" value={serverEstimate.data?.steps ?? (steps || "—")} />
              <Stat label="Time" value={serverEstimate.data ? `~${formatDuration(serverEstimate.data.estimated_seconds)}` : "—"} hint="The run page shows the measured speed" />
            </div>
            {serverEstimate.data ? <div className="small faint" style={{ marginTop: 8 }} data-dynamic>{serverEstimate.data.basis}</div> : null}
            <MemoryFit summary={serverEstimate.data?.memory_summary} error={serverEstimate.error} />
            {serverEstimate.error ? <div style={{ marginTop: 8 }}><ErrorNotice error={serverEstimate.error} title="This run would not start" /></div> : null}
            {serverEstimate.data?.warnings?.map((w) => <div key={w} className="small" style={{ color: "var(--warn)", marginTop: 4 }}>{w}</div>)}
          </Card>
          {characterId ? <DatasetChecklist characterId={characterId} /> : <Alert tone="info" title="Choose a character">Its dataset is checked here before you start.</Alert>}
          <Card title="Presets">
            <div className="stack">
              {presets.error ? <span className="small muted">Presets are not available.</span> : presets.data?.length ? (
                <div className="stack-sm">
                  {presets.data.filter((p) => !plugin || p.plugin === plugin.name).map((p) => (
                    <div key={p.id} className="row between">
                      <span>{p.name}</span>
                      <Button size="sm" onClick={() => setValues((prev) => ({ ...prev, ...p.config }))}>Apply</Button>
                    </div>
                  ))}
                </div>
              ) : <span className="small muted">No presets saved yet.</span>}
              <div className="row" style={{ flexWrap: "nowrap" }}>
                <input className="input" aria-label="Preset name" placeholder="Save these settings as…" value={presetName} onChange={(e) => setPresetName(e.target.value)} maxLength={100} />
                <Button size="sm" disabled={!presetName.trim() || !plugin} loading={savePreset.isPending} onClick={() => savePreset.mutate()}>Save</Button>
              </div>
              {savePreset.error ? <ErrorNotice error={savePreset.error} title="Preset not saved" /> : null}
            </div>
          </Card>
        </div>
      </div>
    </div>
  );
}
