/**
 * What the trainer and the `magicbox worker` processes say to each other through Redis: one BullMQ job
 * per task (group) of a sampling request, its data a JSON payload decoded with io-ts on the worker;
 * the bulk data beside it in plain Redis keys, as raw float32 bytes (exact to the bit, and a quarter
 * of the size of JSON numbers): a level's parameters once under their hash, each job's trajectories
 * under its id. A worker runs only catalogue environments and the catalogue's MLP policy: nothing from
 * the queue is ever executed.
 */
import { createHash } from 'node:crypto';
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import * as tf from '@tensorflow/tfjs';
import { environmentNames } from '../envs/index.ts';
import type { Params } from '../surrogates/batch.ts';
import type { Trajectories } from './sampler.ts';

/** Raised when the trainer and a worker speak different versions of this protocol. */
export const FLEET_PROTOCOL = 1;

/** The default queue (several trainers may share it: job ids are unique per sampler). */
export const defaultQueueName = 'magicbox-sampling';

const bounded = (name: string, max: number, min = 0) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max,
    (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= min && u <= max ? t.success(u) : t.failure(u, c, `expected a whole number in [${min}, ${max}]`)),
    t.identity,
  );

const environment = new t.Type<string, string, unknown>(
  'CatalogueEnvironment',
  (u): u is string => typeof u === 'string' && environmentNames.includes(u),
  (u, c) => (typeof u === 'string' && environmentNames.includes(u) ? t.success(u) : t.failure(u, c, `not a catalogue environment (valid: ${environmentNames.join(', ')})`)),
  t.identity,
);

const finite = new t.Type<number, number, unknown>(
  'finite',
  (u): u is number => typeof u === 'number' && Number.isFinite(u),
  (u, c) => (typeof u === 'number' && Number.isFinite(u) ? t.success(u) : t.failure(u, c, 'expected a finite number')),
  t.identity,
);

const actionSpace = t.union([
  t.type({ kind: t.literal('continuous'), dim: bounded('dim', 4096, 1), low: finite, high: finite }),
  t.type({ kind: t.literal('discrete'), n: bounded('n', 1 << 20, 1) }),
]);

const policySpec = t.intersection([
  t.type({ observationDim: bounded('observationDim', 1 << 16, 1), action: actionSpace, hidden: t.array(bounded('hidden size', 4096, 1)) }),
  t.partial({ uniform: t.boolean, initLogStd: finite }),
]);

const paramLayout = t.array(t.type({ name: t.string, shape: t.array(bounded('dimension', 1 << 24)) }));

const hex64 = new t.Type<string, string, unknown>(
  'sha256',
  (u): u is string => typeof u === 'string' && /^[0-9a-f]{64}$/.test(u),
  (u, c) => (typeof u === 'string' && /^[0-9a-f]{64}$/.test(u) ? t.success(u) : t.failure(u, c, 'expected a sha256 in hex')),
  t.identity,
);

/** A sampling job: one group of one request. */
export const sampleJobCodec = t.type({
  protocol: t.literal(FLEET_PROTOCOL),
  environment,
  /** The tfjs backend the trainer computes with; the worker's threads use the same one (same bits). */
  backend: t.keyof({ wasm: null, cpu: null, tensorflow: null }),
  policy: policySpec,
  /** The task as the distribution's sampleTasks made it (plain JSON for every catalogue environment). */
  task: t.UnknownRecord,
  /** The group's index in its request: with `seed`, it fixes the group's random streams. */
  group: bounded('group', 1 << 24),
  perGroup: bounded('perGroup', 1 << 20, 1),
  horizon: bounded('horizon', 1 << 20, 1),
  seed: bounded('seed', 2 ** 32 - 1),
  layout: paramLayout,
  /** The parameters: inline (base64 float32) or by reference (the hash of a params key). */
  params: t.union([t.type({ inline: t.string }), t.type({ ref: hex64 })]),
});
export type SampleJob = t.TypeOf<typeof sampleJobCodec>;

/** What a worker returns: where the trajectories are and their shape. */
export const sampleResultCodec = t.type({
  protocol: t.literal(FLEET_PROTOCOL),
  key: t.string,
  n: bounded('n', 1 << 20, 1),
  horizon: bounded('horizon', 1 << 20, 1),
  observationDim: bounded('observationDim', 1 << 16, 1),
  actionDim: bounded('actionDim', 1 << 16, 1),
  bytes: bounded('bytes', 2 ** 40),
});
export type SampleResult = t.TypeOf<typeof sampleResultCodec>;

/** The io-ts errors as one line: `field: message` for each. */
export const decodeErrors = (errors: t.Errors): string =>
  [
    ...new Set(
      errors.map((e) => {
        const path = e.context
          .map((c) => c.key)
          .filter((k) => k !== '' && !/^\d+$/.test(k))
          .join('.');
        return `${path === '' ? 'payload' : path}: ${e.message ?? `unexpected ${JSON.stringify(e.value)?.slice(0, 60)}`}`;
      }),
    ),
  ]
    .slice(0, 4)
    .join('; ');

/** Decodes a job's data; the protocol is checked first, so that another version is named as such. */
export const decodeSampleJob = (data: unknown): { job: SampleJob } | { error: string; versionMismatch?: boolean } => {
  const protocol = typeof data === 'object' && data !== null ? (data as { protocol?: unknown }).protocol : undefined;
  if (protocol !== FLEET_PROTOCOL) {
    return {
      error: `this worker speaks magicbox sampling protocol ${FLEET_PROTOCOL}, the job protocol ${JSON.stringify(protocol ?? null)}: run the same magicbox version on the trainer and the workers`,
      versionMismatch: true,
    };
  }
  const decoded = sampleJobCodec.decode(data);
  if (isLeft(decoded)) return { error: `malformed sampling job: ${decodeErrors(decoded.left)}` };
  return { job: decoded.right };
};

// --- Bulk data --------------------------------------------------------------------------------------

/** Parameters as the wire carries them: names and shapes, then all values as float32 bytes. */
export interface EncodedParams {
  readonly layout: SampleJob['layout'];
  readonly data: Buffer;
  /** sha256 of layout and data: the key under which a level's shared parameters are stored. */
  readonly hash: string;
}

export const encodeParams = (params: Params): EncodedParams => {
  const names = Object.keys(params);
  const layout = names.map((name) => ({ name, shape: [...params[name]!.shape] }));
  const parts = names.map((name) => {
    const values = params[name]!.dataSync();
    if (!(values instanceof Float32Array)) throw new Error(`parameter ${name} is not float32`);
    return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  });
  const data = Buffer.concat(parts);
  const hash = createHash('sha256').update(JSON.stringify(layout)).update(data).digest('hex');
  return { layout, data, hash };
};

/** A Float32Array copy of `bytes` (a Redis buffer need not be 4-byte aligned). */
const floats = (bytes: Uint8Array, offset: number, count: number): Float32Array => {
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + count * 4));
  return out;
};

/** The parameter tensors of an encoded set; throws naming the mismatch. */
export const decodeParams = (layout: SampleJob['layout'], data: Uint8Array, expected: Readonly<Record<string, readonly number[]>>): Params => {
  const names = Object.keys(expected);
  if (layout.length !== names.length || layout.some((p) => expected[p.name] === undefined)) {
    throw new Error(`the parameters (${layout.map((p) => p.name).join(', ')}) are not the policy's (${names.join(', ')})`);
  }
  let offset = 0;
  const sizes = layout.map(({ name, shape }) => {
    if (shape.join(',') !== expected[name]!.join(',')) throw new Error(`parameter ${name} has shape [${shape.join(', ')}], the policy's is [${expected[name]!.join(', ')}]`);
    return shape.reduce((a, b) => a * b, 1);
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  if (data.byteLength !== total * 4) throw new Error(`the parameters hold ${data.byteLength} bytes, their shapes need ${total * 4}`);
  return Object.fromEntries(
    layout.map(({ name, shape }, i) => {
      const values = floats(data, offset, sizes[i]!);
      offset += sizes[i]! * 4;
      return [name, tf.tensor(values, [...shape], 'float32')];
    }),
  );
};

const trajectoryFields = ['observations', 'actions', 'rewards', 'mask', 'logProbs'] as const;

/** One group's trajectories as bytes: the five arrays one after another. */
export const encodeTrajectories = (tr: Trajectories): Buffer => Buffer.concat(trajectoryFields.map((f) => Buffer.from(tr[f].buffer, tr[f].byteOffset, tr[f].byteLength)));

const fieldLengths = (r: Pick<SampleResult, 'n' | 'horizon' | 'observationDim' | 'actionDim'>): readonly number[] => {
  const steps = r.n * r.horizon;
  return [steps * r.observationDim, steps * r.actionDim, steps, steps, steps];
};

/** The trajectories a result describes, from its bytes; throws when the sizes disagree. */
export const decodeTrajectories = (result: SampleResult, bytes: Uint8Array): Trajectories => {
  const lengths = fieldLengths(result);
  const total = lengths.reduce((a, b) => a + b, 0) * 4;
  if (bytes.byteLength !== total || result.bytes !== total) throw new Error(`the trajectories hold ${bytes.byteLength} bytes, their shape needs ${total}`);
  let offset = 0;
  const arrays = lengths.map((length) => {
    const a = floats(bytes, offset, length);
    offset += length * 4;
    return a;
  });
  const [observations, actions, rewards, mask, logProbs] = arrays as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  const { n, horizon, observationDim, actionDim } = result;
  return { n, horizon, observationDim, actionDim, observations, actions, rewards, mask, logProbs };
};

/** The Redis keys beside BullMQ's own (which live under `bull:<queue>:`). */
export const fleetKeys = (queue: string) => ({
  params: (hash: string) => `magicbox:${queue}:params:${hash}`,
  result: (jobId: string) => `magicbox:${queue}:result:${jobId}`,
  worker: (id: string) => `magicbox:${queue}:worker:${id}`,
  /** The set of worker names that have announced themselves (each alive while its key is). */
  workers: `magicbox:${queue}:workers`,
});

/** What a worker's heartbeat key holds. */
export interface WorkerHeartbeat {
  readonly protocol: number;
  readonly host: string;
  readonly pid: number;
  readonly concurrency: number;
}
