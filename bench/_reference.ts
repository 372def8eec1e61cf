/**
 * The PyTorch yardstick (bench/reference/promp_iteration.py) as a child process: one JSON request per
 * line in, one JSON answer per line out, so that a benchmark can interleave magicbox's iterations with
 * the reference's in one run (A/B, same machine state). PyTorch comes from Debian: the system
 * /usr/bin/python3 (the python3 first on PATH may lack it), with OpenBLAS as its BLAS.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const script = join(dirname(fileURLToPath(import.meta.url)), 'reference', 'promp_iteration.py');
export const referencePython = process.env.MAGICBOX_REFERENCE_PYTHON ?? '/usr/bin/python3';
export const referenceInstallHint = 'apt-get install python3-torch libopenblas0-pthread (Debian), then rerun; the reference runs on /usr/bin/python3 (or MAGICBOX_REFERENCE_PYTHON)';

/** Why the reference cannot run here, or undefined when it can. */
export const referenceMissing = (): string | undefined => {
  const probe = spawnSync(referencePython, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.error !== undefined) return `${referencePython} not found`;
  if (probe.status !== 0) return `${referencePython} cannot import torch and numpy`;
  return undefined;
};

export interface Reference {
  readonly request: (message: Record<string, unknown>) => Promise<Record<string, unknown>>;
  readonly close: () => void;
}

/**
 * A reference process using `threads` threads for its tensor work. The OpenBLAS core-type overrides this
 * machine sets for old OpenBLAS builds slow Debian's current one several-fold, so they are unset here
 * (and only here: tests and training never run this).
 */
export const startReference = (threads: number): Reference => {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const child: ChildProcessWithoutNullStreams = spawn(referencePython, [script], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const lines = createInterface({ input: child.stdout });
  const waiting: Array<{ resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }> = [];
  lines.on('line', (line) => {
    const next = waiting.shift();
    if (next === undefined) return;
    const answer = JSON.parse(line) as Record<string, unknown>;
    if (typeof answer.error === 'string') next.reject(new Error(`reference: ${answer.error}`));
    else next.resolve(answer);
  });
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`reference exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
  });
  return {
    request: (message) =>
      new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        child.stdin.write(`${JSON.stringify(message)}\n`);
      }),
    close: () => {
      child.stdin.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
    },
  };
};
