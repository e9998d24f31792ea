#!/usr/bin/env node
// Usage: node scripts/pkg-manifest.mjs DIR
// Completes the package that wasm-pack wrote into DIR (pkg/ or www/pkg/) with what Cargo.toml
// cannot express:
//   - the entry `index.js` / `index.d.ts`: the wasm module's API plus `WalletPersistError` and
//     `isWalletPersistError` from the plain-JS errors.js (usable before and without init());
//   - errors.d.ts beside wasm-bindgen's copy of errors.js;
//   - the user-facing README (docs/package/README.md), CHANGELOG.md and docs/COMPATIBILITY.md;
//   - package.json: `exports` (types first, for TypeScript's "bundler" and "node16"
//     resolution), `main`/`module`/`types` at the entry, `sideEffects: false`, and every shipped
//     file in `files`.
// Everything else (name, version, description, license, repository, keywords) comes from
// Cargo.toml through wasm-pack, and is checked here so a Cargo.toml edit cannot silently drop it.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node scripts/pkg-manifest.mjs DIR');
  process.exit(2);
}
const file = path.join(dir, 'package.json');
const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
// Idempotent: a second run finds its own entry in `main`/`types` and goes back to wasm-pack's.
const wasmPackMain = `${String(manifest.name).replace(/-/g, '_')}.js`;
const main = manifest.main === 'index.js' ? wasmPackMain : manifest.main;
const types = manifest.types === 'index.d.ts' ? wasmPackMain.replace(/\.js$/, '.d.ts') : manifest.types;

const required = ['name', 'version', 'description', 'license', 'repository', 'keywords', 'files', 'main', 'types'];
const missing = required.filter((key) => manifest[key] === undefined);
if (missing.length) {
  console.error(`${file}: wasm-pack did not write ${missing.join(', ')} (check Cargo.toml [package])`);
  process.exit(1);
}
for (const entry of [main, types, main.replace(/\.js$/, '_bg.wasm')]) {
  if (!fs.existsSync(path.join(dir, entry))) {
    console.error(`${file}: ${entry} is missing`);
    process.exit(1);
  }
}
const wasm = `./${main.replace(/\.js$/, '_bg.wasm')}`;
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');

// wasm-bindgen copies src/js/errors.js to snippets/<crate>-<hash>/src/js/errors.js; the entry must
// re-export that very file, so the class the wasm side instantiates is the one apps import.
const snippets = path.join(dir, 'snippets');
const errorsJs = fs.existsSync(snippets)
  ? fs.readdirSync(snippets).map((d) => path.join('snippets', d, 'src', 'js', 'errors.js')).filter((f) => fs.existsSync(path.join(dir, f)))
  : [];
if (errorsJs.length !== 1) {
  console.error(`${dir}: expected one snippets/*/src/js/errors.js, found ${errorsJs.length}`);
  process.exit(1);
}
const errors = `./${errorsJs[0].split(path.sep).join('/')}`;
fs.copyFileSync(path.join(root, 'src', 'js', 'errors.d.ts'), path.join(dir, errorsJs[0].replace(/\.js$/, '.d.ts')));
const banner = '// The package entry: the wasm module\'s API, and the error class and guard from plain JS (no init() needed).\n';
fs.writeFileSync(
  path.join(dir, 'index.js'),
  `${banner}export * from './${main}';\nexport { default } from './${main}';\nexport { WalletPersistError, isWalletPersistError } from '${errors}';\n`,
);
fs.writeFileSync(
  path.join(dir, 'index.d.ts'),
  `${banner}export * from './${main}';\nexport { default } from './${main}';\nexport { WalletPersistError, isWalletPersistError, type WalletPersistErrorFields, type WalletPersistErrorConstructor } from '${errors}';\n`,
);

// The user-facing documents replace the contributor README wasm-pack copied.
fs.copyFileSync(path.join(root, 'docs', 'package', 'README.md'), path.join(dir, 'README.md'));
fs.copyFileSync(path.join(root, 'CHANGELOG.md'), path.join(dir, 'CHANGELOG.md'));
fs.copyFileSync(path.join(root, 'docs', 'COMPATIBILITY.md'), path.join(dir, 'COMPATIBILITY.md'));

// The form npm and publint expect: git+https://….git.
if (manifest.repository && /^https:\/\//.test(manifest.repository.url)) {
  manifest.repository.url = `git+${manifest.repository.url.replace(/\.git$/, '')}.git`;
}
manifest.main = 'index.js';
manifest.module = 'index.js';
manifest.types = 'index.d.ts';
manifest.exports = {
  '.': { types: './index.d.ts', default: './index.js' },
  // For bundlers that want the .wasm as an asset URL (e.g. Vite's `?url`) and for initSync.
  [wasm]: wasm,
  './package.json': './package.json',
};
// Nothing in the package does anything at import time but define functions and classes.
manifest.sideEffects = false;
// wasm-pack copies LICENSE-MIT and LICENSE-APACHE but does not list them; npm packs only a file
// named exactly LICENSE/LICENCE on its own.
const licenses = fs.readdirSync(dir).filter((f) => /^LICEN[CS]E/i.test(f)).sort();
const shipped = ['index.js', 'index.d.ts', main, types, wasm.slice(2), `${main.replace(/\.js$/, '_bg.wasm.d.ts')}`,
  'snippets/', 'README.md', 'CHANGELOG.md', 'COMPATIBILITY.md', ...licenses];
manifest.files = shipped.filter((f) => fs.existsSync(path.join(dir, f)));
fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
console.log(`${file}: exports ${Object.keys(manifest.exports).join(', ')}; files ${manifest.files.join(', ')}`);
