#!/bin/bash
# Issue 14's five named survivors, and the last two survivors of the iteration pass (whose report is
# not kept), each re-applied by hand (one at a time, in a scratch copy of the tree) and run against the
# test that was written to kill it; every run must fail. Then the same tests unmutated, which must pass.
# Usage: bash scripts/mutation-named-survivors.sh (about two minutes).
set -u
root=$(git rev-parse --show-toplevel)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$root" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$scratch"
# (a checkout whose node_modules is a symlink, e.g. a git worktree's, has it copied already)
[ -e "$scratch/node_modules" ] || ln -s "$(readlink -f "$root/node_modules")" "$scratch/node_modules"
cd "$scratch"
status=0
edit() { # FILE OLD NEW TEST
  cp "$1" "$1.orig"
  python3 -c "import sys;p,o,n=sys.argv[1:4];s=open(p).read();assert s.count(o)==1,('not found once',o);open(p,'w').write(s.replace(o,n))" "$1" "$2" "$3" || { status=1; return; }
  echo "### $1: '$2' → '$3'; $4"
  if node_modules/.bin/ava --timeout=2m "$4" > out.log 2>&1; then echo "    SURVIVED"; status=1; else grep -E "✘" out.log | head -3 | cut -c1-220; fi
  mv "$1.orig" "$1"
}
edit src/meta/iteration.ts "return tf.add(value, tf.mul(trainer.config.klPenalty" "return tf.sub(value, tf.mul(trainer.config.klPenalty" test/promp-kl-penalty.test.ts
edit src/meta/iteration.ts "const discount = config.discount ** t / scale;" "const discount = config.discount ** (t + 1) / scale;" test/level-data.test.ts
edit src/surrogates/compile.ts "q === undefined ? tf.neg(b) : tf.sub(q, b);" "q === undefined ? tf.neg(b) : q;" test/per-sample-credit.test.ts
edit src/surrogates/compile.ts "out.set(w.name, evaluation.mask !== undefined && isTemporal(w) ? tf.mul(b, evaluation.mask) : b);" "out.set(w.name, b);" test/per-sample-credit.test.ts
edit src/meta/meta-objective.ts "stopGradient(weightedMean(sampleReturn(taskGraph, last, post.batch), post, last));" "stopGradient(weightedMean(sampleReturn(taskGraph, params, post.batch), post, params));" test/formulation-ii-pathwise.test.ts
# the iteration pass's last two: the meta-gradients' finiteness check dropped (a finite objective with a
# NaN gradient), and TRPO's line search given +objective as f(x₀)
edit src/meta/iteration.ts 'values.slice(1).forEach((g, k) => assertFinite(iteration, `meta-gradient of ${names[k]} (task ${i})`, g));' 'values.slice(1).forEach(() => undefined);' test/iteration-edges.test.ts
edit src/meta/iteration.ts "lossBefore: -objectiveBefore," "lossBefore: +objectiveBefore," test/iteration-edges.test.ts
echo "### unmutated"
node_modules/.bin/ava test/promp-kl-penalty.test.ts test/level-data.test.ts test/per-sample-credit.test.ts test/formulation-ii-pathwise.test.ts test/iteration-edges.test.ts 2>&1 | tail -1 || status=1
exit $status
