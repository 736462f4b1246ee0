import { lazy, Suspense } from "react";
import { Navigate, Route, Routes } from "react-router-dom";
import { AuthGate } from "./auth/AuthGate";
import { Layout } from "./components/Layout";
import { Spinner } from "./components/ui";
import { useGlobalJobEvents } from "./features/jobs/hooks";
import { NotFound } from "./pages/NotFound";

const Characters = lazy(() => import("./pages/Characters"));
const CharacterDetail = lazy(() => import("./pages/CharacterDetail"));
const Dataset = lazy(() => import("./pages/Dataset"));
const StartTraining = lazy(() => import("./features/training/StartTrainingPage"));
const OngoingTraining = lazy(() => import("./features/runs/OngoingPage"));
const TrainingHistory = lazy(() => import("./features/runs/HistoryPage"));
const TrainingDetail = lazy(() => import("./features/runs/RunPage"));
const ImageGen = lazy(() => import("./features/generate/ImageGenPage"));
const Video = lazy(() => import("./pages/Video"));
const LoraLibrary = lazy(() => import("./features/loras/LoraLibraryPage"));
const Jobs = lazy(() => import("./features/jobs/JobsPage"));

export function App() {
  return (
    <AuthGate>
      <SignedInApp />
    </AuthGate>
  );
}

function SignedInApp() {
  // Inside the gate: the event stream needs the session too.
  useGlobalJobEvents();
  return (
    <Suspense fallback={<div className="main"><Spinner /></div>}>
      <Routes>
        <Route element={<Layout />}>
          <Route index element={<Navigate to="/characters" replace />} />
          <Route path="characters" element={<Characters />} />
          <Route path="characters/:characterId" element={<CharacterDetail />} />
          <Route path="dataset" element={<Dataset />} />
          <Route path="training/new" element={<StartTraining />} />
          <Route path="training/ongoing" element={<OngoingTraining />} />
          <Route path="training/history" element={<TrainingHistory />} />
          <Route path="training/:jobId" element={<TrainingDetail />} />
          <Route path="generate" element={<ImageGen />} />
          <Route path="loras" element={<LoraLibrary />} />
          <Route path="jobs" element={<Jobs />} />
          <Route path="video" element={<Video />} />
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </Suspense>
  );
}
