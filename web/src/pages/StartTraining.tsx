import { Empty, PageHeader } from "../components/ui";

export default function StartTraining() {
  return (
    <div className="page">
      <PageHeader title="Start training" />
      <Empty title="Coming soon" />
    </div>
  );
}
