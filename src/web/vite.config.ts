/**
 * The console's build (Vite: `npm run build:web` writes dist/web/, served by `coffer server`
 * at /) and its component tests (Vitest in jsdom: `vitest run --config src/web/vite.config.ts`).
 * Everything the browser loads is bundled here: no CDN, no external font or script at run time.
 */
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../../dist/web', import.meta.url)),
    emptyOutDir: true,
    // Hashed file names under assets/: the server marks them immutable.
    assetsDir: 'assets',
    // Each page is its own file (App.tsx); the largest is ECharts (~600 KB, fetched by charts only).
    // A file past this warns at build time: split it rather than raise the limit.
    chunkSizeWarningLimit: 700,
    // The CSP allows no inline script: never inline the module-preload polyfill.
    modulePreload: { polyfill: false },
  },
  test: {
    root: here,
    environment: 'jsdom',
    include: ['app/**/*.test.{ts,tsx}'],
    setupFiles: ['app/testing/setup.ts'],
  },
});
