import { Empty, PageHeader } from "../components/ui";

export default function StartTraining() {
  return (
    <div className="page">
      <PageHeader title="StartTraining" />
      <Empty title="Coming soon" />
    </div>
  );
}
