/**
 * Resumable units of work. A reproduction is a list of units (one training run, one seed's sweep
 * point); each unit's result is one JSON file in the output directory, written atomically when the
 * unit finishes. A rerun decodes the file instead of recomputing, so a killed reproduction continues
 * where it stopped and a finished one rebuilds its figure in seconds. A file that does not decode
 * (an older format, a hand edit) is recomputed, never trusted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isRight } from 'fp-ts/lib/Either.js';
import type * as t from 'io-ts';
import { writeFileAtomic } from '../meta/run-directory.js';

/** The file holding a unit's result: `<outDir>/units/<key>.json`; keys are file-name safe. */
export const unitFile = (outDir: string, key: string): string => {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(key)) throw new Error(`unit key ${JSON.stringify(key)} is not a safe file name`);
  return path.join(outDir, 'units', `${key}.json`);
};

/** The finished result of unit `key`, or undefined when it has not finished (or does not decode). */
export const readUnit = <A, O>(outDir: string, key: string, codec: t.Type<A, O>): A | undefined => {
  let text: string;
  try {
    text = fs.readFileSync(unitFile(outDir, key), 'utf8');
  } catch {
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const decoded = codec.decode(json);
  return isRight(decoded) ? decoded.right : undefined;
};

/** The result of unit `key`: read back when finished before, else computed and saved. */
export const runUnit = async <A, O>(
  outDir: string,
  key: string,
  codec: t.Type<A, O>,
  compute: () => Promise<A>,
): Promise<{ readonly result: A; readonly resumed: boolean }> => {
  const done = readUnit(outDir, key, codec);
  if (done !== undefined) return { result: done, resumed: true };
  const result = await compute();
  fs.mkdirSync(path.join(outDir, 'units'), { recursive: true });
  writeFileAtomic(unitFile(outDir, key), `${JSON.stringify(codec.encode(result))}\n`);
  return { result, resumed: false };
};
