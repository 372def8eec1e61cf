/**
 * The backend a worker thread computes with: the main thread's, so that its numbers are the same
 * ('tensorflow' stands for either node backend: the GPU one is tried first).
 */
import { selectBackend } from '../backend.ts';

export const loadWorkerBackend = async (name: string): Promise<void> => {
  if (name !== 'tensorflow') {
    await selectBackend(name);
    return;
  }
  try {
    await selectBackend('tensorflow-gpu');
  } catch {
    await selectBackend('tensorflow');
  }
};
