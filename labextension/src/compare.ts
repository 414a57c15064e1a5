/**
 * Compare runs: parameters and tags side by side (differing rows highlighted), each
 * metric overlaid on one chart (a line per run), and the snapshot diff.
 */
import { Widget } from '@lumino/widgets';

import {
  ICompareResult,
  IFileDiff,
  IRun,
  compare,
  el,
  formatDuration,
  formatValue,
  getMetric,
  listMetrics,
  runDuration,
  statusBadge
} from './api';
import { LineChart, PALETTE } from './chart';
import { flatten } from './runview';

export interface ICompareOptions {
  runIds: string[];
  openRun: (runId: string) => void;
}

function runLabel(run: IRun): string {
  return run.name ? `${run.name} (${run.run_id})` : run.run_id;
}

/** A unified diff with +/- lines coloured. */
export function renderUnified(file: IFileDiff): HTMLElement {
  const wrap = el('div', `lb-file-diff-wrap lb-file-${file.status}`);
  const head = el('div', 'lb-file-diff-head');
  head.appendChild(el('span', `lb-file-status lb-file-status-${file.status}`, file.status));
  head.appendChild(el('span', 'lb-file-path', file.path));
  wrap.appendChild(head);
  if (file.note) {
    wrap.appendChild(el('div', 'lb-note lb-file-note', file.note));
  }
  const pre = el('pre', 'lb-file-diff');
  pre.dataset.path = file.path;
  const lines = (file.unified || '').split('\n');
  if (lines.length && lines[lines.length - 1] === '') {
    lines.pop();
  }
  // One block per line (full-width colouring); innerText keeps the line breaks.
  for (const line of lines) {
    let cls = 'lb-diff-ctx';
    if (line.startsWith('+++') || line.startsWith('---')) {
      cls = 'lb-diff-file';
    } else if (line.startsWith('@@')) {
      cls = 'lb-diff-hunk';
    } else if (line.startsWith('+')) {
      cls = 'lb-diff-add';
    } else if (line.startsWith('-')) {
      cls = 'lb-diff-del';
    }
    pre.appendChild(el('span', cls, line));
  }
  wrap.appendChild(pre);
  return wrap;
}

export class CompareView extends Widget {
  readonly runIds: string[];

  constructor(options: ICompareOptions) {
    super();
    this.runIds = options.runIds;
    this._openRun = options.openRun;
    this.addClass('lb-compare-view');
    this.title.label = 'Compare runs';
    this.title.caption = `Compare ${this.runIds.join(', ')}`;
    this.node.dataset.runIds = this.runIds.join(',');
    this._message = el('div', 'lb-message', 'Loading…');
    this.node.appendChild(this._message);
  }

  protected onAfterAttach(): void {
    if (!this._started) {
      this._started = true;
      void this._load();
    }
  }

  private async _load(): Promise<void> {
    let result: ICompareResult;
    try {
      result = await compare(this.runIds);
    } catch (error) {
      this._message.textContent = String((error as Error).message || error);
      return;
    }
    this._message.remove();
    const colors = new Map<string, string>();
    result.runs.forEach((r, i) => colors.set(r.run_id, PALETTE[i % PALETTE.length]));

    this.node.appendChild(el('h2', 'lb-compare-title', `Comparing ${result.runs.length} runs`));
    this.node.appendChild(this._renderTable(result, colors));

    const metricsHead = el('h3', '', 'Metrics');
    const charts = el('div', 'lb-charts lb-compare-charts');
    charts.appendChild(el('div', 'lb-none', 'Loading metrics…'));
    this.node.appendChild(metricsHead);
    this.node.appendChild(charts);

    this.node.appendChild(el('h3', '', 'Code changes (snapshot diff)'));
    const diffs = el('div', 'lb-diffs');
    const files = (result.diff && result.diff.files) || [];
    if (!files.length) {
      diffs.appendChild(el('div', 'lb-none', 'The snapshots are identical.'));
    } else {
      if (result.runs.length > 2) {
        diffs.appendChild(
          el('div', 'lb-note', `Diff of ${runLabel(result.runs[0])} against ${runLabel(result.runs[1])}.`)
        );
      }
      for (const f of files) {
        diffs.appendChild(renderUnified(f));
      }
    }
    this.node.appendChild(diffs);

    await this._loadMetrics(result.runs, colors, charts);
  }

  private _renderTable(result: ICompareResult, colors: Map<string, string>): HTMLElement {
    const runs = result.runs;
    const table = el('table', 'lb-compare-table');
    const thead = el('thead');
    const hr = el('tr');
    hr.appendChild(el('th', '', ''));
    for (const r of runs) {
      const th = el('th', 'lb-compare-run');
      th.dataset.runId = r.run_id;
      const swatch = el('span', 'lb-chart-swatch');
      swatch.style.background = colors.get(r.run_id) || '';
      th.appendChild(swatch);
      const link = el('a', 'lb-run-link', runLabel(r));
      link.href = '#';
      link.onclick = ev => {
        ev.preventDefault();
        this._openRun(r.run_id);
      };
      th.appendChild(link);
      hr.appendChild(th);
    }
    thead.appendChild(hr);
    table.appendChild(thead);

    const body = el('tbody');
    const addRow = (label: string, cells: (string | HTMLElement)[], cls = '') => {
      const tr = el('tr', cls);
      tr.dataset.key = label;
      tr.appendChild(el('th', '', label));
      for (const c of cells) {
        const td = el('td');
        if (typeof c === 'string') {
          td.textContent = c;
        } else {
          td.appendChild(c);
        }
        tr.appendChild(td);
      }
      body.appendChild(tr);
    };
    const differs = (vals: string[]) => vals.some(v => v !== vals[0]);
    const infoRow = (label: string, f: (r: IRun) => string) => {
      const vals = runs.map(f);
      addRow(label, vals, differs(vals) ? 'lb-info lb-diff' : 'lb-info');
    };
    addRow('status', runs.map(r => statusBadge(r.status, r.tags)), 'lb-info');
    infoRow('experiment', r => r.experiment);
    infoRow('target', r => r.target || '');
    infoRow('script', r => r.script || '');
    infoRow('arguments', r => (r.arguments || []).join(' '));
    infoRow('duration', r => formatDuration(runDuration(r)));
    infoRow('snapshot', r => (r.snapshot && r.snapshot.id) || '');
    infoRow('git commit', r => formatValue(flatten(r.properties || {})['git.commit']));
    const pm = runs.find(r => r.primary_metric)?.primary_metric?.name;
    if (pm) {
      infoRow(pm, r => (r.primary_metric && r.primary_metric.name === pm ? formatValue(r.primary_metric.value) : ''));
    }

    const section = (title: string) => {
      const sep = el('tr', 'lb-compare-sep');
      const sepCell = el('th', '', title);
      sepCell.colSpan = runs.length + 1;
      sep.appendChild(sepCell);
      body.appendChild(sep);
    };
    const none = (text: string) => {
      const tr = el('tr');
      const td = el('td', 'lb-none', text);
      td.colSpan = runs.length + 1;
      tr.appendChild(td);
      body.appendChild(tr);
    };
    section('Parameters');

    const params = result.params || { keys: [], differing: [] };
    const differing = new Set(params.differing || []);
    const keys = params.keys && params.keys.length ? params.keys : Array.from(new Set(runs.flatMap(r => Object.keys(r.params || {})))).sort();
    if (!keys.length) {
      none('No parameters.');
    }
    for (const key of keys) {
      const vals = runs.map(r => {
        const p = r.params || {};
        return key in p ? formatValue(p[key]) : '—';
      });
      addRow(key, vals, differing.has(key) ? 'lb-param lb-diff' : 'lb-param');
    }

    // Tags, marked where they differ as parameters are (a tag only some runs have differs too).
    section('Tags');
    const tagKeys = Array.from(new Set(runs.flatMap(r => Object.keys(r.tags || {})))).sort();
    if (!tagKeys.length) {
      none('No tags.');
    }
    for (const key of tagKeys) {
      const vals = runs.map(r => (r.tags && key in r.tags ? String(r.tags[key]) : '—'));
      addRow(key, vals, differs(vals) ? 'lb-tag lb-diff' : 'lb-tag');
    }
    table.appendChild(body);
    return table;
  }

  private async _loadMetrics(runs: IRun[], colors: Map<string, string>, host: HTMLElement): Promise<void> {
    const byRun = await Promise.all(
      runs.map(r => listMetrics(r.run_id).then(x => x.metrics, () => []))
    );
    const names: string[] = [];
    byRun.forEach(ms =>
      ms.forEach(m => {
        if (names.indexOf(m.name) < 0) {
          names.push(m.name);
        }
      })
    );
    // The runner's system metrics after the runs' own, the primary metric first.
    const isSystem = (name: string) => Number(name.startsWith('system/'));
    names.sort((a, b) => isSystem(a) - isSystem(b));
    const pm = runs.find(r => r.primary_metric)?.primary_metric?.name;
    if (pm && names.indexOf(pm) > 0) {
      names.splice(names.indexOf(pm), 1);
      names.unshift(pm);
    }
    host.textContent = '';
    if (!names.length) {
      host.appendChild(el('div', 'lb-none', 'None of these runs logged metrics.'));
      return;
    }
    for (const name of names) {
      const chart = new LineChart(name, { width: 520, height: 260 });
      // Legend entries in run order even when a run lacks the metric.
      runs.forEach(r => chart.ensureSeries(runLabel(r), colors.get(r.run_id) || PALETTE[0]));
      host.appendChild(chart.node);
      await Promise.all(
        runs.map(async (r, i) => {
          if (!byRun[i].some(m => m.name === name)) {
            return;
          }
          try {
            const s = await getMetric(r.run_id, name, null, 2000);
            chart.append(runLabel(r), s.steps, s.values, colors.get(r.run_id));
          } catch (_e) {
            /* leave the line empty */
          }
        })
      );
      chart.render();
    }
  }

  private _openRun: (runId: string) => void;
  private _message: HTMLDivElement;
  private _started = false;
}
