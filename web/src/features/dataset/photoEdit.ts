// The geometry of a photo edit, as the server applies it: quarter-turns clockwise of the original, then a crop
// ([left, top, right, bottom], right and bottom exclusive) in the turned photo's pixels. The editor works on the
// photo as it is shown (already edited) and turns what the person does into a whole new edit.
import type { EditRequest, ImageOut } from "./api";

export type Box = [number, number, number, number];
export type Rotation = NonNullable<EditRequest["rotate"]>;

/** Aspect ratios (width / height) the trainer's buckets hold, up to 2:1 either way. */
export const TRAINING_ASPECTS = [
  { label: "1:1", ratio: 1 },
  { label: "3:4", ratio: 3 / 4 },
  { label: "4:3", ratio: 4 / 3 },
  { label: "2:3", ratio: 2 / 3 },
  { label: "3:2", ratio: 3 / 2 },
  { label: "9:16", ratio: 9 / 16 },
  { label: "16:9", ratio: 16 / 9 },
] as const;

const ROTATIONS = [0, 90, 180, 270] as const satisfies readonly Rotation[];

export function asRotation(degrees: number): Rotation {
  const turned = ((Math.round(degrees / 90) * 90) % 360 + 360) % 360;
  return ROTATIONS.find((r) => r === turned) ?? 0;
}

/** The photo's current edit in full: its rotation, its crop (the whole turned photo when none) and that size. */
export function currentEdit(image: Pick<ImageOut, "width" | "height" | "edit">): { rotate: Rotation; crop: Box | null; turned: [number, number] } {
  const edit = image.edit;
  if (!edit) return { rotate: 0, crop: null, turned: [image.width, image.height] };
  const rotate = asRotation(edit.rotate);
  const sideways = rotate === 90 || rotate === 270;
  const turned: [number, number] = sideways ? [edit.original_height, edit.original_width] : [edit.original_width, edit.original_height];
  const crop = edit.crop && edit.crop.length === 4 ? ([edit.crop[0], edit.crop[1], edit.crop[2], edit.crop[3]] as Box) : null;
  return { rotate, crop, turned };
}

/** The edit after a quarter-turn (`clockwise` or not) of the photo as shown: the crop turns with it. */
export function turn(image: Pick<ImageOut, "width" | "height" | "edit">, clockwise: boolean): EditRequest {
  const { rotate, crop, turned } = currentEdit(image);
  const [width, height] = turned;
  const next = asRotation(rotate + (clockwise ? 90 : -90));
  if (!crop) return { rotate: next, crop: null };
  const [l, t, r, b] = crop;
  // Clockwise, a point (x, y) of a width x height photo goes to (height - y, x); counter-clockwise to (y, width - x).
  const box: Box = clockwise ? [height - b, l, height - t, r] : [t, width - r, b, width - l];
  return { rotate: next, crop: box };
}

/** The edit after cropping the photo as shown to `box` (in its shown pixels). */
export function cropShown(image: Pick<ImageOut, "width" | "height" | "edit">, box: Box): EditRequest {
  const { rotate, crop } = currentEdit(image);
  const [dx, dy] = crop ? [crop[0], crop[1]] : [0, 0];
  return { rotate, crop: [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy] };
}

/** The largest centred box of `ratio` inside a width x height photo. */
export function aspectBox(width: number, height: number, ratio: number): Box {
  const w = Math.min(width, Math.round(height * ratio));
  const h = Math.min(height, Math.round(w / ratio));
  const left = Math.round((width - w) / 2);
  const top = Math.round((height - h) / 2);
  return [left, top, left + w, top + h];
}
