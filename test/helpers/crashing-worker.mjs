// A stand-in sampler worker for test/parallel-sampler.test.ts: it reports ready, then on its first
// 'sample' message dies the way `workerData.environment` says: 'exit' (process.exit(3)) or 'throw'
// (an uncaught error outside any handler). The pool must report either with the environment and tasks.
import { parentPort, workerData } from 'node:worker_threads';

parentPort.postMessage({ kind: 'ready' });
parentPort.on('message', () => {
  if (workerData.environment === 'exit') process.exit(3);
  setImmediate(() => {
    throw new Error('deliberate failure in the stand-in worker');
  });
});
