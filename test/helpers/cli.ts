/** The `magicbox` command run as a user runs it (through its bin), for the end-to-end tests. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `magicbox ...args` on the wasm backend unless `env` says otherwise; never throws for a non-zero exit. */
export const runCli = async (args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliResult> => {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', ['bin/magicbox.mjs', ...args], { env: { ...process.env, MAGICBOX_BACKEND: 'wasm', ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
};
