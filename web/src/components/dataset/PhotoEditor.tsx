// Edit a dataset photo in place: turn it, crop it (drawn freely or at a training aspect ratio), crop to the face,
// or undo back to the upload. Every change is saved at once as a whole new edit of the kept original.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRef, useState, type PointerEvent } from "react";
import { characterKeys } from "../../features/characters/api";
import { cropToFace, datasetKeys, editImage, undoEdit, type EditRequest, type ImageOut } from "../../features/dataset/api";
import { TRAINING_ASPECTS, aspectBox, cropShown, currentEdit, turn, type Box } from "../../features/dataset/photoEdit";
import { Button, ErrorNotice, Modal } from "../ui";

type Change = { kind: "edit"; body: EditRequest } | { kind: "face"; aspect: number | null } | { kind: "undo" };

export function PhotoEditor({ image: initial, open, onOpenChange }: { image: ImageOut; open: boolean; onOpenChange: (open: boolean) => void }) {
  const client = useQueryClient();
  const [image, setImage] = useState(initial);
  const [selection, setSelection] = useState<Box | null>(null);
  const [aspect, setAspect] = useState<number | null>(null);
  const picture = useRef<HTMLImageElement>(null);
  const dragFrom = useRef<[number, number] | null>(null);
  const save = useMutation({
    mutationFn: (change: Change) =>
      change.kind === "edit"
        ? editImage(image.id, change.body)
        : change.kind === "face"
          ? cropToFace(image.id, { rotate: currentEdit(image).rotate, aspect: change.aspect })
          : undoEdit(image.id),
    onSuccess: (next) => {
      setImage(next);
      setSelection(null);
      void client.invalidateQueries({ queryKey: datasetKeys.all });
      void client.invalidateQueries({ queryKey: characterKeys.all });
    },
  });

  /** A pointer position in the shown photo's own pixels. */
  const toPixels = (event: PointerEvent): [number, number] => {
    const rect = picture.current?.getBoundingClientRect();
    if (!rect || !rect.width || !rect.height) return [0, 0];
    const x = ((event.clientX - rect.left) / rect.width) * image.width;
    const y = ((event.clientY - rect.top) / rect.height) * image.height;
    return [Math.round(Math.min(Math.max(x, 0), image.width)), Math.round(Math.min(Math.max(y, 0), image.height))];
  };
  const drag = (event: PointerEvent) => {
    if (!dragFrom.current) return;
    const [x0, y0] = dragFrom.current;
    const [x1, y1] = toPixels(event);
    setSelection([Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)]);
  };
  const pct = (value: number, of: number) => `${(value / of) * 100}%`;

  return (
    <Modal open={open} onOpenChange={onOpenChange} wide title={`Edit ${image.original_name}`}
      description="Turn or crop the photo: the edit is what trains and what the grid shows. The original is kept; Undo brings it back."
      footer={<Button onClick={() => onOpenChange(false)}>Done</Button>}>
      <div className="stack" data-testid="photo-editor">
        <div className="row" style={{ gap: 6 }}>
          <Button size="sm" onClick={() => save.mutate({ kind: "edit", body: turn(image, false) })} disabled={save.isPending}>⟲ Rotate left</Button>
          <Button size="sm" onClick={() => save.mutate({ kind: "edit", body: turn(image, true) })} disabled={save.isPending}>⟳ Rotate right</Button>
          <Button size="sm" onClick={() => save.mutate({ kind: "face", aspect })} disabled={save.isPending}>Crop to the face</Button>
          <Button size="sm" variant="ghost" onClick={() => save.mutate({ kind: "undo" })} disabled={!image.edit || save.isPending}>Undo edits</Button>
        </div>
        <div className="row" style={{ gap: 4 }} role="group" aria-label="Crop aspect ratio">
          <span className="small muted">Crop to</span>
          <Button size="sm" variant={aspect === null ? "primary" : "ghost"} onClick={() => { setAspect(null); setSelection(null); }}>Free</Button>
          {TRAINING_ASPECTS.map((a) => (
            <Button key={a.label} size="sm" variant={aspect === a.ratio ? "primary" : "ghost"}
              onClick={() => { setAspect(a.ratio); setSelection(aspectBox(image.width, image.height, a.ratio)); }}>
              {a.label}
            </Button>
          ))}
        </div>
        <div
          className="photo-edit-stage"
          data-testid="photo-edit-stage"
          onPointerDown={(event) => {
            if (aspect !== null) return; // a fixed ratio is placed by its button; drawing is for free crops
            event.currentTarget.setPointerCapture?.(event.pointerId);
            dragFrom.current = toPixels(event);
            setSelection(null);
          }}
          onPointerMove={drag}
          onPointerUp={(event) => { drag(event); dragFrom.current = null; }}
        >
          <img ref={picture} src={image.url} alt={image.original_name} draggable={false} />
          {selection ? (
            <div className="photo-edit-selection" data-testid="crop-selection" style={{
              left: pct(selection[0], image.width), top: pct(selection[1], image.height),
              width: pct(selection[2] - selection[0], image.width), height: pct(selection[3] - selection[1], image.height),
            }} />
          ) : null}
        </div>
        <div className="row between">
          <span className="small muted" data-testid="photo-size">{image.width}×{image.height}{image.edit ? " (edited)" : ""}</span>
          <Button size="sm" variant="primary" disabled={!selection || save.isPending} loading={save.isPending}
            onClick={() => selection && save.mutate({ kind: "edit", body: cropShown(image, selection) })}>
            Crop
          </Button>
        </div>
        {save.error ? <ErrorNotice error={save.error} title="The photo was not changed" /> : null}
      </div>
    </Modal>
  );
}
