import type { ReactNode } from "react";
import { Link } from "react-router-dom";
import { Card, Empty, Field } from "../../components/ui";
import type { Character } from "../characters/api";
import type { TrainingPlugin } from "./api";

/** Character, engine and name; an engine that cannot run here says why where it is chosen. */
export function WhatToTrainCard({ characters, characterId, setCharacterId, plugins, plugin, setPluginName, name, setName, children }: {
  characters: Character[] | undefined;
  characterId: string;
  setCharacterId: (id: string) => void;
  plugins: TrainingPlugin[];
  plugin: TrainingPlugin | undefined;
  setPluginName: (name: string) => void;
  name: string;
  setName: (name: string) => void;
  children?: ReactNode; // more choices of what is trained (the base model)
}) {
  const character = characters?.find((c) => c.id === characterId);
  const unavailable = plugin?.capability && !plugin.capability.available ? plugin.capability.reason ?? "it is not set up on this machine" : null;
  return (
    <Card title="What to train">
      <div className="form-grid">
        <Field label="Character" htmlFor="train-character">
          <select id="train-character" className="select" value={characterId} onChange={(e) => setCharacterId(e.target.value)} required>
            <option value="">Choose a character…</option>
            {characters?.map((c) => <option key={c.id} value={c.id}>{c.name} ({c.image_count} images)</option>)}
          </select>
        </Field>
        <Field label="Engine" htmlFor="train-plugin" hint={unavailable ? undefined : plugin?.description}
          error={unavailable ? <span data-testid="engine-reason">{plugin?.name} cannot run here: {unavailable}</span> : undefined}>
          <select id="train-plugin" className="select" value={plugin?.name ?? ""} onChange={(e) => setPluginName(e.target.value)}>
            {plugins.map((p) => <option key={p.name} value={p.name}>{p.name}{p.capability && !p.capability.available ? " (not set up)" : ""}</option>)}
          </select>
        </Field>
        {children}
        <Field label="Run name" htmlFor="train-name" hint="Optional: by default the character, run number, steps and rank">
          <input id="train-name" className="input" value={name} onChange={(e) => setName(e.target.value)} placeholder={character ? `${character.name} run …` : ""} maxLength={200} />
        </Field>
      </div>
      {characters && characters.length === 0 ? <Empty title="No characters yet" action={<Link className="btn" to="/characters">Create one</Link>} /> : null}
    </Card>
  );
}
