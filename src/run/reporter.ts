import { formatSeconds } from '../format/text.js';
import { redact } from '../errors/redact.js';

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

/**
 * Plain log lines (CI, Lambda, Batch, pipes): a start line, a line every `everyPercent`, and a finish line. Logged
 * messages leave with every URL's credentials redacted.
 */
export function lineReporter(write: (line: string) => void = (l) => process.stderr.write(`${l}\n`), everyPercent = 25): Reporter {
  return {
    log: (message) => write(redact(message)),
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

/** A reporter that discards everything (tests, nested work). */
export const silentReporter: Reporter = { log: () => {}, task: () => ({ tick: () => {}, done: () => {} }) };
