/** What a failed command prints: one line for an error the user can act on; a message and a trace file otherwise. */
import * as fs from 'node:fs';
import test from 'ava';
import { reportFailure } from '../src/cli/failure.ts';
import { FileError } from '../src/meta/run-directory.ts';

const capture = () => {
  const lines: string[] = [];
  return { lines, out: { log: (s: string) => lines.push(s), error: (s: string) => lines.push(s) } };
};

test('a file-system error is its one line, prefixed with the command', (t) => {
  const { lines, out } = capture();
  t.is(reportFailure(new FileError('cannot write /x/y: read-only file system (EROFS)', '/x/y', 'EROFS'), 'plot', out), 1);
  t.deepEqual(lines, ['magicbox plot: cannot write /x/y: read-only file system (EROFS)']);
});

test('an unexpected error prints a short message and where its full trace was written, no stack', (t) => {
  const { lines, out } = capture();
  const e = new RangeError(`Maximum call stack size exceeded\n${'var Module=typeof WasmBackendModule'.repeat(50)}`);
  t.is(reportFailure(e, 'verify', out), 1);
  t.is(lines.length, 2);
  t.is(lines[0], 'magicbox verify: unexpected error: RangeError: Maximum call stack size exceeded');
  const file = /the full trace is in (\S+);/.exec(lines[1]!)?.[1];
  t.truthy(file, lines[1]);
  t.teardown(() => fs.rmSync(file!, { force: true }));
  const trace = fs.readFileSync(file!, 'utf8');
  t.true(trace.includes('RangeError: Maximum call stack size exceeded'));
  t.true(trace.includes('failure.test.ts'), 'the stack is in the file');
  t.false(lines.some((l) => l.includes(' at ') || l.includes('WasmBackendModule')));
});
