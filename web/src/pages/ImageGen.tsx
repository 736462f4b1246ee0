import { Empty, PageHeader } from "../components/ui";

export default function ImageGen() {
  return (
    <div className="page">
      <PageHeader title="Generate images" />
      <Empty title="Coming soon" />
    </div>
  );
}
