// Entry of a sampler worker thread (src/meta/parallel-sampler.ts). Worker threads do not inherit the
// loader hooks the main thread registered (the `magicbox` bin registers tsx in-process), so the worker
// registers tsx itself before importing the TypeScript module.
import { register } from 'tsx/esm/api';

register();
await import('./sampler-worker.ts');
