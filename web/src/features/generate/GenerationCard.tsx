import { Badge, Button } from "../../components/ui";
import { timeAgo } from "../../lib/format";
import type { Generation } from "./api";

export function GenerationCard({ item, onReuse, onOpen }: { item: Generation; onReuse: (g: Generation) => void; onOpen: () => void }) {
  return (
    <div className="media-card" data-testid="generation-card">
      <button type="button" className="media-thumb" aria-label={`Open ${item.prompt} large`} onClick={onOpen}>
        <img src={item.thumbnail_url ?? item.url} alt={item.prompt} className="pixelated" loading="lazy" />
      </button>
      <div className="media-body">
        <div className="small" title={item.prompt} style={{ overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>{item.prompt}</div>
        <div className="small faint">{item.width}×{item.height} · {item.steps} steps · cfg {item.guidance} · seed {item.seed}</div>
        {item.loras.length ? <div className="row" style={{ gap: 4 }}>{item.loras.map((l, i) => <Badge key={i} tone="accent">{l.name ?? "LoRA"} × {Number(l.weight ?? 1).toFixed(2)}</Badge>)}</div> : null}
        <div className="row" style={{ gap: 6 }}>
          <Button size="sm" onClick={() => onReuse(item)}>Reuse settings</Button>
          <a className="btn sm ghost" href={item.url} download>Download</a>
          <span className="spacer" />
          <span className="faint small" data-dynamic>{timeAgo(item.created_at)}</span>
        </div>
      </div>
    </div>
  );
}
