import { useEffect, useRef, useState } from "react";
import { Switch } from "../ui";

export function TrainingLogsPanel({ lines }: { lines: { at: string; level: string; message: string }[] }) {
  const box = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState(true);
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines.length, follow]);
  return (
    <div className="stack-sm">
      <div className="row between">
        <span className="small muted">{lines.length} lines</span>
        <Switch checked={follow} onChange={setFollow} label="Follow" />
      </div>
      <div className="logs" ref={box} tabIndex={0} aria-label="Training log" role="log" data-testid="logs-panel">
        {lines.length === 0 ? <span className="faint">No log lines yet.</span> : null}
        {lines.map((line, i) => (
          <div key={i} className={`log-line ${line.level.toLowerCase()}`}>
            <span className="t">{line.at ? new Date(line.at).toLocaleTimeString() : ""}</span>
            {line.message}
          </div>
        ))}
      </div>
    </div>
  );
}
