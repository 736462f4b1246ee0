import { Empty, PageHeader } from "../components/ui";

export default function Dataset() {
  return (
    <div className="page">
      <PageHeader title="Dataset" />
      <Empty title="Coming soon" />
    </div>
  );
}
