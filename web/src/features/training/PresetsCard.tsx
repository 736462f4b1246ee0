import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button, Card, ErrorNotice } from "../../components/ui";
import { savePreset, settingsFileUrl, trainingKeys, trainingQueries, type TrainingPlugin } from "./api";

export function PresetsCard({ plugin, values, onApply }: { plugin: TrainingPlugin | undefined; values: Record<string, unknown>; onApply: (config: Record<string, unknown>) => void }) {
  const client = useQueryClient();
  const presets = useQuery(trainingQueries.presets());
  const [presetName, setPresetName] = useState("");
  const save = useMutation({
    mutationFn: () => savePreset({ name: presetName, plugin: plugin?.name, config: values }),
    onSuccess: () => {
      setPresetName("");
      void client.invalidateQueries({ queryKey: trainingKeys.presets });
    },
  });
  return (
    <Card title="Presets">
      <div className="stack">
        {presets.error ? <span className="small muted">Presets are not available.</span> : presets.data?.length ? (
          <div className="stack-sm">
            {presets.data.filter((p) => !plugin || p.plugin === plugin.name).map((p) => (
              <div key={p.id} className="row between">
                <span>{p.name}</span>
                <div className="row" style={{ gap: 4, flexWrap: "nowrap" }}>
                  <a className="btn sm ghost" href={settingsFileUrl.preset(p.id)} download aria-label={`Export ${p.name} as YAML`}>YAML</a>
                  <Button size="sm" onClick={() => onApply(p.config)}>Apply</Button>
                </div>
              </div>
            ))}
          </div>
        ) : <span className="small muted">No presets saved yet.</span>}
        <div className="row" style={{ flexWrap: "nowrap" }}>
          <input className="input" aria-label="Preset name" placeholder="Save these settings as…" value={presetName} onChange={(e) => setPresetName(e.target.value)} maxLength={100} />
          <Button size="sm" disabled={!presetName.trim() || !plugin} loading={save.isPending} onClick={() => save.mutate()}>Save</Button>
        </div>
        {save.error ? <ErrorNotice error={save.error} title="Preset not saved" /> : null}
      </div>
    </Card>
  );
}
