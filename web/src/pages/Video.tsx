import { Link } from "react-router-dom";
import { Alert, Card, PageHeader } from "../components/ui";

export default function Video() {
  return (
    <div className="page">
      <PageHeader title="Video" description="Animate a character from a still image or a prompt." />
      <Alert tone="info" title="Video generation is not available yet">
        Isengard does not ship a video engine yet, so nothing here can be run. Trained LoRAs and generated images
        are kept, and will be usable here once a video plugin is installed.
      </Alert>
      <Card title="What you can do now">
        <ul className="muted" style={{ margin: 0, paddingLeft: 18, lineHeight: 1.9 }}>
          <li><Link className="link" to="/training/new">Train a LoRA</Link> for a character.</li>
          <li><Link className="link" to="/generate">Generate images</Link> with it.</li>
        </ul>
      </Card>
    </div>
  );
}
