// Builds the plugin as Buildbot's own plugins are built (www/grid_view/vite.config.ts):
// one UMD file, scripts.js, and styles.css, which Buildbot's web UI loads from
// plugins/<name>/ of every configured www plugin. React, React Router and
// buildbot-plugin-support are not bundled: the UI gives them as globals.
import {resolve} from 'path';
import {defineConfig} from 'vite';

export default defineConfig({
  define: {'process.env.NODE_ENV': '"production"'},
  build: {
    lib: {
      entry: resolve(__dirname, 'src/index.tsx'),
      name: 'rustfarmWwwPlugin',
      formats: ['umd'],
      fileName: () => 'scripts.js',
    },
    rollupOptions: {
      external: ['react', 'react-dom', 'react-router-dom', 'buildbot-plugin-support'],
      output: {
        assetFileNames: 'styles.css',
        entryFileNames: 'scripts.js',
        globals: {
          react: 'React',
          'react-dom': 'ReactDOM',
          'react-router-dom': 'ReactRouterDOM',
          'buildbot-plugin-support': 'BuildbotPluginSupport',
        },
      },
    },
    target: ['es2020'],
    outDir: resolve(__dirname, '../static/ui'),
    emptyOutDir: true,
    minify: true,
  },
});
