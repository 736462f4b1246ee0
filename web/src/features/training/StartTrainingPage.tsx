import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useNavigate, useSearchParams } from "react-router-dom";
import { DatasetChecklist } from "../../components/dataset/DatasetChecklist";
import { defaultsOf, type JsonSchema } from "../../components/training/SchemaForm";
import { Alert, Button, ErrorNotice, PageHeader, Spinner } from "../../components/ui";
import { ApiError, errorMessage, validationItems } from "../../lib/api-errors";
import { useCharacters } from "../characters/api";
import { useBases } from "../system/api";
import { BaseField } from "./BaseField";
import { describeSwitch, switchBase } from "./baseDefaults";
import { jobKeys, jobQueries } from "../jobs/api";
import { startTraining, trainingQueries, type SettingsFile } from "./api";
import { EstimateCard } from "./EstimateCard";
import { PresetsCard } from "./PresetsCard";
import { SettingsCard } from "./SettingsCard";
import { SettingsFileCard } from "./SettingsFileCard";
import { WhatToTrainCard } from "./WhatToTrainCard";


function fieldErrors(error: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of validationItems(error)) {
    const key = item.loc?.filter((p) => !["body", "config"].includes(String(p)))[0];
    if (key !== undefined) out[String(key)] = item.msg ?? "invalid";
  }
  return out;
}

/** The smallest training resolution of the settings: the size check compares each photo's shorter side with it. */
function smallestResolution(values: Record<string, unknown>): number | undefined {
  const listed = Array.isArray(values.resolutions) ? values.resolutions : [values.resolution];
  const sides = listed.map(Number).filter((n) => Number.isFinite(n) && n >= 64 && n <= 4096);
  return sides.length ? Math.min(...sides) : undefined;
}

export default function StartTrainingPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const client = useQueryClient();
  const characters = useCharacters();
  const cloneId = params.get("from") ?? "";
  const clone = useQuery({ ...jobQueries.detail(cloneId), enabled: !!cloneId });
  const [characterId, setCharacterId] = useState(params.get("character") ?? "");
  const [pluginName, setPluginName] = useState("");
  const [name, setName] = useState("");
  const [values, setValues] = useState<Record<string, unknown>>({});
  // What the form itself set (the engine's defaults, then each chosen base's settings): a differing value is edited.
  const [baseline, setBaseline] = useState<Record<string, unknown>>({});
  const [baseNote, setBaseNote] = useState("");
  const [imported, setImported] = useState<SettingsFile | null>(null);
  const plugins = useQuery(trainingQueries.plugins());
  const bases = useBases();
  // Start on an engine that can run here (ai-toolkit needs its own install; flux-lora always runs).
  const plugin =
    plugins.data?.find((p) => p.name === pluginName) ?? plugins.data?.find((p) => p.capability?.available !== false) ?? plugins.data?.[0];
  const schema = plugin?.config_schema;

  /** What a run starts from: the engine's defaults with the base's recommended settings (the engine's default base
   * unless one is given). */
  function startingValues(base?: unknown): Record<string, unknown> {
    const engine = { ...defaultsOf(schema ?? {}), ...(plugin?.defaults ?? {}) };
    return { ...engine, ...(plugin?.base_defaults?.[String(base ?? engine.base ?? "")] ?? {}) };
  }
  function restart(values: Record<string, unknown>, baseline: Record<string, unknown>) {
    setValues(values);
    setBaseline(baseline);
    setBaseNote("");
  }

  useEffect(() => {
    if (plugin && schema) {
      setPluginName(plugin.name);
      // An imported file or a cloned run brings its own settings (once); otherwise the engine's defaults.
      const cloned =
        imported && imported.plugin === plugin.name
          ? imported.config
          : clone.data && clone.data.plugin === plugin.name ? (clone.data.config as Record<string, unknown>) : {};
      const defaults = startingValues(cloned.base);
      restart({ ...defaults, ...cloned }, defaults);
    }
  }, [plugin?.name, schema, clone.data, imported]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    if (clone.data) {
      setPluginName(clone.data.plugin);
      if (clone.data.character_id) setCharacterId(clone.data.character_id);
    }
  }, [clone.data]);
  useEffect(() => {
    if (!characterId && characters.data?.length === 1) setCharacterId(characters.data[0].id);
  }, [characters.data, characterId]);

  const steps = Number(values.steps ?? 0);
  const estimate = useQuery({
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
  const errors = fieldErrors(submit.error);
  // Why the button is off, said next to it: the estimate already knows when a run would be refused.
  const chosenBase = bases.data?.find((b) => b.name === values.base);
  const blocked = !characterId
    ? "Choose a character first."
    : chosenBase && !chosenBase.available
      ? `${chosenBase.label} is not installed here: ${chosenBase.reason ?? ""}`
    : plugin?.capability && !plugin.capability.available
      ? `${plugin.name} cannot run here: ${plugin.capability.reason ?? "it is not set up"}`
      : estimate.error && !(estimate.error instanceof ApiError && estimate.error.status === 0)
        ? `This run would not start: ${errorMessage(estimate.error)}`
        : null;

  return (
    <div className="page">
      <PageHeader title="Start training" description="Train a LoRA for a character. Defaults are tuned for characters; change what you need." />
      {plugins.error ? <ErrorNotice error={plugins.error} title="Could not load the training engines" onRetry={() => void plugins.refetch()} /> : null}
      {clone.data ? <Alert tone="info" title={`Settings of ${clone.data.name}`}>Change what you need and start a new run.</Alert> : null}
      <div className="cols-main-side">
        <form className="stack" onSubmit={(e) => { e.preventDefault(); submit.mutate(); }}>
          <WhatToTrainCard characters={characters.data} characterId={characterId} setCharacterId={setCharacterId} plugins={plugins.data ?? []}
            plugin={plugin} setPluginName={setPluginName} name={name} setName={setName}>
            {!("base" in ((schema as JsonSchema | undefined)?.properties ?? {})) || bases.isError ? null : !bases.data ? (
              <Spinner label="Loading the base models" />
            ) : (
              <>
                <BaseField bases={bases.data} value={String(values.base ?? "")} onChange={(base) => {
                  const applied = switchBase(values, baseline, base, plugin?.base_defaults?.[base] ?? {});
                  setValues(applied.values);
                  setBaseline(applied.baseline);
                  setBaseNote(describeSwitch(bases.data.find((b) => b.name === base)?.label ?? base, applied));
                }} />
                {baseNote ? <span className="small muted" data-testid="base-applied">{baseNote}</span> : null}
              </>
            )}
          </WhatToTrainCard>
          {plugins.isPending ? <Spinner label="Loading the engines" /> : schema ? (
            <SettingsCard plugin={plugin} schema={schema} values={values} setValues={setValues} errors={errors}
              onReset={() => { const defaults = startingValues(); restart(defaults, defaults); }} />
          ) : null}
          {submit.error ? <ErrorNotice error={submit.error} title="The run was not started" /> : null}
          <div className="row" style={{ justifyContent: "flex-end" }}>
            {blocked ? <span className="small" style={{ color: "var(--warn)" }} data-testid="start-blocked">{blocked}</span> : null}
            <Button type="submit" variant="primary" loading={submit.isPending} disabled={!!blocked || !plugin}>Start training</Button>
          </div>
        </form>
        <div className="stack">
          <EstimateCard estimate={estimate} steps={steps} />
          {characterId ? <DatasetChecklist characterId={characterId} resolution={smallestResolution(values)} /> : <Alert tone="info" title="Choose a character">Its dataset is checked here before you start.</Alert>}
          <PresetsCard plugin={plugin} values={values} onApply={(config) => setValues((prev) => ({ ...prev, ...config }))} />
          <SettingsFileCard onImport={(settings) => { setPluginName(settings.plugin); setImported(settings); }} />
        </div>
      </div>
    </div>
  );
}
