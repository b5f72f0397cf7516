import { createHash } from 'node:crypto'
import { fileURLToPath, URL } from 'node:url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

/**
 * The server's CSP allows fonts only from 'self' (font-src falls back to default-src),
 * but Vant ships its icon font inline as a data: URL. Move every inlined font out into
 * a hashed file next to the CSS, and drop its remote (CDN) fallback.
 */
function externalizeFonts() {
  const re = /url\((["']?)data:font\/(woff2?|ttf|otf)(?:;charset=[^;,]+)?;base64,([A-Za-z0-9+/=]+)\1\)/g
  return {
    name: 'imhub-externalize-fonts',
    apply: 'build',
    generateBundle(_options, bundle) {
      for (const file of Object.values(bundle)) {
        if (file.type !== 'asset' || !file.fileName.endsWith('.css')) continue
        const css = typeof file.source === 'string' ? file.source : Buffer.from(file.source).toString('utf8')
        const out = css.replace(re, (_m, _q, ext, b64) => {
          const data = Buffer.from(b64, 'base64')
          const hash = createHash('sha256').update(data).digest('base64url').slice(0, 10)
          const name = `assets/font-${hash}.${ext}`
          if (!bundle[name]) this.emitFile({ type: 'asset', fileName: name, source: data })
          return `url(/asset/${name})`
        })
        // …and drop remote fallbacks (a CDN the CSP refuses and this app must not need).
        file.source = out.replace(/,\s*url\((["']?)(?:https?:)?\/\/[^)]+\)\s*format\([^)]*\)/g, '')
      }
    },
  }
}

// The protocol core is the SDK package in ../sdk/js (@imhub/sdk), imported from source.
const SDK = fileURLToPath(new URL('../sdk/js/src/', import.meta.url))

// Built into the Python package; served by imhub/web/pages.py under /asset/.
// Nothing inline: the server's CSP is script-src 'self'.
export default defineConfig({
  base: '/asset/',
  plugins: [vue(), externalizeFonts()],
  resolve: {
    alias: [
      { find: /^@imhub\/sdk$/, replacement: `${SDK}index.js` },
      { find: /^@imhub\/sdk\/(.*)$/, replacement: `${SDK}$1` },
    ],
  },
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
    fs: { allow: ['..'] }, // ../sdk/js
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
