import { fileURLToPath, URL } from 'node:url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

// Built into the Python package; served by imhub/web/pages.py under /asset/.
// Nothing inline: the server's CSP is script-src 'self'.
export default defineConfig({
  base: '/asset/',
  plugins: [vue()],
  build: {
    outDir: fileURLToPath(new URL('../imhub/web/static/app', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 900,
    target: 'es2020',
  },
  server: {
    // `npm run dev` next to `imhub serve` on :8080
    proxy: {
      '^/(user|contact|attach|mnt|openapi)': 'http://127.0.0.1:8080',
      '^/chat$': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
  test: {
    include: ['tests/**/*.test.js'],
    environment: 'node',
  },
})
