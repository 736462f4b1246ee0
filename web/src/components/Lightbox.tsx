import * as Dialog from "@radix-ui/react-dialog";
import type { ReactNode } from "react";
import { Button } from "./ui";

export interface LightboxItem {
  key: string;
  url: string;
  alt: string;
  caption?: ReactNode;
  /** Where "Download" saves from (the API names the file); defaults to the image itself. */
  downloadUrl?: string;
}

/** One image large, over the page: ← and → step through the set, Esc (or the ✕) closes it. */
export function Lightbox({ items, index, onIndex }: { items: LightboxItem[]; index: number | null; onIndex: (index: number | null) => void }) {
  const item = index !== null ? items[index] : undefined;
  const step = (delta: number) => index !== null && items.length && onIndex((index + delta + items.length) % items.length);
  return (
    <Dialog.Root open={!!item} onOpenChange={(open) => !open && onIndex(null)}>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content
          className="dialog-content lightbox"
          onKeyDown={(e) => {
            if (e.key === "ArrowRight") step(1);
            if (e.key === "ArrowLeft") step(-1);
          }}
        >
          {item ? (
            <>
              <Dialog.Title className="sr-only">{item.alt}</Dialog.Title>
              <Dialog.Description className="sr-only">Image {(index ?? 0) + 1} of {items.length}; arrow keys show the others</Dialog.Description>
              <img src={item.url} alt={item.alt} className="lightbox-image pixelated" data-testid="lightbox-image" />
              <div className="row between small">
                <span className="muted">{item.caption ?? item.alt}</span>
                <div className="row" style={{ gap: 6 }}>
                  <Button size="sm" aria-label="Previous image" onClick={() => step(-1)} disabled={items.length < 2}>←</Button>
                  <span className="faint">{(index ?? 0) + 1} / {items.length}</span>
                  <Button size="sm" aria-label="Next image" onClick={() => step(1)} disabled={items.length < 2}>→</Button>
                  <a className="btn sm ghost" href={item.downloadUrl ?? item.url} download>Download</a>
                  <Dialog.Close asChild><Button size="sm" variant="ghost" aria-label="Close">✕</Button></Dialog.Close>
                </div>
              </div>
            </>
          ) : null}
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}
