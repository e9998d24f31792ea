// The published package as npm would ship it: `npm pack` of pkg/, then
// - the tarball's file list is exactly what a wallet needs (nothing missing, nothing extra);
// - publint (strict, suggestions included) and @arethetypeswrong/cli (ESM-only profile) pass on the
//   tarball itself;
// - a fresh Vite + TypeScript app (a copy of examples/consumer) installs the tarball, not the
//   folder, type-checks with tsc --strict, builds, and runs in headless Chromium;
// - the package README's quickstart runs in Node with fake-indexeddb and initSync, and the error
//   class and guard work before init() and when init() fails.
// The checking tools live in tools/package-check (publint, attw, fake-indexeddb; `make bootstrap`
// installs them) so that their TypeScript 5 does not meet the root's TypeScript 7.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { launch, openPage, pageErrors, startServer, uniqueName, REPO_ROOT } from './harness.mjs';

const PKG = path.join(REPO_ROOT, 'pkg');
const TOOLS = path.join(REPO_ROOT, 'tools', 'package-check', 'node_modules');
const BIN = path.join(REPO_ROOT, 'node_modules', '.bin');
const CONSUMER = path.join(REPO_ROOT, 'examples', 'consumer');

let work;
let tarball;
let packed;

/** Runs a command; output to the test log; a non-zero exit throws with the output. */
function sh(command, args, { cwd, env = {} } = {}) {
  const started = Date.now();
  try {
    const output = execFileSync(command, args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', ...env },
    });
    process.stderr.write(`[package] ${path.basename(command)} ${args.join(' ')}: ${Date.now() - started} ms\n`);
    return output;
  } catch (error) {
    throw new Error(`${path.basename(command)} ${args.join(' ')} failed (exit ${error.status}):\n${error.stdout}\n${error.stderr}`);
  }
}

before(() => {
  assert.ok(fs.existsSync(path.join(PKG, 'package.json')), 'pkg/ is built (make pkg)');
  assert.ok(fs.existsSync(path.join(TOOLS, 'publint')), 'tools/package-check is installed (make bootstrap)');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'wallet-persist-package-'));
  [packed] = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', work], { cwd: PKG }));
  tarball = path.join(work, packed.filename);
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('npm pack ships exactly the package files', () => {
  const files = packed.files.map((f) => f.path).sort();
  const snippet = /^snippets\/wallet-persist-[0-9a-f]+\/src\/(js\/(convert|env|errors)\.js|js\/errors\.d\.ts|backend\/indexeddb\/idb\.js)$/;
  const expected = [
    'CHANGELOG.md', 'COMPATIBILITY.md', 'LICENSE-APACHE', 'LICENSE-MIT', 'README.md', 'index.d.ts', 'index.js',
    'package.json', 'wallet_persist.d.ts', 'wallet_persist.js', 'wallet_persist_bg.wasm', 'wallet_persist_bg.wasm.d.ts',
  ];
  assert.deepEqual(files.filter((f) => !f.startsWith('snippets/')), expected);
  const snippets = files.filter((f) => f.startsWith('snippets/'));
  assert.equal(snippets.length, 5, snippets.join(', '));
  for (const f of snippets) assert.match(f, snippet);
  const wasm = packed.files.find((f) => f.path === 'wallet_persist_bg.wasm').size;
  process.stderr.write(
    `[figures] package: ${packed.filename} ${(packed.size / 1024).toFixed(0)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked, ` +
      `.wasm ${(wasm / 1024).toFixed(0)} KiB, ${files.length} files: ${files.join(' ')}\n`,
  );
  const readme = fs.readFileSync(path.join(PKG, 'README.md'), 'utf8');
  assert.match(readme, /## Unit tests in Node/, 'the user-facing README, not the contributor one');
  assert.doesNotMatch(readme, /make (test|bench)/);
});

// The .wasm's size ceiling, gzipped at level 9 as a server would send it: the release build's
// size plus a small margin, so that code that grows it (a dependency, a monomorphised generic,
// float formatting) fails here and is measured before it lands (`twiggy top` on a named build).
// The release build is 346,322 bytes gzipped here (Node's zlib, level 9; 344,523 with `gzip -9`):
// this crate at opt-level "z", wallet-persist-core (the row codec and the model) at 3 (Cargo.toml,
// [profile.release]) but for the changeset's cold operations (#[inline], compiled here),
// wasm-opt -O3 -ocimfs 0.
const WASM_GZIP_CEILING = 348_000;

test('the .wasm stays under its gzipped size ceiling', () => {
  const wasm = fs.readFileSync(path.join(PKG, 'wallet_persist_bg.wasm'));
  const gzipped = zlib.gzipSync(wasm, { level: 9 }).length;
  process.stderr.write(`[figures] .wasm: ${wasm.length} bytes, ${gzipped} bytes gzipped (ceiling ${WASM_GZIP_CEILING})\n`);
  assert.ok(gzipped <= WASM_GZIP_CEILING, `the .wasm is ${gzipped} bytes gzipped, over its ceiling of ${WASM_GZIP_CEILING}`);
});

test('publint finds nothing in the tarball (strict, suggestions included)', async () => {
  const { publint } = await import(path.join(TOOLS, 'publint', 'src', 'index-node.js'));
  const { formatMessage } = await import(path.join(TOOLS, 'publint', 'src', 'utils.js'));
  const bytes = fs.readFileSync(tarball);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const { messages, pkg } = await publint({ pack: { tarball: buffer }, level: 'suggestion', strict: true });
  const text = messages.map((m) => `${m.type} ${m.code}: ${formatMessage(m, pkg)}`);
  assert.deepEqual(text, []);
});

test('@arethetypeswrong/cli finds no problem in the tarball (ESM-only profile)', () => {
  // ESM only (`--profile esm-only`: no CommonJS `require`); the .wasm subpath is an asset for
  // bundlers' `?url` and initSync, not a module with types.
  const args = [tarball, '--profile', 'esm-only', '--exclude-entrypoints', './wallet_persist_bg.wasm'];
  const table = sh(path.join(TOOLS, '.bin', 'attw'), [...args, '--format', 'table-flipped']);
  process.stderr.write(`[package] attw:\n${table}\n`);
  const result = JSON.parse(sh(path.join(TOOLS, '.bin', 'attw'), [...args, '--format', 'json']));
  const resolutions = result.analysis.entrypoints['.'].resolutions;
  for (const kind of ['bundler', 'node16-esm']) {
    assert.ok(resolutions[kind]?.resolution?.isTypeScript, `${kind}: types resolve (${JSON.stringify(resolutions[kind]?.resolution)})`);
  }
  const esmProblems = Object.values(result.analysis.problems ?? {}).flat().filter((p) => !['node10', 'node16-cjs'].includes(p.resolutionKind));
  assert.deepEqual(esmProblems, []);
});

test('a fresh Vite + TypeScript app installs the tarball, type-checks, builds and runs in Chromium', async () => {
  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  for (const f of ['index.html', 'tsconfig.json', 'src']) fs.cpSync(path.join(CONSUMER, f), path.join(app, f), { recursive: true });
  // As an app with the package from a registry: no fs.allow for a linked folder.
  fs.writeFileSync(path.join(app, 'vite.config.js'), "export default { base: './', build: { target: 'es2022' } };\n");
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'fresh-app', private: true, type: 'module' }, null, 2));
  sh('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: app });
  const installed = path.join(app, 'node_modules', 'wallet-persist');
  assert.ok(!fs.lstatSync(installed).isSymbolicLink(), 'a copy from the tarball, not a link to pkg/');

  sh(path.join(BIN, 'tsc'), ['-p', '.', '--noEmit', '--strict'], { cwd: app });
  sh(path.join(BIN, 'vite'), ['build', '--logLevel', 'warn'], { cwd: app });
  const server = await startServer({ root: path.join(app, 'dist') });
  const browser = await launch();
  try {
    const page = await openPage(browser.context, server.url(`/?db=${uniqueName('tarball')}`), { ready: true });
    const result = await page.evaluate(() => window.__ready);
    assert.equal(result.firstVisit, true);
    assert.equal(result.balance, String(2n ** 53n + 1n));
    assert.deepEqual(result.commit, { succeeded: ['c0'.repeat(32)], failed: [], stillPending: [] });
    assert.equal(result.errorClass, true, 'rejections are instances of the exported WalletPersistError');
    assert.equal(result.shutdown.clean, true);
    assert.deepEqual(pageErrors(page), []);
    await page.close();
  } finally {
    await browser.close();
    await server.close();
  }
});

/** The js block after `heading` in the package README. */
function readmeBlock(heading) {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'package', 'README.md'), 'utf8');
  const at = readme.indexOf(`## ${heading}`);
  assert.ok(at >= 0, `## ${heading} in docs/package/README.md`);
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  return block[1];
}

/** A Node app with the tarball and fake-indexeddb installed; runs `code` as an ES module there. */
function nodeApp() {
  const app = path.join(work, 'node-app');
  if (!fs.existsSync(app)) {
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'node-app', private: true, type: 'module' }));
    sh('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: app });
    fs.symlinkSync(path.join(TOOLS, 'fake-indexeddb'), path.join(app, 'node_modules', 'fake-indexeddb'));
  }
  return (name, code) => {
    fs.writeFileSync(path.join(app, name), code);
    return sh(process.execPath, [name], { cwd: app });
  };
}

test('the README quickstart runs in Node with fake-indexeddb and initSync', () => {
  const node = readmeBlock('Unit tests in Node').split('\n');
  const quickstart = readmeBlock('Quickstart').split('\n');
  // The Node preamble (imports, initSync), then the quickstart's body without its import and init().
  const preamble = node.slice(0, node.findIndex((l) => l.startsWith('initSync(')) + 1);
  const body = quickstart.filter((l) => !l.startsWith('import ') && !l.startsWith('await init()'));
  const run = nodeApp();
  const printed = run('quickstart.mjs', [...preamble, ...body].join('\n')).trim().split('\n');
  const expected = body.map((l) => /\/\/ → (.*)$/.exec(l)?.[1]).filter(Boolean);
  assert.deepEqual(printed, expected);
});

test('the README "Showing one wallet" sample runs in Node with fake-indexeddb and initSync', () => {
  const node = readmeBlock('Unit tests in Node').split('\n');
  const preamble = node.slice(0, node.findIndex((l) => l.startsWith('initSync(')) + 1);
  const body = readmeBlock('Showing one wallet').split('\n').filter((l) => !l.startsWith('import ') && !l.startsWith('await init()'));
  const printed = nodeApp()('one-wallet.mjs', [...preamble, ...body].join('\n')).trim().split('\n');
  assert.deepEqual(printed, body.map((l) => /\/\/ → (.*)$/.exec(l)?.[1]).filter(Boolean));
});

test('in Node: WalletPersistError and isWalletPersistError work before init(), when it fails, and after', () => {
  const run = nodeApp();
  const out = run(
    'errors.mjs',
    `import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import init, { initSync, WalletStore, WalletPersistError, isWalletPersistError, ErrorCode } from 'wallet-persist';
const before = new WalletPersistError('made by hand', { code: 20, kind: 'closed', retryable: false });
const facts = { beforeInit: [before instanceof Error, isWalletPersistError(before), before.name, isWalletPersistError(new Error('x'))] };
try {
  await init({ module_or_path: 'http://127.0.0.1:9/missing.wasm' });
} catch (error) {
  facts.initFailed = isWalletPersistError(error);
}
initSync({ module: readFileSync(new URL(import.meta.resolve('wallet-persist/wallet_persist_bg.wasm'))) });
const store = await WalletStore.open({ name: 'errors' });
try {
  await store.store('not-a-wallet-id', {});
} catch (error) {
  facts.rejection = [error instanceof WalletPersistError, isWalletPersistError(error), error.code === ErrorCode.InvalidArgument, error.kind, error.retryable];
}
await store.close();
console.log(JSON.stringify(facts));
`,
  );
  assert.deepEqual(JSON.parse(out), {
    beforeInit: [true, true, 'WalletPersistError', false],
    initFailed: false,
    rejection: [true, true, true, 'invalid_argument', false],
  });
});
