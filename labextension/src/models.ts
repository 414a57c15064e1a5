/**
 * The Models view: every registered model version (newest first per model),
 * each linked to the run that produced it.
 */
import { Widget } from '@lumino/widgets';

import { IModelVersion, el, formatBytes, formatTime, formatValue, getModel, listModels } from './api';

export interface IModelsOptions {
  openRun: (runId: string) => void;
}

export class ModelsView extends Widget {
  constructor(options: IModelsOptions) {
    super();
    this._openRun = options.openRun;
    this.addClass('lb-models-view');
    this.title.label = 'Models';
    this.title.caption = 'launchbay model registry';
    const header = el('div', 'lb-run-header');
    header.appendChild(el('h2', 'lb-run-title', 'Registered models'));
    const refresh = el('button', 'jp-mod-styled lb-refresh', 'Refresh');
    refresh.onclick = () => void this.refresh();
    header.appendChild(refresh);
    this._message = el('div', 'lb-message');
    this._body = el('div', 'lb-models');
    this.node.appendChild(header);
    this.node.appendChild(this._message);
    this.node.appendChild(this._body);
  }

  protected onAfterAttach(): void {
    void this.refresh();
  }

  /** Load every model and all of its versions. */
  async refresh(): Promise<void> {
    this._message.textContent = 'Loading…';
    try {
      const { models } = await listModels();
      const all = await Promise.all(models.map(m => getModel(m.name)));
      this._body.textContent = '';
      this._message.textContent = models.length
        ? ''
        : 'No models yet: call run.register_model("name", path="outputs/model.pt") in a run.';
      for (const model of all) {
        this._body.appendChild(this._table(model.name, model.versions));
      }
    } catch (error) {
      this._message.textContent = String((error as Error).message || error);
    }
  }

  private _table(name: string, versions: IModelVersion[]): HTMLElement {
    const wrap = el('div', 'lb-model');
    wrap.dataset.model = name;
    wrap.appendChild(el('h3', 'lb-model-name', name));
    const table = el('table', 'lb-compare-table lb-model-table');
    const head = el('tr');
    for (const h of ['version', 'run', 'path', 'size', 'metrics', 'tags', 'registered']) {
      head.appendChild(el('th', '', h));
    }
    const thead = el('thead');
    thead.appendChild(head);
    table.appendChild(thead);
    const body = el('tbody');
    for (const v of versions) {
      const tr = el('tr', 'lb-model-version');
      tr.dataset.version = String(v.version);
      tr.appendChild(el('td', '', String(v.version)));
      const runCell = el('td');
      if (v.run_id) {
        const link = el('a', 'lb-run-link', v.run_id);
        link.href = '#';
        link.onclick = ev => {
          ev.preventDefault();
          this._openRun(v.run_id as string);
        };
        runCell.appendChild(link);
      } else {
        runCell.textContent = '-';
      }
      tr.appendChild(runCell);
      tr.appendChild(el('td', '', `${v.path}${v.kind === 'folder' ? '/' : ''}`));
      tr.appendChild(el('td', '', formatBytes(v.bytes)));
      const metrics = Object.keys(v.metrics || {}).map(k => `${k}=${formatValue(v.metrics[k])}`);
      tr.appendChild(el('td', '', metrics.join(', ')));
      const tags = Object.keys(v.tags || {}).map(k => `${k}=${v.tags[k]}`);
      tr.appendChild(el('td', '', tags.join(', ')));
      tr.appendChild(el('td', '', formatTime(v.created)));
      if (v.description) {
        tr.title = v.description;
      }
      body.appendChild(tr);
    }
    table.appendChild(body);
    wrap.appendChild(table);
    return wrap;
  }

  private _openRun: (runId: string) => void;
  private _message: HTMLDivElement;
  private _body: HTMLDivElement;
}
