import { useMemo } from "react";
import { useSearchParams } from "react-router-dom";
import { ImageGrid } from "../components/dataset/ImageGrid";
import { Button, Empty, Field, PageHeader, Spinner } from "../components/ui";
import { useCharacters } from "../features/characters/api";
import { useImages } from "../features/dataset/api";
import { FLAG_LABELS, isQualityFlag } from "../features/dataset/flags";

export default function Dataset() {
  const [params, setParams] = useSearchParams();
  const characterId = params.get("character");
  const flagParam = params.get("flag");
  const flag = isQualityFlag(flagParam) ? flagParam : null;
  const characters = useCharacters();
  const names = useMemo(() => new Map((characters.data ?? []).map((c) => [c.id, c.name])), [characters.data]);
  const images = useImages({ character_id: characterId, flag });
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  return (
    <div className="page">
      <PageHeader title="Dataset" description="Every training photo across characters. Filter by character or by what the quality check found." />
      <div className="card">
        <div className="form-grid">
          <Field label="Character" htmlFor="filter-character">
            <select id="filter-character" className="select" value={characterId ?? ""} onChange={(e) => set("character", e.target.value)}>
              <option value="">All characters</option>
              {characters.data?.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
            </select>
          </Field>
          <Field label="Quality flag" htmlFor="filter-flag">
            <select id="filter-flag" className="select" value={flag ?? ""} onChange={(e) => set("flag", e.target.value)}>
              <option value="">Any</option>
              {Object.entries(FLAG_LABELS).map(([value, label]) => <option key={value} value={value}>{label}</option>)}
            </select>
          </Field>
        </div>
      </div>
      {images.isPending ? (
        <Spinner label="Loading images" />
      ) : images.images.length === 0 && !images.error ? (
        <Empty icon="▦" title={characterId || flag ? "No images match these filters" : "No images yet"}>
          {characterId || flag ? "Try another filter." : "Upload photos on a character's page."}
        </Empty>
      ) : (
        <ImageGrid images={images.images} error={images.error} characterNames={names} editable />
      )}
      {images.hasNextPage ? (
        <div className="row" style={{ justifyContent: "center" }}>
          <Button onClick={() => void images.fetchNextPage()} loading={images.isFetchingNextPage}>Load more</Button>
        </div>
      ) : null}
    </div>
  );
}
