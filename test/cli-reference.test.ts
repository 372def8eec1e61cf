/**
 * docs/cli.md against the program: every command `magicbox --help` lists has a row in the commands
 * table and a section; every option each command's `--help` lists appears in its section, and every
 * option the section's tables document exists; the environments table lists exactly the environments.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { environmentNames } from '../src/envs/index.ts';
import { runCli } from './helpers/cli.ts';

const doc = readFileSync(new URL('../docs/cli.md', import.meta.url), 'utf8');

/** The text of `## name` up to the next `## ` heading. */
const section = (name: string): string | undefined => {
  const start = doc.indexOf(`\n## ${name}\n`);
  if (start < 0) return undefined;
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
};

/** The long options a `--help` text lists (`--out <file>` → `--out`). */
const helpOptions = (help: string): string[] =>
  [...help.split('Options:')[1]!.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((o) => o !== '--help');

/** The long options the tables of a doc section document (rows starting with `` | `--x ``). */
const documentedOptions = (text: string): string[] => [...text.matchAll(/^\| `(--[a-z][a-z-]*)/gm)].map((m) => m[1]!);

test('every command, and every option of each, is documented in docs/cli.md, and nothing more', async (t) => {
  const top = await runCli(['--help']);
  t.is(top.code, 0);
  const commands = [...top.stdout.split('Commands:')[1]!.matchAll(/^\s{2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  t.true(commands.length >= 6, top.stdout);
  const tableRows = [...doc.matchAll(/^\| \[`([a-z][a-z-]*)/gm)].map((m) => m[1]!);
  t.deepEqual([...tableRows].sort(), [...commands].sort(), 'the commands table lists exactly the commands');
  for (const command of commands) {
    const text = section(command);
    if (text === undefined) {
      t.fail(`docs/cli.md has no "## ${command}" section`);
      continue;
    }
    const help = await runCli([command, '--help']);
    t.is(help.code, 0, command);
    const options = helpOptions(help.stdout);
    for (const option of options) t.true(text.includes(`\`${option}`), `${command} ${option} is documented`);
    for (const option of documentedOptions(text)) t.true(options.includes(option), `${command} ${option} (documented) exists`);
  }
});

test('the environments table lists exactly the environments, and --env names them all', async (t) => {
  const text = section('Environments');
  t.truthy(text);
  const rows = [...text!.matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1]!);
  t.deepEqual(rows, [...environmentNames]);
  const help = await runCli(['train', '--help']);
  for (const name of environmentNames) t.true(help.stdout.replace(/\s+/g, ' ').includes(name), name);
});
