#!/usr/bin/env node
/**
 * `npm run mutation [GROUP…]`: one Stryker pass per group of stryker.config.mjs (default: all of them),
 * each writing reports/mutation/GROUP.{html,json}; then a one-line score per group. Extra Stryker
 * flags go after `--` (e.g. `npm run mutation -- ops -- --mutate src/ops/magic-box.ts`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const all = ['ops', 'surrogates', 'advantages', 'optimizers', 'meta-objective', 'iteration'];
const args = process.argv.slice(2);
const split = args.indexOf('--');
const named = split < 0 ? args : args.slice(0, split);
const extra = split < 0 ? [] : args.slice(split + 1);
const unknown = named.filter((g) => !all.includes(g));
if (unknown.length > 0) {
  console.error(`unknown mutation group(s): ${unknown.join(', ')} (have: ${all.join(', ')})`);
  process.exit(1);
}
const groups = named.length > 0 ? named : all;
let failed = false;
for (const group of groups) {
  const run = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs', ...extra], { stdio: 'inherit', env: { ...process.env, MUTATION_GROUP: group } });
  if (run.status !== 0) failed = true;
}
for (const group of groups) {
  const file = `reports/mutation/${process.env.MUTATION_REPORT ?? group}.json`;
  if (!existsSync(file)) continue;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const counts = {};
  for (const f of Object.values(report.files)) for (const m of f.mutants) counts[m.status] = (counts[m.status] ?? 0) + 1;
  const detected = (counts.Killed ?? 0) + (counts.Timeout ?? 0);
  const valid = detected + (counts.Survived ?? 0) + (counts.NoCoverage ?? 0);
  console.log(`${group}: ${valid === 0 ? '–' : ((100 * detected) / valid).toFixed(1)}% of ${valid} mutants detected (${JSON.stringify(counts)})`);
  // The survivors, one line each, for the closing note: each must be killed or argued equivalent.
  for (const [name, f] of Object.entries(report.files)) {
    const lines = f.source.split('\n');
    for (const m of f.mutants) {
      if (m.status !== 'Survived' && m.status !== 'NoCoverage') continue;
      const { start, end } = m.location;
      const original = start.line === end.line ? lines[start.line - 1].slice(start.column - 1, end.column - 1) : `${lines[start.line - 1].slice(start.column - 1)} …`;
      console.log(`  ${m.status} ${name}:${start.line}:${start.column} ${m.mutatorName}: ${original.trim().slice(0, 70)} → ${(m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 70)}`);
    }
  }
}
process.exit(failed ? 1 : 0);
