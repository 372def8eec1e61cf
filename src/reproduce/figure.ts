/**
 * A figure of the ProMP paper as the `reproduce` command runs it: the contract every figure module
 * (fig2.ts, fig4.ts, fig5.ts, fig6.ts) implements, so the command, its progress display and its
 * resumption are written once.
 */

/** How large a reproduction is: `paper` is the released code's settings exactly; `small` is the
 * largest that completes on a 2-core machine in under an hour, and `describeScale` says what it cut. */
export type ReproductionScale = 'small' | 'paper';

export const reproductionScales: readonly ReproductionScale[] = ['small', 'paper'];

export type FigureId = 'fig2' | 'fig4' | 'fig5' | 'fig6';

export const figureIds: readonly FigureId[] = ['fig2', 'fig4', 'fig5', 'fig6'];

/** What one invocation of a figure is asked to do. */
export interface FigureRequest {
  readonly scale: ReproductionScale;
  /** How many seeds (each figure has its own default, used when this is undefined). */
  readonly seeds: number | undefined;
  /** Where the raw numbers (JSON/CSV), the unit results and the figure (SVG) go; exists already. */
  readonly outDir: string;
  /** Called after each finished unit of work (also for units found finished in outDir). */
  readonly progress: (done: number, total: number, label: string) => void;
  /** One line of text for the user (what was resumed, what was written). */
  readonly log: (line: string) => void;
  /** Becomes true when the user asked to stop (Ctrl-C): finish or abandon the current unit, return. */
  readonly stopRequested: () => boolean;
}

/** What a figure wrote. */
export interface FigureOutcome {
  /** Files written into outDir, relative to it (the SVG figure first). */
  readonly files: readonly string[];
  /** The headline numbers, one line each, as printed at the end and quoted in docs/results.md. */
  readonly summary: readonly string[];
  /** False when stopped before every unit finished (a rerun continues). */
  readonly complete: boolean;
}

export interface Figure {
  readonly id: FigureId;
  /** e.g. "Fig. 6: formulation I vs II on the 1D environment". */
  readonly title: string;
  readonly defaultSeeds: number;
  /** The default number of seeds at a scale, where it differs between scales (default: defaultSeeds). */
  readonly seedsAt?: (scale: ReproductionScale) => number;
  /** What `scale` runs, in a sentence (for `small`: what it scaled down from the paper's protocol). */
  readonly describeScale: (scale: ReproductionScale) => string;
  /** Runs the units not yet finished in outDir (see units.ts), then writes the numbers and figure. */
  readonly run: (request: FigureRequest) => Promise<FigureOutcome>;
}
