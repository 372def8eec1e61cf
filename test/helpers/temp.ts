/** Temporary directories for tests, each removed when its test ends (pass or fail). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

/** A fresh directory under the system temp folder, removed by the test's teardown. */
export const tempDir = (t: ExecutionContext, prefix = 'magicbox-test-'): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};
