import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { Lightbox } from "../../components/Lightbox";
import { Alert, Button, Card, Empty, ErrorNotice, PageHeader, Spinner } from "../../components/ui";
import { useCharacters } from "../characters/api";
import { useHealth } from "../system/api";
import { generate, generationKeys, useGallery, useImagePlugins, type Generation } from "./api";
import { ComparisonGrid } from "./ComparisonGrid";
import { GenerateForm, randomSeed, type Settings } from "./GenerateForm";
import { GenerationCard } from "./GenerationCard";
import { useCharacterLoraChip } from "./useCharacterLoraChip";

export default function ImageGenPage() {
  const [params] = useSearchParams();
  const client = useQueryClient();
  const characters = useCharacters();
  const [s, setS] = useState<Settings>(() => ({
    prompt: "",
    characterId: params.get("character") ?? "",
    loras: params.get("lora") ? [{ lora_id: params.get("lora")!, weight: 1 }] : [],
    width: 1024,
    height: 1024,
    steps: 28,
    guidance: 3.5,
    seed: randomSeed(),
    lockSeed: false,
    count: 1,
    engine: "diffusers",
    checkpoint: "base",
  }));
  // A LoRA named in the link (a checkpoint's "Generate with this") is the choice; otherwise the character's default.
  const chip = useCharacterLoraChip(s, setS, params.get("lora") ? params.get("character") : null);
  const [activeJob, setActiveJob] = useState<string | null>(null);
  const gallery = useGallery();
  const items = gallery.data?.pages.flatMap((p) => p.items) ?? [];
  const [viewing, setViewing] = useState<number | null>(null);
  const plugins = useImagePlugins();
  const health = useHealth();
  const mode = health.data?.mode;
  useEffect(() => {
    // The tiny fast-test model only makes sense at small sizes; start there when that is what runs.
    if (mode === "fast-test") setS((prev) => (prev.width === 1024 && prev.height === 1024 ? { ...prev, width: 128, height: 128, steps: 4 } : prev));
  }, [mode]);

  const submit = useMutation({
    mutationFn: () =>
      generate({
        prompt: s.prompt,
        character_id: s.characterId || null,
        loras: s.loras,
        width: s.width,
        height: s.height,
        steps: s.steps,
        guidance: s.guidance,
        seed: s.seed,
        num_images: s.count,
        plugin: s.engine,
        checkpoint: s.checkpoint,
      }),
    onSuccess: (job) => {
      setActiveJob(job.id);
      if (!s.lockSeed) setS((prev) => ({ ...prev, seed: randomSeed() }));
    },
  });
  const reuse = (g: Generation) => {
    chip.keep(g.character_id ?? "");
    setS((prev) => ({
      ...prev,
      prompt: g.prompt,
      characterId: g.character_id ?? "",
      loras: g.loras.map((l) => ({ lora_id: l.lora_id, weight: l.weight ?? 1 })),
      width: g.width,
      height: g.height,
      steps: g.steps,
      guidance: g.guidance,
      seed: g.seed,
      lockSeed: true,
    }));
  };
  // Warn on the page only when nothing can generate; an engine that is not set up says why where it is chosen.
  const unavailable = plugins.data?.filter((p) => !p.capability.available) ?? [];
  const noneAvailable = !!plugins.data?.length && unavailable.length === plugins.data.length;

  return (
    <div className="page">
      <PageHeader title="Generate images" description="Prompt, pick LoRAs and weights, and generate. Every image keeps its parameters." />
      {noneAvailable ? (
        <Alert tone="warn" title="No image engine is available">{unavailable.map((p) => `${p.name}: ${p.capability.reason ?? "unavailable"}`).join(" · ")}</Alert>
      ) : null}
      <div className="cols-side-main">
        <Card>
          <GenerateForm s={s} setS={setS} characters={characters.data ?? []} chip={chip} engines={plugins.data ?? []} onSubmit={() => submit.mutate()} submitting={submit.isPending}
            error={submit.error} activeJob={activeJob} onDone={() => void client.invalidateQueries({ queryKey: generationKeys.all })} />
        </Card>
        <div className="stack">
          <Card title="Results" description="Newest first">
            {gallery.error ? <ErrorNotice error={gallery.error} title="Could not load the gallery" /> : gallery.isPending ? <Spinner /> : items.length === 0 ? (
              <Empty icon="✦" title="No images yet">Write a prompt and press Generate.</Empty>
            ) : (
              <div className="media-grid" data-testid="gallery">{items.map((g, i) => <GenerationCard key={g.id} item={g} onReuse={reuse} onOpen={() => setViewing(i)} />)}</div>
            )}
            {gallery.hasNextPage ? <div className="row" style={{ justifyContent: "center", marginTop: 12 }}><Button onClick={() => void gallery.fetchNextPage()} loading={gallery.isFetchingNextPage}>Load more</Button></div> : null}
          </Card>
          <Lightbox
            items={items.map((g) => ({ key: g.id, url: g.url, alt: g.prompt, caption: `${g.prompt} · ${g.width}×${g.height} · seed ${g.seed}` }))}
            index={viewing}
            onIndex={setViewing}
          />
          <Card title="Checkpoint comparison" description="The same prompt and seeds across a run's checkpoints">
            <ComparisonGrid prompt={s.prompt} characterId={s.characterId} params={{ width: s.width, height: s.height, steps: s.steps, guidance: s.guidance }} />
          </Card>
        </div>
      </div>
    </div>
  );
}
