import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The API serves the built bundle (web/dist) with an SPA fallback; in `npm run dev` the API is proxied.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 900 },
  server: {
    proxy: { "/api": { target: process.env.ISENGARD_API ?? "http://127.0.0.1:8000", changeOrigin: false } },
  },
  test: { environment: "jsdom", include: ["src/**/*.test.{ts,tsx}"] },
});
