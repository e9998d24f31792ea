// The simulation of tests/sim.rs, smaller, against real IndexedDB: seeded random sequences of
// store, commit, flush, deleteWallet, registerWallet, close + reopen, with faults armed through the
// fault-injection build (transient and fatal write failures, failed reads). After every sequence
// (and after every reopen) `load` must equal the model exactly; a wallet a report named as dropped
// is resynced. A failure prints its seed. E2E_SIM_N (default 200) and E2E_SIM_SEED choose the run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, evalInPage, uniqueName, setup } from './harness.mjs';
import { FAULTS_PAGE } from './client.mjs';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

const N = Number(process.env.E2E_SIM_N || 200);
const SEED = Number(process.env.E2E_SIM_SEED || 15);

test(`simulation against real IndexedDB: ${N} seeded sequences, load equals the model`, { timeout: 300_000 }, async () => {
  const page = await openPage(env.browser.context, env.server.url(FAULTS_PAGE), { ready: true });
  try {
    const result = await evalInPage(page, async ([n, seed, prefix]) => {
      const rngOf = (s) => {
        let x = BigInt(s) + 0x9e3779b97f4a7c15n;
        return (m) => {
          x = (x + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
          let z = x;
          z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
          z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
          return Number((z ^ (z >> 31n)) % BigInt(m));
        };
      };
      const wid = (k) => k.toString(16).padStart(2, '0').repeat(32);
      const txid = '77'.repeat(32);
      const record = (k) => ({ network: 'regtest', label: `w${k}`, birthHeight: 1, createdAtMs: 0, accountSchema: 1 });
      const utxo = (vout, value) => ({ outpoint: `${txid}:${vout}`, value, script: new Uint8Array([0x51]), height: null, account: 0 });
      const wp = window.wp;
      let steps = 0;

      for (let i = 0; i < n; i++) {
        const s = seed * 1_000_003 + i;
        const r = rngOf(s);
        const name = `${prefix}-${s}`;
        const opened = await wp.open({ name, flushMode: 'manual' });
        if (opened.error) return { seed: s, error: `open: ${JSON.stringify(opened.error)}` };
        let store = wp.store(name);
        /** wallet hex -> Map(vout -> value): durable + staged, as the store must end. */
        const model = new Map();
        const resync = new Set();
        let counter = 1n;
        const log = [];
        const fail = (what) => ({ seed: s, error: what, log });

        const loadState = async () => {
          const { wallets, report } = await store.load();
          if (report.skipped.length) throw new Error(`skipped rows: ${JSON.stringify(report.skipped)}`);
          const out = new Map();
          for (const [w, cs] of Object.entries(wallets)) {
            out.set(w, new Map(Object.values(cs.utxos).map((u) => [Number(u.outpoint.split(':')[1]), u.value])));
          }
          return out;
        };
        const settleAll = async () => {
          for (let attempt = 0; attempt < 5; attempt++) {
            try {
              await store.flush();
              return;
            } catch (error) {
              if (error.detail?.dropped) error.detail.dropped.forEach((w) => resync.add(w));
              if (error.code !== 4 && error.walletIds) error.walletIds.forEach((w) => resync.add(w));
            }
          }
          throw new Error('flush never landed');
        };
        const check = async (when) => {
          await settleAll();
          const loaded = await loadState();
          for (const w of resync) {
            if (loaded.has(w)) model.set(w, new Map(loaded.get(w)));
            else model.delete(w);
          }
          resync.clear();
          const show = (m) => JSON.stringify([...m].map(([w, u]) => [w.slice(0, 4), [...u].map(([v, x]) => `${v}=${x}`)]));
          if (show(loaded) !== show(model)) throw new Error(`${when}: load ${show(loaded)} != model ${show(model)}`);
        };

        try {
          const len = 6 + r(14);
          for (let step = 0; step < len; step++) {
            steps += 1;
            const k = r(6) < 4 ? 1 + r(4) : 20 + r(2);
            const w = wid(k);
            const op = r(100);
            log.push(op);
            if (op < 40) {
              const vout = r(3);
              const value = r(4) === 0 ? null : (counter += 1n);
              await store.store(w, { wallet: record(k), utxos: { [`${txid}:${vout}`]: value === null ? null : utxo(vout, value) } });
              if (!model.has(w)) model.set(w, new Map());
              if (value === null) model.get(w).delete(vout);
              else model.get(w).set(vout, value);
            } else if (op < 55) {
              const report = await store.commit();
              report.failed.forEach((f) => resync.add(f.walletId));
            } else if (op < 62) {
              try {
                await store.flush();
              } catch (error) {
                if (error.detail?.dropped) error.detail.dropped.forEach((x) => resync.add(x));
                if (error.code !== 4 && error.walletIds) error.walletIds.forEach((x) => resync.add(x));
              }
            } else if (op < 70) {
              try {
                await store.deleteWallet(w);
                model.delete(w);
                resync.delete(w);
              } catch {
                /* nothing deleted, everything kept */
              }
            } else if (op < 78) {
              const reg = wid(20 + r(2));
              const throws = r(2) === 0;
              let stored = null;
              try {
                await store.registerWallet(reg, { wallet: record(20) }, async () => {
                  if (r(2) === 0) {
                    stored = (counter += 1n);
                    await store.store(reg, { utxos: { [`${txid}:0`]: utxo(0, stored) } });
                    await store.commit();
                  }
                  if (throws) throw new Error('init failed');
                });
                model.set(reg, stored === null ? new Map() : new Map([[0, stored]]));
              } catch {
                /* all or nothing: the model is unchanged */
              }
            } else if (op < 86) {
              const kind = ['quota_exceeded', 'transaction_aborted', 'internal'][r(3)];
              await store.failNext(r(4) === 0 ? 'read' : 'write', 1, kind);
            } else if (op < 93) {
              let report;
              try {
                report = await store.close();
              } catch (error) {
                // A transient failure of the final flush: the store stays open, nothing is lost.
                if (!error.retryable) throw error;
                if (error.detail?.dropped) error.detail.dropped.forEach((x) => resync.add(x));
                continue;
              }
              report.notWritten.wallets.forEach((x) => resync.add(x));
              const again = await wp.open({ name, flushMode: 'manual' });
              if (again.error) return fail(`reopen: ${JSON.stringify(again.error)}`);
              store = wp.store(name);
              await check(`after reopen at step ${step}`);
            } else {
              await check(`at step ${step}`);
            }
          }
          await check('at the end');
          await store.close();
          const again = await wp.open({ name, flushMode: 'manual' });
          if (again.error) return fail(`final reopen: ${JSON.stringify(again.error)}`);
          store = wp.store(name);
          await check('after the final reopen');
          await store.close();
          indexedDB.deleteDatabase(name);
        } catch (error) {
          return fail(String(error && error.message ? `${error.message} (code ${error.code})` : error));
        }
      }
      return { ok: true, steps };
    }, [N, SEED, uniqueName('sim')]);
    assert.ok(result.ok, `simulation failed: seed ${result.seed} (E2E_SIM_SEED=${SEED}): ${result.error}\nops: ${JSON.stringify(result.log)}`);
    assert.ok(result.steps >= N * 6);
  } finally {
    await page.close();
  }
});
