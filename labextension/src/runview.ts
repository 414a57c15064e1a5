/**
 * One run in the main area: details, live log, metric charts (system metrics in
 * a closed group of their own), output files, Cancel, Re-run and, once the run
 * has TensorBoard event files, a TensorBoard link.
 */
import { Dialog, InputDialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  IRun,
  cancelRun,
  downloadFile,
  el,
  fileUrl,
  formatBytes,
  formatDuration,
  formatTime,
  formatValue,
  getLog,
  getMetric,
  getPipeline,
  getRun,
  isPipeline,
  isTerminal,
  listFiles,
  listMetrics,
  listTargets,
  rerun,
  runDuration,
  shownStatus,
  startTensorBoard
} from './api';
import { LineChart, PALETTE } from './chart';
import { LoggedView } from './logged';

const LOG_POLL_MS = 1000;
const RUN_POLL_MS = 2000;
/** Keep at most this many characters of log in the DOM. */
const LOG_MAX_CHARS = 2_000_000;

/** Metrics the runner samples (CPU, memory, I/O, GPUs) are drawn in a group of their own. */
const SYSTEM_PREFIX = 'system/';

/** Flatten nested objects to dotted keys: {git: {commit: x}} -> git.commit. */
export function flatten(obj: any, prefix = '', out: { [key: string]: any } = {}): { [key: string]: any } {
  if (obj === null || obj === undefined) {
    return out;
  }
  if (typeof obj !== 'object' || Array.isArray(obj)) {
    out[prefix || 'value'] = obj;
    return out;
  }
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    const k = prefix ? `${prefix}.${key}` : key;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) {
      flatten(v, k, out);
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** A two-column key/value table. */
export function kvTable(
  obj: { [key: string]: any } | null | undefined,
  className = '',
  sort = true
): HTMLElement {
  const flat = flatten(obj || {});
  const keys = sort ? Object.keys(flat).sort() : Object.keys(flat);
  if (!keys.length) {
    return el('div', 'lb-none', 'none');
  }
  const table = el('table', `lb-kv ${className}`.trim());
  const body = el('tbody');
  for (const k of keys) {
    const tr = el('tr');
    tr.appendChild(el('th', '', k));
    tr.appendChild(el('td', '', formatValue(flat[k])));
    body.appendChild(tr);
  }
  table.appendChild(body);
  return table;
}

function section(title: string, className: string, open = true): { details: HTMLDetailsElement; body: HTMLDivElement } {
  const details = el('details', `lb-section ${className}`);
  details.open = open;
  details.appendChild(el('summary', '', title));
  const body = el('div', 'lb-section-body');
  details.appendChild(body);
  return { details, body };
}

export interface IRunViewOptions {
  runId: string;
  openRun: (runId: string) => void;
}

export class RunView extends Widget {
  readonly runId: string;

  constructor(options: IRunViewOptions) {
    super();
    this.runId = options.runId;
    this._openRun = options.openRun;
    this.addClass('lb-run-view');
    this.node.dataset.runId = this.runId;

    // Header: name, status, buttons.
    const header = el('div', 'lb-run-header');
    this._name = el('h2', 'lb-run-title', this.runId);
    this._status = el('span', 'lb-run-status');
    this._cancel = el('button', 'jp-mod-styled jp-mod-warn lb-cancel', 'Cancel');
    this._cancel.onclick = () => void this._onCancel();
    this._cancel.style.display = 'none';
    this._rerun = el('button', 'jp-mod-styled lb-rerun', 'Re-run');
    this._rerun.onclick = () => void this._onRerun();
    // Shown once the run's ./logs holds TensorBoard event files.
    this._tensorboard = el('button', 'jp-mod-styled lb-tensorboard', 'TensorBoard');
    this._tensorboard.onclick = () => void this._onTensorBoard();
    this._tensorboard.style.display = 'none';
    this._tensorboardLink = el('a', 'lb-tensorboard-link');
    this._tensorboardLink.target = '_blank';
    this._tensorboardLink.rel = 'noopener';
    header.appendChild(this._name);
    header.appendChild(this._status);
    this._statusDetail = el('span', 'lb-run-status-detail');
    header.appendChild(this._statusDetail);
    header.appendChild(this._cancel);
    header.appendChild(this._rerun);
    header.appendChild(this._tensorboard);
    header.appendChild(this._tensorboardLink);
    this._subtitle = el('div', 'lb-run-subtitle');
    this._error = el('div', 'lb-run-error');
    this._error.style.display = 'none';
    this._message = el('div', 'lb-message');
    this._message.style.display = 'none';

    const overview = section('Overview', 'lb-overview');
    this._overview = overview.body;
    // A pipeline: its DAG (the notebook widget's drawing) and its steps; a click on a step opens its run.
    const pipelineSec = section('Pipeline', 'lb-pipeline-section');
    this._pipeline = pipelineSec.body;
    this._pipelineSection = pipelineSec.details;
    this._pipelineSection.style.display = 'none';
    this._pipeline.onclick = ev => {
      const target = ev.target as Element | null;
      const step = target && target.closest ? target.closest('[data-run-id]') : null;
      const runId = step ? step.getAttribute('data-run-id') : '';
      if (runId) {
        ev.preventDefault();
        this._openRun(runId);
      }
    };
    const logSec = section('Log', 'lb-log-section');
    // A distributed run: pick whose log to show (rank 0's is the run's main log).
    this._rankPicker = el('select', 'jp-mod-styled lb-rank-picker');
    this._rankPicker.style.display = 'none';
    this._rankPicker.onchange = () => this._showRank(Number(this._rankPicker.value));
    logSec.body.appendChild(this._rankPicker);
    this._log = el('pre', 'lb-log');
    this._logText = document.createTextNode('');
    this._log.appendChild(this._logText);
    logSec.body.appendChild(this._log);
    const metricsSec = section('Metrics', 'lb-metrics-section');
    this._charts = el('div', 'lb-charts');
    metricsSec.body.appendChild(this._charts);
    this._logged = new LoggedView(this.runId); // images, tables, rows, lists
    metricsSec.body.appendChild(this._logged.node);
    const systemSec = section('System metrics (CPU, memory, I/O, GPU)', 'lb-system-section', false);
    this._systemCharts = el('div', 'lb-charts lb-system-charts');
    systemSec.body.appendChild(this._systemCharts);
    this._systemSection = systemSec.details;
    this._systemSection.style.display = 'none';
    const filesSec = section('Output files', 'lb-files-section');
    this._files = filesSec.body;
    const paramsSec = section('Parameters', 'lb-params-section');
    this._params = paramsSec.body;
    const tagsSec = section('Tags', 'lb-tags-section', false);
    this._tags = tagsSec.body;
    const propsSec = section('Properties (git, host, ...)', 'lb-properties-section', false);
    this._properties = propsSec.body;
    const envSec = section('Environment', 'lb-environment-section', false);
    this._environment = envSec.body;
    const snapSec = section('Snapshot', 'lb-snapshot-section', false);
    this._snapshot = snapSec.body;
    const dataSec = section('Data (inputs and outputs)', 'lb-data-section', false);
    this._data = dataSec.body;
    const specSec = section('Run spec', 'lb-spec-section', false);
    this._spec = specSec.body;

    for (const n of [
      header,
      this._subtitle,
      this._message,
      this._error,
      overview.details,
      pipelineSec.details,
      logSec.details,
      metricsSec.details,
      systemSec.details,
      filesSec.details,
      paramsSec.details,
      tagsSec.details,
      propsSec.details,
      envSec.details,
      snapSec.details,
      dataSec.details,
      specSec.details
    ]) {
      this.node.appendChild(n);
    }
  }

  get run(): IRun | null {
    return this._run;
  }

  protected onAfterAttach(): void {
    if (!this._started) {
      this._started = true;
      void this._start();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearTimeout(this._logTimer);
    window.clearTimeout(this._runTimer);
    this._logged.dispose();
    super.dispose();
  }

  private async _start(): Promise<void> {
    try {
      this._render(await getRun(this.runId));
    } catch (error) {
      this._showMessage(String((error as Error).message || error));
      return;
    }
    await Promise.all([this._pollLog(), this._refreshMetrics(), this._refreshFiles()]);
    this._scheduleLog();
    this._scheduleRun();
  }

  private _showMessage(text: string): void {
    this._message.textContent = text;
    this._message.style.display = text ? '' : 'none';
  }

  private _render(run: IRun): void {
    const first = this._run === null;
    const wasTerminal = this._run ? isTerminal(this._run.status) : false;
    this._run = run;
    this._name.textContent = run.name ? `${run.name}` : run.run_id;
    this._status.textContent = '';
    const shown = shownStatus(run.status, run.tags);
    const css = shown === run.status ? run.status : 'stopped-early';
    this._status.className = `lb-run-status lb-status-${css}`;
    this._status.dataset.status = run.status;
    this._status.textContent = shown;
    this._statusDetail.textContent = run.status_detail ? `— ${run.status_detail}` : '';
    this._cancel.style.display = isTerminal(run.status) ? 'none' : '';
    this.title.label = `Run ${run.run_id}`;
    this.title.caption = `${run.experiment} / ${run.name || run.run_id}: ${run.status}`;

    this._subtitle.textContent = '';
    this._subtitle.appendChild(el('span', 'lb-run-id', run.run_id));
    this._subtitle.appendChild(el('span', 'lb-run-experiment', run.experiment));
    if (run.target) {
      this._subtitle.appendChild(el('span', 'lb-run-target', run.target));
    }
    if (run.rerun_of) {
      const origin = run.rerun_of;
      const rerunOf = el('span', 'lb-run-rerun-of', 're-run of ');
      const link = el('a', 'lb-run-link', origin);
      link.href = '#';
      link.onclick = ev => {
        ev.preventDefault();
        this._openRun(origin);
      };
      rerunOf.appendChild(link);
      this._subtitle.appendChild(rerunOf);
    }

    if (run.error && run.error.message) {
      this._error.textContent = '';
      this._error.appendChild(el('div', 'lb-run-error-message', run.error.message));
      if (run.error.traceback) {
        this._error.appendChild(el('pre', 'lb-run-error-traceback', run.error.traceback));
      }
      this._error.style.display = '';
    } else {
      this._error.style.display = 'none';
    }

    const overview: { [key: string]: any } = {
      experiment: run.experiment,
      target: run.target,
      script: run.script,
      arguments: (run.arguments || []).join(' '),
      created: formatTime(run.created),
      started: formatTime(run.started),
      ended: formatTime(run.ended),
      duration: formatDuration(runDuration(run)),
      exit_code: run.exit_code
    };
    if (run.primary_metric) {
      overview[`primary metric (${run.primary_metric.name})`] = run.primary_metric.value;
    }
    const dist = run.distributed;
    if (dist) {
      const world = dist.process_count_per_node * dist.node_count;
      overview.distributed = `${dist.kind}: ${world} processes` + (dist.node_count > 1 ? ` on ${dist.node_count} nodes` : '');
      if (!this._rankPicker.options.length) {
        for (let rank = 0; rank < world; rank++) {
          const option = el('option', '', `rank ${rank}`);
          option.value = String(rank);
          this._rankPicker.appendChild(option);
        }
        this._rankPicker.style.display = '';
      }
    }
    this._replace(this._overview, kvTable(overview, 'lb-overview-table', false));
    this._replace(this._params, kvTable(run.params, 'lb-params'));
    this._replace(this._tags, kvTable(run.tags, 'lb-tags'));
    this._replace(this._properties, kvTable(run.properties, 'lb-properties'));
    this._replace(this._environment, kvTable(run.environment, 'lb-environment'));
    const snap = run.snapshot || {};
    this._replace(
      this._snapshot,
      kvTable({ id: snap.id, files: snap.files, size: formatBytes(snap.bytes ?? null) }, 'lb-snapshot')
    );
    const data: { [key: string]: string } = {};
    for (const item of [...(run.inputs || []), ...(run.outputs || [])]) {
      const named = item.dataset ? ` (${item.dataset}:${item.dataset_version})` : '';
      const arrow = item.mode === 'output' ? '→ ' : '';
      data[`${arrow}${item.name}`] =
        `${item.source}${named} · version ${item.version.slice(0, 12)} · ${item.files} files, ` +
        `${formatBytes(item.bytes)} · ${item.mode}`;
    }
    this._replace(this._data, kvTable(data, 'lb-data', false));
    if (run.spec) {
      this._replace(this._spec, el('pre', 'lb-spec', JSON.stringify(run.spec, null, 2)));
    } else {
      this._replace(this._spec, el('div', 'lb-none', 'none'));
    }
    if (isPipeline(run)) {
      this._pipelineSection.style.display = '';
      void this._refreshPipeline();
    }
    if (!first && !wasTerminal && isTerminal(run.status)) {
      // Final round: everything the run wrote by the end.
      void this._pollLog();
      void this._refreshMetrics();
      void this._refreshFiles();
    }
  }

  /** Redraw the pipeline's DAG and its steps' table (the server draws the SVG from the store's state). */
  private async _refreshPipeline(): Promise<void> {
    if (this._pipelineBusy) {
      return;
    }
    this._pipelineBusy = true;
    try {
      const pipeline = await getPipeline(this.runId);
      const dag = el('div', 'lb-pipeline-dag');
      dag.innerHTML = pipeline.svg; // built by launchbay's server, every text in it escaped
      const table = el('table', 'lb-pipeline-steps');
      const head = el('tr');
      for (const h of ['step', 'status', 'run', 'why']) {
        head.appendChild(el('th', '', h));
      }
      table.appendChild(head);
      for (const step of pipeline.steps) {
        const row = el('tr', 'lb-pipeline-step');
        row.dataset.step = step.name;
        row.appendChild(el('td', 'lb-pipeline-step-name', step.name));
        row.appendChild(el('td', `lb-pipeline-step-status lb-status-${step.status}`, step.reused_from ? 'reused' : step.status));
        const cell = el('td');
        const runId = step.reused_from || step.run_id;
        if (runId) {
          const link = el('a', 'lb-run-link', runId);
          link.href = '#';
          link.setAttribute('data-run-id', runId);
          cell.appendChild(link);
        }
        row.appendChild(cell);
        row.appendChild(el('td', 'lb-pipeline-step-reason', step.reason || ''));
        table.appendChild(row);
      }
      this._pipeline.textContent = '';
      this._pipeline.appendChild(dag);
      this._pipeline.appendChild(table);
    } catch (error) {
      this._pipeline.textContent = String((error as Error).message || error);
    } finally {
      this._pipelineBusy = false;
    }
  }

  private _replace(parent: HTMLElement, child: HTMLElement): void {
    parent.textContent = '';
    parent.appendChild(child);
  }

  private _scheduleLog(): void {
    if (this.isDisposed) {
      return;
    }
    this._logTimer = window.setTimeout(async () => {
      await this._pollLog();
      if (this._run && isTerminal(this._logStatus || this._run.status)) {
        // One more round after the end, then stop: the log is complete.
        await this._pollLog();
        return;
      }
      this._scheduleLog();
    }, LOG_POLL_MS);
  }

  private _scheduleRun(): void {
    if (this.isDisposed || (this._run && isTerminal(this._run.status))) {
      return;
    }
    this._runTimer = window.setTimeout(async () => {
      try {
        this._render(await getRun(this.runId));
        await this._refreshMetrics();
        await this._refreshFiles(); // ./outputs and ./logs arrive while the run runs
      } catch (_e) {
        /* transient; try again */
      }
      this._scheduleRun();
    }, RUN_POLL_MS);
  }

  /** Show another rank's log from its start. */
  private _showRank(rank: number): void {
    this._rank = rank;
    this._logOffset = 0;
    this._logText.data = '';
    this._log.classList.remove('lb-log-truncated');
    this._logAgain = this._logBusy; // a poll in flight for the old rank: poll again when it is done
    void this._pollLog();
  }

  /** Fetch log bytes after the current offset (drains big logs in a few rounds). */
  private async _pollLog(): Promise<void> {
    if (this._logBusy) {
      return;
    }
    this._logBusy = true;
    try {
      for (let i = 0; i < 20; i++) {
        const rank = this._rank;
        const chunk = await getLog(this.runId, this._logOffset, rank);
        if (rank !== this._rank) {
          break; // the picker moved meanwhile: this text is another rank's
        }
        this._logStatus = chunk.status;
        if (chunk.offset === this._logOffset || !chunk.text) {
          this._logOffset = chunk.offset;
          break;
        }
        this._logOffset = chunk.offset;
        this._appendLog(chunk.text);
      }
      if (this._run && this._logStatus && this._logStatus !== this._run.status) {
        // The log endpoint saw a newer status first; refresh the header now.
        this._render(await getRun(this.runId));
      }
    } catch (_e) {
      /* transient */
    } finally {
      this._logBusy = false;
    }
    if (this._logAgain) {
      this._logAgain = false;
      await this._pollLog();
    }
  }

  private _appendLog(text: string): void {
    const pre = this._log;
    const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
    this._logText.appendData(text);
    if (this._logText.length > LOG_MAX_CHARS) {
      const drop = this._logText.length - LOG_MAX_CHARS;
      this._logText.deleteData(0, drop);
      pre.classList.add('lb-log-truncated');
    }
    if (atBottom) {
      pre.scrollTop = pre.scrollHeight;
    }
  }

  private async _refreshMetrics(): Promise<void> {
    if (this._metricsBusy) {
      return;
    }
    this._metricsBusy = true;
    try {
      const { metrics } = await listMetrics(this.runId);
      const anyLogged = await this._logged.refresh();
      const own = metrics.filter(m => !m.name.startsWith(SYSTEM_PREFIX));
      if (!own.length && !this._ownCharts) {
        this._charts.textContent = '';
        if (!anyLogged) {
          this._charts.appendChild(el('div', 'lb-none', 'No metrics logged yet.'));
        }
      }
      for (const m of metrics) {
        let chart = this._chartsByName.get(m.name);
        if (!chart) {
          chart = new LineChart(m.name);
          this._chartsByName.set(m.name, chart);
          if (m.name.startsWith(SYSTEM_PREFIX)) {
            this._systemSection.style.display = '';
            this._systemCharts.appendChild(chart.node);
          } else {
            if (!this._ownCharts) {
              this._charts.textContent = '';
            }
            this._ownCharts++;
            this._charts.appendChild(chart.node);
          }
        }
        const last = chart.lastStep(this.runId);
        if (last !== null && m.last_step !== null && m.last_step <= last) {
          continue;
        }
        const series = await getMetric(this.runId, m.name, last, 2000);
        chart.append(this.runId, series.steps, series.values, PALETTE[0]);
      }
    } catch (_e) {
      /* transient */
    } finally {
      this._metricsBusy = false;
    }
  }

  private async _refreshFiles(): Promise<void> {
    try {
      const { files } = await listFiles(this.runId);
      if (files.some(f => f.name.startsWith('logs/') && f.name.indexOf('.tfevents.') >= 0)) {
        this._tensorboard.style.display = '';
      }
      const body = this._files;
      body.textContent = '';
      if (!files.length) {
        body.appendChild(el('div', 'lb-none', this._run && isTerminal(this._run.status) ? 'No output files.' : 'No output files yet.'));
        return;
      }
      const ul = el('ul', 'lb-files');
      for (const f of files) {
        const li = el('li', 'lb-file');
        const a = el('a', 'lb-file-link', f.name);
        a.href = fileUrl(this.runId, f.name);
        a.download = f.name.split('/').pop() || f.name;
        a.onclick = ev => {
          ev.preventDefault();
          downloadFile(this.runId, f.name).catch(error =>
            void showErrorMessage('Download failed', String((error as Error).message || error))
          );
        };
        li.appendChild(a);
        li.appendChild(el('span', 'lb-file-size', formatBytes(f.size)));
        ul.appendChild(li);
      }
      body.appendChild(ul);
    } catch (error) {
      this._replace(this._files, el('div', 'lb-none', String((error as Error).message || error)));
    }
  }

  private async _onCancel(): Promise<void> {
    const result = await showDialog({
      title: 'Cancel run',
      body: `Cancel run ${this.runId}? It is stopped on ${this._run?.target || 'its target'}; the log and metrics so far are kept.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel run' })]
    });
    if (!result.button.accept) {
      return;
    }
    this._cancel.disabled = true;
    try {
      const { status } = await cancelRun(this.runId);
      if (this._run) {
        this._render({ ...this._run, status });
      }
    } catch (error) {
      await showErrorMessage('Cancel failed', String((error as Error).message || error));
    } finally {
      this._cancel.disabled = false;
    }
  }

  private async _onTensorBoard(): Promise<void> {
    this._tensorboard.disabled = true;
    this._tensorboardLink.textContent = 'starting TensorBoard…';
    this._tensorboardLink.removeAttribute('href');
    try {
      const { url } = await startTensorBoard(this.runId);
      this._tensorboardLink.href = url;
      this._tensorboardLink.textContent = url;
      window.open(url, '_blank', 'noopener');
    } catch (error) {
      this._tensorboardLink.textContent = '';
      await showErrorMessage('TensorBoard', String((error as Error).message || error));
    } finally {
      this._tensorboard.disabled = false;
    }
  }

  private async _onRerun(): Promise<void> {
    const current = this._run?.target || '';
    let target: string | null;
    let names: string[] = [];
    try {
      names = (await listTargets()).targets.map(t => t.name);
    } catch (_e) {
      names = [];
    }
    if (names.length) {
      if (current && names.indexOf(current) < 0) {
        names.unshift(current);
      }
      const result = await InputDialog.getItem({
        title: `Re-run ${this.runId} (same snapshot and environment) on target`,
        items: names,
        current: current ? names.indexOf(current) : 0,
        editable: true,
        okLabel: 'Re-run'
      });
      if (!result.button.accept) {
        return;
      }
      target = result.value;
    } else {
      const result = await InputDialog.getText({
        title: `Re-run ${this.runId} (same snapshot and environment) on target`,
        text: current,
        placeholder: 'target name',
        okLabel: 'Re-run'
      });
      if (!result.button.accept) {
        return;
      }
      target = result.value;
    }
    target = target && target.trim() ? target.trim() : null;
    this._rerun.disabled = true;
    try {
      const { run_id } = await rerun(this.runId, target);
      this._openRun(run_id);
    } catch (error) {
      await showErrorMessage('Re-run failed', String((error as Error).message || error));
    } finally {
      this._rerun.disabled = false;
    }
  }

  private _openRun: (runId: string) => void;
  private _run: IRun | null = null;
  private _started = false;
  private _name: HTMLElement;
  private _status: HTMLSpanElement;
  private _statusDetail: HTMLSpanElement;
  private _cancel: HTMLButtonElement;
  private _rerun: HTMLButtonElement;
  private _tensorboard: HTMLButtonElement;
  private _tensorboardLink: HTMLAnchorElement;
  private _subtitle: HTMLDivElement;
  private _error: HTMLDivElement;
  private _message: HTMLDivElement;
  private _overview: HTMLDivElement;
  private _pipeline: HTMLDivElement;
  private _pipelineSection: HTMLDetailsElement;
  private _pipelineBusy = false;
  private _log: HTMLPreElement;
  private _logText: Text;
  private _logOffset = 0;
  private _rank = 0;
  private _rankPicker: HTMLSelectElement;
  private _logAgain = false;
  private _logStatus = '';
  private _logBusy = false;
  private _logTimer = 0;
  private _runTimer = 0;
  private _charts: HTMLDivElement;
  private _chartsByName = new Map<string, LineChart>();
  private _logged: LoggedView;
  private _ownCharts = 0;
  private _systemCharts: HTMLDivElement;
  private _systemSection: HTMLDetailsElement;
  private _metricsBusy = false;
  private _files: HTMLDivElement;
  private _params: HTMLDivElement;
  private _tags: HTMLDivElement;
  private _properties: HTMLDivElement;
  private _environment: HTMLDivElement;
  private _snapshot: HTMLDivElement;
  private _data: HTMLDivElement;
  private _spec: HTMLDivElement;
}
