/**
 * The figures `magicbox reproduce` runs, by id: a constant record (not a mutable registry).
 */
import type { Figure, FigureId } from './figure.ts';
import { fig2 } from './fig2.ts';
import { fig4 } from './fig4.ts';
import { fig5 } from './fig5.ts';
import { fig6 } from './fig6.ts';

/** The figures of this build; an id missing here is one whose module is not in it. */
export const figures: Readonly<Partial<Record<FigureId, Figure>>> = Object.freeze({
  fig2,
  fig4,
  fig5,
  fig6,
});
