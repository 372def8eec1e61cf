/**
 * A run directory as a small database treats its files: the file names, atomic replacement of a file
 * (temp file, fsync, rename; the temp file removed when the write fails), creation of the directory
 * without `mkdir -p` (whose Node implementation spins forever under /proc), the exclusive lock a
 * running trainer holds on the directory, and file-system failures as one line naming the path and
 * the cause.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A run that cannot start: a run directory in the way or missing, a resume that contradicts the checkpoint. */
export class RunError extends Error {
  override readonly name: string = 'RunError';
}

/** A file-system operation that failed: the message names the path and the cause (`cannot write X: no space left on device (ENOSPC)`). */
export class FileError extends RunError {
  override readonly name = 'FileError';
  constructor(
    message: string,
    readonly path: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** A run directory another live process holds the lock on. */
export class RunLockedError extends RunError {
  override readonly name = 'RunLockedError';
  constructor(
    message: string,
    readonly holderPid: number,
  ) {
    super(message);
  }
}

const causes: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a component of the path is a file, not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'already exists',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
  ENAMETOOLONG: 'name too long',
  EBUSY: 'resource busy',
  EINVAL: 'the file system refuses this operation',
};

/** The cause of a failed file-system call in words, with its code: `permission denied (EACCES)`. */
export const describeCause = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && causes[code] !== undefined) return `${causes[code]} (${code})`;
  if (code !== undefined) return code;
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
};

/** `e` as a FileError `${verb} ${file}: cause`; a FileError passes through unchanged. */
export const fileError = (verb: string, file: string, e: unknown): FileError =>
  e instanceof FileError ? e : new FileError(`cannot ${verb} ${file}: ${describeCause(e)}`, file, (e as NodeJS.ErrnoException | undefined)?.code);

/** The files of a run directory. */
export const runFiles = (runDir: string) => ({
  config: path.join(runDir, 'config.json'),
  csv: path.join(runDir, 'progress.csv'),
  jsonl: path.join(runDir, 'progress.jsonl'),
  checkpoint: path.join(runDir, 'checkpoint.json'),
  lock: path.join(runDir, '.lock'),
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

/** The temp file writeFileAtomic uses for `file` (hidden, in the same directory, with this pid). */
const tempFileOf = (file: string): string => path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);

const removeQuietly = (file: string): void => {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // Nothing there to remove (its directory is missing or a file).
  }
};

const isDirectory = (file: string): boolean => {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
};

/** Whether `name` is a temp file left by an interrupted writeFileAtomic. */
export const isTempFileName = (name: string): boolean => /^\..*\.\d+\.tmp$/.test(name);

/**
 * Writes `file` atomically: a temp file in the same directory, fsync, rename over the old one. On any
 * failure the temp file is removed (a full disk does not stay full of it), the old file is as it was,
 * and the error is a FileError naming `file` and the cause.
 */
export const writeFileAtomic = (file: string, text: string): void => {
  const dir = path.dirname(file);
  const temp = tempFileOf(file);
  try {
    const fd = fs.openSync(temp, 'w');
    try {
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (e) {
    removeQuietly(temp);
    if ((e as NodeJS.ErrnoException).code === 'EISDIR' || isDirectory(file)) {
      throw new FileError(`cannot write ${file}: is a directory (EISDIR)`, file, 'EISDIR');
    }
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      const cause = isDirectory(dir) ? `${dir} takes no new files (ENOENT)` : `no such directory ${dir}`;
      throw new FileError(`cannot write ${file}: ${cause}`, file, 'ENOENT');
    }
    throw fileError('write', file, e);
  }
  fsyncDir(dir);
};

/**
 * Creates `dir` and any missing ancestors, one level at a time (Node's recursive mkdir never returns
 * under /proc). Failures are FileErrors naming the directory that could not be made and why.
 */
export const makeDirectory = (dir: string): void => {
  const absolute = path.resolve(dir);
  const missing: string[] = [];
  for (let d = absolute; ; d = path.dirname(d)) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') {
        missing.push(d);
        continue;
      }
      if (code !== 'ENOENT') throw fileError('create directory', dir, e);
    }
    if (stat !== undefined) {
      if (!stat.isDirectory()) throw new FileError(`cannot create directory ${dir}: ${d} is a file, not a directory`, dir, 'ENOTDIR');
      break;
    }
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && fs.statSync(d).isDirectory()) continue;
      // ENOENT on mkdir in an existing directory: a virtual file system (/proc, /sys) that takes no new entries.
      const cause = code === 'ENOENT' && fs.existsSync(path.dirname(d)) ? `${path.dirname(d)} takes no new directories (ENOENT)` : describeCause(e);
      throw new FileError(`cannot create directory ${d}: ${cause}`, d, code);
    }
  }
};

/** Whether process `pid` is alive (EPERM: alive, owned by someone else). */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The pid a lock file names, or undefined when the file is unreadable or not a lock. */
const lockHolder = (file: string): { pid: number; host: string } | undefined => {
  try {
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: unknown; host?: unknown };
    return typeof doc.pid === 'number' && Number.isInteger(doc.pid) ? { pid: doc.pid, host: typeof doc.host === 'string' ? doc.host : '' } : undefined;
  } catch {
    return undefined;
  }
};

/** An acquired lock; `release` removes the lock file if it is still this process's. */
export interface RunLock {
  readonly file: string;
  readonly release: () => void;
}

/**
 * Takes the exclusive lock on `runDir` (the file `.lock`, created with O_EXCL, holding this pid). A
 * lock held by a live process is a RunLockedError naming its pid; one left by a dead process (a
 * kill -9, a second Ctrl-C) is taken over; this process's own lock counts as held (two runs in one
 * process on one directory are refused too). A lock from another host is respected (its pid cannot be
 * checked from here). The lock is released on `release()` and, as a last resort, when the process exits.
 */
export const lockRunDirectory = (runDir: string): RunLock => {
  const file = runFiles(runDir).lock;
  const host = os.hostname();
  const body = `${JSON.stringify({ pid: process.pid, host, since: new Date().toISOString() })}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      try {
        fs.writeFileSync(fd, body);
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError('lock', runDir, e);
      const holder = lockHolder(file);
      const alive = holder !== undefined && (holder.host !== host || isAlive(holder.pid));
      if (alive || attempt > 2) {
        const who = holder === undefined ? 'another process' : `process ${holder.pid}${holder.host !== host ? ` on ${holder.host}` : ''}`;
        throw new RunLockedError(
          `${runDir} is in use by ${who} (another magicbox train); nothing was changed. Wait for it to finish or stop it; if it is gone, remove ${file}`,
          holder?.pid ?? -1,
        );
      }
      // A stale lock (its process is gone): take it over.
      fs.rmSync(file, { force: true });
    }
  }
  const release = () => {
    process.off('exit', release);
    if (lockHolder(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { file, release };
};
