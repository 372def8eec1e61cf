/**
 * Sorts a Stryker report's mutants into the argument checks and the rest, by one stated rule: a mutant
 * is an argument check when it lies inside a `throw` statement, or inside the condition of an `if`
 * with no `else` whose body is nothing but a `throw`, or is that body emptied. Such a mutant changes
 * whether a wrong input is refused (with which message), never a number computed from a valid input;
 * the numbers' score is taken over the other mutants. The raw score over all of them is printed too.
 */
import ts from 'typescript';

const throwsOnly = (node) =>
  ts.isThrowStatement(node) || (ts.isBlock(node) && node.statements.length === 1 && ts.isThrowStatement(node.statements[0]));

/** `(source, {start, end})` (1-based lines and columns, as Stryker writes them) → 'argument-check' | 'number'. */
export const kindOf = (source) => {
  const file = ts.createSourceFile('m.ts', source, ts.ScriptTarget.Latest, true);
  const offsets = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') offsets.push(i + 1);
  const at = ({ line, column }) => offsets[line - 1] + column - 1;
  return (location) => {
    const [from, to] = [at(location.start), at(location.end)];
    let kind = 'number';
    const visit = (node) => {
      if (node.getStart(file) > from || node.end < to) return;
      if (ts.isThrowStatement(node)) kind = 'argument-check';
      if (ts.isIfStatement(node) && node.elseStatement === undefined && throwsOnly(node.thenStatement)) {
        const inCondition = node.expression.getStart(file) <= from && to <= node.expression.end;
        const isBody = node.thenStatement.getStart(file) === from && node.thenStatement.end === to;
        if (inCondition || isBody) kind = 'argument-check';
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
    return kind;
  };
};
