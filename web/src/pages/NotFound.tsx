import { Link } from "react-router-dom";
import { Empty } from "../components/ui";

export function NotFound() {
  return (
    <div className="page">
      <Empty icon="?" title="This page does not exist" action={<Link className="btn" to="/characters">Go to characters</Link>}>
        The address may be mistyped, or the item was deleted.
      </Empty>
    </div>
  );
}
