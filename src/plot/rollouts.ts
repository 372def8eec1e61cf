/**
 * Trajectories of a 2D point environment drawn in the plane (vega-lite → SVG): one panel per policy,
 * the pre-update trajectories in grey, the post-update ones (after the last inner step) in their
 * task's colour, each goal a cross, and — where the reward has one — its region shaded.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Rollouts } from '../meta/rollouts.ts';
import { renderSvg } from './learning-curves.ts';

export interface RolloutPanel {
  readonly title: string;
  readonly rollouts: Rollouts;
}

export interface RolloutPlotOptions {
  readonly title?: string;
  /** radius of the region around each goal where the reward is non-zero (shaded); none when absent */
  readonly regionRadius?: number;
  /** panel width and height in pixels (default 300) */
  readonly size?: number;
  /** show [−extent, extent]² only (paths leaving it are cut at the edge); default: everything drawn */
  readonly extent?: number;
}

const goalLabel = (goal: readonly [number, number] | null, i: number): string => (goal === null ? `task ${i + 1}` : `goal (${goal.map((g) => Number(g.toFixed(2))).join(', ')})`);

export const rolloutSpec = (panels: readonly RolloutPanel[], options: RolloutPlotOptions = {}): TopLevelSpec => {
  const size = options.size ?? 300;
  const points = panels.flatMap((p) => p.rollouts.tasks.flatMap((t) => [...t.paths.flat().flat(), ...(t.goal === null ? [] : [t.goal])]));
  const xs = points.map((q) => q[0]);
  const ys = points.map((q) => q[1]);
  const r = options.regionRadius ?? 0;
  const goals = panels.flatMap((p) => p.rollouts.tasks.map((t) => t.goal).filter((g): g is readonly [number, number] => g !== null));
  // One square extent for every panel, covering paths, goals and (most of) the regions.
  const lo = Math.min(...xs, ...ys, ...goals.flatMap((g) => [g[0] - Math.min(r, 1), g[1] - Math.min(r, 1)]));
  const hi = Math.max(...xs, ...ys, ...goals.flatMap((g) => [g[0] + Math.min(r, 1), g[1] + Math.min(r, 1)]));
  const margin = 0.05 * (hi - lo || 1);
  const domain = options.extent !== undefined ? [-options.extent, options.extent] : [lo - margin, hi + margin];
  const pixelsPerUnit = size / (domain[1]! - domain[0]!);
  const labels = [...new Set(panels.flatMap((p) => p.rollouts.tasks.map((t, i) => goalLabel(t.goal, i))))];
  const color = { field: 'label', type: 'nominal', title: 'post-update trajectories of the task', scale: { domain: labels, scheme: 'category10' }, legend: { orient: 'bottom', columns: 4, labelLimit: 300, titleLimit: 400 } } as const;
  const x = { field: 'x', type: 'quantitative', title: 'x', scale: { domain, nice: false } } as const;
  const y = { field: 'y', type: 'quantitative', title: 'y', scale: { domain, nice: false } } as const;
  const panel = (p: RolloutPanel) => {
    const k = p.rollouts.adaptationSteps;
    const rows = p.rollouts.tasks.flatMap((t, i) =>
      [0, k].flatMap((level) =>
        t.paths[level]!.flatMap((path, n) => path.map(([px, py], step) => ({ label: goalLabel(t.goal, i), level: level === 0 ? 'pre' : 'post', path: `${i}-${level}-${n}`, step, x: px, y: py }))),
      ),
    );
    const regions = p.rollouts.tasks.filter((t) => t.goal !== null).map((t, i) => ({ label: goalLabel(t.goal, i), x: t.goal![0], y: t.goal![1] }));
    const returns = p.rollouts.tasks.map((t) => t.returns);
    const meanAt = (level: number) => returns.reduce((a, rs) => a + rs[level]!, 0) / returns.length;
    return {
      width: size,
      height: size,
      title: { text: p.title, subtitle: `average return: pre-update ${meanAt(0).toFixed(1)}, after ${k} step${k === 1 ? '' : 's'} ${meanAt(k).toFixed(1)}` },
      layer: [
        ...(r > 0
          ? [{ data: { values: regions }, mark: { type: 'point', shape: 'circle', filled: true, opacity: 0.1, size: Math.PI * (r * pixelsPerUnit) ** 2, clip: true }, encoding: { x, y, color } }]
          : []),
        { data: { values: rows.filter((d) => d.level === 'pre') }, mark: { type: 'line', strokeWidth: 0.8, opacity: 0.5, color: '#777', clip: true }, encoding: { x, y, detail: { field: 'path' }, order: { field: 'step' } } },
        { data: { values: rows.filter((d) => d.level === 'post') }, mark: { type: 'line', strokeWidth: 1.2, opacity: 0.8, clip: true }, encoding: { x, y, color, detail: { field: 'path' }, order: { field: 'step' } } },
        { data: { values: regions }, mark: { type: 'point', shape: 'cross', size: 120, filled: true, color: 'black' }, encoding: { x, y } },
      ],
    };
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: options.title ?? 'Pre-update (grey) and post-update (coloured) trajectories',
      subtitle: [
        ...(r > 0 ? [`shaded: where the reward is non-zero (within ${r} of the goal)`] : []),
        ...(options.extent !== undefined ? [`view [−${options.extent}, ${options.extent}]²: paths leaving it are cut at the edge`] : []),
      ].join('; '),
    },
    background: 'white',
    hconcat: panels.map(panel),
  } as unknown as TopLevelSpec;
};

export const renderRollouts = (panels: readonly RolloutPanel[], options: RolloutPlotOptions = {}): Promise<string> => renderSvg(rolloutSpec(panels, options));
