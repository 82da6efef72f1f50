// Opens the generated report.html in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// and checks what a reader sees: the table values, every chart drawn, and that the page fetched nothing.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRunReport } from '../../src/report/index.js';
import { FsBlobStore } from '../../src/store/fs-store.js';
import { sampleManifest, sampleResults, sampleUsage } from '../fixtures/report/sample-run.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT_DIR = join(import.meta.dirname, '../../out/screenshots');
const results = sampleResults();

describe('report.html in headless Chromium (/usr/bin/chromium)', () => {
  let dir: string;
  let browser: Browser;
  let page: Page;
  const blocked: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install Debian's with \`apt-get update && apt-get install -y chromium\` (.ci/run does) or set CHROMIUM_PATH`);
    }
    dir = await mkdtemp(join(tmpdir(), 'textshift-report-e2e-'));
    const store = new FsBlobStore(dir);
    const { keys } = await writeRunReport(store, results.runId, {
      results,
      manifest: sampleManifest(),
      usage: sampleUsage(),
      generatedAt: '2026-11-26T05:27:16.004Z',
      host: 'e2e',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // Every request goes through here: the report file itself is allowed, anything else fails the test.
    await page.route('**/*', async (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    await page.goto(pathToFileURL(store.pathOf(keys.html)).href, { waitUntil: 'load' });
  });

  afterAll(async () => {
    await browser?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('shows every fixture accuracy in the results table, 4 decimals', async () => {
    expect(await page.locator('[data-testid="results-table"] tbody tr').count()).toBe(4);
    for (const e of results.evaluations) {
      const cell = page.getByTestId(`acc-${e.model}-${e.dataset}`);
      expect(await cell.textContent()).toBe(e.accuracy.toFixed(4));
      expect(Number(await cell.getAttribute('data-value'))).toBe(e.accuracy);
    }
    // The best per dataset is highlighted: bow_2 on imdb (0.8826), use_1 on sst2 (0.8155).
    expect(await page.locator('td.best').evaluateAll((tds) => tds.map((td) => td.getAttribute('data-testid')))).toEqual(['acc-bow_2-imdb', 'acc-use_1-sst2']);
  });

  it('draws a loss and an accuracy chart per model with one point per epoch and series', async () => {
    for (const m of results.models) {
      for (const [kind, series] of [['loss', 2], ['accuracy', 1]] as const) {
        const svg = page.locator(`[data-testid="curve-${m.model}-${kind}"] svg`);
        const box = await svg.boundingBox();
        expect(box?.width, `${m.model} ${kind} width`).toBeGreaterThan(100);
        expect(box?.height, `${m.model} ${kind} height`).toBeGreaterThan(100);
        expect(await svg.locator('g.series').count()).toBe(series);
        const points = svg.locator('circle.pt');
        expect(await points.count()).toBe(series * m.epochs.length);
        const sizes = await points.evaluateAll((cs) => cs.map((c) => c.getBoundingClientRect()).map((r) => r.width * r.height));
        expect(sizes.every((s) => s > 0)).toBe(true);
        const pathLengths = await svg.locator('g.series path').evaluateAll((ps) => ps.map((p) => (p as SVGPathElement).getTotalLength()));
        expect(pathLengths.every((l) => l > 50)).toBe(true);
      }
    }
  });

  it('draws a confusion matrix per model × dataset with the fixture counts', async () => {
    expect(await page.locator('[data-testid^="confusion-"] svg').count()).toBe(results.evaluations.length);
    for (const e of results.evaluations) {
      const svg = page.locator(`[data-testid="confusion-${e.model}-${e.dataset}"] svg`);
      const box = await svg.boundingBox();
      expect(box!.width * box!.height).toBeGreaterThan(0);
      const cells = await svg.locator('g.cell').evaluateAll((gs) =>
        gs.map((g) => ({
          t: Number(g.getAttribute('data-true')),
          p: Number(g.getAttribute('data-pred')),
          text: g.querySelector('text')!.textContent,
          area: g.querySelector('rect')!.getBoundingClientRect().width * g.querySelector('rect')!.getBoundingClientRect().height,
        })),
      );
      expect(cells).toHaveLength(4);
      for (const c of cells) {
        expect(c.text).toBe(String(e.confusion[c.t]![c.p]));
        expect(c.area).toBeGreaterThan(0);
      }
      expect(await svg.locator('text.label-true').allTextContents()).toEqual(['negative', 'positive']);
    }
  });

  it('shows the cost breakdown with its label and total, and the run metadata', async () => {
    expect(await page.getByTestId('cost-label').textContent()).toBe('estimate: what this run would cost on AWS');
    expect(await page.locator('[data-testid="cost-table"] tbody tr').count()).toBe(3 * 2 + 1 + 1 + 3);
    expect(await page.getByTestId('cost-total').textContent()).toMatch(/^\$\d+\.\d{4}$/);
    expect(await page.locator('[data-testid="timings-table"] tbody tr').count()).toBe(5);
    expect(await page.getByTestId('inputs-table').textContent()).toContain('92c9d866084ccc3cf229258821a6b28c8f5df09fee75049043c304bb008fa7e1');
    expect(JSON.parse((await page.getByTestId('config-json').textContent())!)).toEqual(sampleManifest().config);
  });

  it('made no request other than the file itself, and saves a screenshot', async () => {
    expect(blocked).toEqual([]);
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'report.png'), fullPage: true });
  });
});
