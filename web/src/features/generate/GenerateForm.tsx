import { Button, ErrorNotice, Field, Switch } from "../../components/ui";
import type { Character } from "../characters/api";
import { useLoraLibrary, type ImagePlugin, type LoraChoice } from "./api";
import { CheckpointField } from "./CheckpointField";
import { EngineField } from "./EngineField";
import type { CharacterLoraChip } from "./useCharacterLoraChip";
import { LiveJob } from "./LiveJob";
import { LoraPicker } from "./LoraPicker";

export const SIZES = [
  { label: "Square 1024", w: 1024, h: 1024 },
  { label: "Portrait 832×1216", w: 832, h: 1216 },
  { label: "Landscape 1216×832", w: 1216, h: 832 },
  { label: "Square 512", w: 512, h: 512 },
  { label: "Preview 128", w: 128, h: 128 },
];

export interface Settings {
  prompt: string;
  characterId: string;
  loras: LoraChoice[];
  width: number;
  height: number;
  steps: number;
  guidance: number;
  seed: number;
  lockSeed: boolean;
  count: number;
  engine: string;
  checkpoint: "base" | "distilled";
}

export const randomSeed = () => Math.floor(Math.random() * 2 ** 31);

export function GenerateForm({ s, setS, characters, chip, engines, onSubmit, submitting, error, activeJob, onDone }: {
  s: Settings;
  engines: ImagePlugin[];
  setS: (f: (prev: Settings) => Settings) => void;
  characters: Character[];
  chip: CharacterLoraChip;
  onSubmit: () => void;
  submitting: boolean;
  error: unknown;
  activeJob: string | null;
  onDone: () => void;
}) {
  const set = <K extends keyof Settings>(key: K, value: Settings[K]) => setS((prev) => ({ ...prev, [key]: value }));
  const loras = useLoraLibrary();
  const character = characters.find((c) => c.id === s.characterId);
  return (
    <form className="stack" onSubmit={(e) => { e.preventDefault(); onSubmit(); }}>
      <Field label="Prompt" htmlFor="gen-prompt" hint="[trigger] becomes the character's trigger word; without it the word is put first">
        <textarea id="gen-prompt" className="textarea" rows={4} value={s.prompt} onChange={(e) => set("prompt", e.target.value)} placeholder="a portrait of [trigger] in a forest, soft light" required
          onKeyDown={(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) onSubmit(); }} />
      </Field>
      <Field label="Character" htmlFor="gen-character" hint="Attaches the character's default LoRA and adds its trigger word">
        <select id="gen-character" className="select" value={s.characterId} onChange={(e) => chip.choose(e.target.value)}>
          <option value="">None</option>
          {characters.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
        </select>
      </Field>
      {chip.missing ? (
        <div className="small" style={{ color: "var(--warn)" }} data-testid="character-lora-note">
          {character?.name ?? "This character"} has no trained LoRA yet: only its trigger word is added to the prompt.
        </div>
      ) : null}
      <EngineField engines={engines} value={s.engine} onChange={(engine) => set("engine", engine)} />
      <Field label="LoRAs"><LoraPicker value={s.loras} onChange={(v) => set("loras", v)} loras={loras.data?.items ?? []} /></Field>
      <CheckpointField s={s} setS={setS} base={loras.data?.items.find((l) => s.loras.some((c) => c.lora_id === l.id))?.base ?? null} />
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
      {error ? <ErrorNotice error={error} title="Could not start" /> : null}
      <Button type="submit" variant="primary" loading={submitting} disabled={!s.prompt.trim() || engines.some((e) => e.name === s.engine && !e.capability.available)}>Generate <span className="kbd">Ctrl ↵</span></Button>
      {activeJob ? <LiveJob key={activeJob} jobId={activeJob} onDone={onDone} /> : null}
    </form>
  );
}
