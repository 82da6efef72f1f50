// `textshift plan` and `textshift run` through the real CLI (scripts/textshift.js) on the tiny experiment and the real
// data: an experiment over a bound is refused by both, naming the bound; plan shows the cost guard's check (estimate
// against the limit) and exits non-zero when Prepare would refuse the run.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../support/cli.js';

const TINY = 'test/fixtures/experiments/tiny.json';
const dir = mkdtempSync(join(tmpdir(), 'textshift-cli-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The tiny experiment with `edit` applied, written as `<name>.json` in the test folder. */
function tinyWith(name: string, edit: (e: Record<string, Record<string, unknown>>) => void): string {
  const e = JSON.parse(readFileSync(TINY, 'utf8')) as Record<string, Record<string, unknown>>;
  edit(e);
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(e));
  return file;
}

describe('textshift plan / run: bounds and the cost guard (CLI as a child process)', () => {
  it('both refuse an experiment asking for 1e9 epochs, naming the field, the value and the bound', async () => {
    const file = tinyWith('endless', (e) => (e.training!.epochs = 1e9));
    const bound = `${file}: invalid experiment\n  - training.epochs: Too big: expected number to be <=1000 (got 1000000000)`;
    const plan = await runCli(['plan', file]);
    expect(plan.code).toBe(1);
    expect(plan.stderr).toContain(`textshift plan failed: ${bound}`);
    const out = join(dir, 'out');
    const run = await runCli(['run', file, '--quick', '--out', out]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`textshift run failed: ${bound}`);
  }, 60_000);

  it("shows the estimate within cdk.json's limit and exits 0; over a limit given with -c, names the numbers and exits 1", async () => {
    const ok = await runCli(['plan', TINY, '--quick']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const estimate = /cost {4}estimate (\$\d+\.\d{4}), limit \$25 \(maxRunCostUsd in cdk\.json; an experiment may set budgetUsd up to \$250\)/.exec(ok.stdout);
    expect(estimate, ok.stdout).not.toBeNull();
    expect(ok.stdout).toContain('Within limits: Prepare runs this experiment.');
    // The plan's own total is the estimate the check compares.
    expect(ok.stdout).toMatch(new RegExp(`^total +\\${estimate![1]}$`, 'm'));

    const refused = await runCli(['plan', TINY, '--quick', '-c', 'maxRunCostUsd=0.0001']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain(`cost    estimate ${estimate![1]}, limit $0.0001 (maxRunCostUsd in cdk.json;`);
    expect(refused.stdout).toContain('Prepare would refuse this run:');
    expect(refused.stderr).toContain(
      `textshift plan: Prepare would refuse this run: ${TINY}: the run's estimated cost ${estimate![1]} is above its limit $0.0001 (maxRunCostUsd in cdk.json). ` +
        'To run it, set "budgetUsd" in the experiment (at most $250',
    );

    // The experiment raises its own limit: within budget again.
    const raised = await runCli(['plan', tinyWith('raised', (e) => ((e as Record<string, unknown>).budgetUsd = 10)), '--quick', '-c', 'maxRunCostUsd=0.0001']);
    expect(raised.code).toBe(0);
    expect(raised.stdout).toContain('limit $10 (budgetUsd in the experiment;');
  }, 120_000);

  it('rejects a -c setting that is not a deployment setting, or one cdk.json validation refuses', async () => {
    const unknown = await runCli(['plan', TINY, '-c', 'maxRunCost=5']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/--context maxRunCost=5: unknown deployment setting "maxRunCost"; expected one of stackName, /);
    const above = await runCli(['plan', TINY, '-c', 'maxRunCostUsd=1000']);
    expect(above.code).toBe(1);
    expect(above.stderr).toContain('context "maxRunCostUsd": expected at most maxRunCostCeilingUsd (250), got 1000');
  }, 60_000);
});
