import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { useSearchParams } from "react-router-dom";
import { Card, Empty, ErrorNotice, Field, PageHeader, Spinner } from "../../components/ui";
import { useCharacters } from "../characters/api";
import { useBases } from "../system/api";
import { loraQueries, SOURCE_LABELS } from "./api";
import { LoraImport } from "./LoraImport";
import { LoraRow } from "./LoraRow";

export default function LoraLibraryPage() {
  const [params, setParams] = useSearchParams();
  const characterId = params.get("character") ?? "";
  const source = params.get("source") ?? "";
  const base = params.get("base") ?? "";
  const characters = useCharacters();
  const bases = useBases();
  const names = useMemo(() => new Map((characters.data ?? []).map((c) => [c.id, c.name])), [characters.data]);
  const library = useQuery(
    loraQueries.list({ character_id: characterId || undefined, source: source ? (source as "trained" | "checkpoint" | "imported") : undefined, base: base || undefined, limit: 200 }),
  );
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const items = library.data?.items ?? [];
  return (
    <div className="page">
      <PageHeader title="LoRA library" description="Every LoRA on this machine: trained here or imported. Rename, download, delete, or generate with one." />
      <div className="cols-side-main">
        <Card title="Import">
          <LoraImport characters={characters.data ?? []} />
        </Card>
        <div className="stack">
          <div className="card">
            <div className="form-grid">
              <Field label="Character" htmlFor="lora-character">
                <select id="lora-character" className="select" value={characterId} onChange={(e) => set("character", e.target.value)}>
                  <option value="">All</option>
                  {characters.data?.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
                </select>
              </Field>
              <Field label="Source" htmlFor="lora-source">
                <select id="lora-source" className="select" value={source} onChange={(e) => set("source", e.target.value)}>
                  <option value="">Trained and imported</option>
                  {Object.entries(SOURCE_LABELS).map(([value, label]) => <option key={value} value={value}>{label}</option>)}
                </select>
              </Field>
              <Field label="Base model" htmlFor="lora-base">
                <select id="lora-base" className="select" value={base} onChange={(e) => set("base", e.target.value)}>
                  <option value="">All bases</option>
                  {bases.data?.map((b) => <option key={b.name} value={b.name}>{b.label}</option>)}
                  <option value="unknown">Unknown base</option>
                </select>
              </Field>
            </div>
          </div>
          {library.error ? <ErrorNotice error={library.error} title="Could not load the library" /> : library.isPending ? <Spinner /> : items.length === 0 ? (
            <Empty icon="◈" title="No LoRAs here yet">Train one from a character's page, or import a .safetensors file.</Empty>
          ) : (
            <Card flush>
              <div className="table-wrap">
                <table className="table stacked" data-testid="lora-table">
                  <thead><tr><th>Name</th><th>Character</th><th>Base model</th><th>Rank</th><th>Steps</th><th>Size</th><th>Date</th><th>Source</th><th /></tr></thead>
                  <tbody>
                    {items.filter((l) => source === "checkpoint" || l.source !== "checkpoint").map((l) => (
                      <LoraRow key={l.id} lora={l} characterName={l.character_id ? names.get(l.character_id) ?? null : null} />
                    ))}
                  </tbody>
                </table>
              </div>
            </Card>
          )}
        </div>
      </div>
    </div>
  );
}
