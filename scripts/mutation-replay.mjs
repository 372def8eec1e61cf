#!/usr/bin/env node
/**
 * `node scripts/mutation-replay.mjs GROUP [REPORT]`: re-runs the survivors of reports/mutation/REPORT.json
 * (default: GROUP; the mutants that survived or had no coverage, but those argued equivalent) against
 * the group's test command as it is now, each applied alone to a scratch copy of the tree, and writes
 * reports/mutation/REPORT.replay.json: for each, killed or survived. This confirms that the tests
 * written after a Stryker pass kill what it left, without re-running the hundreds of mutants it killed
 * already; scripts/mutation.mjs counts a survivor killed on replay as killed. A file that changed since
 * the report is not replayed (its mutants' places are stale): run Stryker again for it.
 */
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, statSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// --also FILE: a test file added to the command (e.g. a slow suite that alone reaches a code path);
// --lines A,B,…: only the survivors on those lines. Results merge into an earlier replay of the report.
const argv = process.argv.slice(2);
const option = (flag) => {
  const i = argv.indexOf(flag);
  return i < 0 ? undefined : argv.splice(i, 2)[1];
};
const also = option('--also');
const onlyLines = option('--lines')?.split(',').map(Number);
const [group, name = group] = argv;
if (group === undefined) {
  console.error('usage: node scripts/mutation-replay.mjs GROUP [REPORT]  (REPORT: e.g. GROUP-PART, default GROUP)');
  process.exit(1);
}
process.env.MUTATION_GROUP = group;
const config = (await import('../stryker.config.mjs')).default;
const command = `${config.commandRunner.command}${also === undefined ? '' : ` ${also}`}`;
const report = JSON.parse(readFileSync(`reports/mutation/${name}.json`, 'utf8'));
// Survivors argued equivalent (scripts/mutation-equivalent.json) are not replayed.
const equivalents = JSON.parse(readFileSync(new URL('mutation-equivalent.json', import.meta.url), 'utf8'));
const scratch = mkdtempSync(join(tmpdir(), 'mutation-replay-'));
execSync(`git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C ${scratch}`);
// (A checkout whose node_modules is itself a symlink, e.g. a git worktree's, has it copied already.)
if (!existsSync(join(scratch, 'node_modules'))) symlinkSync(realpathSync('node_modules'), join(scratch, 'node_modules'));
const results = [];
try {
  for (const [path, f] of Object.entries(report.files)) {
    const current = readFileSync(path, 'utf8');
    const survivors = f.mutants.filter((m) => (m.status === 'Survived' || m.status === 'NoCoverage') && (onlyLines === undefined || onlyLines.includes(m.location.start.line)));
    if (survivors.length === 0) continue;
    if (current !== f.source) {
      console.log(`${path} changed since the report: not replayed`);
      continue;
    }
    const offsets = [0];
    for (let i = 0; i < current.length; i++) if (current[i] === '\n') offsets.push(i + 1);
    const at = ({ line, column }) => offsets[line - 1] + column - 1;
    const lines = current.split('\n');
    for (const m of survivors) {
      const argued = equivalents.find((e) => path.endsWith(e.file) && e.mutator === m.mutatorName && e.replacement === m.replacement && lines[m.location.start.line - 1].trim() === e.line && (e.column === undefined || e.column === m.location.start.column));
      if (argued !== undefined) {
        console.log(`argued   ${path}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName} → ${m.replacement.replace(/\s+/g, ' ').slice(0, 50)}: not replayed`);
        continue;
      }
      // Stryker edits the syntax tree, so a replacement keeps its place in the expression around it; as
      // text it needs parentheses (`a && b` → `a || b` inside `a && b && c` is `(a || b) && c`). Not a
      // block or a switch case, which are statements.
      const statement = m.mutatorName === 'BlockStatement' || /^(case\b|default\b)/.test(m.replacement);
      const mutated = current.slice(0, at(m.location.start)) + (statement ? m.replacement : `(${m.replacement})`) + current.slice(at(m.location.end));
      writeFileSync(join(scratch, path), mutated);
      const started = Date.now();
      const run = spawnSync('sh', ['-c', command], { cwd: scratch, encoding: 'utf8', timeout: 120_000 });
      writeFileSync(join(scratch, path), current);
      const status = run.status === 0 ? 'Survived' : run.error !== undefined ? 'Timeout' : 'Killed';
      const where = `${path}:${m.location.start.line}:${m.location.start.column}`;
      const failing = status === 'Killed' ? (run.stdout + run.stderr).match(/✘ (?:\[fail\]: )?(.*)/)?.[1]?.slice(0, 140) : undefined;
      results.push({ id: m.id, file: path, location: m.location, mutatorName: m.mutatorName, replacement: m.replacement, status, killedBy: failing, command });
      console.log(`${status.padEnd(8)} ${where} ${m.mutatorName} → ${m.replacement.replace(/\s+/g, ' ').slice(0, 50)} (${((Date.now() - started) / 1000).toFixed(1)} s)${failing ? ` — ${failing}` : ''}`);
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
const replayFile = `reports/mutation/${name}.replay.json`;
const earlier = existsSync(replayFile) && statSync(replayFile).mtimeMs > statSync(`reports/mutation/${name}.json`).mtimeMs ? JSON.parse(readFileSync(replayFile, 'utf8')).results : [];
const merged = [...earlier.filter((r) => !results.some((x) => x.file === r.file && x.id === r.id)), ...results];
writeFileSync(replayFile, JSON.stringify({ command, results: merged }, null, 2));
