/**
 * Noticing that the process that launched this one is gone. `npx magicbox train` runs
 * `npm exec` → `sh -c magicbox …` → node: a `kill -9` of npm leaves the shell waiting and the trainer
 * running as an orphan whose own parent (the shell) is still alive. So the watch covers the direct
 * parent and, on Linux (read from /proc), the launcher wrappers above it: shells running the
 * command and npm/npx. A shell or terminal the user started the command from is not a wrapper:
 * `nohup magicbox train … &` keeps training after that shell exits, as nohup promises.
 */
import * as fs from 'node:fs';

/** The parent pid and the command line of `pid`, from /proc; undefined where there is no /proc. */
const procInfo = (pid: number): { ppid: number; argv: string[] } | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may itself contain spaces or parentheses: fields follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const words = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    // A process that set its title (npm: "npm exec magicbox …") shows it as one string.
    const argv = words.length === 1 ? words[0]!.split(' ') : words;
    return { ppid: Number(fields[1]), argv };
  } catch {
    return undefined;
  }
};

const base = (p: string | undefined): string => (p ?? '').split('/').at(-1)!;

/** Whether a process is a launcher wrapper: npm/npx (`npm exec`, `npx`), or a shell running `-c` a magicbox command. */
const isWrapper = (argv: readonly string[]): boolean => {
  const names = argv.slice(0, 3).map(base);
  if (names.some((n) => n === 'npx' || n === 'npx-cli.js')) return true;
  if (names[0] === 'npm' && argv[1] === 'exec') return true;
  if (names[0] === 'node' && /npm|npx/.test(names[1] ?? '')) return true;
  const shell = ['sh', 'bash', 'dash', 'zsh'].includes(names[0]!);
  return shell && argv[1] === '-c' && argv.slice(2).join(' ').includes('magicbox');
};

/** The pids whose death means this command was abandoned: the parent, and the wrappers above it. */
export const launcherPids = (self: number = process.pid): number[] => {
  const own = procInfo(self);
  const parent = own?.ppid ?? process.ppid;
  const pids = [parent];
  let info = procInfo(parent);
  while (info !== undefined && info.ppid > 1 && isWrapper(info.argv)) {
    const next = procInfo(info.ppid);
    if (next === undefined || !isWrapper(next.argv)) break;
    pids.push(info.ppid);
    info = next;
  }
  return pids;
};

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Calls `onGone` once, from a timer (unref'd: it never keeps the process alive), when the parent or a
 * launcher above it has exited. Returns the function that stops watching.
 */
export const watchLauncher = (onGone: (pid: number) => void, everyMs = 1000): (() => void) => {
  const parent = process.ppid;
  const pids = launcherPids();
  const timer = setInterval(() => {
    const gone = process.ppid !== parent ? parent : pids.find((pid) => !isAlive(pid));
    if (gone === undefined) return;
    clearInterval(timer);
    onGone(gone);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
};
