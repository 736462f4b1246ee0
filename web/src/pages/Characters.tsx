import { Empty, PageHeader } from "../components/ui";

export default function Characters() {
  return (
    <div className="page">
      <PageHeader title="Characters" />
      <Empty title="Coming soon" />
    </div>
  );
}
