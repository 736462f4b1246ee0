import { Empty, PageHeader } from "../components/ui";

export default function CharacterDetail() {
  return (
    <div className="page">
      <PageHeader title="CharacterDetail" />
      <Empty title="Coming soon" />
    </div>
  );
}
