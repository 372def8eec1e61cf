/**
 * A run directory as a small database treats its files: the file names, atomic replacement of a file
 * (temp file, fsync, rename; the temp file removed when the write fails), and the exclusive lock a
 * running trainer holds on the directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A run that cannot start: a run directory in the way or missing, a resume that contradicts the checkpoint. */
export class RunError extends Error {
  override readonly name: string = 'RunError';
}

/** The files of a run directory. */
export const runFiles = (runDir: string) => ({
  config: path.join(runDir, 'config.json'),
  csv: path.join(runDir, 'progress.csv'),
  jsonl: path.join(runDir, 'progress.jsonl'),
  checkpoint: path.join(runDir, 'checkpoint.json'),
});

const fsyncDir = (dir: string): void => {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a directory; the rename itself is still atomic.
  }
};

/** Writes `file` atomically: a temp file in the same directory, fsync, rename over the old one. */
export const writeFileAtomic = (file: string, text: string): void => {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(temp, 'w');
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
  fsyncDir(dir);
};
