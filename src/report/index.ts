import type { BlobStore } from '../store/blob-store.js';
import { runKeys } from '../run/keys.js';
import type { Results } from '../run/records.js';
import type { Manifest } from '../run/manifest.js';
import { confusionFileName, confusionSvg } from './confusion-svg.js';
import { computeCost, costMarkdown, type CostOptions, type CostReport, type RunUsage } from '../cost/cost.js';
import { renderFailureHtml, renderReportHtml } from './html.js';
import { toManifestView, type RunManifestView } from './manifest-view.js';
import { bundledPriceTable, type PriceTable } from '../cost/prices.js';
import { resultsCsv, resultsMarkdown, resultsTable } from './results-table.js';
import { writeModelEventFile } from '../train/tfevents.js';
import { InternalError } from '../errors/index.js';

/** What the Report stage hands over. */
export interface RunReportInputs {
  results: Results;
  /** The run's manifest document (as stored in manifest.json) or an already-read view of it. */
  manifest: unknown;
  /** Measured or billed usage; without it the report has no cost section and no cost files. */
  usage?: RunUsage;
  /** Prices to use (default: the bundled table). */
  prices?: PriceTable;
  costOptions?: Partial<CostOptions>;
  /** ISO time stamped into the report (default: now). */
  generatedAt?: string;
  /** Host name in event file names (default: this machine's). */
  host?: string;
}

/** Keys written by `writeRunReport`. */
export interface RunReportKeys {
  resultsJson: string;
  resultsMd: string;
  resultsCsv: string;
  html: string;
  costJson?: string;
  costMd?: string;
  confusion: string[];
  /** TensorBoard event files, one per model (kept when the training job already wrote one). */
  logs: string[];
}

/**
 * Writes a run's report through the store: `report/{results.md,results.csv,report.html,cost.json,cost.md,
 * confusion/*.svg}`, TensorBoard logs of models that have none, and `report/results.json` last, so its presence
 * means the report is complete. Every put is atomic. Returns the keys and the cost report (for printing).
 */
export async function writeRunReport(
  store: BlobStore,
  runId: string,
  inputs: RunReportInputs,
): Promise<{ keys: RunReportKeys; cost?: CostReport }> {
  if (inputs.results.runId !== runId) {
    throw new InternalError(`writeRunReport: results belong to run ${inputs.results.runId}, not ${runId}`);
  }
  const k = runKeys(runId);
  const manifest = toManifestView(inputs.manifest, k.manifest);
  const table = resultsTable(inputs.results);
  const cost = inputs.usage && computeCost(inputs.usage, inputs.prices ?? bundledPriceTable(), inputs.costOptions);
  const keys: RunReportKeys = {
    resultsJson: k.report('results.json'),
    resultsMd: k.report('results.md'),
    resultsCsv: k.report('results.csv'),
    html: k.report('report.html'),
    confusion: [],
    logs: [],
  };

  await store.put(keys.resultsMd, resultsMarkdown(table));
  await store.put(keys.resultsCsv, resultsCsv(table));
  for (const e of inputs.results.evaluations) {
    const key = k.report(`confusion/${confusionFileName(e.model, e.dataset)}`);
    await store.put(key, confusionSvg(e, inputs.results.classNames[e.dataset] ?? []));
    keys.confusion.push(key);
  }
  if (cost !== undefined) {
    keys.costJson = k.report('cost.json');
    keys.costMd = k.report('cost.md');
    await store.put(keys.costJson, `${JSON.stringify(cost, null, 2)}\n`);
    await store.put(keys.costMd, costMarkdown(cost));
  }
  for (const [model, start] of modelStartTimes(inputs.results, manifest)) {
    const host = inputs.host === undefined ? {} : { host: inputs.host };
    keys.logs.push(await writeModelEventFile(store, runId, model, { startWallTime: start, ...host }));
  }
  const generatedAt = inputs.generatedAt ?? new Date().toISOString();
  await store.put(keys.html, renderReportHtml({ results: inputs.results, manifest, generatedAt, ...(cost ? { cost } : {}) }));
  await store.put(keys.resultsJson, `${JSON.stringify(inputs.results, null, 2)}\n`);
  return cost === undefined ? { keys } : { keys, cost };
}

/** Writes `report/report.html` of a failed run from its manifest document: the failure and the run metadata. */
export async function writeFailureReport(store: BlobStore, manifest: Manifest, generatedAt = new Date().toISOString()): Promise<string> {
  const key = runKeys(manifest.runId).report('report.html');
  await store.put(key, renderFailureHtml({ manifest: toManifestView(manifest, runKeys(manifest.runId).manifest), generatedAt }));
  return key;
}

/**
 * Start time (Unix seconds) of each model's training: its family's train stage start (`train:<feature>`, else
 * `train`, else the run start) plus the earlier stages of the family.
 */
function modelStartTimes(results: Results, manifest: RunManifestView): [Results['models'][number], number][] {
  const elapsed = new Map<string, number>();
  return results.models.map((m) => {
    const stage = manifest.stages[`train:${m.feature}`] ?? manifest.stages.train;
    const start = Date.parse(stage?.startedAt ?? manifest.startedAt ?? '');
    const before = elapsed.get(m.feature) ?? 0;
    elapsed.set(m.feature, before + m.seconds);
    return [m, (Number.isFinite(start) ? start / 1000 : Date.now() / 1000) + before];
  });
}
