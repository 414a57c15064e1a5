/**
 * A tiny dependency-free SVG line chart: one or more series, axes with a few
 * ticks, an optional legend. Series grow by appending points (after_step
 * polling); the SVG is re-rendered from the stored points, which is cheap
 * because the server downsamples to at most ~2000 buckets per series.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Distinct colours for overlaid runs (Tableau 10). */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac'
];

export interface ISeries {
  label: string;
  color: string;
  steps: number[];
  values: number[];
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: { [key: string]: string | number } = {}
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const k of Object.keys(attrs)) {
    node.setAttribute(k, String(attrs[k]));
  }
  return node;
}

function niceTicks(min: number, max: number, count: number): number[] {
  if (!isFinite(min) || !isFinite(max)) {
    return [];
  }
  if (min === max) {
    return [min];
  }
  const span = max - min;
  const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
  const err = (count * step0) / span;
  const step = err <= 0.15 ? step0 * 10 : err <= 0.35 ? step0 * 5 : err <= 0.75 ? step0 * 2 : step0;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) {
    ticks.push(+t.toPrecision(12));
  }
  return ticks;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) {
    return v.toExponential(1);
  }
  return String(+v.toPrecision(4));
}

export class LineChart {
  readonly node: HTMLDivElement;
  private _series: ISeries[] = [];
  private _title: string;
  private _width: number;
  private _height: number;

  constructor(title: string, options: { width?: number; height?: number } = {}) {
    this._title = title;
    this._width = options.width ?? 420;
    this._height = options.height ?? 220;
    this.node = document.createElement('div');
    this.node.className = 'lb-chart';
    this.node.dataset.metric = title;
    this.render();
  }

  get series(): ISeries[] {
    return this._series;
  }

  /** Add (or return an existing) series by label. */
  ensureSeries(label: string, color: string): ISeries {
    let s = this._series.find(x => x.label === label);
    if (!s) {
      s = { label, color, steps: [], values: [] };
      this._series.push(s);
    }
    return s;
  }

  /** Append points to a series (points with step <= the last one are dropped). */
  append(label: string, steps: number[], values: number[], color?: string): void {
    const s = this.ensureSeries(label, color ?? PALETTE[this._series.length % PALETTE.length]);
    const last = s.steps.length ? s.steps[s.steps.length - 1] : -Infinity;
    for (let i = 0; i < steps.length; i++) {
      if (steps[i] > last) {
        s.steps.push(steps[i]);
        s.values.push(values[i]);
      }
    }
    this.render();
  }

  /** Highest step seen in a series, or null. */
  lastStep(label: string): number | null {
    const s = this._series.find(x => x.label === label);
    return s && s.steps.length ? s.steps[s.steps.length - 1] : null;
  }

  render(): void {
    const W = this._width;
    const H = this._height;
    const m = { left: 52, right: 12, top: 22, bottom: 26 };
    const pw = W - m.left - m.right;
    const ph = H - m.top - m.bottom;

    let xmin = Infinity;
    let xmax = -Infinity;
    let ymin = Infinity;
    let ymax = -Infinity;
    for (const s of this._series) {
      for (let i = 0; i < s.steps.length; i++) {
        const x = s.steps[i];
        const y = s.values[i];
        if (y === null || y === undefined || !isFinite(y)) {
          continue;
        }
        xmin = Math.min(xmin, x);
        xmax = Math.max(xmax, x);
        ymin = Math.min(ymin, y);
        ymax = Math.max(ymax, y);
      }
    }
    const empty = !isFinite(xmin);
    if (!empty) {
      if (xmin === xmax) {
        xmin -= 1;
        xmax += 1;
      }
      if (ymin === ymax) {
        const d = Math.abs(ymin) * 0.1 || 1;
        ymin -= d;
        ymax += d;
      } else {
        const pad = (ymax - ymin) * 0.05;
        ymin -= pad;
        ymax += pad;
      }
    }
    const sx = (x: number) => m.left + ((x - xmin) / (xmax - xmin)) * pw;
    const sy = (y: number) => m.top + ph - ((y - ymin) / (ymax - ymin)) * ph;

    const root = svg('svg', {
      width: W,
      height: H,
      viewBox: `0 0 ${W} ${H}`,
      class: 'lb-chart-svg'
    });
    const title = svg('text', { x: m.left, y: 14, class: 'lb-chart-title' });
    title.textContent = this._title;
    root.appendChild(title);
    root.appendChild(
      svg('rect', { x: m.left, y: m.top, width: pw, height: ph, class: 'lb-chart-frame' })
    );

    if (empty) {
      const t = svg('text', { x: m.left + pw / 2, y: m.top + ph / 2, class: 'lb-chart-empty' });
      t.setAttribute('text-anchor', 'middle');
      t.textContent = 'no data yet';
      root.appendChild(t);
    } else {
      for (const t of niceTicks(ymin, ymax, 4)) {
        const y = sy(t);
        root.appendChild(svg('line', { x1: m.left, x2: m.left + pw, y1: y, y2: y, class: 'lb-chart-grid' }));
        const label = svg('text', { x: m.left - 4, y: y + 3, class: 'lb-chart-tick' });
        label.setAttribute('text-anchor', 'end');
        label.textContent = fmt(t);
        root.appendChild(label);
      }
      for (const t of niceTicks(xmin, xmax, 5)) {
        const x = sx(t);
        const label = svg('text', { x, y: m.top + ph + 14, class: 'lb-chart-tick' });
        label.setAttribute('text-anchor', 'middle');
        label.textContent = fmt(t);
        root.appendChild(label);
      }
      for (const s of this._series) {
        const pts: string[] = [];
        for (let i = 0; i < s.steps.length; i++) {
          const y = s.values[i];
          if (y === null || y === undefined || !isFinite(y)) {
            continue;
          }
          pts.push(`${sx(s.steps[i]).toFixed(1)},${sy(y).toFixed(1)}`);
        }
        const line = svg('polyline', {
          points: pts.join(' '),
          fill: 'none',
          stroke: s.color,
          'stroke-width': 1.5,
          class: 'lb-chart-line'
        });
        line.dataset.label = s.label;
        root.appendChild(line);
        if (pts.length === 1) {
          const [cx, cy] = pts[0].split(',');
          root.appendChild(svg('circle', { cx, cy, r: 2.5, fill: s.color }));
        }
      }
    }

    this.node.textContent = '';
    this.node.appendChild(root);
    if (this._series.length > 1) {
      const legend = document.createElement('div');
      legend.className = 'lb-chart-legend';
      for (const s of this._series) {
        const item = document.createElement('span');
        item.className = 'lb-chart-legend-item';
        const swatch = document.createElement('span');
        swatch.className = 'lb-chart-swatch';
        swatch.style.background = s.color;
        item.appendChild(swatch);
        item.appendChild(document.createTextNode(s.label));
        legend.appendChild(item);
      }
      this.node.appendChild(legend);
    }
  }
}
