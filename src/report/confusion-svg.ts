import type { Evaluation } from '../run/records.js';
import { escapeXml } from './escape.js';
import { slug } from '../format/text.js';
import { FONT, blues } from './palette.js';
import { InvalidDataError } from '../errors/index.js';

const CELL = 76;
const LEFT = 104;
const TOP = 92;
const BOTTOM = 20;
const RIGHT = 20;

/**
 * A confusion matrix as a standalone SVG heatmap: rows are true classes, columns predicted classes, each cell
 * shows its count and its share of the row; colour follows the row share so unequal class sizes compare fairly.
 */
export function confusionSvg(evaluation: Evaluation, classNames: string[]): string {
  const k = evaluation.confusion.length;
  if (k === 0 || evaluation.confusion.some((row) => row.length !== k)) {
    throw new InvalidDataError(`confusion matrix of ${evaluation.model} on ${evaluation.dataset}: expected a square matrix, got ${JSON.stringify(evaluation.confusion)}`);
  }
  const names = Array.from({ length: k }, (_, i) => classNames[i] ?? `class ${i}`);
  const width = LEFT + k * CELL + RIGHT;
  const height = TOP + k * CELL + BOTTOM;
  const id = `cm-${slug(evaluation.model)}__${slug(evaluation.dataset)}`;
  const title = `${evaluation.model} on ${evaluation.dataset} ${evaluation.split}`;
  const subtitle = `n = ${evaluation.n}, accuracy ${evaluation.accuracy.toFixed(4)}`;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" id="${id}" class="confusion" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${id}-title" font-family="${escapeXml(FONT)}">`,
    `<title id="${id}-title">${escapeXml(`Confusion matrix: ${title} (${subtitle})`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600" fill="#1f2933">${escapeXml(title)}</text>`,
    `<text x="${width / 2}" y="40" text-anchor="middle" font-size="12" fill="#52606d">${escapeXml(subtitle)}</text>`,
    `<text x="${LEFT + (k * CELL) / 2}" y="62" text-anchor="middle" font-size="12" fill="#52606d">predicted</text>`,
    `<text x="16" y="${TOP + (k * CELL) / 2}" text-anchor="middle" font-size="12" fill="#52606d" transform="rotate(-90 16 ${TOP + (k * CELL) / 2})">true</text>`,
  ];
  names.forEach((name, j) => {
    parts.push(`<text class="label-pred" x="${LEFT + j * CELL + CELL / 2}" y="${TOP - 10}" text-anchor="middle" font-size="12" fill="#1f2933">${escapeXml(name)}</text>`);
  });
  evaluation.confusion.forEach((row, i) => {
    const rowTotal = row.reduce((a, b) => a + b, 0);
    parts.push(`<text class="label-true" x="${LEFT - 10}" y="${TOP + i * CELL + CELL / 2 + 4}" text-anchor="end" font-size="12" fill="#1f2933">${escapeXml(names[i]!)}</text>`);
    row.forEach((count, j) => {
      const share = rowTotal === 0 ? 0 : count / rowTotal;
      const x = LEFT + j * CELL;
      const y = TOP + i * CELL;
      const ink = share > 0.5 ? '#ffffff' : '#1f2933';
      parts.push(
        `<g class="cell" data-true="${i}" data-pred="${j}" data-count="${count}">`,
        `<title>${escapeXml(`true ${names[i]}, predicted ${names[j]}: ${count} (${(share * 100).toFixed(1)}% of row)`)}</title>`,
        `<rect x="${x}" y="${y}" width="${CELL}" height="${CELL}" fill="${blues(share)}" stroke="#ffffff" stroke-width="2"/>`,
        `<text x="${x + CELL / 2}" y="${y + CELL / 2}" text-anchor="middle" font-size="16" font-weight="600" fill="${ink}">${count}</text>`,
        `<text x="${x + CELL / 2}" y="${y + CELL / 2 + 18}" text-anchor="middle" font-size="11" fill="${ink}">${(share * 100).toFixed(1)}%</text>`,
        '</g>',
      );
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** File name of a standalone confusion matrix: `<model>__<dataset>.svg`. */
export function confusionFileName(model: string, dataset: string): string {
  return `${slug(model)}__${slug(dataset)}.svg`;
}
