import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { CharacterFormDialog } from "../features/characters/CharacterFormDialog";
import { Badge, Button, Empty, ErrorNotice, PageHeader } from "../components/ui";
import { useCharacters, type Character } from "../features/characters/api";
import { useRecommendedRange } from "../features/system/api";
import { initials, timeAgo } from "../lib/format";

function CharacterCard({ character }: { character: Character }) {
  return (
    <Link to={`/characters/${character.id}`} className="char-card" data-testid="character-card">
      <div className="char-cover">
        {character.cover_url ? <img src={character.cover_url} alt="" loading="lazy" /> : <span aria-hidden>{initials(character.name)}</span>}
      </div>
      <div className="char-body">
        <div className="row between">
          <h3>{character.name}</h3>
          <code className="faint">{character.trigger_word}</code>
        </div>
        <div className="row">
          <Badge tone={character.image_count > 0 ? "info" : "neutral"}>{character.image_count} images</Badge>
          <Badge tone={character.lora_count > 0 ? "ok" : "neutral"}>{character.lora_count} LoRAs</Badge>
          <span className="spacer" />
          <span className="faint small" data-dynamic>{timeAgo(character.updated_at)}</span>
        </div>
      </div>
    </Link>
  );
}

export default function Characters() {
  const { data, error, isPending, refetch } = useCharacters();
  const [creating, setCreating] = useState(false);
  const navigate = useNavigate();
  const recommended = useRecommendedRange();
  return (
    <div className="page">
      <PageHeader
        title="Characters"
        description="Each character has its own photos, captions, trained LoRAs and generations."
        actions={<Button variant="primary" onClick={() => setCreating(true)}>+ New character</Button>}
      />
      {error ? <ErrorNotice error={error} title="Could not load characters" onRetry={() => void refetch()} /> : null}
      {isPending ? (
        <div className="char-grid">{[0, 1, 2].map((i) => <div key={i} className="skeleton" style={{ height: 250 }} />)}</div>
      ) : data && data.length === 0 ? (
        <Empty icon="◉" title="No characters yet" action={<Button variant="primary" onClick={() => setCreating(true)}>Create your first character</Button>}>
          Create a character, upload {recommended ? `${recommended} ` : ""}photos of it, and train a LoRA.
        </Empty>
      ) : (
        <div className="char-grid">{data?.map((c) => <CharacterCard key={c.id} character={c} />)}</div>
      )}
      {creating ? (
        <CharacterFormDialog open={creating} onOpenChange={setCreating} onSaved={(c) => navigate(`/characters/${c.id}`)} />
      ) : null}
    </div>
  );
}
