/**
 * The committed mlp-kernels.wasm is what its source builds to: the build script (`npm run build:wasm`,
 * AssemblyScript from the npm registry, no native toolchain) run into a temporary file gives the same
 * bytes, so the binary a user runs is the reviewed source.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

test('rebuilding assembly/gemm.ts with the build script gives the committed src/ops/mlp/mlp-kernels.wasm byte for byte', (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const script = pkg.scripts['build:wasm']!;
  const committed = 'src/ops/mlp/mlp-kernels.wasm';
  t.true(script.includes(`-o ${committed}`), 'the build script writes the committed file');
  const dir = mkdtempSync(join(tmpdir(), 'magicbox-wasm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'rebuilt.wasm');
  const args = script.replace(/^asc /, '').replace(`-o ${committed}`, `-o ${out}`).split(/\s+/);
  execFileSync(join(root, 'node_modules', '.bin', 'asc'), args, { cwd: root, stdio: 'pipe' });
  t.deepEqual(readFileSync(out), readFileSync(join(root, committed)));
});
