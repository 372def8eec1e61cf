/**
 * A run's config as the run directory and the command line give it: decoding with errors that name the
 * field, completion with the environment's defaults, config.json, and the fields a resume may change.
 */
import * as fs from 'node:fs';
import * as t from 'io-ts';
import { isLeft, left, right, type Either } from 'fp-ts/lib/Either.js';
import { environmentDescriptor, environmentNames, type EnvironmentDescriptor } from '../envs/index.ts';
import type { DecodeError } from '../scg/decode.ts';
import { algorithmNames } from './algorithm-names.ts';
import { defaultConfig, resolveConfig, TrainConfigPatchCodec, type TrainConfig, type TrainConfigPatch } from './config.ts';
import { runFiles, RunError } from './run-directory.ts';

/** One field whose value differs between the checkpoint's config and the one given. */
export interface ConfigDifference {
  readonly field: keyof TrainConfig;
  readonly before: unknown;
  readonly after: unknown;
  readonly allowed: boolean;
}


const configFields = Object.keys(defaultConfig) as Array<keyof TrainConfig>;

export const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u);

export const show = (u: unknown): string => {
  // A number too large for a double (1e400 in JSON) parses as Infinity, which JSON.stringify shows as null.
  if (typeof u === 'number' && !Number.isFinite(u)) return `${u} (a number beyond ±1.8e308)`;
  const s = u === undefined ? 'nothing' : JSON.stringify(u);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** What a codec expects, for the built-in io-ts types (the project's own types carry their own message). */
const expectedOf = (type: t.Decoder<unknown, unknown>): string => {
  if (type instanceof t.NumberType) return 'a number';
  if (type instanceof t.StringType) return 'a string';
  if (type instanceof t.ArrayType) return 'an array';
  if (type instanceof t.ExactType || type instanceof t.PartialType || type instanceof t.InterfaceType) return 'an object';
  return type.name;
};

export const describeConfigError = (e: t.ValidationError): DecodeError => {
  let where = '';
  for (let i = 1; i < e.context.length; i++) {
    const key = e.context[i]!.key;
    if (key === '') continue;
    where = e.context[i - 1]!.type instanceof t.ArrayType ? `${where}[${key}]` : where === '' ? key : `${where}.${key}`;
  }
  const type = e.context.at(-1)!.type;
  if (where === 'algo' && typeof e.value === 'string') {
    return { path: where, message: `unknown algorithm ${JSON.stringify(e.value)}; valid: ${algorithmNames.join(', ')}` };
  }
  const expectation = e.message ?? `expected ${expectedOf(type)}`;
  return { path: where, message: `${expectation}, got ${show(e.value)}` };
};

/**
 * A config patch (a config file's contents, or command-line values by field name) checked field by
 * field: each error names the field (`innerStepSize: expected a positive number, got -1`); unknown
 * fields and unknown environment names are errors too.
 */
export function decodeConfigPatch(u: unknown): Either<DecodeError[], TrainConfigPatch> {
  if (!isRecord(u)) return left([{ path: '', message: `expected an object of config fields, got ${show(u)}` }]);
  const decoded = TrainConfigPatchCodec.decode(u);
  const errors: DecodeError[] = isLeft(decoded) ? decoded.left.map(describeConfigError) : [];
  for (const key of Object.keys(u)) {
    if (!(configFields as string[]).includes(key)) errors.push({ path: key, message: `unknown field (the fields are ${configFields.join(', ')})` });
  }
  const env = u['env'];
  if (typeof env === 'string' && !environmentNames.includes(env)) {
    errors.push({ path: 'env', message: `unknown environment ${JSON.stringify(env)}; valid: ${environmentNames.join(', ')}` });
  }
  if (isLeft(decoded) || errors.length > 0) return left(errors);
  return right(decoded.right);
}

/** The config with the environment's horizon and adaptation steps filled in, fields in canonical order. */
export const completeConfig = (config: TrainConfig, known?: EnvironmentDescriptor): TrainConfig => {
  let distribution;
  try {
    distribution = known ?? environmentDescriptor(config.env);
  } catch (e) {
    throw new RunError(e instanceof Error ? e.message : String(e));
  }
  const full: TrainConfig = {
    ...config,
    horizon: config.horizon ?? distribution.horizon,
    adaptationSteps: config.adaptationSteps ?? distribution.adaptationSteps,
    actionNormalization: config.actionNormalization ?? distribution.actionNormalization ?? 'raw',
  };
  return Object.fromEntries(configFields.map((k) => [k, full[k]])) as unknown as TrainConfig;
};

/**
 * What a stored config (config.json, a checkpoint's) that lacks a field meant when it was written: the
 * fields added with the released protocols, at the behaviour magicbox had before them, so that an older
 * run resumes and evaluates as it was trained (actions raw, ProMP's KL on level 0, E-MAML's score term
 * on every level).
 */
export const storedConfigPatch = (stored: TrainConfigPatch, raw: Record<string, unknown>): TrainConfigPatch => ({
  ...('actionNormalization' in raw ? {} : { actionNormalization: 'raw' }),
  ...('prompKlLevels' in raw ? {} : { prompKlLevels: 'pre-update' }),
  ...('emamlScore' in raw ? {} : { emamlScore: 'every-level' }),
  ...stored,
});

/** The fields a resumed run may change: how long it runs and how often it checkpoints. */
export const resumableFields: readonly (keyof TrainConfig)[] = ['iterations', 'checkpointEvery'];

/** Every field whose value differs, each marked allowed or not on resume. */
export const configDifferences = (before: TrainConfig, after: TrainConfig): ConfigDifference[] =>
  configFields
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((field) => ({ field, before: before[field], after: after[field], allowed: resumableFields.includes(field) }));

export const configJson = (config: TrainConfig): string => `${JSON.stringify(config, null, 2)}\n`;

/** The config.json of a run directory, decoded (a RunError naming the bad field otherwise). */
export const readRunConfig = (runDir: string): TrainConfig => {
  const file = runFiles(runDir).config;
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RunError(`${file}: ${code === 'ENOENT' ? 'no such file (not a magicbox run directory?)' : `not valid JSON: ${e instanceof Error ? e.message : String(e)}`}`);
  }
  const decoded = decodeConfigPatch(value);
  if (isLeft(decoded)) throw new RunError(decoded.left.map((d) => `${file}: ${d.path === '' ? '' : `${d.path}: `}${d.message}`).join('\n'));
  return completeConfig(resolveConfig(storedConfigPatch(decoded.right, value as Record<string, unknown>)));
};
