import { Empty, PageHeader } from "../components/ui";

export default function TrainingHistory() {
  return (
    <div className="page">
      <PageHeader title="TrainingHistory" />
      <Empty title="Coming soon" />
    </div>
  );
}
