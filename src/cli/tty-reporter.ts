import cliProgress from 'cli-progress';
import { formatSeconds } from '../format/text.js';
import type { Reporter } from '../run/reporter.js';
import { redact } from '../errors/redact.js';

/** Progress bars with counts and ETA on a TTY (one bar per running task); logged messages leave redacted. */
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
    log: (message) => multi.log(`${redact(message)}\n`),
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
