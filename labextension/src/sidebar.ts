/**
 * The left-sidebar run browser: filter by experiment / status / text,
 * newest first, paginated ("Load more"), live via the cheap `changes` poll.
 */
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  ALL_STATUSES,
  IRun,
  cancelRun,
  changes,
  el,
  formatDuration,
  formatTime,
  formatValue,
  getRun,
  isTerminal,
  listExperiments,
  listRuns,
  listUsers,
  runDuration,
  statusBadge
} from './api';

const PAGE = 50;
const POLL_MS = 2000;

/** How many of a name's last characters a narrow row always shows (`lr-0.001`, a run id's counter). */
const NAME_TAIL = 10;

/**
 * A run's name that keeps its distinguishing end in view in a narrow row: the start gives way to an
 * ellipsis in the middle ("launchbay-qu…-lr-0.001"); the full name is its tooltip. The tail's width is
 * given in `ch` (the name is in the code font), so the head is cut exactly where the tail begins.
 */
export function runName(name: string): HTMLSpanElement {
  const span = el('span', 'lb-run-name');
  span.title = name;
  const cut = Math.max(0, name.length - NAME_TAIL);
  span.style.setProperty('--lb-name-tail', `${name.length - cut}ch`);
  span.appendChild(el('span', 'lb-run-name-head', name.slice(0, cut)));
  span.appendChild(el('span', 'lb-run-name-tail', name.slice(cut)));
  return span;
}

export interface ISidebarOptions {
  openRun: (runId: string) => void;
  compare: (runIds: string[]) => void;
  openModels: () => void;
}

export class RunsSidebar extends Widget {
  constructor(options: ISidebarOptions) {
    super();
    this._options = options;
    this.id = 'launchbay-sidebar';
    this.addClass('lb-sidebar');
    this.title.caption = 'launchbay runs';

    const header = el('div', 'lb-sidebar-header');
    header.appendChild(el('span', 'lb-sidebar-title', 'launchbay'));
    this._compareBtn = el('button', 'jp-mod-styled jp-mod-accept lb-compare', 'Compare');
    this._compareBtn.disabled = true;
    this._compareBtn.title = 'Select two or more runs to compare';
    this._compareBtn.onclick = () => {
      if (this._selected.size >= 2) {
        this._options.compare(Array.from(this._selected));
      }
    };
    const refresh = el('button', 'jp-mod-styled lb-refresh', 'Refresh');
    refresh.onclick = () => void this.refresh();
    const modelsBtn = el('button', 'jp-mod-styled lb-models-button', 'Models');
    modelsBtn.title = 'Registered models';
    modelsBtn.onclick = () => this._options.openModels();
    header.appendChild(this._compareBtn);
    header.appendChild(modelsBtn);
    header.appendChild(refresh);

    const filters = el('div', 'lb-filters');
    this._experiment = el('select', 'lb-filter-experiment');
    this._experiment.appendChild(new Option('All experiments', ''));
    this._experiment.onchange = () => void this.reload();
    this._status = el('select', 'lb-filter-status');
    this._status.appendChild(new Option('Any status', ''));
    for (const s of ALL_STATUSES) {
      this._status.appendChild(new Option(s, s));
    }
    this._status.onchange = () => void this.reload();
    this._user = el('select', 'lb-filter-user');
    this._user.title = 'Show the runs one person made';
    this._user.appendChild(new Option('Anyone', ''));
    this._user.style.display = 'none'; // shown once the store has runs by two or more people
    this._user.onchange = () => void this.reload();
    this._text = el('input', 'lb-filter-text');
    this._text.type = 'search';
    this._text.placeholder = 'Search runs (id, name, tag, param)';
    this._text.oninput = () => {
      window.clearTimeout(this._textTimer);
      this._textTimer = window.setTimeout(() => void this.reload(), 300);
    };
    filters.appendChild(this._experiment);
    filters.appendChild(this._status);
    filters.appendChild(this._user);
    filters.appendChild(this._text);

    this._message = el('div', 'lb-message');
    this._summary = el('div', 'lb-summary');
    this._list = el('div', 'lb-run-list');
    this._list.onclick = ev => this._onListClick(ev);
    this._more = el('button', 'jp-mod-styled lb-load-more', 'Load more');
    this._more.onclick = () => void this._loadMore();
    this._more.style.display = 'none';

    this.node.appendChild(header);
    this.node.appendChild(filters);
    this.node.appendChild(this._message);
    this.node.appendChild(this._summary);
    this.node.appendChild(this._list);
    this.node.appendChild(this._more);
  }

  /** Ids of the selected runs, in selection order. */
  get selected(): string[] {
    return Array.from(this._selected);
  }

  /** Reload experiments and the first page of runs. */
  async refresh(): Promise<void> {
    await Promise.all([this._loadExperiments(), this._loadUsers()]); // rows show who made them on a shared store
    await this.reload();
  }

  /** Reload the first page with the current filters. */
  async reload(): Promise<void> {
    const gen = ++this._generation;
    this._showMessage('');
    try {
      const page = await listRuns({ ...this._query(), limit: PAGE, offset: 0 });
      if (gen !== this._generation) {
        return;
      }
      this._rows.clear();
      this._runs.clear();
      this._list.textContent = '';
      this._total = page.total;
      this._appendRuns(page.runs);
      if (page.runs.length === 0) {
        this._list.appendChild(
          el('div', 'lb-empty', this._hasFilter() ? 'No runs match these filters.' : 'No runs yet: put %%submit on top of a notebook cell.')
        );
      }
      this._updateFooter();
    } catch (error) {
      if (gen === this._generation) {
        this._showMessage(String((error as Error).message || error));
      }
    }
  }

  protected onAfterAttach(): void {
    if (!this._started) {
      this._started = true;
      void this.refresh();
      this._schedulePoll();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearTimeout(this._pollTimer);
    window.clearTimeout(this._textTimer);
    super.dispose();
  }

  private _query() {
    return {
      experiment: this._experiment.value || undefined,
      status: this._status.value || undefined,
      user: this._user.value || undefined,
      q: this._text.value.trim() || undefined
    };
  }

  private _hasFilter(): boolean {
    const q = this._query();
    return !!(q.experiment || q.status || q.user || q.q);
  }

  /** The user filter: "Anyone", "Mine", then everyone with a run; only on a store that two or more share. */
  private async _loadUsers(): Promise<void> {
    try {
      const { users, me } = await listUsers();
      const current = this._user.value;
      this._user.textContent = '';
      this._user.appendChild(new Option('Anyone', ''));
      this._user.appendChild(new Option(`Mine (${me})`, me));
      for (const u of users) {
        if (u.name !== me) {
          this._user.appendChild(new Option(`${u.name} (${u.runs})`, u.name));
        }
      }
      const was = this._shared;
      this._shared = users.length > 1;
      this._user.style.display = this._shared || current ? '' : 'none';
      this._user.value = current;
      if (this._usersLoaded && this._shared !== was) {
        void this.reload(); // a second person's first run: every row now says who made it
      }
      this._usersLoaded = true;
    } catch (error) {
      this._showMessage(String((error as Error).message || error));
    }
  }

  private async _loadExperiments(): Promise<void> {
    try {
      const { experiments } = await listExperiments();
      const current = this._experiment.value;
      this._experiment.textContent = '';
      this._experiment.appendChild(new Option('All experiments', ''));
      for (const e of experiments) {
        this._experiment.appendChild(new Option(`${e.name} (${e.runs})`, e.name));
      }
      if (current && !experiments.some(e => e.name === current)) {
        this._experiment.appendChild(new Option(current, current));
      }
      this._experiment.value = current;
    } catch (error) {
      this._showMessage(String((error as Error).message || error));
    }
  }

  private async _loadMore(): Promise<void> {
    const gen = this._generation;
    this._more.disabled = true;
    try {
      const page = await listRuns({ ...this._query(), limit: PAGE, offset: this._runs.size });
      if (gen !== this._generation) {
        return;
      }
      this._total = page.total;
      this._appendRuns(page.runs.filter(r => !this._runs.has(r.run_id)));
      this._updateFooter();
    } catch (error) {
      this._showMessage(String((error as Error).message || error));
    } finally {
      this._more.disabled = false;
    }
  }

  private _appendRuns(runs: IRun[], prepend = false): void {
    const frag = document.createDocumentFragment();
    for (const run of runs) {
      this._runs.set(run.run_id, run);
      const row = this._renderRow(run);
      this._rows.set(run.run_id, row);
      frag.appendChild(row);
    }
    const empty = this._list.querySelector('.lb-empty');
    if (empty && runs.length) {
      empty.remove();
    }
    if (prepend) {
      this._list.insertBefore(frag, this._list.firstChild);
    } else {
      this._list.appendChild(frag);
    }
  }

  private _renderRow(run: IRun): HTMLDivElement {
    const row = el('div', 'lb-run-row');
    row.dataset.runId = run.run_id;
    row.dataset.status = run.status;
    row.title = `Open run ${run.run_id}`;

    const check = el('input', 'lb-run-select');
    check.type = 'checkbox';
    check.checked = this._selected.has(run.run_id);
    check.title = 'Select for comparison';
    row.appendChild(check);

    const main = el('div', 'lb-run-main');
    const line1 = el('div', 'lb-run-line1');
    line1.appendChild(statusBadge(run.status, run.tags));
    if (run.status_detail) {
      line1.appendChild(el('span', 'lb-run-status-detail', `— ${run.status_detail}`));
    }
    line1.appendChild(runName(run.name || run.run_id));
    const line2 = el('div', 'lb-run-line2');
    const exp = el('span', 'lb-run-experiment', run.experiment);
    exp.title = `Show only experiment ${run.experiment}`;
    line2.appendChild(exp);
    if (run.target) {
      line2.appendChild(el('span', 'lb-run-target', run.target));
    }
    if (this._shared && run.created_by) {
      const by = el('span', 'lb-run-user', run.created_by);
      by.title = `Made by ${run.created_by}`;
      line2.appendChild(by);
    }
    line2.appendChild(el('span', 'lb-run-started', formatTime(run.started || run.created)));
    line2.appendChild(el('span', 'lb-run-duration', formatDuration(runDuration(run))));
    main.appendChild(line1);
    main.appendChild(line2);
    row.appendChild(main);

    const metric = el('div', 'lb-run-metric');
    if (run.primary_metric && run.primary_metric.value !== null && run.primary_metric.value !== undefined) {
      metric.appendChild(el('span', 'lb-run-metric-name', run.primary_metric.name));
      metric.appendChild(el('span', 'lb-run-metric-value', formatValue(run.primary_metric.value)));
    }
    if (!isTerminal(run.status)) {
      const cancel = el('button', 'jp-mod-styled jp-mod-warn lb-row-cancel', 'Cancel');
      cancel.title = `Cancel run ${run.run_id}`;
      metric.appendChild(cancel);
    }
    row.appendChild(metric);
    return row;
  }

  private _onListClick(ev: MouseEvent): void {
    const target = ev.target as HTMLElement;
    const row = target.closest('.lb-run-row') as HTMLElement | null;
    if (!row || !row.dataset.runId) {
      return;
    }
    const runId = row.dataset.runId;
    if (target.classList.contains('lb-run-select')) {
      const checked = (target as HTMLInputElement).checked;
      if (checked) {
        this._selected.add(runId);
      } else {
        this._selected.delete(runId);
      }
      row.classList.toggle('lb-selected', checked);
      this._updateCompare();
      return;
    }
    if (target.classList.contains('lb-row-cancel')) {
      void this._cancel(runId, target as HTMLButtonElement);
      return;
    }
    if (target.classList.contains('lb-run-experiment')) {
      const name = this._runs.get(runId)?.experiment;
      if (name) {
        if (![...this._experiment.options].some(o => o.value === name)) {
          this._experiment.appendChild(new Option(name, name));
        }
        this._experiment.value = name;
        void this.reload();
      }
      return;
    }
    this._options.openRun(runId);
  }

  /** Cancel a run from its row (after a confirmation), then show its new status. */
  private async _cancel(runId: string, button: HTMLButtonElement): Promise<void> {
    const run = this._runs.get(runId);
    const result = await showDialog({
      title: 'Cancel run',
      body: `Cancel run ${runId}? It is stopped on ${run?.target || 'its target'}; the log and metrics so far are kept.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel run' })]
    });
    if (!result.button.accept) {
      return;
    }
    button.disabled = true;
    button.textContent = 'Canceling…';
    try {
      await cancelRun(runId);
      this._replaceRow(await getRun(runId));
    } catch (error) {
      button.disabled = false;
      button.textContent = 'Cancel';
      await showErrorMessage('Cancel failed', String((error as Error).message || error));
    }
  }

  private _updateCompare(): void {
    const n = this._selected.size;
    this._compareBtn.disabled = n < 2;
    this._compareBtn.textContent = n >= 2 ? `Compare (${n})` : 'Compare';
  }

  private _updateFooter(): void {
    const shown = this._runs.size;
    this._summary.textContent = this._total ? `${shown} of ${this._total} runs` : '';
    this._more.style.display = shown < this._total ? '' : 'none';
  }

  private _showMessage(text: string): void {
    this._message.textContent = text;
    this._message.style.display = text ? '' : 'none';
  }

  private _replaceRow(run: IRun): void {
    const old = this._rows.get(run.run_id);
    if (!old) {
      return;
    }
    this._runs.set(run.run_id, run);
    const row = this._renderRow(run);
    row.classList.toggle('lb-selected', this._selected.has(run.run_id));
    old.replaceWith(row);
    this._rows.set(run.run_id, row);
  }

  private _schedulePoll(): void {
    if (this.isDisposed) {
      return;
    }
    this._pollTimer = window.setTimeout(() => {
      void this._poll().finally(() => this._schedulePoll());
    }, POLL_MS);
  }

  /** One live-update round: ask what changed since the last round. */
  private async _poll(): Promise<void> {
    if (!this.isVisible) {
      return;
    }
    // Tick the durations of rows that are still running.
    for (const [id, run] of this._runs) {
      if (!isTerminal(run.status) && run.started) {
        const d = this._rows.get(id)?.querySelector('.lb-run-duration');
        if (d) {
          d.textContent = formatDuration(runDuration(run));
        }
      }
    }
    const since = this._since ?? Date.now() / 1000 - 5;
    let result;
    try {
      result = await changes(since);
    } catch (_error) {
      return; // the next Refresh shows the error; don't spam it every 2 s
    }
    this._since = result.now;
    if (!result.runs.length) {
      return;
    }
    const known = result.runs.filter(r => this._rows.has(r.run_id));
    const unknown = result.runs.filter(r => !this._rows.has(r.run_id));
    await Promise.all(
      known.map(async r => {
        try {
          this._replaceRow(await getRun(r.run_id));
        } catch (_e) {
          /* deleted meanwhile */
        }
      })
    );
    if (unknown.length) {
      await this._prependNew();
    }
  }

  /** New runs appeared: fetch the first page and put the unseen ones on top. */
  private async _prependNew(): Promise<void> {
    const gen = this._generation;
    const page = await listRuns({ ...this._query(), limit: PAGE, offset: 0 });
    if (gen !== this._generation) {
      return;
    }
    const fresh: IRun[] = [];
    for (const run of page.runs) {
      if (this._runs.has(run.run_id)) {
        break;
      }
      fresh.push(run);
    }
    if (fresh.length) {
      this._total = page.total;
      this._appendRuns(fresh, true);
      this._updateFooter();
      void this._loadExperiments();
      void this._loadUsers();
    }
  }

  private _options: ISidebarOptions;
  private _compareBtn: HTMLButtonElement;
  private _experiment: HTMLSelectElement;
  private _status: HTMLSelectElement;
  private _user: HTMLSelectElement;
  /** Runs by two or more people in this store: show who made each run and the user filter. */
  private _shared = false;
  private _usersLoaded = false;
  private _text: HTMLInputElement;
  private _message: HTMLDivElement;
  private _summary: HTMLDivElement;
  private _list: HTMLDivElement;
  private _more: HTMLButtonElement;
  private _rows = new Map<string, HTMLDivElement>();
  private _runs = new Map<string, IRun>();
  private _selected = new Set<string>();
  private _total = 0;
  private _generation = 0;
  private _since: number | null = null;
  private _pollTimer = 0;
  private _textTimer = 0;
  private _started = false;
}
