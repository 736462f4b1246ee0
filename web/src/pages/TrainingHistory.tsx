import { Empty, PageHeader } from "../components/ui";

export default function TrainingHistory() {
  return (
    <div className="page">
      <PageHeader title="Training history" />
      <Empty title="Coming soon" />
    </div>
  );
}
