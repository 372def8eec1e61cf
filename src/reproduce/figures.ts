/**
 * The figures `magicbox reproduce` runs, by id: a constant record (not a mutable registry).
 */
import type { Figure, FigureId } from './figure.ts';
import { fig5 } from './fig5.ts';
import { fig6 } from './fig6.ts';
// MERGE (lead): fig2 and fig4 come from issue 11a's modules; add here
//   import { fig2 } from './fig2.ts';
//   import { fig4 } from './fig4.ts';
// and list them in `figures` below.

/** The figures of this build; an id missing here is one whose module is not in it. */
export const figures: Readonly<Partial<Record<FigureId, Figure>>> = Object.freeze({
  // MERGE (lead): fig2, fig4,
  fig5,
  fig6,
});
