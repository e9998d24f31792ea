// Every code sample in README.md is checked, so the README cannot drift from the package:
// - ```js blocks run, as written, as modules in headless Chromium against the release pkg/ (an
//   import map resolves 'wallet-persist'); each in a fresh profile, in README order. A
//   `// → value` comment is an expectation: the sample's console.log lines must print those values.
// - ```ts blocks are excerpts of the consumer app (examples/consumer), which consumer.test.mjs
//   type-checks, bundles and runs: each must appear there verbatim.
// - ```sh blocks name make targets: each must exist in the Makefile and in `make help`.
// - the plain ``` layout block names files and folders: each must exist.
// - the Benchmarks section quotes bench/results/latest.json as `make bench` writes it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import zlib from 'node:zlib';
import { startServer, launch, openPage, pageErrors, REPO_ROOT } from './harness.mjs';

const README = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

/** Fenced blocks: { lang, code, line, heading }. */
function blocks(markdown) {
  const found = [];
  let heading = '';
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const h = /^#+\s+(.*)$/.exec(lines[i]);
    if (h) heading = h[1];
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    found.push({ lang: open[1], code: lines.slice(start, end).join('\n'), line: start, heading });
    i = end;
  }
  return found;
}

const all = blocks(README);
const samples = all.filter((b) => b.lang === 'js');

let server;
before(async () => {
  assert.ok(fs.existsSync(path.join(REPO_ROOT, 'pkg', 'wallet_persist.js')), 'pkg/ is built (make pkg)');
  server = await startServer();
});
after(async () => {
  await server?.close();
});

test('every fenced block has a language the README test knows', () => {
  assert.ok(samples.length >= 3, `README has js samples: ${samples.length}`);
  for (const block of all) assert.ok(['js', 'ts', 'sh', ''].includes(block.lang), `README.md:${block.line}: unknown fence language ${block.lang}`);
});

test('the quickstart is at most 20 lines', () => {
  const quickstart = samples.find((b) => b.heading === 'Quickstart');
  assert.ok(quickstart, 'a js block under "## Quickstart"');
  assert.ok(quickstart.code.split('\n').length <= 20, `${quickstart.code.split('\n').length} lines`);
});

for (const sample of samples) {
  test(`README.md:${sample.line} (${sample.heading}) runs as written`, async () => {
    const browser = await launch();
    try {
      const page = await openPage(browser.context, server.url('/tests/e2e/fixtures/readme.html'), { ready: true });
      await page.evaluate((code) => window.runSample(code), sample.code);
      const printed = await page.evaluate(() => window.printed);
      const expected = [...sample.code.matchAll(/\/\/ → (.*)$/gm)].map((m) => m[1].trim());
      assert.deepEqual(printed, expected, 'console.log output equals the `// →` comments');
      assert.deepEqual(pageErrors(page), []);
    } finally {
      await browser.close();
    }
  });
}

test('```ts samples are verbatim excerpts of the consumer app (type-checked, bundled and run by consumer.test.mjs)', () => {
  const app = fs
    .readdirSync(path.join(REPO_ROOT, 'examples', 'consumer', 'src'))
    .map((f) => fs.readFileSync(path.join(REPO_ROOT, 'examples', 'consumer', 'src', f), 'utf8'))
    .join('\n');
  for (const block of all.filter((b) => b.lang === 'ts')) {
    assert.ok(app.includes(block.code), `README.md:${block.line}: not found verbatim in examples/consumer/src`);
  }
});

test('```sh samples name real make targets', () => {
  const makefile = fs.readFileSync(path.join(REPO_ROOT, 'Makefile'), 'utf8');
  const help = execFileSync('make', ['-s', 'help'], { cwd: REPO_ROOT, encoding: 'utf8' });
  for (const block of all.filter((b) => b.lang === 'sh')) {
    for (const [, target] of block.code.matchAll(/^make ([\w-]+)/gm)) {
      assert.match(makefile, new RegExp(`^${target}:`, 'm'), `README.md:${block.line}: make ${target} is a Makefile target`);
      assert.match(help, new RegExp(`^make ${target}\\b`, 'm'), `make help lists ${target}`);
    }
  }
});

test('the layout block names files and folders that exist', () => {
  const layout = all.filter((b) => b.lang === '' && b.heading === 'Layout');
  assert.equal(layout.length, 1);
  const paths = [...layout[0].code.matchAll(/(?:^|\s)((?:src|tests|www|examples|scripts)\/[\w./-]*)/g)].map((m) => m[1]);
  assert.ok(paths.length > 5);
  for (const p of paths) assert.ok(fs.existsSync(path.join(REPO_ROOT, p)), `${p} exists`);
});

test('the sizes the README states are within 15% of pkg/', () => {
  const match = /wallet_persist_bg\.wasm` is about (\d+) KiB \(about (\d+) KiB gzipped\); the JS\s+glue is about (\d+) KiB/.exec(README);
  assert.ok(match, 'README states the package size');
  const wasm = fs.readFileSync(path.join(REPO_ROOT, 'pkg', 'wallet_persist_bg.wasm'));
  const js = fs.statSync(path.join(REPO_ROOT, 'pkg', 'wallet_persist.js')).size;
  const actual = [wasm.length, zlib.gzipSync(wasm, { level: 9 }).length, js].map((n) => n / 1024);
  actual.forEach((kib, i) => {
    const stated = Number(match[i + 1]);
    assert.ok(Math.abs(kib - stated) / kib < 0.15, `stated ${stated} KiB, actual ${kib.toFixed(0)} KiB`);
  });
});

test('the Benchmarks section quotes bench/results/latest.json (date, browser, table, targets) as make bench wrote it', async () => {
  const { readmeBlock } = await import('../../bench/report.mjs');
  const latest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'bench', 'results', 'latest.json'), 'utf8'));
  const quoted = readmeBlock(latest);
  assert.ok(README.includes(quoted), `README.md must hold, verbatim:\n${quoted}`);
  assert.match(quoted, new RegExp(`Measured ${latest.date.slice(0, 10)} with Chromium \\d+`));
  const dated = path.join(REPO_ROOT, 'bench', 'results', `${latest.date.slice(0, 10)}.json`);
  assert.deepEqual(JSON.parse(fs.readFileSync(dated, 'utf8')), latest, 'the dated copy is the latest result');
});
