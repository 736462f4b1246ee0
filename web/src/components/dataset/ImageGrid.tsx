import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import { characterKeys } from "../../features/characters/api";
import { datasetKeys, deleteImage, updateCaption, type ImageOut } from "../../features/dataset/api";
import { FLAG_LABELS, isQualityFlag } from "../../features/dataset/flags";
import { Lightbox } from "../Lightbox";
import { Badge, Button, ConfirmButton, ErrorNotice } from "../ui";
import { PhotoEditor } from "./PhotoEditor";

function CaptionEditor({ image }: { image: ImageOut }) {
  const client = useQueryClient();
  const [value, setValue] = useState(image.caption);
  const [saved, setSaved] = useState(image.caption);
  // The server's caption can change under the box (bulk tools, another tab): follow it unless the user is typing.
  const [server, setServer] = useState(image.caption);
  if (image.caption !== server) {
    setServer(image.caption);
    setSaved(image.caption);
    if (value === saved) setValue(image.caption);
  }
  const save = useMutation({
    mutationFn: (caption: string) => updateCaption(image.id, caption),
    onSuccess: (out) => {
      setSaved(out.caption);
      void client.invalidateQueries({ queryKey: datasetKeys.all });
    },
  });
  const dirty = value !== saved;
  return (
    <div className="stack-sm">
      <textarea
        className="textarea caption-edit"
        aria-label={`Caption of ${image.original_name}`}
        placeholder="No caption — click to write one"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        onBlur={() => dirty && save.mutate(value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) save.mutate(value);
          if (e.key === "Escape") setValue(saved);
        }}
      />
      <span className="small faint" aria-live="polite">
        {save.isPending ? "Saving…" : save.error ? <span style={{ color: "var(--danger)" }}>Not saved</span> : dirty ? "Unsaved (leave the field to save)" : save.isSuccess ? "Saved" : ""}
      </span>
    </div>
  );
}

export function ImageCard({ image, selected, onToggle, onOpen, editable = true, characterName, captionExtras, resolution }: {
  image: ImageOut;
  /** The training resolution sizes are judged against; without it, the size flag stored at upload stands. */
  resolution?: number;
  selected?: boolean;
  /** Opens the full image (in the grid's lightbox). */
  onOpen?: () => void;
  onToggle?: () => void;
  editable?: boolean;
  characterName?: string;
  /** Shown under the caption (e.g. what the caption linter found). */
  captionExtras?: (image: ImageOut) => ReactNode;
}) {
  const client = useQueryClient();
  const [editing, setEditing] = useState(false);
  const flags = image.flags.filter((flag) => !(flag === "small" && resolution && Math.min(image.width, image.height) >= resolution));
  return (
    <div className={`media-card${selected ? " selected" : ""}`} data-testid="image-card" data-edited={image.edit ? "true" : undefined}>
      <button type="button" className="media-thumb" aria-label={`Open ${image.original_name} large`} title="Open the full image" onClick={onOpen}>
        <img src={image.thumbnail_url} alt={image.original_name} loading="lazy" />
      </button>
      {onToggle ? (
        <label className="media-select">
          <input type="checkbox" checked={!!selected} onChange={onToggle} aria-label={`Select ${image.original_name}`} />
        </label>
      ) : null}
      <div className="media-actions">
        {editable ? (
          <Button size="sm" aria-label={`Edit ${image.original_name}`} title="Rotate or crop" onClick={() => setEditing(true)}>✎</Button>
        ) : null}
        <ConfirmButton
          size="sm"
          ariaLabel={`Delete ${image.original_name}`}
          title="Delete this image?"
          description={`${image.original_name} and its caption will be removed from the dataset.`}
          onConfirm={async () => {
            await deleteImage(image.id);
            void client.invalidateQueries({ queryKey: datasetKeys.all });
            void client.invalidateQueries({ queryKey: characterKeys.all });
          }}
        >
          ✕
        </ConfirmButton>
      </div>
      <div className="media-body">
        <div className="row between small">
          <span className="muted" style={{ overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap", maxWidth: "60%" }} title={image.original_name}>
            {characterName ?? image.original_name}
          </span>
          <span className="faint">{image.width}×{image.height}{image.edit ? " · edited" : ""}</span>
        </div>
        {flags.length ? (
          <div className="row" style={{ gap: 4 }}>
            {flags.map((flag) => <Badge key={flag} tone="warn">{isQualityFlag(flag) ? FLAG_LABELS[flag] : flag}</Badge>)}
          </div>
        ) : null}
        {editable ? <CaptionEditor image={image} /> : image.caption ? <span className="small muted">{image.caption}</span> : null}
        {captionExtras?.(image)}
      </div>
      {editing ? <PhotoEditor image={image} open onOpenChange={setEditing} /> : null}
    </div>
  );
}

export function ImageGrid({ images, selected, onToggle, error, editable, characterNames, captionExtras, resolution }: {
  images: ImageOut[];
  resolution?: number;
  selected?: Set<string>;
  onToggle?: (id: string) => void;
  error?: unknown;
  editable?: boolean;
  characterNames?: Map<string, string>;
  captionExtras?: (image: ImageOut) => ReactNode;
}) {
  // The full image opens in the lightbox the gallery and the samples use, not in a new tab.
  const [viewing, setViewing] = useState<number | null>(null);
  if (error) return <ErrorNotice error={error} title="Could not load images" />;
  return (
    <div className="media-grid" data-testid="image-grid">
      <Lightbox
        items={images.map((image) => ({ key: image.id, url: image.url, alt: image.original_name, caption: image.caption ? `${image.original_name} · ${image.caption}` : image.original_name }))}
        index={viewing !== null && viewing < images.length ? viewing : null}
        onIndex={setViewing}
      />
      {images.map((image, index) => (
        <ImageCard
          key={image.id}
          onOpen={() => setViewing(index)}
          resolution={resolution}
          image={image}
          selected={selected?.has(image.id)}
          onToggle={onToggle ? () => onToggle(image.id) : undefined}
          editable={editable}
          characterName={characterNames?.get(image.character_id)}
          captionExtras={captionExtras}
        />
      ))}
    </div>
  );
}
