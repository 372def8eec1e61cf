/** The tutorial's script runs end to end and leaves what the tutorial says it leaves. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { tempDir } from './helpers/temp.ts';

test('examples/tutorial.ts: declares, draws, compiles, verifies, builds the meta-objective and trains', async (t) => {
  const out = tempDir(t, 'magicbox-tutorial-');
  const { stdout } = await promisify(execFile)('node', ['--import=tsx', 'examples/tutorial.ts', out], {
    env: { ...process.env, MAGICBOX_BACKEND: 'wasm' },
  });
  t.regex(stdout, /1\. declared 'point-task': 5 nodes, problems: 0/);
  t.regex(stdout, /4\. mdp-chain: DiCE relative errors at orders 1–3: (\d\.\de-[5-9], ){2}\d\.\de-[5-9]/);
  t.regex(stdout, /6\. training completed: 3 iterations/);
  for (const f of ['task.svg', 'meta.svg', 'run/progress.csv', 'run/checkpoint.json']) t.true(existsSync(join(out, f)), f);
});
