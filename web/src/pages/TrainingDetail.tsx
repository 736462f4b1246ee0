import { Empty, PageHeader } from "../components/ui";

export default function TrainingDetail() {
  return (
    <div className="page">
      <PageHeader title="TrainingDetail" />
      <Empty title="Coming soon" />
    </div>
  );
}
