import { useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { Alert, Field, Spinner } from "../../components/ui";
import { errorMessage } from "../../lib/api-errors";
import type { Character } from "../characters/api";
import { importLora, loraKeys } from "./api";

interface Outcome {
  name: string;
  ok: boolean;
  message: string;
}

/** Drop (or choose) `.safetensors` files: diffusers, kohya or ai-toolkit layouts are converted by the API. */
export function LoraImport({ characters }: { characters: Character[] }) {
  const client = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const [characterId, setCharacterId] = useState("");
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [outcomes, setOutcomes] = useState<Outcome[]>([]);
  async function add(files: File[]) {
    setBusy(true);
    const results: Outcome[] = [];
    for (const file of files) {
      try {
        const lora = await importLora(file, characterId);
        results.push({ name: file.name, ok: true, message: `Imported as “${lora.name}”` });
      } catch (error) {
        results.push({ name: file.name, ok: false, message: errorMessage(error) });
      }
    }
    setOutcomes(results);
    setBusy(false);
    void client.invalidateQueries({ queryKey: loraKeys.all });
  }
  return (
    <div className="stack">
      <Field label="Character of the imported LoRA" htmlFor="lora-import-character">
        <select id="lora-import-character" className="select" value={characterId} onChange={(e) => setCharacterId(e.target.value)}>
          <option value="">None</option>
          {characters.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
        </select>
      </Field>
      <div
        className={`dropzone${dragging ? " active" : ""}`}
        role="button"
        tabIndex={0}
        aria-label="Import a LoRA: drop a .safetensors file here or press Enter to choose"
        onClick={() => input.current?.click()}
        onKeyDown={(e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.current?.click(); } }}
        onDragOver={(e) => { e.preventDefault(); setDragging(true); }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => { e.preventDefault(); setDragging(false); void add(Array.from(e.dataTransfer.files)); }}
      >
        <div><b>Drop a .safetensors LoRA here</b>, or click to choose</div>
        <div className="small faint">FLUX LoRAs in diffusers, kohya or ai-toolkit layout</div>
        <input ref={input} type="file" accept=".safetensors" multiple hidden data-testid="lora-import-input"
          onChange={(e) => { if (e.target.files) void add(Array.from(e.target.files)); e.target.value = ""; }} />
      </div>
      {busy ? <Spinner label="Importing" /> : null}
      {outcomes.length ? (
        <div className="stack-sm" data-testid="lora-import-result">
          {outcomes.map((o) => <Alert key={o.name} tone={o.ok ? "ok" : "danger"} title={o.ok ? o.message : `${o.name} was refused`}>{o.ok ? o.name : o.message}</Alert>)}
        </div>
      ) : null}
    </div>
  );
}
