#!/usr/bin/env node
// Usage: node scripts/pkg-manifest.mjs DIR
// Completes the package.json that wasm-pack wrote into DIR (pkg/ or www/pkg/) with what
// Cargo.toml cannot express: an `exports` map (types first, for TypeScript's "bundler" and
// "node16" resolution), `module`, and the license files in `files`. Everything else
// (name, version, description, license, repository, keywords, files, types) comes from
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
const { main, types } = manifest;

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

manifest.exports = {
  '.': { types: `./${types}`, default: `./${main}` },
  // For bundlers that want the .wasm as an asset URL (e.g. Vite's `?url`) and for initSync.
  [wasm]: wasm,
  './package.json': './package.json',
};
manifest.module = main;
// wasm-pack copies LICENSE-MIT and LICENSE-APACHE but does not list them; npm packs only a file
// named exactly LICENSE/LICENCE on its own.
for (const license of fs.readdirSync(dir).filter((f) => /^LICEN[CS]E/i.test(f)).sort()) {
  if (!manifest.files.includes(license)) manifest.files.push(license);
}
fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
console.log(`${file}: exports ${Object.keys(manifest.exports).join(', ')}`);
