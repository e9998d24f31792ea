// Vite needs no plugin for the package: the generated module's `new URL('wallet_persist_bg.wasm',
// import.meta.url)` makes `vite build` emit the .wasm as an asset, and the dev server serve it.
// - base './': dist/ can be served from any path.
// - server.fs.allow: `file:../../pkg` is a symlink to a folder outside this app, and the dev server
//   only serves files outside the app root that the module graph imports; the .wasm is fetched,
//   not imported, so pkg/ must be allowed explicitly (an installed copy in node_modules needs nothing).
export default {
  base: './',
  build: { target: 'es2022' },
  server: { fs: { allow: ['.', '../../pkg'] } },
};
