import { describe, expect, it } from 'vitest';
import { confusionFileName, confusionSvg } from '../../../src/report/confusion-svg.js';
import type { Evaluation } from '../../../src/run/records.js';

const evaluation: Evaluation = { model: 'bow_1', dataset: 'sst2', split: 'test', n: 1821, loss: 0.44, accuracy: 1459 / 1821, confusion: [[760, 152], [210, 699]] };

describe('confusion matrix SVG', () => {
  const svg = confusionSvg(evaluation, ['negative', 'positive']);

  it('is a standalone SVG document with a title naming model, dataset and accuracy', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('<title id="cm-bow_1__sst2-title">Confusion matrix: bow_1 on sst2 test (n = 1821, accuracy 0.8012)</title>');
  });

  it('has one cell per (true, predicted) pair with its count and row share', () => {
    const cells = [...svg.matchAll(/<g class="cell" data-true="(\d)" data-pred="(\d)" data-count="(\d+)">/g)].map((m) => m.slice(1).map(Number));
    expect(cells).toEqual([[0, 0, 760], [0, 1, 152], [1, 0, 210], [1, 1, 699]]);
    // 760 / (760 + 152) = 83.3 %, 699 / (210 + 699) = 76.9 %
    expect(svg).toContain('>83.3%<');
    expect(svg).toContain('>76.9%<');
    expect(svg).toContain('true positive, predicted negative: 210 (23.1% of row)');
  });

  it('escapes class names and model names', () => {
    const odd = confusionSvg({ ...evaluation, model: 'm<1>&"x"' }, ['<neg>', "it's & more"]);
    expect(odd).toContain('&lt;neg&gt;');
    expect(odd).toContain('it&#39;s &amp; more');
    expect(odd).toContain('m&lt;1&gt;&amp;&quot;x&quot; on sst2 test');
    expect(odd).not.toContain('<neg>');
    expect(odd).toContain('id="cm-m-1---x-__sst2"');
  });

  it('names files <model>__<dataset>.svg and rejects a non-square matrix', () => {
    expect(confusionFileName('bow_1', 'sst2')).toBe('bow_1__sst2.svg');
    expect(() => confusionSvg({ ...evaluation, confusion: [[1, 2], [3]] }, [])).toThrow('confusion matrix of bow_1 on sst2: expected a square matrix');
  });

  it('labels classes without a name by index', () => {
    expect(confusionSvg(evaluation, [])).toContain('>class 1<');
  });
});
