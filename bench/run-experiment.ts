/** Runs an experiment in this process on a fresh store in a temp folder (removed afterwards), as the bench children do. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { resolveDataRoot } from '../src/data/data-root.js';
import { FsBlobStore } from '../src/store/fs-store.js';
import { runLocal, type LocalRunResult } from '../src/workflow/local-runner.js';
import { lineReporter } from '../src/run/reporter.js';

/** What to run: an experiment file (relative to `root`), optionally only some feature families. */
export interface BenchExperiment {
  root: string;
  experiment: string;
  quick: boolean;
  families?: string[];
  /** Featurize worker threads (default: the local runner's, one per core). */
  workers?: number;
  /** Data root flag (default: the CLI's lookup from `root`). */
  dataRoot?: string;
}

/** Runs it and returns the run's results with the wall and CPU seconds it took. */
export async function runBenchExperiment(e: BenchExperiment): Promise<{ run: LocalRunResult; wall: number; cpu: number }> {
  const out = mkdtempSync(join(tmpdir(), 'textshift-bench-'));
  try {
    const t0 = performance.now();
    const cpu = process.cpuUsage();
    const data = resolveDataRoot({ cwd: e.root, ...(e.dataRoot ? { flag: e.dataRoot } : {}) });
    let experimentPath = join(e.root, e.experiment);
    if (e.families) {
      const exp = JSON.parse(readFileSync(experimentPath, 'utf8')) as Record<string, Record<string, unknown> | undefined>;
      const keep = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([name]) => e.families!.includes(name)));
      // Subsample sections are keyed by family too; the experiment is invalid if they name a dropped one.
      for (const section of ['features', 'subsample', 'quickSubsample']) if (exp[section]) exp[section] = keep(exp[section]);
      experimentPath = join(out, basename(e.experiment));
      writeFileSync(experimentPath, JSON.stringify(exp));
    }
    const run = await runLocal({
      store: new FsBlobStore(join(out, 'store')),
      data: new FsBlobStore(data.dir),
      experimentPath,
      quick: e.quick,
      ...(e.workers ? { workers: e.workers } : {}),
      reporter: lineReporter(() => {}),
    });
    const used = process.cpuUsage(cpu);
    return { run, wall: (performance.now() - t0) / 1000, cpu: (used.user + used.system) / 1e6 };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
