// Property-based fuzzing of every entry point with hostile caller values (fast-check): wrong types
// per field, numbers and bigints at and past every bound, lone surrogates, special keys, unknown
// fields, deep nesting, cycles, Maps, class instances, boxed primitives, Proxies whose traps throw,
// revoked proxies, throwing getters. Every case must reject with a WalletPersistError of a
// documented code (the synchronous functions: throw one); afterwards the store that saw them all
// holds exactly what a control store that saw only the valid calls holds, and nothing like a
// RuntimeError or a panic reached the console.
//
//   FUZZ_SEED=123 FUZZ_RUNS=20000 node --test tests/e2e/fuzz.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { setup, openPage, evalInPage, uniqueName } from './harness.mjs';
import { base, paths, badLeaves, badContainerChanges, badArguments, SIGNATURES, STRUCTURED } from './fixtures/hostile.mjs';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
const RUNS = Number(process.env.FUZZ_RUNS || 10_000);
/** Cases per round trip to the page (a batch is one fast-check run; it shrinks case by case). */
const BATCH = 50;
/** A valid step on both stores every this many batches. */
const VALID_EVERY = 5;

const SYNC = new Set(['setLogLevel', 'onChange']);

/** Hostile values for one argument of kind `kind`. */
function mutationOf(kind) {
  if (kind === 'garbage') return fc.constantFrom(...badLeaves('bytes', 'bytes')).map((replacement) => ({ path: [], replacement }));
  if (kind === 'init') return fc.constantFrom(...badArguments('listener')).map((replacement) => ({ path: [], replacement }));
  if (!STRUCTURED.has(kind)) return fc.constantFrom(...badArguments(kind)).map((replacement) => ({ path: [], replacement }));
  const all = paths(base(kind));
  const containers = all.filter((p) => p.kind === 'object' || p.kind === 'array');
  return fc.oneof(
    fc.constantFrom(...all).chain((p) => fc.constantFrom(...badLeaves(kind, p.kind)).map((replacement) => ({ path: p.path, replacement }))),
    fc.constantFrom(...containers).chain((p) => fc.constantFrom(...badContainerChanges(kind, p.kind)).map((change) => ({ path: p.path, change }))),
  );
}

const hostileCase = fc
  .constantFrom(...SIGNATURES)
  .chain(([method, args]) =>
    fc.nat({ max: args.length - 1 }).chain((target) => mutationOf(args[target]).map((mutation) => ({ method, args, target, mutation }))),
  );

let env;
let page;
const fuzz = uniqueName('fuzz');
const control = uniqueName('fuzz-control');
const consoleTraps = [];

before(async () => {
  env = await setup();
  page = await openPage(env.browser.context, env.server.url('/tests/e2e/fixtures/persister.html?api=hostile'), { ready: true });
  const watch = (text) => {
    if (/RuntimeError|panicked|unreachable|memory access out of bounds/.test(text)) consoleTraps.push(text);
  };
  page.on('console', (msg) => watch(msg.text()));
  page.on('pageerror', (error) => watch(String(error)));
  await evalInPage(page, async ([a, b]) => (await window.hx.open(a)) && window.hx.open(b), [fuzz, control]);
});
after(async () => {
  await env?.close();
});

test(`every entry point rejects ${RUNS} hostile calls typed, and the store holds what a control store holds`, { timeout: 15 * 60_000 }, async () => {
  const tally = { cases: 0, 'rejected typed': 0, accepted: 0, thrown: 0, untyped: 0, traps: 0 };
  const t0 = Date.now();
  let step = 0;
  let batches = 0;
  /** The last case that failed (after shrinking: the smallest one fast-check found). */
  let failing = null;
  const property = fc.asyncProperty(fc.array(hostileCase, { minLength: BATCH, maxLength: BATCH }), async (cases) => {
    if (batches++ % VALID_EVERY === 0) {
      step += 1;
      await evalInPage(page, ([i, names]) => window.hx.validStep(i, names), [step, [fuzz, control]]);
    }
    const results = await evalInPage(page, ([name, all]) => window.hx.runAll(name, all), [fuzz, cases]);
    results.forEach((result, i) => {
      const c = cases[i];
      tally.cases += 1;
      const expected = SYNC.has(c.method) ? 'threw' : 'rejected';
      const runtime = result.error?.runtime || result.error?.code === 99;
      if (runtime) tally.traps += 1;
      else if (result.outcome === expected && result.error.typed) tally['rejected typed'] += 1;
      else if (result.outcome === 'resolved' || result.outcome === 'returned') tally.accepted += 1;
      else if (result.outcome === 'thrown' || (result.outcome === 'threw' && !result.error.typed)) tally.thrown += 1;
      else tally.untyped += 1;
      if (result.outcome !== expected || !result.error.typed || runtime) {
        failing = { case: c, result };
        throw new Error(`${c.method}: ${result.outcome} ${JSON.stringify(result.error ?? null)} for ${JSON.stringify(c)}`);
      }
    });
  });
  let failure;
  try {
    await fc.assert(property, { seed: SEED, numRuns: Math.ceil(RUNS / BATCH), endOnFailure: false });
  } catch (error) {
    failure = error;
  }
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`[fuzz] seed ${SEED}, ${RUNS} cases requested (${BATCH} per fast-check run), ${seconds} s`);
  console.log(`[fuzz] cases / rejected typed / accepted / thrown / untyped / traps${failure ? ' (shrinking runs included)' : ''}`);
  console.log(`[fuzz] ${tally.cases} / ${tally['rejected typed']} / ${tally.accepted} / ${tally.thrown} / ${tally.untyped} / ${tally.traps}`);
  if (failure) {
    const head = failure.message.split('\n').find((line) => line.startsWith('Property failed')) ?? failure.message.slice(0, 300);
    console.log(`[fuzz] FAILED (replay: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}): ${head}`);
    console.log(`[fuzz] shrunk counterexample: ${JSON.stringify(failing?.case)}`);
    console.log(`[fuzz] what it did: ${JSON.stringify(failing?.result)}`);
    throw new Error(`${head}\nshrunk counterexample: ${JSON.stringify(failing?.case)} -> ${JSON.stringify(failing?.result)}`);
  }
  assert.deepEqual(consoleTraps, [], 'no RuntimeError or panic on the console');

  const [seen, expected] = await evalInPage(page, async ([a, b]) => [await window.hx.snapshot(a), await window.hx.snapshot(b)], [fuzz, control]);
  assert.deepEqual(seen, expected, 'the fuzzed store holds exactly what the control store holds');
  assert.ok(step >= 1 && seen.wallets.includes(`"value":"${step}n"`), 'the valid steps landed');
});
