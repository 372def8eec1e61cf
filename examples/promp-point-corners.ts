/**
 * ProMP on the four-corner point environment, through the library API rather than the CLI: a short
 * run with a small batch, then the learning curve it wrote (pre- vs post-update return per iteration).
 * Run: npx tsx examples/promp-point-corners.ts [RUN_DIR]
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../src/meta/config.ts';
import { train } from '../src/meta/train.ts';

const runDir = process.argv[2] ?? join(mkdtempSync(join(tmpdir(), 'magicbox-')), 'promp-point-corners');
const config = resolveConfig({
  algo: 'promp',
  env: 'point-corners',
  iterations: 15,
  tasksPerIteration: 10,
  trajectoriesPerTask: 10,
  seed: 1,
});

const result = await train({ config, runDir, log: (line) => console.log(line), progress: 'lines' });
if (result.outcome !== 'completed') {
  console.error(result.message ?? `the run ended: ${result.outcome}`);
  process.exit(result.exitCode);
}

// The learning curve, read back from the run's own log.
const rows = readFileSync(join(runDir, 'progress.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as { iteration: number; averageReturn: number[] });
console.log('\niteration   pre-update   post-update');
for (const row of rows) {
  const pre = row.averageReturn[0]!;
  const post = row.averageReturn[row.averageReturn.length - 1]!;
  console.log(`${String(row.iteration).padStart(9)}   ${pre.toFixed(3).padStart(10)}   ${post.toFixed(3).padStart(11)}`);
}
console.log(`\nrun directory: ${runDir}`);
