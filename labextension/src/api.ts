/**
 * Typed client for the launchbay REST API (served by launchbay's Jupyter
 * server extension under `<base_url>launchbay/api/`). The contract is
 * written down in src/launchbay/server/openapi.yaml.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const TERMINAL_STATUSES = ['Completed', 'Failed', 'Canceled'];
export const ALL_STATUSES = [
  'Queued',
  'Preparing',
  'Starting',
  'Running',
  'Finalizing',
  'Completed',
  'Failed',
  'Canceled'
];

export function isTerminal(status: string): boolean {
  return TERMINAL_STATUSES.indexOf(status) >= 0;
}

export interface IRunError {
  message: string;
  traceback?: string | null;
}

export interface IDataItem {
  name: string;
  source: string;
  version: string;
  files: number;
  bytes: number;
  bytes_sent: number;
  mode: string;
  dataset?: string | null;
  dataset_version?: number | null;
}

export interface IRun {
  run_id: string;
  name?: string | null;
  experiment: string;
  status: string;
  /** What follows the status on its line: what a full disk kept out ("5,000 points not written: disk full"). */
  status_detail?: string | null;
  not_written?: { points: number; output_lines: number; reason: string } | null;
  target?: string | null;
  /** Who made the run ([user] name, else the login name). */
  created_by?: string | null;
  script?: string | null;
  arguments?: string[];
  created?: string | null;
  started?: string | null;
  ended?: string | null;
  duration_s?: number | null;
  exit_code?: number | null;
  /** The run this one re-ran (same snapshot), if any. */
  rerun_of?: string | null;
  error?: IRunError | null;
  tags?: { [key: string]: any };
  params?: { [key: string]: any };
  properties?: { [key: string]: any };
  snapshot?: { id?: string | null; files?: number | null; bytes?: number | null } | null;
  /** The data the run read, each with its version (the hash of its files); detail only. */
  inputs?: IDataItem[];
  /** The dataset versions the run made (--output, run.register_dataset); detail only. */
  outputs?: IDataItem[];
  primary_metric?: { name: string; value: number | null } | null;
  environment?: any;
  spec?: any;
  /** A distributed run's launch: {kind, process_count_per_node, node_count, ...}. */
  distributed?: { kind: string; process_count_per_node: number; node_count: number; [key: string]: any } | null;
}

export interface IRunsPage {
  runs: IRun[];
  total: number;
}

export interface IRunsQuery {
  experiment?: string;
  status?: string;
  /** Only the runs this person made (their `created_by`). */
  user?: string;
  q?: string;
  limit?: number;
  offset?: number;
}

export interface IExperiment {
  name: string;
  runs: number;
}

/** Who made runs, how many each, and who this server makes runs as. */
export interface IUsers {
  users: { name: string; runs: number }[];
  me: string;
}

export interface ILogChunk {
  text: string;
  offset: number;
  status: string;
}

export interface IMetricSummary {
  name: string;
  count: number;
  last: number | null;
  last_step: number | null;
}

export interface IMetricSeries {
  name: string;
  steps: number[];
  values: number[];
}

export interface IFileEntry {
  name: string;
  size: number;
}

export interface IFileDiff {
  path: string;
  status: 'added' | 'removed' | 'modified';
  unified: string;
  /** Why there is no unified diff (binary or large file, diff too long). */
  note?: string;
  binary?: boolean;
}

export interface ICompareResult {
  runs: IRun[];
  params: { keys: string[]; differing: string[] };
  diff: { files: IFileDiff[] };
}

export interface IChanges {
  now: number;
  runs: { run_id: string; status: string; updated: number }[];
}

export interface IModelVersion {
  name: string;
  version: number;
  run_id: string | null;
  experiment?: string | null;
  path: string;
  kind: 'file' | 'folder';
  files: number;
  bytes: number;
  tags: { [key: string]: string };
  description?: string | null;
  metrics: { [key: string]: number | null };
  environment_hash?: string | null;
  snapshot_id?: string | null;
  created: string;
  /** Only in the models list: the latest version number and how many versions there are. */
  latest_version?: number;
  versions?: number;
}

export interface ITarget {
  name: string;
  type: string;
}

/** An error from the launchbay API, with the server's one-sentence message. */
export class LaunchbayError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

const API = 'launchbay/api';

function settings(): ServerConnection.ISettings {
  return ServerConnection.makeSettings();
}

/** Absolute URL of an API path (segments are URL-encoded by the caller). */
export function apiUrl(path: string, query?: { [key: string]: any }): string {
  const s = settings();
  let url = URLExt.join(s.baseUrl, API, path);
  if (query) {
    const parts: string[] = [];
    for (const key of Object.keys(query)) {
      const v = query[key];
      if (v === undefined || v === null || v === '') {
        continue;
      }
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`);
    }
    if (parts.length) {
      url += '?' + parts.join('&');
    }
  }
  return url;
}

async function request<T>(
  path: string,
  query?: { [key: string]: any },
  init: RequestInit = {}
): Promise<T> {
  const s = settings();
  const url = apiUrl(path, query);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, s);
  } catch (error) {
    throw new LaunchbayError(
      `Could not reach the launchbay server extension: ${error}`,
      0
    );
  }
  const text = await response.text();
  let data: any = null;
  if (text.length) {
    try {
      data = JSON.parse(text);
    } catch (_e) {
      data = text;
    }
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    if (data && typeof data === 'object') {
      message = data.message || data.error || data.reason || message;
    } else if (response.status === 404) {
      // Jupyter's own HTML 404: the launchbay handlers are not registered.
      message =
        'The launchbay server extension is not enabled: run `jupyter server extension enable launchbay` and restart JupyterLab.';
    }
    throw new LaunchbayError(String(message), response.status);
  }
  return data as T;
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

/** Encode a relative file path segment by segment (keeps the slashes). */
function encPath(p: string): string {
  return p.split('/').map(enc).join('/');
}

export function listRuns(query: IRunsQuery): Promise<IRunsPage> {
  return request<IRunsPage>('runs', {
    experiment: query.experiment,
    status: query.status,
    user: query.user,
    q: query.q,
    limit: query.limit ?? 50,
    offset: query.offset ?? 0
  });
}

export function listExperiments(): Promise<{ experiments: IExperiment[] }> {
  return request('experiments');
}

export function listUsers(): Promise<IUsers> {
  return request('users');
}

export function getRun(runId: string): Promise<IRun> {
  return request<IRun>(`runs/${enc(runId)}`);
}

export interface IPipelineStep {
  name: string;
  /** A run status, or Waiting / NotStarted. */
  status: string;
  run_id: string | null;
  /** The run whose results this step reused, else null. */
  reused_from: string | null;
  /** Why the step ran or was reused. */
  reason: string | null;
}

export interface IPipeline {
  run_id: string;
  status: string;
  steps: IPipelineStep[];
  edges: { from: string; output: string; to: string; input: string }[];
  /** The DAG as the notebook widget draws it: boxes carry data-step and data-run-id. */
  svg: string;
}

/** Is this run a pipeline (its steps are its children)? */
export function isPipeline(run: IRun): boolean {
  return run.target === 'pipeline' || (run.tags || {})['launchbay.type'] === 'pipeline';
}

export function getPipeline(runId: string): Promise<IPipeline> {
  return request<IPipeline>(`runs/${enc(runId)}/pipeline`);
}

/** Log text after ``offset``; ``rank`` (a distributed run's) reads that rank's own log. */
export function getLog(runId: string, offset: number, rank = 0): Promise<ILogChunk> {
  return request<ILogChunk>(`runs/${enc(runId)}/log`, { offset, rank: rank || undefined });
}

export function listMetrics(
  runId: string
): Promise<{ metrics: IMetricSummary[] }> {
  return request(`runs/${enc(runId)}/metrics`);
}

export function getMetric(
  runId: string,
  name: string,
  afterStep?: number | null,
  buckets = 2000
): Promise<IMetricSeries> {
  return request<IMetricSeries>(`runs/${enc(runId)}/metrics/${enc(name)}`, {
    after_step: afterStep,
    buckets
  });
}

export function listFiles(runId: string): Promise<{ files: IFileEntry[] }> {
  return request(`runs/${enc(runId)}/files`);
}

/** URL of a run's output file; it goes through the server's auth cookies. */
export function fileUrl(runId: string, path: string): string {
  return apiUrl(`runs/${enc(runId)}/files/${encPath(path)}`);
}

/** Download a run's output file via an authenticated request. */
export async function downloadFile(runId: string, path: string): Promise<void> {
  const s = settings();
  const response = await ServerConnection.makeRequest(
    fileUrl(runId, path),
    {},
    s
  );
  if (!response.ok) {
    throw new LaunchbayError(
      `Could not download ${path}: ${response.status} ${response.statusText}`,
      response.status
    );
  }
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = path.split('/').pop() || path;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

export function cancelRun(runId: string): Promise<{ status: string }> {
  return request(`runs/${enc(runId)}/cancel`, undefined, { method: 'POST' });
}

/** Start (or reuse) TensorBoard over the run's ./logs on the server's machine; its URL. */
export function startTensorBoard(runId: string): Promise<{ url: string }> {
  return request(`runs/${enc(runId)}/tensorboard`, undefined, { method: 'POST' });
}

export function rerun(
  runId: string,
  target: string | null
): Promise<{ run_id: string }> {
  return request(`runs/${enc(runId)}/rerun`, undefined, {
    method: 'POST',
    body: JSON.stringify({ target }),
    headers: { 'Content-Type': 'application/json' }
  });
}

export function compare(runIds: string[]): Promise<ICompareResult> {
  return request<ICompareResult>('compare', { runs: runIds.join(',') });
}

export function changes(since: number): Promise<IChanges> {
  return request<IChanges>('changes', { since });
}

export function listModels(): Promise<{ models: IModelVersion[] }> {
  return request('models');
}

export function getModel(name: string): Promise<{ name: string; versions: IModelVersion[] }> {
  return request(`models/${enc(name)}`);
}

export function listTargets(): Promise<{ targets: ITarget[] }> {
  return request('targets');
}

/* ---------- small formatting helpers shared by the views ---------- */

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || isNaN(seconds)) {
    return '';
  }
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s}s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m}m ${s % 60}s`;
  }
  const h = Math.floor(m / 60);
  return `${h}h ${m % 60}m`;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const d = new Date(iso);
  if (isNaN(d.getTime())) {
    return iso;
  }
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString()
    : d.toLocaleDateString() + ' ' + d.toLocaleTimeString();
}

export function formatValue(v: any): string {
  if (v === null || v === undefined) {
    return '';
  }
  if (typeof v === 'number') {
    if (Number.isInteger(v)) {
      return String(v);
    }
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(6));
  }
  if (typeof v === 'object') {
    return JSON.stringify(v);
  }
  return String(v);
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return '';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${x} B` : `${x.toFixed(1)} ${units[i]}`;
}

/** Elapsed run time: duration_s if known, else now - started while running. */
export function runDuration(run: IRun): number | null {
  if (run.duration_s !== null && run.duration_s !== undefined) {
    return run.duration_s;
  }
  if (run.started && !isTerminal(run.status)) {
    const t = new Date(run.started).getTime();
    if (!isNaN(t)) {
      return (Date.now() - t) / 1000;
    }
  }
  return null;
}

/** Create an element with a class and optional text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** Set on a sweep's child that the sweep's early-termination policy stopped. */
export const EARLY_TERMINATION_TAG = 'launchbay.early_termination';

/** What to show: "stopped early" for a sweep child its policy stopped (its status stays Canceled). */
export function shownStatus(status: string, tags?: { [key: string]: any }): string {
  return status === 'Canceled' && tags && tags[EARLY_TERMINATION_TAG]
    ? 'stopped early'
    : status;
}

export function statusBadge(
  status: string,
  tags?: { [key: string]: any }
): HTMLSpanElement {
  const shown = shownStatus(status, tags);
  const css = shown === status ? status : 'stopped-early';
  const span = el('span', `lb-status lb-status-${css}`, shown);
  span.title = shown === status ? status : String(tags![EARLY_TERMINATION_TAG]);
  return span;
}

/** Images, tables, rows and lists a run logged (`GET runs/{id}/logged`). */
export interface ILoggedImage {
  step: number;
  file: string;
  ts: number;
}

export interface ILoggedEntry {
  name: string;
  kind: 'image' | 'table' | 'rows' | 'list';
  updated: number;
  images?: ILoggedImage[];
  columns?: { [column: string]: any[] };
  row_count?: number;
  values?: any[];
}

export interface ILogged {
  version: number;
  changed: boolean;
  logged: ILoggedEntry[];
}

export function getLogged(runId: string, since: number | null): Promise<ILogged> {
  return request(`runs/${enc(runId)}/logged`, { since: since === null ? undefined : since });
}

/** A run's file as an object URL (for <img>), fetched with the server's authentication. */
export async function fileObjectUrl(runId: string, path: string, type = 'image/png'): Promise<string> {
  const response = await ServerConnection.makeRequest(fileUrl(runId, path), {}, settings());
  if (!response.ok) {
    throw new LaunchbayError(`Could not fetch ${path}: ${response.status}`, response.status);
  }
  const blob = await response.blob();
  return URL.createObjectURL(new Blob([blob], { type }));
}
