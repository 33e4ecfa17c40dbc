// A static build (dist/) that tools/dashboard_screenshot.py serves beside dashboard.json.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
  // Relative asset paths: the build is served from whatever folder holds it.
  base: './',
  // A dependency of the Prometheus plugin reads Node's `global`; in a browser it is globalThis.
  define: { global: 'globalThis' },
  build: { chunkSizeWarningLimit: 8000 },
});
