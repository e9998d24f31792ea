// Vite's defaults do everything: the generated module's `new URL('wallet_persist_bg.wasm',
// import.meta.url)` makes Vite emit the .wasm as an asset. `base: './'` lets dist/ be served
// from any path.
export default { base: './', build: { target: 'es2022' } };
