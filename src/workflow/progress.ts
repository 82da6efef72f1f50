import cliProgress from 'cli-progress';

/** A unit of long work with a known size. */
export interface ProgressTask {
  /** Advances by n units (default 1). */
  tick(n?: number): void;
  /** Marks the task finished. */
  done(): void;
}

/** Where stages report progress and notable events; the CLI shows bars on a TTY, plain lines elsewhere. */
export interface Reporter {
  task(label: string, total: number, unit: string): ProgressTask;
  log(message: string): void;
}

/** Plain log lines (CI, Lambda, Batch, pipes): a start line, a line every `everyPercent`, and a finish line. */
export function lineReporter(write: (line: string) => void = (l) => process.stderr.write(`${l}\n`), everyPercent = 25): Reporter {
  return {
    log: write,
    task(label, total, unit) {
      const start = Date.now();
      let done = 0;
      let nextMark = everyPercent;
      write(`${label}: 0/${total} ${unit}`);
      return {
        tick(n = 1) {
          done += n;
          const pct = total ? (100 * done) / total : 100;
          if (pct >= nextMark && done < total) {
            const elapsed = (Date.now() - start) / 1000;
            const eta = done ? (elapsed * (total - done)) / done : 0;
            write(`${label}: ${done}/${total} ${unit} (${Math.floor(pct)}%, ETA ${formatSeconds(eta)})`);
            while (nextMark <= pct) nextMark += everyPercent;
          }
        },
        done() {
          write(`${label}: ${total}/${total} ${unit} done in ${formatSeconds((Date.now() - start) / 1000)}`);
        },
      };
    },
  };
}

/** Progress bars with counts and ETA on a TTY (one bar per running task). */
export function ttyReporter(stream: NodeJS.WriteStream = process.stderr): Reporter & { stop(): void } {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: ' {label} |{bar}| {value}/{total} {unit} | {percentage}% | ETA {eta_formatted}',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    log: (message) => multi.log(`${message}\n`),
    task(label, total, unit) {
      const start = Date.now();
      const bar = multi.create(Math.max(total, 1), 0, { label: label.padEnd(28).slice(0, 28), unit });
      return {
        tick: (n = 1) => bar.increment(n),
        // A finished bar gives way to one summary line, so the screen shows only work in progress.
        done: () => {
          multi.remove(bar);
          multi.log(`${label}: ${total}/${total} ${unit} done in ${formatSeconds((Date.now() - start) / 1000)}\n`);
        },
      };
    },
    stop: () => multi.stop(),
  };
}

/** A reporter that discards everything (tests, nested work). */
export const silentReporter: Reporter = { log: () => {}, task: () => ({ tick: () => {}, done: () => {} }) };

/** 75 -> "1m15s". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
