/**
 * A run's images, tables, rows and lists (everything but scalar series), shown in
 * the run view under the metric charts: images as a gallery (the latest of each
 * name, a step slider to go back), tables and rows as tables, lists as charts.
 */
import { ILoggedEntry, ILoggedImage, el, fileObjectUrl, formatValue, getLogged } from './api';
import { LineChart, PALETTE } from './chart';

/** Rows of a table shown at most (the last ones); the API caps them too. */
const TABLE_ROWS = 200;

/** JSON carries NaN and infinities as strings: back to numbers for charts. */
function toNumber(v: any): number {
  if (typeof v === 'number') {
    return v;
  }
  if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') {
    return Number(v);
  }
  return NaN;
}

class Gallery {
  readonly node: HTMLDivElement;

  constructor(runId: string, name: string) {
    this._runId = runId;
    this.node = el('div', 'lb-gallery-item');
    this.node.dataset.name = name;
    this._img = el('img', 'lb-gallery-img');
    this._img.alt = name;
    this._caption = el('div', 'lb-gallery-caption');
    this._slider = el('input', 'lb-gallery-slider');
    this._slider.type = 'range';
    this._slider.min = '0';
    this._slider.step = '1';
    this._slider.value = '0';
    this._slider.title = 'step';
    this._sliderRow = el('label', 'lb-gallery-slider-row', 'step');
    this._sliderRow.appendChild(this._slider);
    this._sliderRow.style.display = 'none';
    this._slider.oninput = () => void this._show();
    this._name = name;
    this.node.appendChild(this._img);
    this.node.appendChild(this._caption);
    this.node.appendChild(this._sliderRow);
  }

  update(images: ILoggedImage[]): void {
    const atLatest = Number(this._slider.value) >= this._images.length - 1;
    this._images = images;
    this._slider.max = String(images.length - 1);
    this._sliderRow.style.display = images.length > 1 ? '' : 'none';
    if (atLatest) {
      this._slider.value = String(images.length - 1); // follow the newest while it is shown
    }
    void this._show();
  }

  /** Show the current image again if its file could not be fetched before. */
  retry(): void {
    const index = Math.min(Number(this._slider.value), this._images.length - 1);
    if (this._images.length && this._img.dataset.file !== this._images[index].file) {
      void this._show();
    }
  }

  dispose(): void {
    for (const url of this._urls.values()) {
      URL.revokeObjectURL(url);
    }
  }

  private async _show(): Promise<void> {
    const index = Math.min(Number(this._slider.value), this._images.length - 1);
    const image = this._images[index];
    if (!image) {
      return;
    }
    const latest = this._images.length - 1;
    this._caption.textContent = '';
    this._caption.appendChild(el('b', '', this._name));
    this._caption.appendChild(
      el('span', 'lb-gallery-step', ` step ${image.step} of ${latest}${image.step === latest ? ' (latest)' : ''}`)
    );
    this.node.dataset.step = String(image.step);
    let url = this._urls.get(image.file);
    if (!url) {
      try {
        url = await fileObjectUrl(this._runId, image.file);
      } catch (_e) {
        return; // not synced back yet: a later refresh shows it
      }
      this._urls.set(image.file, url);
    }
    if (Math.min(Number(this._slider.value), this._images.length - 1) === index) {
      // still the step asked for (the slider may have moved while fetching)
      this._img.src = url;
      this._img.dataset.file = image.file;
    }
  }

  private _runId: string;
  private _name: string;
  private _img: HTMLImageElement;
  private _caption: HTMLDivElement;
  private _slider: HTMLInputElement;
  private _sliderRow: HTMLLabelElement;
  private _images: ILoggedImage[] = [];
  private _urls = new Map<string, string>();
}

export function loggedTable(entry: ILoggedEntry): HTMLElement {
  const wrap = el('div', 'lb-logged-table');
  wrap.dataset.name = entry.name;
  const columns = Object.keys(entry.columns || {});
  const rowCount = entry.row_count ?? Math.max(0, ...columns.map(c => (entry.columns![c] || []).length));
  const shownRows = Math.max(0, ...columns.map(c => (entry.columns![c] || []).length));
  const first = Math.max(0, shownRows - TABLE_ROWS);
  const caption = el('div', 'lb-logged-caption');
  caption.appendChild(el('b', '', entry.name));
  const note = rowCount > shownRows - first ? `, last ${shownRows - first} shown` : '';
  caption.appendChild(
    el('span', '', ` (${entry.kind}, ${rowCount} row${rowCount === 1 ? '' : 's'} × ${columns.length} column${columns.length === 1 ? '' : 's'}${note})`)
  );
  wrap.appendChild(caption);
  const scroll = el('div', 'lb-logged-table-scroll');
  const table = el('table', 'lb-kv lb-logged-grid');
  const head = el('thead');
  const headRow = el('tr');
  for (const c of columns) {
    headRow.appendChild(el('th', '', c));
  }
  head.appendChild(headRow);
  table.appendChild(head);
  const body = el('tbody');
  for (let i = first; i < shownRows; i++) {
    const tr = el('tr');
    for (const c of columns) {
      const v = (entry.columns![c] || [])[i];
      tr.appendChild(el('td', '', v === null || v === undefined ? '' : formatValue(v)));
    }
    body.appendChild(tr);
  }
  table.appendChild(body);
  scroll.appendChild(table);
  wrap.appendChild(scroll);
  return wrap;
}

export class LoggedView {
  readonly node: HTMLDivElement;

  constructor(runId: string) {
    this._runId = runId;
    this.node = el('div', 'lb-logged');
    this._gallery = el('div', 'lb-gallery');
    this._tables = el('div', 'lb-logged-tables');
    this._lists = el('div', 'lb-logged-lists');
    this.node.appendChild(this._gallery);
    this.node.appendChild(this._tables);
    this.node.appendChild(this._lists);
  }

  /** Whether anything is shown. */
  get isEmpty(): boolean {
    return this._count === 0;
  }

  /** Fetch what changed since the last call and redraw it; true when anything is shown. */
  async refresh(): Promise<boolean> {
    const answer = await getLogged(this._runId, this._version);
    this._version = answer.version;
    if (!answer.changed) {
      for (const g of this._galleries.values()) {
        g.retry(); // an image whose file had not been synced back yet
      }
      return !this.isEmpty;
    }
    this._tables.textContent = '';
    for (const entry of answer.logged) {
      if (entry.kind === 'image') {
        let gallery = this._galleries.get(entry.name);
        if (!gallery) {
          gallery = new Gallery(this._runId, entry.name);
          this._galleries.set(entry.name, gallery);
          this._gallery.appendChild(gallery.node);
        }
        gallery.update(entry.images || []);
      } else if (entry.kind === 'list') {
        let chart = this._charts.get(entry.name);
        if (!chart) {
          chart = new LineChart(`${entry.name} (list)`);
          chart.node.classList.add('lb-logged-list');
          this._charts.set(entry.name, chart);
          this._lists.appendChild(chart.node);
        }
        const values = (entry.values || []).map(toNumber);
        chart.series.length = 0; // a list is replaced as a whole
        chart.append('values', values.map((_v, i) => i), values, PALETTE[0]);
      } else {
        this._tables.appendChild(loggedTable(entry));
      }
    }
    this._count = answer.logged.length;
    return !this.isEmpty;
  }

  dispose(): void {
    for (const g of this._galleries.values()) {
      g.dispose();
    }
  }

  private _runId: string;
  private _version: number | null = null;
  private _count = 0;
  private _gallery: HTMLDivElement;
  private _tables: HTMLDivElement;
  private _lists: HTMLDivElement;
  private _galleries = new Map<string, Gallery>();
  private _charts = new Map<string, LineChart>();
}
