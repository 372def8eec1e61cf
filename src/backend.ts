/**
 * Picks the tfjs backend once, at start: the first of tfjs-node-gpu, tfjs-node, wasm and cpu that is
 * installed and initialises, or the one named by `MAGICBOX_BACKEND`. The node backends are optional
 * peers (their install script downloads libtensorflow, which fails offline), so they are loaded with
 * a dynamic import and a missing one is simply skipped.
 */
import * as tf from '@tensorflow/tfjs';
import { fastWasmSlices, shareWasmIdentity } from './backend-kernels.ts';

/** A backend magicbox knows how to load, in order of preference. */
export const backendNames = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof backendNames)[number];

/** What was chosen and why the better ones were not. */
export interface BackendReport {
  readonly backend: BackendName;
  /** tfjs's own name for the chosen backend ('tensorflow' for both node backends). */
  readonly tfjsName: string;
  readonly skipped: ReadonlyArray<{ readonly backend: BackendName; readonly reason: string }>;
  readonly tfjsVersion: string;
}

interface Loader {
  /** The package that provides it; importing it registers the backend with tfjs. */
  readonly module: string;
  readonly tfjsName: string;
}

const loaders: Readonly<Record<BackendName, Loader>> = {
  'tensorflow-gpu': { module: '@tensorflow/tfjs-node-gpu', tfjsName: 'tensorflow' },
  tensorflow: { module: '@tensorflow/tfjs-node', tfjsName: 'tensorflow' },
  wasm: { module: '@tensorflow/tfjs-backend-wasm', tfjsName: 'wasm' },
  cpu: { module: '@tensorflow/tfjs-backend-cpu', tfjsName: 'cpu' },
};

/** The environment variable that forces a backend. */
export const backendVariable = 'MAGICBOX_BACKEND';

export class BackendError extends Error {
  override readonly name = 'BackendError';
}

const isBackendName = (s: string): s is BackendName => (backendNames as readonly string[]).includes(s);

const tryLoad = async (name: BackendName): Promise<string | undefined> => {
  const loader = loaders[name];
  try {
    await import(loader.module);
  } catch (e) {
    return `${loader.module} is not installed (${firstLine(e)})`;
  }
  try {
    // The wasm backend's Identity copies, and its Slice and SplitV copy the whole input; magicbox's share
    // the buffer and copy the slice alone (backend-kernels.ts).
    if (name === 'wasm') {
      shareWasmIdentity();
      fastWasmSlices();
    }
    const ok = await tf.setBackend(loader.tfjsName);
    if (!ok) return `tfjs could not initialise '${loader.tfjsName}'`;
    await tf.ready();
    return undefined;
  } catch (e) {
    return `initialising '${loader.tfjsName}' failed: ${firstLine(e)}`;
  }
};

const firstLine = (e: unknown): string => String(e instanceof Error ? e.message : e).split('\n')[0] ?? '';

/**
 * Selects and initialises the backend. `requested` (default: `process.env.MAGICBOX_BACKEND`) forces one;
 * it is an error if that one cannot be loaded, rather than a silent fall-back to a slower one.
 */
export const selectBackend = async (
  requested: string | undefined = process.env[backendVariable],
): Promise<BackendReport> => {
  // tfjs prints an advertisement for tfjs-node on first use of the cpu backend; production mode
  // silences it (it only turns off tfjs's debug-mode checks, which magicbox does not rely on).
  tf.enableProdMode();
  const wanted = requested?.trim();
  if (wanted !== undefined && wanted !== '') {
    if (!isBackendName(wanted)) {
      throw new BackendError(
        `${backendVariable}=${wanted} is not a backend magicbox knows; valid: ${backendNames.join(', ')}`,
      );
    }
    const reason = await tryLoad(wanted);
    if (reason !== undefined) throw new BackendError(`${backendVariable}=${wanted}: ${reason}`);
    return report(wanted, []);
  }
  const skipped: Array<{ backend: BackendName; reason: string }> = [];
  for (const name of backendNames) {
    const reason = await tryLoad(name);
    if (reason === undefined) return report(name, skipped);
    skipped.push({ backend: name, reason });
  }
  throw new BackendError(`no tfjs backend could be loaded: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`);
};

const report = (backend: BackendName, skipped: BackendReport['skipped']): BackendReport => ({
  backend,
  tfjsName: loaders[backend].tfjsName,
  skipped,
  tfjsVersion: tf.version.tfjs,
});

/** One line for a run's log: which backend computes and which better ones were unavailable. */
export const describeBackend = (r: BackendReport): string =>
  `backend: ${r.backend} (tfjs ${r.tfjsVersion})` +
  (r.skipped.length > 0 ? `; skipped ${r.skipped.map((s) => s.backend).join(', ')}` : '');
