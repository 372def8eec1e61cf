/**
 * What the `magicbox` command prints when a command fails: one line. An error the user can act on
 * (a file-system failure naming its path and cause, a run or checkpoint problem, a backend that
 * cannot load) is that line; anything else is a short message and the file the full trace was
 * written to, so that no stack trace or line of minified library source reaches the terminal.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BackendError } from '../backend.ts';
import { CheckpointError } from '../meta/checkpoint.ts';
import { RunError } from '../meta/run-directory.ts';
import type { Output } from './validate.ts';

/** Errors whose message is already the one line a user needs. */
const explained = (e: unknown): e is Error => e instanceof RunError || e instanceof CheckpointError || e instanceof BackendError;

/** The first line of an error's message, cut to a readable length (a wasm abort can carry a whole source line). */
export const shortMessage = (e: unknown): string => {
  const text = e instanceof Error ? `${e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}` : String(e);
  const first = text.split('\n')[0]!.trim();
  return first.length > 160 ? `${first.slice(0, 157)}...` : first;
};

/** Writes the full trace of `e` to a new file in the temp folder; returns its path, or undefined if even that failed. */
export const writeTrace = (e: unknown, argv: readonly string[] = process.argv): string | undefined => {
  const file = path.join(os.tmpdir(), `magicbox-error-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.txt`);
  const text = [
    `magicbox ${argv.slice(2).join(' ')}`,
    `node ${process.version} on ${process.platform}-${process.arch}`,
    '',
    e instanceof Error ? (e.stack ?? e.message) : String(e),
    '',
  ].join('\n');
  try {
    fs.writeFileSync(file, text);
    return file;
  } catch {
    return undefined;
  }
};

/** Reports a failed command on `out` and returns the exit status (1). */
export const reportFailure = (e: unknown, command: string | undefined, out: Output): number => {
  const prefix = `magicbox${command !== undefined ? ` ${command}` : ''}`;
  if (explained(e)) {
    e.message.split('\n').forEach((line) => out.error(`${prefix}: ${line}`));
    return 1;
  }
  const trace = writeTrace(e);
  out.error(`${prefix}: unexpected error: ${shortMessage(e)}`);
  out.error(trace !== undefined ? `${prefix}: the full trace is in ${trace}; please include it in a bug report` : `${prefix}: (the trace could not be written to ${os.tmpdir()})`);
  return 1;
};
