/**
 * The documentation's quotations of the code and of its output, checked against the code so that they
 * cannot drift: the tutorial's code blocks are examples/tutorial.ts's own lines; the `magicbox verify`
 * tables quoted in README.md and docs/concepts.md are what verify prints (numbers that are float32
 * noise only need to stay below the exactness threshold); the influence table of concepts.md is what
 * the influence query answers for examples/graphs/rl-chain.json; the validate outputs quoted in
 * graph-format.md are what validate prints. (docs/cli.md's reference is checked by its own test.)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import test from 'ava';
import { isLeft } from 'fp-ts/lib/Either.js';
import { selectBackend } from '../src/backend.ts';
import { runValidate } from '../src/cli/validate.ts';
import { builtinProblems } from '../src/oracle/problems.ts';
import { exactTolerance, formatReport, verify } from '../src/oracle/verify.ts';
import { decodeGraphSpec } from '../src/scg/decode.ts';
import { influenceQuery, type Influence } from '../src/scg/influence.ts';

test.before(async () => {
  await selectBackend();
});

const read = (file: string): string => readFileSync(file, 'utf8');

/** The fenced code blocks of a Markdown page, each with the HTML comment on the line before it (if any). */
const codeBlocks = (markdown: string): Array<{ readonly tag: string | undefined; readonly lang: string; readonly body: string }> =>
  [...markdown.matchAll(/(?:<!-- (\S+) -->\n)?```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ tag: m[1], lang: m[2]!, body: m[3]! }));

test('every code block of docs/tutorial.md is a region of examples/tutorial.ts, and every region is on the page', (t) => {
  const script = read('examples/tutorial.ts');
  const regions = new Map([...script.matchAll(/\/\/ docs:begin (\w+)\n([\s\S]*?)\/\/ docs:end \1\n/g)].map((m) => [m[1]!, m[2]!]));
  t.true(regions.size >= 6, `regions found: ${[...regions.keys()].join(', ')}`);
  const blocks = codeBlocks(read('docs/tutorial.md')).filter((b) => b.lang === 'ts');
  const shown = new Set<string>();
  for (const block of blocks) {
    const name = block.tag?.match(/^examples\/tutorial\.ts#(\w+)$/)?.[1];
    if (name === undefined) {
      t.fail(`a ts block of docs/tutorial.md is not marked <!-- examples/tutorial.ts#NAME -->:\n${block.body}`);
      continue;
    }
    t.is(block.body as string | undefined, regions.get(name), `docs/tutorial.md block '${name}' differs from examples/tutorial.ts`);
    shown.add(name);
  }
  t.deepEqual([...shown].sort(), [...regions.keys()].sort(), 'every region of the script is shown once');
});

const number = /\d\.\de[+-]\d+/g;

/** Whether a quoted report line agrees with a printed one: same words and marks, the same numbers except float32 noise. */
const agrees = (quoted: string, printed: string): boolean => {
  // Column widths follow the longest estimator name, so runs of spaces are not compared.
  // A quoted row may omit columns the report has grown since (it stays true in what it shows).
  const skeleton = (line: string) => line.replace(number, 'N').replace(/\s+/g, ' ').trim();
  const q0 = skeleton(quoted);
  const p0 = skeleton(printed);
  if (!(p0 === q0 || (q0.length > 0 && p0.startsWith(`${q0} `)))) return false;
  const q = quoted.match(number) ?? [];
  const p = printed.match(number) ?? [];
  return q.every((x, i) => (Number(x) < exactTolerance && Number(p[i]) < exactTolerance) || x === p[i]);
};

for (const page of ['README.md', 'docs/concepts.md']) {
  test(`the magicbox verify output quoted in ${page} is what verify prints`, (t) => {
    const printed = formatReport(verify(builtinProblems())).split('\n');
    const quotes = codeBlocks(read(page)).filter((b) => /^(backend: .*\n)?mdp-chain: /.test(b.body));
    t.true(quotes.length >= 1, 'the page quotes the report');
    for (const quote of quotes) {
      // Each quoted line, in order, is a printed line (the report may have grown rows or graphs since).
      let at = 0;
      for (const line of quote.body.trimEnd().split('\n').filter((l) => !l.startsWith('backend: '))) {
        while (at < printed.length && !agrees(line, printed[at]!)) at++;
        if (at === printed.length) {
          t.fail(`${page} quotes a line verify does not print (in this order):\n  ${line}\nverify prints:\n${printed.join('\n')}`);
          return;
        }
        at++;
      }
    }
    t.pass();
  });
}

test("concepts.md's influence table for examples/graphs/rl-chain.json is what the influence query answers", (t) => {
  const decoded = decodeGraphSpec(JSON.parse(read('examples/graphs/rl-chain.json')));
  if (isLeft(decoded)) return t.fail('rl-chain.json decodes');
  const spec = decoded.right;
  const query = influenceQuery(spec, spec.horizon!);
  const describe = (inf: Influence): string => {
    switch (inf.kind) {
      case 'none':
        return 'none';
      case 'same':
        return 'same';
      case 'broadcast':
        return `broadcast from step ${inf.fromStep}`;
      case 'lags':
        return `offsets {${inf.lags.flatMap((on, d) => (on ? [d] : [])).join(', ')}}`;
    }
  };
  const concepts = read('docs/concepts.md');
  t.true(concepts.includes(`(\`examples/graphs/rl-chain.json\`, horizon ${spec.horizon})`), 'the page names the file and its horizon');
  const rows = [...concepts.matchAll(/^\| ((?:[a-zθ] → [a-zθ](?:, )?)+) \| ([^|:]+?)(?::[^|]*)? \|$/gm)];
  t.true(rows.length >= 5, `influence rows found: ${rows.length}`);
  const nameOf = (x: string) => (x === 'θ' ? 'theta' : x);
  for (const [, pairs, claim] of rows) {
    for (const pair of pairs!.split(', ')) {
      const [from, to] = pair.split(' → ').map(nameOf);
      t.is(describe(query.influence(from!, to!)), claim!.trim(), pair);
    }
  }
});

test('the validate outputs quoted in docs/graph-format.md are what validate prints', async (t) => {
  const page = read('docs/graph-format.md');
  const run = async (file: string) => {
    const lines: string[] = [];
    await runValidate(file, { log: (l) => lines.push(l), error: (l) => lines.push(l) });
    return lines;
  };
  const valid = await run('examples/graphs/rl-chain.json');
  t.true(page.includes(`$ npx magicbox validate examples/graphs/rl-chain.json\n${valid.join('\n')}\n`), valid.join('\n'));
  const malformed = await run('examples/graphs/malformed.json');
  t.true(malformed.length >= 2);
  for (const line of malformed) t.true(page.includes(line), line);
});

test('every relative link of README.md and docs/*.md names a file that exists', (t) => {
  const pages = ['README.md', 'CHANGELOG.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const broken: string[] = [];
  for (const page of pages) {
    for (const [, target] of read(page).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:|#)/.test(target!)) continue;
      const file = target!.split('#')[0]!;
      if (!existsSync(join(dirname(page), file))) broken.push(`${page}: ${target}`);
    }
  }
  t.deepEqual(broken, []);
});
