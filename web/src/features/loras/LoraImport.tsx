import { useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { Alert, Button, Field, Spinner } from "../../components/ui";
import { errorMessage } from "../../lib/api-errors";
import type { Character } from "../characters/api";
import { useBases } from "../system/api";
import { baseCandidates, importLora, loraKeys } from "./api";

interface Outcome {
  name: string;
  ok: boolean;
  message: string;
}

/** A file that fits several bases without saying which: the person picks one and it is sent again. */
interface Question {
  file: File;
  message: string;
  candidates: string[];
  choice: string;
}

/** Drop (or choose) `.safetensors` files: diffusers, kohya or ai-toolkit layouts are converted by the API. */
export function LoraImport({ characters }: { characters: Character[] }) {
  const client = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const [characterId, setCharacterId] = useState("");
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [outcomes, setOutcomes] = useState<Outcome[]>([]);
  const [questions, setQuestions] = useState<Question[]>([]);
  const bases = useBases();
  const label = (name: string) => bases.data?.find((b) => b.name === name)?.label ?? name;

  async function send(file: File, base?: string): Promise<{ outcome?: Outcome; question?: Question }> {
    try {
      const lora = await importLora(file, characterId, base);
      return { outcome: { name: file.name, ok: true, message: `Imported as “${lora.name}” for ${label(lora.base)}` } };
    } catch (error) {
      const candidates = baseCandidates(error);
      if (candidates.length) return { question: { file, message: errorMessage(error), candidates, choice: candidates[0] } };
      return { outcome: { name: file.name, ok: false, message: errorMessage(error) } };
    }
  }

  async function add(files: File[]) {
    setBusy(true);
    const results: Outcome[] = [];
    const asked: Question[] = [];
    for (const file of files) {
      const { outcome, question } = await send(file);
      if (outcome) results.push(outcome);
      if (question) asked.push(question);
    }
    setOutcomes(results);
    setQuestions(asked);
    setBusy(false);
    void client.invalidateQueries({ queryKey: loraKeys.all });
  }

  async function answer(question: Question) {
    setBusy(true);
    const { outcome } = await send(question.file, question.choice);
    setQuestions((current) => current.filter((q) => q !== question));
    if (outcome) setOutcomes((current) => [...current.filter((o) => o.name !== outcome.name), outcome]);
    setBusy(false);
    void client.invalidateQueries({ queryKey: loraKeys.all });
  }

  function choose(question: Question, choice: string) {
    setQuestions((current) => current.map((q) => (q === question ? { ...q, choice } : q)));
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
      {questions.map((q, index) => (
        <div key={q.file.name} className="stack-sm" data-testid="lora-import-question">
          <Alert tone="warn" title={`Which base is ${q.file.name} for?`}>{q.message}</Alert>
          <Field label={`Base of ${q.file.name}`} htmlFor={`lora-import-base-${index}`}>
            <select id={`lora-import-base-${index}`} className="select" value={q.choice} onChange={(e) => choose(q, e.target.value)}>
              {q.candidates.map((name) => <option key={name} value={name}>{label(name)}</option>)}
            </select>
          </Field>
          <div><Button variant="primary" disabled={busy} onClick={() => void answer(q)}>Import as this base</Button></div>
        </div>
      ))}
      {outcomes.length ? (
        <div className="stack-sm" data-testid="lora-import-result">
          {outcomes.map((o) => <Alert key={o.name} tone={o.ok ? "ok" : "danger"} title={o.ok ? o.message : `${o.name} was refused`}>{o.ok ? o.name : o.message}</Alert>)}
        </div>
      ) : null}
    </div>
  );
}
