#!/usr/bin/env node
/**
 * `npm run mutation [GROUP…]`: one Stryker pass per group of stryker.config.mjs (default: all of them),
 * each writing reports/mutation/GROUP.{html,json}; then the scores, printed and written to
 * reports/mutation/summary.md. Extra Stryker flags go after `--` (e.g.
 * `npm run mutation -- ops -- --mutate src/ops/magic-box.ts`). `--report-only` skips the Stryker passes
 * and scores the reports already there.
 *
 * Two scores per group. The raw one: detected (killed or timed out) over every mutant Stryker ran. The
 * numbers' one, the target: the same over the mutants that can change a number, i.e. without the
 * argument checks (scripts/mutation-kinds.mjs's rule) and without the survivors argued equivalent in
 * scripts/mutation-equivalent.json (each with its reason, matched by file, source line and edit, and
 * column where one line has two such edits).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { kindOf } from './mutation-kinds.mjs';

const all = ['ops', 'surrogates', 'influence', 'advantages', 'optimizers', 'meta-objective', 'task-stack', 'iteration'];
const args = process.argv.slice(2);
const split = args.indexOf('--');
const reportOnly = args.includes('--report-only');
const named = (split < 0 ? args : args.slice(0, split)).filter((a) => a !== '--report-only');
const extra = split < 0 ? [] : args.slice(split + 1);
const unknown = named.filter((g) => !all.includes(g));
if (unknown.length > 0) {
  console.error(`unknown mutation group(s): ${unknown.join(', ')} (have: ${all.join(', ')})`);
  process.exit(1);
}
const groups = named.length > 0 ? named : all;
let failed = false;
if (!reportOnly) {
  for (const group of groups) {
    const run = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs', ...extra], { stdio: 'inherit', env: { ...process.env, MUTATION_GROUP: group } });
    if (run.status !== 0) failed = true;
  }
}

const equivalents = JSON.parse(readFileSync(new URL('mutation-equivalent.json', import.meta.url), 'utf8'));
/** The equivalence argued for a mutant, if any: same file, same mutator and edit, the same source line. */
const equivalenceOf = (file, lineText, m) =>
  equivalents.find((e) => file.endsWith(e.file) && e.mutator === m.mutatorName && e.replacement === (m.replacement ?? '') && lineText.trim() === e.line && (e.column === undefined || e.column === m.location.start.column));

const rows = [];
const survivors = [];
const checkSurvivors = [];
const used = new Set();
// A group's reports: GROUP.json, and GROUP-PART.json for passes narrowed with MUTATION_FILES and
// MUTATION_REPORT=GROUP-PART (each scored as its own row).
const reportsOf = (group) =>
  existsSync('reports/mutation')
    ? readdirSync('reports/mutation')
        .filter((f) => f === `${group}.json` || (f.startsWith(`${group}-`) && f.endsWith('.json') && !f.endsWith('.replay.json') && !all.some((g) => g !== group && f.startsWith(`${g}.`))))
        .map((f) => f.slice(0, -'.json'.length))
        .sort()
    : [];
for (const name of groups.flatMap(reportsOf)) {
  const group = name;
  const file = `reports/mutation/${name}.json`;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  // Survivors re-run since against the tests as they are now (scripts/mutation-replay.mjs), when the
  // replay is newer than the Stryker pass.
  const replayFile = `reports/mutation/${name}.replay.json`;
  const replayed = new Map();
  if (existsSync(replayFile) && statSync(replayFile).mtimeMs > statSync(file).mtimeMs) {
    for (const r of JSON.parse(readFileSync(replayFile, 'utf8')).results) replayed.set(`${r.file}#${r.id}`, r);
  }
  const c = { mutants: 0, killed: 0, timeout: 0, survived: 0, noCoverage: 0, killedOnReplay: 0, argumentChecks: 0, argumentChecksSurvived: 0, equivalent: 0 };
  for (const [path, f] of Object.entries(report.files)) {
    const kind = kindOf(f.source);
    const lines = f.source.split('\n');
    for (const m of f.mutants) {
      if (m.status === 'Ignored' || m.status === 'CompileError' || m.status === 'RuntimeError') continue;
      c.mutants++;
      const replay = replayed.get(`${path}#${m.id}`);
      const onReplay = replay !== undefined && (replay.status === 'Killed' || replay.status === 'Timeout');
      const detected = m.status === 'Killed' || m.status === 'Timeout' || onReplay;
      if (m.status === 'Killed') c.killed++;
      if (m.status === 'Timeout') c.timeout++;
      if (onReplay) c.killedOnReplay++;
      else if (m.status === 'Survived') c.survived++;
      else if (m.status === 'NoCoverage') c.noCoverage++;
      const { start, end } = m.location;
      const lineText = lines[start.line - 1];
      const original = start.line === end.line ? lineText.slice(start.column - 1, end.column - 1) : `${lineText.slice(start.column - 1)} …`;
      const survivor = { group, at: `${path}:${start.line}:${start.column}`, mutator: m.mutatorName, original: original.trim().slice(0, 70), replacement: (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 70) };
      if (kind(m.location) === 'argument-check') {
        c.argumentChecks++;
        if (!detected) {
          c.argumentChecksSurvived++;
          checkSurvivors.push(survivor);
        }
        continue;
      }
      if (onReplay) survivors.push({ ...survivor, killedBy: replay.killedBy ?? '(a timeout)' });
      if (detected) continue;
      const equivalence = equivalenceOf(path, lineText, m);
      if (equivalence !== undefined) {
        c.equivalent++;
        for (const e of equivalents) if (e.file === equivalence.file && e.line === equivalence.line && e.mutator === equivalence.mutator && e.replacement === equivalence.replacement) used.add(e);
      }
      survivors.push({ ...survivor, reason: equivalence?.reason });
    }
  }
  const detected = c.killed + c.timeout + c.killedOnReplay;
  const numbers = c.mutants - c.argumentChecks - c.equivalent;
  const numbersDetected = detected - (c.argumentChecks - c.argumentChecksSurvived);
  rows.push({ group, ...c, raw: c.mutants === 0 ? NaN : (100 * detected) / c.mutants, score: numbers === 0 ? NaN : (100 * numbersDetected) / numbers, numbers, numbersDetected });
}

const pct = (x) => (Number.isNaN(x) ? '–' : `${x.toFixed(1)}%`);
const table = [
  '| group | mutants | killed | timeout | killed on replay | survived | no coverage | argument checks (surviving) | equivalent | raw score | numbers\' score |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.group} | ${r.mutants} | ${r.killed} | ${r.timeout} | ${r.killedOnReplay} | ${r.survived} | ${r.noCoverage} | ${r.argumentChecks} (${r.argumentChecksSurvived}) | ${r.equivalent} | ${pct(r.raw)} | ${pct(r.score)} (${r.numbersDetected}/${r.numbers}) |`,
  ),
];
const totals = rows.reduce((a, r) => ({ n: a.n + r.numbers, d: a.d + r.numbersDetected }), { n: 0, d: 0 });
const total = `numbers' score over ${rows.map((r) => r.group).join(', ')}: ${pct((100 * totals.d) / totals.n)} (${totals.d} of ${totals.n} mutants that can change a number detected)`;
const verdict = (s) => (s.killedBy !== undefined ? `killed since, by “${s.killedBy}”` : s.reason !== undefined ? `equivalent: ${s.reason}` : '**survives, not argued**');
const survivorLines = survivors.map((s) => `- \`${s.at}\` ${s.mutator}: \`${s.original}\` → \`${s.replacement}\` — ${verdict(s)}`);
const checkLines = checkSurvivors.map((s) => `- \`${s.at}\` ${s.mutator}: \`${s.original}\` → \`${s.replacement}\``);
const summary = [
  table.join('\n'),
  '',
  total,
  '',
  'Survivors of the Stryker pass that can change a number (each killed since, or argued equivalent):',
  '',
  ...survivorLines,
  '',
  'Surviving argument checks (a wrong input accepted, or refused with another message; not in the numbers\' score):',
  '',
  ...checkLines,
  '',
].join('\n');
mkdirSync('reports/mutation', { recursive: true });
writeFileSync('reports/mutation/summary.md', summary);
console.log(summary);
const scoredFiles = new Set(survivors.map((s) => s.at.split(':')[0]));
const unused = equivalents.filter((e) => !used.has(e) && [...scoredFiles].some((f) => f.endsWith(e.file)));
if (unused.length > 0) console.log(`${unused.length} equivalence(s) in scripts/mutation-equivalent.json matched no survivor of these reports (killed since, or the line changed).`);
process.exit(failed ? 1 : 0);
