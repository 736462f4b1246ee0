import { useCallback, useEffect, useState } from "react";
import { useCharacterLora } from "./api";
import type { Settings } from "./GenerateForm";

export interface CharacterLoraChip {
  /** The user picked another character (or none): its default LoRA replaces the one attached for the last. */
  choose: (characterId: string) => void;
  /** Settings restored from an image: keep their LoRAs, attach nothing more for this character. */
  keep: (characterId: string) => void;
  /** The chosen character has no LoRA to attach. */
  missing: boolean;
}

/**
 * Choosing a character attaches its default LoRA as a chip (removable, replaceable); switching characters swaps
 * that chip, and a character with nothing trained says so rather than generating with the base model silently.
 */
export function useCharacterLoraChip(s: Settings, setS: (f: (prev: Settings) => Settings) => void, attachedInitially: string | null): CharacterLoraChip {
  const chosen = useCharacterLora(s.characterId);
  const [attachedFor, setAttachedFor] = useState<string | null>(attachedInitially);
  const [auto, setAuto] = useState<string | null>(null);
  useEffect(() => {
    if (!s.characterId || attachedFor === s.characterId || chosen.data === undefined) return;
    const lora = chosen.data;
    setAttachedFor(s.characterId);
    setAuto(lora?.id ?? null);
    setS((prev) => ({
      ...prev,
      loras: lora && !prev.loras.some((l) => l.lora_id === lora.id) ? [...prev.loras, { lora_id: lora.id, weight: 1 }] : prev.loras,
    }));
  }, [s.characterId, attachedFor, chosen.data, setS]);
  const choose = (characterId: string) => {
    setS((prev) => ({ ...prev, characterId, loras: prev.loras.filter((l) => l.lora_id !== auto) }));
    setAuto(null);
    setAttachedFor(null);
  };
  const keep = useCallback((characterId: string) => { setAttachedFor(characterId); setAuto(null); }, []);
  return { choose, keep, missing: !!s.characterId && chosen.data === null };
}

