import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Button, ErrorNotice, Field, Modal } from "../../components/ui";
import { characterKeys, createCharacter, updateCharacter, type Character } from "./api";
import { triggerPreview } from "./triggerPreview";

/** Create (no `character`) or edit a character in a dialog. */
export function CharacterFormDialog({ open, onOpenChange, character, onSaved }: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  character?: Character;
  onSaved?: (character: Character) => void;
}) {
  const client = useQueryClient();
  const [name, setName] = useState(character?.name ?? "");
  const [trigger, setTrigger] = useState(character?.trigger_word ?? "");
  const [description, setDescription] = useState(character?.description ?? "");
  const preview = triggerPreview(name, trigger);
  const save = useMutation({
    mutationFn: () => {
      const body = { name: name.trim(), trigger_word: trigger.trim() || null, description };
      return character ? updateCharacter(character.id, body) : createCharacter(body);
    },
    onSuccess: (saved) => {
      void client.invalidateQueries({ queryKey: characterKeys.all });
      onOpenChange(false);
      onSaved?.(saved);
    },
  });
  return (
    <Modal
      open={open}
      onOpenChange={(next) => {
        onOpenChange(next);
        if (!next) save.reset();
      }}
      title={character ? `Edit ${character.name}` : "New character"}
      description="A character is a person, creature or style you will train a LoRA for."
    >
      <form
        className="stack"
        onSubmit={(event) => {
          event.preventDefault();
          save.mutate();
        }}
      >
        <Field label="Name" htmlFor="character-name">
          <input id="character-name" className="input" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} required autoFocus />
        </Field>
        <Field label="Trigger word" htmlFor="character-trigger" hint="The word that calls the character in prompts. Left empty, one is made from the name.">
          <input id="character-trigger" className="input" value={trigger} onChange={(e) => setTrigger(e.target.value)} maxLength={100} placeholder="e.g. ohwx_ada" />
        </Field>
        {name.trim() || trigger.trim() ? (
          <div className="small" data-testid="trigger-preview" style={preview ? undefined : { color: "var(--warn)" }}>
            {preview ? <>Trigger word: <code>{preview}</code></> : "This name has no letters a-z to make a trigger word from: type one."}
          </div>
        ) : null}
        <Field label="Description" htmlFor="character-description">
          <textarea id="character-description" className="textarea" value={description} onChange={(e) => setDescription(e.target.value)} maxLength={5000} />
        </Field>
        {save.error ? <ErrorNotice error={save.error} title="Could not save" /> : null}
        <div className="dialog-footer">
          <Button onClick={() => onOpenChange(false)}>Cancel</Button>
          <Button type="submit" variant="primary" loading={save.isPending} disabled={!name.trim() || !preview}>
            {character ? "Save" : "Create character"}
          </Button>
        </div>
      </form>
    </Modal>
  );
}
