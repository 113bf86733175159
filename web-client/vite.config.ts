import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// The hub serves the built client (`web-client/dist`) from the same origin as `/api/v1` and
// `/ws`. During `npm run dev` the dev server forwards both to a hub on 127.0.0.1:8080.
const hub = process.env.JOBERS_HUB ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/api': hub,
      '/ws': { target: hub.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
