import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { CharacterFormDialog } from "../features/characters/CharacterFormDialog";
import { BulkCaptionTools } from "../components/dataset/BulkCaptionTools";
import { DatasetChecklist, useDatasetReport } from "../components/dataset/DatasetChecklist";
import { ImageGrid } from "../components/dataset/ImageGrid";
import { Uploader } from "../components/dataset/Uploader";
import { CaptionFindings } from "../features/captions/CaptionFindings";
import { CaptionWithAI } from "../features/captions/CaptionWithAI";
import { Badge, Button, Card, ConfirmButton, Empty, ErrorNotice, PageHeader, Spinner } from "../components/ui";
import { characterKeys, characterQueries, deleteCharacter } from "../features/characters/api";
import { datasetKeys, useImages } from "../features/dataset/api";
import { useRecommendedRange } from "../features/system/api";

export default function CharacterDetail() {
  const { characterId = "" } = useParams();
  const navigate = useNavigate();
  const client = useQueryClient();
  const [editing, setEditing] = useState(false);
  const recommended = useRecommendedRange();
  // The size each photo is judged against: the one the dataset check uses (what a default run trains at).
  const judgedAt = useDatasetReport(characterId).data?.resolution;
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const character = useQuery(characterQueries.detail(characterId));
  const images = useImages({ character_id: characterId });

  if (character.error) {
    return (
      <div className="page">
        <ErrorNotice error={character.error} title="Could not open this character" onRetry={() => void character.refetch()} />
        <Link className="link" to="/characters">← All characters</Link>
      </div>
    );
  }
  if (!character.data) return <div className="page"><Spinner /></div>;
  const c = character.data;
  const toggle = (id: string) =>
    setSelected((set) => {
      const next = new Set(set);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <div className="page">
      <PageHeader
        crumbs={<><Link to="/characters">Characters</Link><span>/</span></>}
        title={c.name}
        description={<>Trigger word <code>{c.trigger_word}</code>{c.description ? ` · ${c.description}` : ""}</>}
        actions={
          <>
            <Button onClick={() => setEditing(true)}>Edit</Button>
            <ConfirmButton
              title={`Delete ${c.name}?`}
              description="Its photos, captions, trained LoRAs and generated images are deleted too. This cannot be undone."
              confirmLabel="Delete character"
              onConfirm={async () => {
                await deleteCharacter(c.id);
                // Leave first and forget the deleted one, so nothing asks for it again (a 404).
                navigate("/characters");
                client.removeQueries({ queryKey: characterKeys.detail(c.id) });
                void client.invalidateQueries({ queryKey: characterKeys.all, exact: true });
                client.removeQueries({ queryKey: datasetKeys.all });
              }}
            >
              Delete
            </ConfirmButton>
            <Link className="btn primary" to={`/training/new?character=${c.id}`}>Train a LoRA</Link>
          </>
        }
      />
      <div className="row">
        <Badge tone="info">{c.image_count} images</Badge>
        <Badge tone={c.lora_count ? "ok" : "neutral"}>{c.lora_count} LoRAs</Badge>
        {c.lora_count ? <Link className="link small" to={`/generate?character=${c.id}`}>Generate with it →</Link> : null}
      </div>
      <div className="cols-main-side">
        <div className="stack">
          <Card title="Upload photos" description="Drop many at once; each file reports its own result.">
            <Uploader characterId={c.id} />
          </Card>
          <Card
            title={`Dataset (${images.images.length}${images.hasNextPage ? "+" : ""})`}
            description="Click a caption to edit it; select images to apply caption tools to just those."
            actions={
              images.images.length ? (
                <>
                  <Button size="sm" variant="ghost" onClick={() => setSelected(new Set(images.images.map((i) => i.id)))}>Select all</Button>
                  {selected.size ? <Button size="sm" variant="ghost" onClick={() => setSelected(new Set())}>Clear ({selected.size})</Button> : null}
                </>
              ) : null
            }
          >
            {images.isPending ? (
              <Spinner label="Loading images" />
            ) : images.images.length === 0 && !images.error ? (
              <Empty icon="▦" title="No photos yet"><span data-testid="recommended-photos">Upload {recommended ? `${recommended} ` : ""}photos of {c.name} from different angles and in different light.</span></Empty>
            ) : (
              <ImageGrid images={images.images} selected={selected} onToggle={toggle} error={images.error} resolution={judgedAt}
                captionExtras={(image) => <CaptionFindings image={image} />} />
            )}
            {images.hasNextPage ? (
              <div className="row" style={{ justifyContent: "center", marginTop: 12 }}>
                <Button onClick={() => void images.fetchNextPage()} loading={images.isFetchingNextPage}>Load more</Button>
              </div>
            ) : null}
          </Card>
        </div>
        <div className="stack">
          <DatasetChecklist characterId={c.id} />
          <Card title="Caption with AI" description="A vision-language model describes each photo; the trigger word stands for the character.">
            <CaptionWithAI characterId={c.id} selected={[...selected]} />
          </Card>
          <Card title="Caption tools">
            <BulkCaptionTools characterId={c.id} selected={[...selected]} triggerWord={c.trigger_word} />
          </Card>
        </div>
      </div>
      {editing ? <CharacterFormDialog open={editing} onOpenChange={setEditing} character={c} /> : null}
    </div>
  );
}
