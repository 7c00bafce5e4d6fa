/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The binary serves a strict CSP (script-src 'self'; style-src 'self'):
// no inline scripts or styles may end up in dist/index.html.
export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    proxy: {
      '/api': { target: process.env.DOCKNAP_DEV_API ?? 'http://127.0.0.1:8080', changeOrigin: false },
      '/healthz': { target: process.env.DOCKNAP_DEV_API ?? 'http://127.0.0.1:8080' },
    },
  },
  test: {
    environment: 'node',
    include: ['tests/**/*.test.ts'],
  },
})
