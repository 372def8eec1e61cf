/**
 * Reading graph files: JSON text → GraphSpec, or errors a user can act on, each naming the path of the
 * bad field (`nodes[3].parents[0].lag: expected a whole number ≥ 0, got -1`).
 *
 * io-ts's own reporter prints codec type names; this one walks each error's context instead, and also
 * rejects fields the format does not know, because io-ts ignores them silently and a misspelled optional
 * field (`"temporl": true`) would otherwise change the graph without a word.
 */
import { readFile } from 'node:fs/promises';
import * as t from 'io-ts';
import { isLeft, left, right, type Either } from 'fp-ts/lib/Either.js';
import { GraphSpecCodec, NonNegativeInt, ParentRefCodec, PositiveInt, type GraphSpec } from './spec.ts';

export interface DecodeError {
  /** Where in the file, e.g. `nodes[3].parents[0].lag`; empty for the file as a whole. */
  readonly path: string;
  readonly message: string;
}

export const formatDecodeError = ({ path, message }: DecodeError): string =>
  path === '' ? message : `${path}: ${message}`;

/** A graph spec from a parsed JSON value, with every type error and unknown field. */
export function decodeGraphSpec(u: unknown): Either<DecodeError[], GraphSpec> {
  const decoded = GraphSpecCodec.decode(u);
  const errors = [
    ...(isLeft(decoded) ? describeValidationErrors(decoded.left) : []),
    ...unknownFields(GraphSpecCodec, u, ''),
  ];
  return isLeft(decoded) || errors.length > 0 ? left(errors) : right(decoded.right);
}

/** The canonical JSON value of a spec (parents at lag 0 written as bare names). */
export const encodeGraphSpec = (spec: GraphSpec): t.OutputOf<typeof GraphSpecCodec> => GraphSpecCodec.encode(spec);

/** A graph spec from the text of a graph file. */
export function parseGraphJson(text: string): Either<DecodeError[], GraphSpec> {
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    return left([{ path: '', message: `not valid JSON: ${jsonErrorMessage(e, text)}` }]);
  }
  return decodeGraphSpec(value);
}

/** A graph spec from a graph file; failures to read it are errors like any other, never exceptions. */
export async function readGraphFile(file: string): Promise<Either<DecodeError[], GraphSpec>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return left([{ path: '', message: readErrorMessage(e) }]);
  }
  return parseGraphJson(text);
}

function readErrorMessage(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory, not a graph file';
  if (code === 'EACCES') return 'permission denied';
  return `cannot read the file: ${e instanceof Error ? e.message : String(e)}`;
}

/** V8 reports a character offset; people look for lines. */
function jsonErrorMessage(e: unknown, text: string): string {
  const message = e instanceof Error ? e.message : String(e);
  const offset = /at position (\d+)/.exec(message)?.[1];
  if (offset === undefined) return message;
  const before = text.replace(/^\uFEFF/, '').slice(0, Number(offset)).split('\n');
  return `${message} (line ${before.length}, column ${before.at(-1)!.length + 1})`;
}

// ---------------------------------------------------------------------------------------------------
// io-ts errors → DecodeError

/**
 * Human-readable errors from io-ts validation errors, for any codec. Each error becomes one line at the
 * path of the failing value. Where a union failed, only the branch that got furthest into the value is
 * reported (io-ts already picks the branch of a tagged union by its tag); where no branch got inside
 * it, the union as a whole is.
 */
export function describeValidationErrors(errors: t.Errors): DecodeError[] {
  const lines = keepFurthestUnionBranches(errors.map((e) => annotate(e.context))).map(describeFailure);
  const isFirst = (line: DecodeError, i: number) =>
    lines.findIndex((other) => other.path === line.path && other.message === line.message) === i;
  return lines.filter(isFirst);
}

/** A context entry with the path of the value it validates. */
interface Step {
  readonly entry: t.ContextEntry;
  readonly path: string;
  /** Number of path segments: how deep into the input value this step is. */
  readonly depth: number;
}

/**
 * Union branches, intersection members and refinements validate the same value as the entry before them
 * and add no path segment; every other entry steps into a field or element of the value before it.
 */
function annotate(context: t.Context): Step[] {
  const steps: Step[] = [];
  for (const entry of context) {
    const previous = steps.at(-1);
    if (previous === undefined) steps.push({ entry, path: '', depth: 0 });
    else if (entry.actual === previous.entry.actual) steps.push({ ...previous, entry });
    else {
      const key = Array.isArray(previous.entry.actual) ? Number(entry.key) : entry.key;
      steps.push({ entry, path: joinPath(previous.path, key), depth: previous.depth + 1 });
    }
  }
  return steps;
}

function joinPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (!/^[A-Za-z_$][\w$]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

/**
 * Outermost union first: among the errors passing through one union (at one path), keep those of the
 * branch whose deepest error is deepest; if no branch got past the union's own value, cut the errors
 * back to the union so that it is described as a whole. Errors keep their order.
 */
function keepFurthestUnionBranches(failures: Step[][]): Step[][] {
  const longest = Math.max(0, ...failures.map((f) => f.length));
  let kept = failures;
  for (let at = 0; at < longest; at++) {
    // The failures running through a union at context index `at` (and on into one of its branches).
    const byUnion = new Map<string, Step[][]>();
    for (const f of kept) {
      const step = f[at];
      if (step === undefined || !(step.entry.type instanceof t.UnionType) || at === f.length - 1) continue;
      const union = `${step.path}\u0000${step.entry.type.name}`;
      byUnion.set(union, [...(byUnion.get(union) ?? []), f]);
    }
    const dropped = new Set<Step[]>();
    const cut = new Map<Step[], Step[]>();
    for (const through of byUnion.values()) {
      const branchOf = (f: Step[]) => f[at + 1]!.entry.key;
      const reach = new Map<string, number>();
      for (const f of through) reach.set(branchOf(f), Math.max(reach.get(branchOf(f)) ?? -1, f.at(-1)!.depth));
      const [best, bestReach] = [...reach].reduce((a, b) => (b[1] > a[1] ? b : a));
      if (bestReach > through[0]![at]!.depth) {
        for (const f of through) if (branchOf(f) !== best) dropped.add(f);
      } else {
        through.slice(1).forEach((f) => dropped.add(f));
        cut.set(through[0]!, through[0]!.slice(0, at + 1));
      }
    }
    kept = kept.filter((f) => !dropped.has(f)).map((f) => cut.get(f) ?? f);
  }
  return kept;
}

function describeFailure(failure: Step[]): DecodeError {
  const last = failure.at(-1)!;
  // The entry that introduced this path says what the value should be (a ParentRef, not the object
  // form that ParentRef tries internally).
  const owner = failure.find((step) => step.path === last.path)!.entry.type;
  const actual = last.entry.actual;
  const tag = owner instanceof t.UnionType ? discriminant(owner) : undefined;
  if (tag !== undefined && isRecord(actual)) {
    const allowed = tag.values.map(String).join(', ');
    return { path: joinPath(last.path, tag.field), message: mismatch(`one of ${allowed}`, actual[tag.field]) };
  }
  return { path: last.path, message: mismatch(expected(owner), actual) };
}

function mismatch(expectation: string, actual: unknown): string {
  if (actual === undefined) return `missing; expected ${expectation}`;
  const shown = JSON.stringify(actual);
  return `expected ${expectation}, got ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`;
}

function expected(type: t.Decoder<unknown, unknown>): string {
  if (type === NonNegativeInt) return 'a whole number ≥ 0';
  if (type === PositiveInt) return 'a whole number ≥ 1';
  if (type === ParentRefCodec) return 'a node name or {"node": name, "lag": steps back}';
  if (type instanceof t.StringType) return 'a string';
  if (type instanceof t.NumberType) return 'a number';
  if (type instanceof t.BooleanType) return 'true or false';
  if (type instanceof t.LiteralType) return JSON.stringify(type.value);
  if (type instanceof t.ArrayType) return 'an array';
  if (type instanceof t.InterfaceType || type instanceof t.PartialType || type instanceof t.IntersectionType) {
    return 'an object';
  }
  if (type instanceof t.UnionType) {
    const tag = discriminant(type);
    if (tag !== undefined) return `an object with a "${tag.field}" field`;
    return (type.types as t.Decoder<unknown, unknown>[]).map(expected).join(' or ');
  }
  if (type instanceof t.RefinementType) return `${expected(type.type)} (${type.name})`;
  return type.name;
}

// ---------------------------------------------------------------------------------------------------
// Unknown fields

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u);

/** Fields of `value` that `codec` does not declare, at any depth. */
function unknownFields(codec: t.Decoder<unknown, unknown>, value: unknown, path: string): DecodeError[] {
  if (codec === ParentRefCodec) return isRecord(value) ? extraKeys(value, ['node', 'lag'], path) : [];
  if (codec instanceof t.ArrayType) {
    return Array.isArray(value) ? value.flatMap((item, i) => unknownFields(codec.type, item, joinPath(path, i))) : [];
  }
  if (codec instanceof t.UnionType) {
    const branch = unionBranchFor(codec, value);
    return branch === undefined ? [] : unknownFields(branch, value, path);
  }
  const props = objectProps(codec);
  if (props === undefined || !isRecord(value)) return [];
  return [
    ...extraKeys(value, Object.keys(props), path),
    ...Object.entries(props).flatMap(([key, type]) =>
      Object.hasOwn(value, key) ? unknownFields(type, value[key], joinPath(path, key)) : [],
    ),
  ];
}

function extraKeys(value: Record<string, unknown>, known: readonly string[], path: string): DecodeError[] {
  return Object.keys(value)
    .filter((key) => !known.includes(key))
    .map((key) => ({
      path: joinPath(path, key),
      message: `unknown field (the fields allowed here are ${known.join(', ')})`,
    }));
}

/** The declared fields of an object codec (an interface, a partial, or an intersection of them). */
function objectProps(codec: t.Decoder<unknown, unknown>): Record<string, t.Decoder<unknown, unknown>> | undefined {
  if (codec instanceof t.InterfaceType || codec instanceof t.PartialType) return codec.props;
  if (!(codec instanceof t.IntersectionType)) return undefined;
  const parts = (codec.types as t.Decoder<unknown, unknown>[]).map(objectProps);
  return parts.every((p) => p !== undefined) ? Object.assign({}, ...parts) : undefined;
}

/** The branch a value is meant for: by its tag in a tagged union, else the first that accepts it. */
function unionBranchFor(union: t.UnionType<t.Mixed[]>, value: unknown): t.Mixed | undefined {
  const tag = discriminant(union);
  if (tag === undefined) return union.types.find((branch) => !isLeft(branch.decode(value)));
  return isRecord(value) ? union.types[tag.values.indexOf(value[tag.field] as string)] : undefined;
}

/**
 * The field whose literal value tells a union's branches apart (`kind` of a node, `type` of a family),
 * with each branch's value in order; io-ts picks the branch by it, but does not expose it in its types.
 */
function discriminant(union: t.UnionType<t.Mixed[]>): { field: string; values: unknown[] } | undefined {
  const branchProps = union.types.map(objectProps);
  const candidates = Object.keys(branchProps[0] ?? {});
  for (const field of candidates) {
    const literals = branchProps.map((props) => props?.[field]);
    if (literals.every((type) => type instanceof t.LiteralType)) {
      const values = literals.map((type) => (type as t.LiteralType<string>).value);
      if (new Set(values).size === values.length) return { field, values };
    }
  }
  return undefined;
}
