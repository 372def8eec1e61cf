/**
 * The committed mlp-kernels.wasm and mlp-kernels-fma.wasm are what their source builds to: each of the
 * build script's commands (`npm run build:wasm`, AssemblyScript from the npm registry, no native
 * toolchain) run into a temporary file gives the same bytes, so the binary a user runs is the reviewed
 * source.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

const committed = ['src/ops/mlp/mlp-kernels.wasm', 'src/ops/mlp/mlp-kernels-fma.wasm'];

test('rebuilding assembly/gemm.ts with the build script gives both committed builds byte for byte', (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const commands = pkg.scripts['build:wasm']!.split(' && ');
  t.deepEqual(
    commands.map((c) => / -o (\S+)/.exec(c)?.[1]),
    committed,
    'the build script writes each committed file',
  );
  const dir = mkdtempSync(join(tmpdir(), 'magicbox-wasm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  commands.forEach((command, k) => {
    const out = join(dir, `rebuilt-${k}.wasm`);
    const args = command.replace(/^asc /, '').replace(`-o ${committed[k]}`, `-o ${out}`).split(/\s+/);
    execFileSync(join(root, 'node_modules', '.bin', 'asc'), args, { cwd: root, stdio: 'pipe' });
    t.deepEqual(readFileSync(out), readFileSync(join(root, committed[k]!)), committed[k]);
  });
  // The two builds differ (the fused one uses relaxed SIMD's multiply-add).
  t.notDeepEqual(readFileSync(join(root, committed[0]!)), readFileSync(join(root, committed[1]!)));
});
