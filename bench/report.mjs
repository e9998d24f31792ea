// Turns the runner's raw samples into the result of issue 9 — `latest.json` (and a dated copy),
// a Markdown table (`latest.md`) and an SVG chart (`latest.svg`) — and checks the targets.
//
// JSON: { date, browser, machine: { cores, memory_gb, … }, method, workloads: { W1: { ours:
// { median_ms, p10_ms, p90_ms, rows_per_s, phases? }, raw_idb: {…}, dexie: {…}, idb_keyval: {…},
// ratio_vs_raw_idb, ratio_vs_dexie, … }, … }, load_request_count: { wallets_1, wallets_1000 },
// targets: [{ id, what, value, met }] }. A contender that does not apply to a workload is omitted.
import fsp from 'node:fs/promises';
import path from 'node:path';

export const DESCRIPTIONS = {
  W1: 'one flush: 1,000 wallets × one changeset, one entry in each of 13 stores',
  W2: '100 back-to-back flushes of 100 small changesets (4 rows each)',
  W3: 'cold load of 10,000 rows across 5 stores after a page reload (open + read + decode)',
  W4: 'W1 with a transient failure: the first transaction aborts at commit, the retry lands',
  W5: 'one 256 KiB changeset (32 × 8 KiB transactions + the wallet record)',
  W6: '10,000 updates over 100 wallets (2 rows each) merging into the rows counted; ours: 10,000 store calls, one commit; B0 merges in a JS Map, then one transaction',
  W7: 'codec, in wasm: encode + decode of 1,000 whole changesets',
  W8: 'load of one wallet (100 rows) of 1,000 wallets × 100 rows (100,000 rows), after a page reload',
  W9: 'the list of 1,000 wallets (their records only) in a database of 100,000 rows, after a page reload',
};

export const LABELS = {
  ours: 'ours',
  ours_breakdown: 'ours, by phase',
  ours_encrypted: 'ours, encrypted at rest',
  raw_idb: 'B0 raw IndexedDB',
  raw_idb_every: 'B0 raw IndexedDB writing every update',
  dexie: 'B1 Dexie',
  dexie_concurrent: 'B1 Dexie, updates concurrent',
  dexie_bulkput: 'B1 Dexie bulkPut',
  idb_keyval: 'B2 idb-keyval set',
  idb_keyval_setmany: 'B2 idb-keyval setMany',
  serde_wasm_bindgen: 'serde-wasm-bindgen',
  json: 'JSON (serde_json)',
};

/** Linear-interpolated quantile of a sorted list. */
function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

const round = (x, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

function stats(list, rows) {
  const sorted = [...list].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  return {
    median_ms: round(median),
    p10_ms: round(quantile(sorted, 0.1)),
    p90_ms: round(quantile(sorted, 0.9)),
    rows_per_s: round((rows / median) * 1000, 0),
    n: list.length,
  };
}

/** p10 and p90 of ours / other per round: sample i of each contender is from the same
 *  interleaved round, so the round-to-round noise both share cancels out. */
function pairedSpread(ours, other) {
  if (!ours || ours.length !== other.length || ours.length < 2) return undefined;
  const sorted = ours.map((x, i) => x / other[i]).sort((a, b) => a - b);
  return [round(quantile(sorted, 0.1)), round(quantile(sorted, 0.9))];
}

/** The result object (issue format, plus `rows`, `bytes`, phases and extra ratios). */
function summarizeWorkloads(raw) {
  const workloads = {};
  for (const [w, { rows, bytes, samples }] of Object.entries(raw)) {
    const out = { description: DESCRIPTIONS[w], rows, bytes };
    for (const [contender, s] of Object.entries(samples)) {
      if (s.ms.length === 0) continue;
      const entry = stats(s.ms, rows);
      const phases = Object.entries(s.phases);
      if (phases.length) entry.phases = Object.fromEntries(phases.map(([p, list]) => [p, stats(list, rows).median_ms]));
      if (s.bytes !== undefined) entry.bytes = s.bytes;
      out[contender] = entry;
    }
    const ratio = (other) => (out.ours && out[other] ? round(out.ours.median_ms / out[other].median_ms) : undefined);
    for (const other of Object.keys(samples)) {
      if (other === 'ours' || other === 'ours_breakdown') continue;
      const value = ratio(other);
      if (value === undefined) continue;
      out[`ratio_vs_${other}`] = value;
      const spread = pairedSpread(samples.ours.ms, samples[other].ms);
      if (spread) out[`ratio_spread_vs_${other}`] = spread;
    }
    // Encryption at rest's cost (issue 16's target: at most 1.3 in W1 and W3).
    if (out.ours && out.ours_encrypted) out.ratio_encrypted_vs_plain = round(out.ours_encrypted.median_ms / out.ours.median_ms);
    workloads[w] = out;
  }
  return workloads;
}

export function summarize(raw) {
  const workloads = summarizeWorkloads(raw.workloads);
  if (workloads.W4?.ours && workloads.W1?.ours) {
    workloads.W4.ratio_vs_W1 = round(workloads.W4.ours.median_ms / workloads.W1.ours.median_ms);
  }
  const result = {
    date: raw.date,
    browser: raw.browser,
    browser_product: raw.browserProduct,
    user_agent: raw.userAgent,
    machine: raw.machine,
    method: {
      ...raw.method,
      order: 'interleaved: every round runs each contender once, in a seeded shuffled order',
      database: 'a fresh database per repetition (deleted afterwards); W3 reloads the page before each load; W8 and W9 read one database written once, after one reload',
      timing: 'performance.now() in the page around the workload only; gc() before each timed run',
      payloads: 'rows exported from our wasm (bench/pkg, fixed seed); values of ~300 B, 2 KB, 8 KB (6:3:1); every contender writes the same bytes (digest-checked)',
    },
    workloads,
  };
  if (raw.load_request_count) {
    const c = raw.load_request_count;
    result.load_request_count = {
      wallets_1: c[1].requests,
      wallets_1000: c[1000].requests,
      transactions: { wallets_1: c[1].transactions, wallets_1000: c[1000].transactions },
      rows: { wallets_1: c[1].rows, wallets_1000: c[1000].rows },
      by_method: c[1000].byMethod,
    };
  }
  if (raw.engines) {
    // The same workloads on the other engines, ours and B0 only (fewer repetitions: see method).
    result.engines = Object.fromEntries(
      Object.entries(raw.engines).map(([engine, e]) => [engine, { browser: e.browser, user_agent: e.user_agent, offers: e.offers, method: e.method, workloads: summarizeWorkloads(e.workloads) }]),
    );
  }
  if (raw.scale) result.scale = summarizeScale(raw.scale);
  if (raw.wasm_size) result.wasm_size = raw.wasm_size;
  result.targets = targets(result);
  return result;
}

/** The 100,000-row scale point: per contender, the median (p10–p90) of each measure. */
function summarizeScale({ wallets, rows_per_wallet, rows, bytes, samples, notes }) {
  const contenders = {};
  for (const [contender, list] of Object.entries(samples)) {
    if (!list.length) continue;
    const keys = Object.keys(list[0]).filter((k) => list.some((x) => typeof x[k] === 'number'));
    contenders[contender] = Object.fromEntries(
      keys.map((k) => {
        const values = list.map((x) => x[k]).filter((v) => typeof v === 'number').sort((a, b) => a - b);
        return [k, { median: round(quantile(values, 0.5)), p10: round(quantile(values, 0.1)), p90: round(quantile(values, 0.9)), n: values.length }];
      }),
    );
  }
  const ratio = (k) => (contenders.ours?.[k] && contenders.raw_idb?.[k] ? round(contenders.ours[k].median / contenders.raw_idb[k].median) : undefined);
  return { wallets, rows_per_wallet, rows, bytes, contenders, ratio_vs_raw_idb: { commit: ratio('commit_ms'), load: ratio('load_ms') }, notes };
}

/** The issue's targets, checked against this run. */
export function targets(result) {
  const w = result.workloads;
  const list = [];
  const ratio = (id, limit, what) => {
    const value = w[id]?.ratio_vs_raw_idb;
    if (value === undefined) return;
    const spread = w[id].ratio_spread_vs_raw_idb;
    // A third figure where two would print the limit itself for a value just over it.
    const shown = sig(value) === limit ? Number(value.toPrecision(3)) : sig(value);
    list.push({ id, what: `${id} ours / ${what} ≤ ${limit}`, value: shown, spread: spread?.map(sig), met: value <= limit });
  };
  ratio('W1', 1.3, 'raw IndexedDB');
  ratio('W2', 1.3, 'raw IndexedDB');
  ratio('W3', 1.3, 'raw IndexedDB `getAll` (incl. decode and JS objects)');
  ratio('W5', 1.3, 'raw IndexedDB');
  ratio('W6', 1.2, 'raw IndexedDB merging the updates in a JS Map (the same final rows)');
  const speedup = (id, other, limit, what) => {
    if (!w.W6?.ours || !w.W6[other]) return;
    const value = round(w.W6[other].median_ms / w.W6.ours.median_ms, 1);
    list.push({ id, what, value, met: value >= limit });
  };
  speedup('W6-dexie', 'dexie', 10, 'W6 ours ≥ 10× faster than Dexie writing every update');
  speedup('W6-dexie-bulkput', 'dexie_bulkput', 3, 'W6 ours ≥ 3× faster than Dexie bulkPut of every update');
  if (w.W8?.ours) {
    const value = w.W8.ours.median_ms;
    list.push({ id: 'W8', what: 'W8 one wallet of 1,000 (100,000 rows) loads in ≤ 10 ms', value, met: value <= 10 });
  }
  const r = result.load_request_count;
  if (r) {
    list.push({
      id: 'load-requests',
      what: 'load issues as many IndexedDB requests for 1,000 wallets as for 1',
      value: `${r.wallets_1} / ${r.wallets_1000}`,
      met: r.wallets_1 === r.wallets_1000,
    });
  }
  return list;
}

// ---- Markdown -----------------------------------------------------------------------------------

const COLUMNS = ['ours', 'raw_idb', 'dexie', 'idb_keyval', 'idb_keyval_setmany'];

const ms = (s) => (s ? `${fmt(s.median_ms)} (${fmt(s.p10_ms)}–${fmt(s.p90_ms)})` : '—');

function fmt(x) {
  if (x === null || x === undefined) return '—';
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** Two significant figures (ratios: the noise here is larger than the third). */
export const sig = (x) => (Number.isFinite(x) ? Number(x.toPrecision(2)) : x);

/** `1.2 (1.1–1.4)`: ours / `other` to two significant figures, with the per-round p10–p90. */
function ratioCell(wl, other) {
  const value = wl[`ratio_vs_${other}`];
  if (value === undefined) return '—';
  const spread = wl[`ratio_spread_vs_${other}`];
  return spread ? `${sig(value)} (${sig(spread[0])}–${sig(spread[1])})` : String(sig(value));
}

const perSecond = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(0)} k` : String(x));

/** The table of the write and load workloads (W1–W6), one row each. */
function mainTable(result) {
  const w = result.workloads;
  const lines = [];
  lines.push('| workload | rows written | ours | B0 raw IndexedDB | B1 Dexie | B2 idb-keyval `set` | B2 idb-keyval `setMany` | ours rows/s | ours / B0 | ours / Dexie |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [id, wl] of Object.entries(w)) {
    if (id === 'W7') continue;
    const cells = COLUMNS.map((c) => ms(wl[c]));
    lines.push(
      `| **${id}** ${wl.description} | ${wl.rows.toLocaleString('en')} | ${cells.join(' | ')} | ${wl.ours ? perSecond(wl.ours.rows_per_s) : '—'} | ${ratioCell(wl, 'raw_idb')} | ${ratioCell(wl, 'dexie')} |`,
    );
  }
  return lines;
}

const ENGINE_NAMES = { chromium: 'Chromium', firefox: 'Firefox', webkit: 'WebKit' };

/** Ours / B0 per engine (each ratio from one browser, one run): W1, W3, W6. */
function engineTable(result) {
  if (!result.engines) return [];
  const chromium = Object.keys(result.workloads).length ? [['chromium', { browser: result.browser, workloads: result.workloads }]] : [];
  const engines = [...chromium, ...Object.entries(result.engines)];
  const ids = ['W1', 'W3', 'W6'].filter((id) => engines.some(([, e]) => e.workloads[id]));
  if (!ids.length) return [];
  const lines = [];
  lines.push(`| workload | ${engines.map(([name, e]) => `${ENGINE_NAMES[name] || name} (${e.browser}): ours / B0, ms ours / B0`).join(' | ')} |`);
  lines.push(`|---|${engines.map(() => '---:').join('|')}|`);
  for (const id of ids) {
    const cells = engines.map(([, e]) => {
      const wl = e.workloads[id];
      return wl?.ours && wl.raw_idb ? `${ratioCell(wl, 'raw_idb')}; ${fmt(wl.ours.median_ms)} / ${fmt(wl.raw_idb.median_ms)}` : '—';
    });
    lines.push(`| **${id}** | ${cells.join(' | ')} |`);
  }
  return lines;
}

function engineTitle(result) {
  const methods = Object.entries(result.engines || {}).map(([e, x]) => `${ENGINE_NAMES[e] || e} ${x.method.warmups} warm-up(s) + ${x.method.repetitions} repetitions`);
  return `**Per engine**: ours / B0 raw IndexedDB, each in one browser and run (p10–p90 of the per-round ratio), then median ms of each; ${methods.join(', ')}.`;
}

const SCALE_TITLE = '**At 100,000 rows**, ours and B0 (median, p10–p90; wasm memory and JS heap measured after the phase, in the same page):';

const mib = (bytes) => (typeof bytes === 'number' ? `${(bytes / 2 ** 20).toFixed(bytes >= 10 * 2 ** 20 ? 0 : 1)} MiB` : '—');

/** The 100,000-row point: time, longest task, memory; then the release .wasm size. */
function scaleLines(result) {
  const lines = [];
  const x = result.scale;
  if (x) {
    const cell = (c, k, f) => {
      const m = x.contenders[c]?.[k];
      if (!m) return '—';
      return m.p10 === m.p90 ? f(m.median) : `${f(m.median)} (${f(m.p10)}–${f(m.p90)})`;
    };
    const msf = (v) => fmt(v);
    const task = (v) => (v === 0 ? '< 50' : fmt(v));
    const mibf = (v) => (typeof v === 'number' ? (v / 2 ** 20).toFixed(v >= 10 * 2 ** 20 ? 0 : 1) : '—');
    lines.push(`| ${x.rows.toLocaleString('en')} rows (${x.wallets.toLocaleString('en')} wallets × ${x.rows_per_wallet}), ${mib(x.bytes)} | ours | B0 raw IndexedDB | ours / B0 |`);
    lines.push('|---|---:|---:|---:|');
    const rowsOf = [
      ['commit, ms', 'commit_ms', msf, x.ratio_vs_raw_idb.commit],
      ['of which staging (ours: the app’s loop of 1,000 store() calls), ms', 'stage_ms', msf],
      ['longest main-thread task in the staging loop (one task of the app), ms', 'stage_longest_task_ms', task],
      ['longest main-thread task in commit() (B0: its whole write), ms', 'commit_longest_task_ms', task],
      ['wasm linear memory after the commit, MiB', 'commit_wasm_memory_bytes', mibf],
      ['JS heap after the commit, MiB', 'commit_js_heap_bytes', mibf],
      ['cold load after a reload, ms', 'load_ms', msf, x.ratio_vs_raw_idb.load],
      ['longest main-thread task in the load, ms', 'load_longest_task_ms', task],
      ['wasm linear memory after the load, MiB', 'load_wasm_memory_bytes', mibf],
      ['JS heap after the load (the loaded state held), MiB', 'load_js_heap_bytes', mibf],
    ];
    for (const [label, k, f, ratio] of rowsOf) {
      if (!x.contenders.ours?.[k] && !x.contenders.raw_idb?.[k]) continue;
      lines.push(`| ${label} | ${cell('ours', k, f)} | ${cell('raw_idb', k, f)} | ${ratio === undefined ? '' : sig(ratio)} |`);
    }
    if (x.notes) lines.push('', x.notes);
  }
  const size = result.wasm_size;
  if (size) {
    lines.push('');
    lines.push(`Release \`.wasm\` (\`${size.file}\`): ${size.raw.toLocaleString('en')} bytes (${(size.raw / 1024).toFixed(0)} KiB), ${size.gzip.toLocaleString('en')} gzipped (${(size.gzip / 1024).toFixed(0)} KiB, level 9), ${size.brotli.toLocaleString('en')} brotli (${(size.brotli / 1024).toFixed(0)} KiB).`);
  }
  return lines;
}

const targetLines = (result) =>
  result.targets.map((t) => `- ${t.met ? 'met' : '**missed**'}: ${t.what} — ${t.value}${t.spread ? ` (p10–p90 of the per-round ratio ${t.spread[0]}–${t.spread[1]})` : ''}`);

export const README_START = '<!-- bench:start (written by make bench from bench/results/latest.json) -->';
export const README_END = '<!-- bench:end -->';

/** What the README quotes of a result: date, browser, machine, the main table, the targets. */
export function readmeBlock(result) {
  return [
    README_START,
    `Measured ${result.date.slice(0, 10)} with ${result.browser} (headless), ${result.machine.cores} cores (shared: expect noise), ` +
      `${result.method.warmups} warm-ups + ${result.method.repetitions} interleaved repetitions, a fresh database each` +
      `${result.method.repetitions < 15 ? ' (a reduced run: fewer repetitions than the default 15)' : ''}. ` +
      'Median ms (p10–p90); ratios are ours / contender (of the medians) to two significant figures, with the p10–p90 of the ' +
      'per-round ratio (below 1: ours is faster); rows/s counts rows written.',
    '',
    ...mainTable(result),
    ...section(engineTitle(result), engineTable(result)),
    ...section(SCALE_TITLE, scaleLines(result)),
    '',
    ...targetLines(result),
    README_END,
  ].join('\n');
}

/** `title` and `lines` after a blank line, or nothing when `lines` is empty. */
function section(title, lines) {
  return lines.length ? ['', title, '', ...lines] : [];
}

/** Replaces the README's quoted block with `result`'s; false when the README has no markers. */
export async function updateReadme(file, result) {
  const text = await fsp.readFile(file, 'utf8');
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start < 0 || end < start) return false;
  await fsp.writeFile(file, text.slice(0, start) + readmeBlock(result) + text.slice(end + README_END.length));
  return true;
}

export function markdown(result) {
  const w = result.workloads;
  const day = result.date.slice(0, 10);
  const lines = [];
  lines.push(`# wallet-persist benchmarks, ${day}`);
  lines.push('');
  lines.push(
    `${result.browser}, ${result.machine.cores} cores, ${result.machine.memory_gb} GB (${result.machine.cpu}); ` +
      `${result.method.warmups} warm-ups + ${result.method.repetitions} interleaved repetitions, a fresh database each, size \`${result.method.size}\`.`,
  );
  lines.push('Median ms (p10–p90); ratios are ours / contender (below 1: ours is faster). Produced by `make bench`.');
  lines.push('');
  lines.push(...mainTable(result));
  lines.push(...section(engineTitle(result), engineTable(result)));
  lines.push(...section(SCALE_TITLE, scaleLines(result)));
  if (w.W7) {
    const x = w.W7;
    lines.push('');
    lines.push(`**W7** ${x.description} (encode / decode medians):`);
    lines.push('');
    lines.push('| codec | encode + decode | encode | decode | bytes | ours / codec |');
    lines.push('|---|---:|---:|---:|---:|---:|');
    for (const c of ['ours', 'serde_wasm_bindgen', 'json']) {
      if (!x[c]) continue;
      const label = c === 'ours' ? 'bincode envelope (ours)' : LABELS[c];
      lines.push(`| ${label} | ${ms(x[c])} | ${fmt(x[c].phases?.encode_ms)} | ${fmt(x[c].phases?.decode_ms)} | ${x[c].bytes ? x[c].bytes.toLocaleString('en') : 'JS objects'} | ${c === 'ours' ? '1' : x[`ratio_vs_${c}`]} |`);
    }
  }
  if (w.W3) {
    lines.push('');
    lines.push('**W3 phases** (medians, ms):');
    lines.push('');
    lines.push('| contender | open | read | decode | to JS objects | load (read + decode + JS) | total |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const c of ['ours', 'ours_breakdown', 'ours_encrypted', 'raw_idb', 'dexie', 'idb_keyval']) {
      const s = w.W3[c];
      if (!s) continue;
      const p = s.phases || {};
      lines.push(`| ${LABELS[c]} | ${fmt(p.open_ms)} | ${fmt(p.read_ms)} | ${fmt(p.decode_ms)} | ${fmt(p.to_js_ms)} | ${fmt(p.load_ms)} | ${fmt(s.median_ms)} |`);
    }
  }
  if (w.W4) {
    lines.push('');
    const p = (c) => w.W4[c]?.phases || {};
    lines.push(
      `**W4 phases**: ours first attempt ${fmt(p('ours').first_attempt_ms)} ms + retry ${fmt(p('ours').retry_ms)} ms; ` +
        `raw IndexedDB ${fmt(p('raw_idb').first_attempt_ms)} + ${fmt(p('raw_idb').retry_ms)} ms. W4 / W1 (ours): ${w.W4.ratio_vs_W1 ?? '—'}.`,
    );
  }
  if (w.W6) {
    lines.push('');
    lines.push('**W6 variants** (these write every update; ours and B0 write the merged rows): ' + ['dexie', 'dexie_concurrent', 'dexie_bulkput', 'raw_idb_every', 'idb_keyval', 'idb_keyval_setmany']
      .filter((c) => w.W6[c])
      .map((c) => `${LABELS[c]} ${fmt(w.W6[c].median_ms)} ms (ours ${round(w.W6[c].median_ms / w.W6.ours.median_ms, 1)}× faster)`)
      .join('; ') + '.');
  }
  if (result.load_request_count) {
    const r = result.load_request_count;
    lines.push('');
    lines.push(
      `**load() IndexedDB requests**: ${r.wallets_1} for 1 wallet (${r.rows.wallets_1} rows), ${r.wallets_1000} for 1,000 wallets ` +
        `(${r.rows.wallets_1000.toLocaleString('en')} rows), in ${r.transactions.wallets_1000} transaction(s) (${Object.entries(r.by_method).map(([m, n]) => `${m} ×${n}`).join(', ')}).`,
    );
  }
  lines.push('');
  lines.push('**Targets**');
  lines.push('');
  lines.push(...targetLines(result));
  lines.push('');
  return lines.join('\n');
}

// ---- SVG ----------------------------------------------------------------------------------------

const COLORS = {
  ours: '#d1495b',
  ours_breakdown: '#e9a2ab',
  ours_encrypted: '#8c2f39',
  raw_idb: '#30638e',
  dexie: '#00798c',
  dexie_concurrent: '#5fb3c0',
  dexie_bulkput: '#8fd0d9',
  idb_keyval: '#edae49',
  idb_keyval_setmany: '#f4cf8f',
  serde_wasm_bindgen: '#6d597a',
  json: '#b56576',
};

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Horizontal bars per workload: median ms on a log scale, p10–p90 whiskers. */
export function svg(result) {
  const width = 860;
  const labelW = 250;
  const plotW = width - labelW - 90;
  const barH = 14;
  const gap = 4;
  const rowsOf = (wl) => Object.keys(LABELS).filter((c) => wl[c]);
  let all = [];
  for (const wl of Object.values(result.workloads)) for (const c of rowsOf(wl)) all.push(wl[c].p10_ms, wl[c].p90_ms, wl[c].median_ms);
  all = all.filter((x) => x > 0);
  if (!all.length) all = [1, 10]; // no Chromium workloads (a run of the other engines only)
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const x = (v) => labelW + (Math.log10(Math.max(v, lo) / lo) / Math.log10(hi / lo)) * plotW;
  const out = [];
  let y = 46;
  for (const [id, wl] of Object.entries(result.workloads)) {
    out.push(`<text x="8" y="${y + 11}" font-weight="bold">${esc(id)}</text>`);
    out.push(`<text x="40" y="${y + 11}" fill="#555">${esc(wl.description)}</text>`);
    y += 18;
    for (const c of rowsOf(wl)) {
      const s = wl[c];
      out.push(`<text x="${labelW - 6}" y="${y + barH - 3}" text-anchor="end">${esc(LABELS[c])}</text>`);
      out.push(`<rect x="${labelW}" y="${y}" width="${Math.max(1, x(s.median_ms) - labelW).toFixed(1)}" height="${barH}" fill="${COLORS[c]}"/>`);
      out.push(`<line x1="${x(s.p10_ms).toFixed(1)}" x2="${x(s.p90_ms).toFixed(1)}" y1="${y + barH / 2}" y2="${y + barH / 2}" stroke="#222"/>`);
      out.push(`<text x="${(x(s.p90_ms) + 4).toFixed(1)}" y="${y + barH - 3}" fill="#222">${esc(fmt(s.median_ms))} ms</text>`);
      y += barH + gap;
    }
    y += 10;
  }
  const grid = [];
  for (let v = lo; v <= hi; v *= 10) {
    grid.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="36" y2="${y}" stroke="#ddd"/>`);
    grid.push(`<text x="${x(v).toFixed(1)}" y="${y + 14}" text-anchor="middle" fill="#555">${v >= 1 ? v : v.toPrecision(1)} ms</text>`);
  }
  const height = y + 24;
  const title = `wallet-persist benchmarks ${result.date.slice(0, 10)}, ${result.browser}, ${result.machine.cores} cores: median ms (log scale), whiskers p10–p90`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="20" font-size="13" font-weight="bold">${esc(title)}</text>`,
    ...grid,
    ...out,
    `</svg>`,
    '',
  ].join('\n');
}

/** Writes latest.json, latest.md, latest.svg (and `<date>.json` when `dated`) under `dir`. */
export async function writeResults(result, dir, { dated = true } = {}) {
  await fsp.mkdir(dir, { recursive: true });
  const json = JSON.stringify(result, null, 2) + '\n';
  const files = [
    [path.join(dir, 'latest.json'), json],
    [path.join(dir, 'latest.md'), markdown(result)],
    [path.join(dir, 'latest.svg'), svg(result)],
  ];
  if (dated) files.push([path.join(dir, `${result.date.slice(0, 10)}.json`), json]);
  for (const [file, text] of files) await fsp.writeFile(file, text);
  return files.map(([file]) => file);
}
