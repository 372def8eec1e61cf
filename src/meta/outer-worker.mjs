// Entry of an outer-step worker thread (src/meta/outer-workers.ts): registers tsx's loader (worker
// threads do not inherit the main thread's), then imports the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./outer-worker.ts');
