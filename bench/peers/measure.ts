/**
 * Runs one benchmark child and measures its wall time and the peak RSS of its whole process tree.
 *
 * Peak RSS is the larger of two measurements, both from the kernel:
 * - the highest resident set any one process of the tree reached: `/usr/bin/time -f %M` (the kernel's ru_maxrss of
 *   the waited-for children, exact however short the peak) when that program exists, and each process's `VmHWM`
 *   from `/proc/<pid>/status` polled every 100 ms either way;
 * - the tree's summed `VmRSS` polled every 100 ms (counts processes that are resident at the same time, e.g. a
 *   worker pool; a peak between two polls can be missed, so this part is a lower bound).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What one measured run gave. */
export interface MeasuredRun {
  wallSeconds: number;
  peakRssMb: number;
  stdout: string;
}

/** How to run a measured child. */
export interface MeasureOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Each line the child writes (stdout and stderr), e.g. to show progress; stdout is also returned whole. */
  onLine?: (line: string) => void;
  pollMs?: number;
}

/** pid and parent pid from the text of `/proc/<pid>/stat` (the command name may hold spaces and parentheses). */
export function parseProcStat(text: string): { pid: number; ppid: number } {
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return { pid: Number.parseInt(text, 10), ppid: Number(fields[1]) };
}

/** A `kB` field (`VmRSS`, `VmHWM`) of `/proc/<pid>/status`, in kB; 0 when absent (kernel threads, zombies). */
export function statusKb(text: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/** `root` and every process whose chain of parents reaches it. */
export function descendants(root: number, parentOf: ReadonlyMap<number, number>): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parentOf) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const tree = new Set([root]);
  const stack = [root];
  while (stack.length) {
    for (const child of children.get(stack.pop()!) ?? []) {
      if (tree.has(child)) continue;
      tree.add(child);
      stack.push(child);
    }
  }
  return tree;
}

/** Tracks the peak of a process tree across polls. */
export class TreePeak {
  private sumKb = 0;
  private hwmKb = 0;

  /** Adds one poll: each live process of the tree with its `VmRSS` and `VmHWM` (kB). */
  add(processes: readonly { rssKb: number; hwmKb: number }[]): void {
    this.sumKb = Math.max(this.sumKb, processes.reduce((s, p) => s + p.rssKb, 0));
    for (const p of processes) this.hwmKb = Math.max(this.hwmKb, p.hwmKb);
  }

  /** The peak in MB (2^20 bytes), given the kernel's ru_maxrss of the tree in kB when it was measured. */
  peakMb(maxRssKb = 0): number {
    return Math.max(this.sumKb, this.hwmKb, maxRssKb) / 1024;
  }
}

/** Runs `command args` and returns its stdout, wall seconds and peak tree RSS; rejects when it exits non-zero. */
export function runMeasured(command: string, args: readonly string[], options: MeasureOptions): Promise<MeasuredRun> {
  const timeDir = mkdtempSync(join(tmpdir(), 'textshift-peer-time-'));
  const timeFile = join(timeDir, 'maxrss');
  const wrapped = hasGnuTime() ? ['/usr/bin/time', ['-f', '%M', '-o', timeFile, command, ...args]] as const : [command, args] as const;
  const peak = new TreePeak();
  const started = performance.now();
  const child = spawn(wrapped[0], wrapped[1], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  // /usr/bin/time itself is a small process; the command runs under it, so its RSS is in the tree.
  const poll = setInterval(() => child.pid !== undefined && peak.add(sampleTree(child.pid)), options.pollMs ?? 100);
  let stdout = '';
  const lines = (chunk: Buffer, keep: boolean) => {
    const text = chunk.toString();
    if (keep) stdout += text;
    for (const line of text.split('\n')) if (line.trim()) options.onLine?.(line);
  };
  child.stdout.on('data', (d: Buffer) => lines(d, true));
  child.stderr.on('data', (d: Buffer) => lines(d, false));
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      clearInterval(poll);
      rmSync(timeDir, { recursive: true, force: true });
      reject(err);
    });
    child.on('close', (code) => {
      clearInterval(poll);
      const wallSeconds = (performance.now() - started) / 1000;
      let maxRssKb = 0;
      try {
        maxRssKb = Number.parseInt(readFileSync(timeFile, 'utf8').trim().split('\n').at(-1) ?? '', 10) || 0;
      } catch {
        // Not wrapped, or the command failed before /usr/bin/time wrote the file: the polled peak stands.
      }
      rmSync(timeDir, { recursive: true, force: true });
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}`));
      else resolve({ wallSeconds, peakRssMb: peak.peakMb(maxRssKb), stdout });
    });
  });
}

let gnuTime: boolean | undefined;
function hasGnuTime(): boolean {
  if (gnuTime === undefined) {
    try {
      accessSync('/usr/bin/time', constants.X_OK);
      gnuTime = true;
    } catch {
      gnuTime = false;
    }
  }
  return gnuTime;
}

/** VmRSS and VmHWM of every live process under `root`, from /proc (processes that exit mid-read are skipped). */
function sampleTree(root: number): { rssKb: number; hwmKb: number }[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { pid, ppid } = parseProcStat(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      parentOf.set(pid, ppid);
    } catch {
      // exited since readdir
    }
  }
  const sample: { rssKb: number; hwmKb: number }[] = [];
  for (const pid of descendants(root, parentOf)) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      sample.push({ rssKb: statusKb(status, 'VmRSS'), hwmKb: statusKb(status, 'VmHWM') });
    } catch {
      // exited since the tree was read
    }
  }
  return sample;
}
