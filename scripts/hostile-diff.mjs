#!/usr/bin/env node
// Every case of the hostile-input vocabulary (tests/e2e/fixtures/hostile.mjs: each entry point,
// each argument, each path × each bad leaf or container change), run in the same order on two
// builds, one page each; prints the cases whose outcome, code, message or cause differ. With
// `--pairs N`, also N changesets given to `store` with two or three of those mutations at once
// (drawn from seed `--seed`, printed), so which refusal wins when several apply is compared too.
//
//   node scripts/hostile-diff.mjs bench/pkg-base bench/pkg [--only store,storePending] [--pairs 3000 --seed 7]
import { setup, openPage, evalInPage, uniqueName } from '../tests/e2e/harness.mjs';
import { base, paths, badLeaves, badContainerChanges, badArguments, SIGNATURES, STRUCTURED } from '../tests/e2e/fixtures/hostile.mjs';

const args = process.argv.slice(2);
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const only = option('--only') ? new Set(option('--only').split(',')) : null;
const pairs = Number(option('--pairs') ?? 0);
const seed = Number(option('--seed') ?? Date.now() % 2 ** 31);
const [left, right] = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
if (!left || !right) throw new Error('usage: node scripts/hostile-diff.mjs <pkg dir> <pkg dir> [--only m1,m2]');


/** Every mutation of an argument of kind `kind` (the space fuzz.test.mjs draws from). */
function mutations(kind) {
  if (kind === 'garbage') return badLeaves('bytes', 'bytes').map((replacement) => ({ path: [], replacement }));
  if (kind === 'init') return badArguments('listener').map((replacement) => ({ path: [], replacement }));
  if (!STRUCTURED.has(kind)) return badArguments(kind).map((replacement) => ({ path: [], replacement }));
  const out = [];
  for (const p of paths(base(kind))) {
    for (const replacement of badLeaves(kind, p.kind)) out.push({ path: p.path, replacement });
    if (p.kind === 'object' || p.kind === 'array') {
      for (const change of badContainerChanges(kind, p.kind)) out.push({ path: p.path, change });
    }
  }
  return out;
}

const cases = [];
for (const [method, argKinds] of SIGNATURES) {
  if (only && !only.has(method)) continue;
  argKinds.forEach((kind, target) => {
    for (const mutation of mutations(kind)) cases.push({ method, args: argKinds, target, mutation });
  });
}

// Several mutations of one changeset, applied deepest path first (a shallower one may replace
// what a deeper one changed; none walks through a container already changed).
let state = seed >>> 0;
const random = (n) => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return (((t ^ (t >>> 14)) >>> 0) % n);
};
const changesetMutations = mutations('changeset');
const multi = Array.from({ length: pairs }, () =>
  [...new Map(Array.from({ length: 2 + random(2) }, () => changesetMutations[random(changesetMutations.length)])
    .map((m) => [JSON.stringify(m.path), m])).values()]
    .sort((a, b) => b.path.length - a.path.length));

const env = await setup();
try {
  const results = {};
  for (const pkg of [left, right]) {
    const page = await openPage(env.browser.context, env.server.url(`/tests/e2e/fixtures/persister.html?api=hostile&pkg=/${pkg}/wallet_persist.js`), { ready: true, timeout: 120_000 });
    const name = uniqueName('hostile-diff');
    await evalInPage(page, (n) => window.hx.open(n), name);
    const out = [];
    for (let i = 0; i < cases.length; i += 200) {
      out.push(...(await evalInPage(page, ([n, batch]) => window.hx.runAll(n, batch), [name, cases.slice(i, i + 200)])));
    }
    for (let i = 0; i < multi.length; i += 200) {
      out.push(...(await evalInPage(page, async ([n, batch]) => {
        const { base, mutate, WALLET } = await import('/tests/e2e/fixtures/hostile.mjs');
        const { hx } = window;
        const results = [];
        for (const list of batch) {
          let value;
          try {
            value = list.reduce((v, m) => mutate(v, m), base('changeset'));
          } catch {
            // Two changes that do not compose (a getter that throws when the next one reads it).
            results.push({ outcome: 'not built' });
            continue;
          }
          results.push(await hx.settle(() => hx.store(n).store(WALLET, value)));
        }
        return results;
      }, [name, multi.slice(i, i + 200)])));
    }
    // Valid changes in every accepted spelling, then what is staged, committed and loaded.
    out.push(await evalInPage(page, async (n) => {
      const { base, WALLET } = await import('/tests/e2e/fixtures/hostile.mjs');
      const { hx } = window;
      const TX = '11'.repeat(32);
      const variants = [
        base('changeset'),
        { utxos: { [`${TX}:0`]: { outpoint: `${TX}:0`, value: 7, script: new Uint8Array(0), height: null, account: 4294967295 } } },
        { transactions: { [TX]: { txid: TX, raw: new Uint8Array(300).fill(9), height: undefined, timestampMs: undefined, fee: 2 ** 53 - 1 } } },
        { records: { 'app:k': null, 'app:é🙂': { namespace: 'app', key: 'é🙂', value: new Uint8Array([1]) } }, wallet: { ...base('changeset').wallet, label: 'x'.repeat(300), walletId: undefined } },
        { identities: { ['1d'.repeat(32)]: null } },
      ];
      const outcomes = [];
      for (const v of variants) outcomes.push(await hx.settle(() => hx.store(n).store(WALLET, v)));
      return { outcome: JSON.stringify(outcomes), error: { message: JSON.stringify(await hx.snapshot(n)) } };
    }, name));
    results[pkg] = out;
    await page.close();
  }
  const seen = (r) => JSON.stringify({ outcome: r.outcome, code: r.error?.code, name: r.error?.name, message: r.error?.message, cause: r.error?.cause });
  const byMethod = {};
  let differences = 0;
  const all = [...cases, ...multi.map((list) => ({ method: 'store', mutations: list })), { valid: 'staged, committed and loaded state' }];
  for (const c of cases) byMethod[c.method] = (byMethod[c.method] || 0) + 1;
  all.forEach((c, i) => {
    const [a, b] = [seen(results[left][i]), seen(results[right][i])];
    if (a !== b) {
      differences += 1;
      if (differences <= 20) console.log(`DIFF ${JSON.stringify(c)}\n  ${left}: ${a}\n  ${right}: ${b}`);
    }
  });
  const outcomes = {};
  const multiOutcomes = {};
  for (const r of results[right].slice(cases.length, -1)) multiOutcomes[r.outcome] = (multiOutcomes[r.outcome] || 0) + 1;
  for (const r of results[right].slice(0, cases.length)) outcomes[r.outcome] = (outcomes[r.outcome] || 0) + 1;
  if (pairs) console.log(`${pairs} changesets with 2 or 3 mutations at distinct paths to store (seed ${seed}): ${JSON.stringify(multiOutcomes)}`);
  console.log(`${cases.length} single-mutation cases over ${Object.keys(byMethod).length} entry points (${Object.entries(byMethod).map(([m, n]) => `${m} ${n}`).join(', ')})`);
  console.log(`outcomes on ${right}: ${JSON.stringify(outcomes)}`);
  console.log(`valid changes on ${right}: ${results[right].at(-1).outcome.slice(0, 200)}; state ${results[right].at(-1).error.message.length} characters: ${results[right].at(-1).error.message.slice(0, 160)}…`);
  console.log(`${differences} differences in outcome, code, name, message or cause between ${left} and ${right}`);
  process.exitCode = differences ? 1 : 0;
} finally {
  await env.close();
}
