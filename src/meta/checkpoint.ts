/**
 * The checkpoint codec: a header (format, version, sha256 of the payload) around the payload (config,
 * next iteration, timesteps, parameters and Adam state as name → {shape, values}). Reading checks
 * every way a file can be unreadable and names the file.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import type { Params } from '../surrogates/batch.ts';
import { resolveConfig, type TrainConfig } from './config.ts';
import { completeConfig, decodeConfigPatch, describeConfigError, isRecord, show, storedConfigPatch } from './run-config.ts';
import { runFiles, writeFileAtomic } from './run-directory.ts';

/** A checkpoint that cannot be read: missing, truncated, corrupt, or not a magicbox checkpoint. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

export const checkpointFormat = 'magicbox-checkpoint';
export const checkpointVersion = 1;

/** A tensor as JSON: its shape and its values in row-major order. */
export interface TensorJson {
  readonly shape: readonly number[];
  readonly values: readonly number[];
}

/** Everything a run needs to continue exactly where it stopped. */
export interface CheckpointPayload {
  readonly config: TrainConfig;
  /** The iteration the run continues with (= iterations done). */
  readonly nextIteration: number;
  /** Environment steps taken so far. */
  readonly timesteps: number;
  /** Wall-clock seconds the run has taken so far (over all its sessions). */
  readonly elapsedSeconds: number;
  /** The backend that computed it (a resume on another backend may not reproduce the numbers bit for bit). */
  readonly backend: string;
  readonly savedAt: string;
  readonly params: Readonly<Record<string, TensorJson>>;
  readonly optimizer: { readonly kind: 'adam'; readonly step: number; readonly m: Readonly<Record<string, TensorJson>>; readonly v: Readonly<Record<string, TensorJson>> } | null;
}

const WholeNumber = new t.Type<number, number, unknown>(
  'WholeNumber',
  (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= 0,
  (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= 0 ? t.success(u) : t.failure(u, c, 'expected a whole number ≥ 0')),
  t.identity,
);
const TensorJsonCodec = t.strict({ shape: t.array(WholeNumber), values: t.array(t.number) });
const TensorsCodec = t.record(t.string, TensorJsonCodec);
const PayloadCodec = t.strict({
  config: t.UnknownRecord,
  nextIteration: WholeNumber,
  timesteps: WholeNumber,
  elapsedSeconds: t.number,
  backend: t.string,
  savedAt: t.string,
  params: TensorsCodec,
  optimizer: t.union([t.null, t.strict({ kind: t.literal('adam'), step: WholeNumber, m: TensorsCodec, v: TensorsCodec })]),
});

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export const tensorsToJson = (p: Params): Record<string, TensorJson> =>
  Object.fromEntries(Object.entries(p).map(([name, v]) => [name, { shape: v.shape, values: Array.from(v.dataSync()) }]));

/** Tensors from their JSON, in the order and with the shapes `shapes` gives; throws on a mismatch. */
export const tensorsFromJson = (json: Readonly<Record<string, TensorJson>>, shapes: Readonly<Record<string, readonly number[]>>, what: string): Params => {
  const want = Object.keys(shapes);
  const have = Object.keys(json);
  if (want.length !== have.length || want.some((n) => !have.includes(n))) {
    throw new Error(`${what} has tensors ${have.join(', ')}, the policy needs ${want.join(', ')}`);
  }
  for (const name of want) {
    const { shape, values } = json[name]!;
    if (JSON.stringify(shape) !== JSON.stringify(shapes[name])) throw new Error(`${what}.${name} has shape [${shape.join(', ')}], the policy needs [${shapes[name]!.join(', ')}]`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (values.length !== size) throw new Error(`${what}.${name} has ${values.length} values for shape [${shape.join(', ')}] (${size})`);
  }
  return Object.fromEntries(want.map((name) => [name, tf.tensor(Float32Array.from(json[name]!.values), [...json[name]!.shape])]));
};

/** The text of a checkpoint file: a header (format, version, checksum) around the payload. */
export const encodeCheckpoint = (payload: CheckpointPayload): string => {
  const body = JSON.stringify(payload);
  return `{"format":"${checkpointFormat}","version":${checkpointVersion},"sha256":"${sha256(body)}","payload":${body}}\n`;
};

/**
 * Reads and checks a checkpoint (a file, or a run directory holding checkpoint.json). Every way it can
 * be unreadable is a CheckpointError naming the file: missing, truncated or corrupt (the checksum over
 * the payload does not match, or the JSON ends early), another format or a newer version.
 */
export const readCheckpoint = (file: string): CheckpointPayload => {
  let where = file;
  try {
    if (fs.statSync(file).isDirectory()) where = runFiles(file).checkpoint;
  } catch {
    // reported below
  }
  let text: string;
  try {
    text = fs.readFileSync(where, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : e instanceof Error ? e.message : String(e);
    throw new CheckpointError(`checkpoint ${where}: ${reason}`);
  }
  return decodeCheckpoint(text, where);
};

/** Checks a checkpoint's text; `where` names it in errors. */
export const decodeCheckpoint = (text: string, where: string): CheckpointPayload => {
  const corrupt = (why: string) => new CheckpointError(`checkpoint ${where}: truncated or corrupt (${why})`);
  if (text.length === 0) throw corrupt('the file is empty');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw corrupt(`not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isRecord(doc)) throw corrupt('not a JSON object');
  if (doc['format'] !== checkpointFormat) {
    throw new CheckpointError(`checkpoint ${where}: not a magicbox checkpoint (format ${show(doc['format'])}, expected "${checkpointFormat}")`);
  }
  if (doc['version'] !== checkpointVersion) {
    throw new CheckpointError(`checkpoint ${where}: format version ${show(doc['version'])}; this magicbox reads version ${checkpointVersion}`);
  }
  const stored = doc['sha256'];
  if (typeof stored !== 'string') throw corrupt('no checksum');
  if (!isRecord(doc['payload'])) throw corrupt('no payload');
  // JSON.stringify(JSON.parse(s)) === s for the compact JSON this module writes, so any change to the
  // payload that changes a value changes the checksum.
  const computed = sha256(JSON.stringify(doc['payload']));
  if (computed !== stored) throw corrupt(`checksum mismatch: stored sha256 ${stored.slice(0, 12)}…, contents give ${computed.slice(0, 12)}…`);
  const decoded = PayloadCodec.decode(doc['payload']);
  if (isLeft(decoded)) {
    const first = describeConfigError(decoded.left[0]!);
    throw new CheckpointError(`checkpoint ${where}: invalid payload (${first.path === '' ? '' : `${first.path}: `}${first.message})`);
  }
  const config = decodeConfigPatch(decoded.right.config);
  if (isLeft(config)) {
    const first = config.left[0]!;
    throw new CheckpointError(`checkpoint ${where}: invalid config (${first.path}: ${first.message})`);
  }
  return { ...decoded.right, config: completeConfig(resolveConfig(storedConfigPatch(config.right, decoded.right.config))) };
};

/** Writes a checkpoint atomically. */
export const writeCheckpoint = (file: string, payload: CheckpointPayload): void => writeFileAtomic(file, encodeCheckpoint(payload));
