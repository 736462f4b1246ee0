import { Empty, PageHeader } from "../components/ui";

export default function OngoingTraining() {
  return (
    <div className="page">
      <PageHeader title="Ongoing training" />
      <Empty title="Coming soon" />
    </div>
  );
}
