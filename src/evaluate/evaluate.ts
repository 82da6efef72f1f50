import { softmaxCrossEntropy, type MlpEngine } from '../model/engine.js';
import type { Features } from '../matrix/features.js';

/** Loss, accuracy and confusion matrix of a model on labelled examples. */
export interface Scores {
  n: number;
  loss: number;
  accuracy: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

/** Scores a model on features x with labels y (inference mode). */
export function evaluateModel(engine: MlpEngine, x: Features, y: Int32Array): Scores {
  const classes = engine.spec.classes;
  const logits = engine.predict(x);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let correct = 0;
  for (let r = 0; r < y.length; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[r * classes + c]! > logits[r * classes + best]!) best = c;
    confusion[y[r]!]![best]!++;
    if (best === y[r]) correct++;
  }
  const loss = y.length ? softmaxCrossEntropy(logits, y, classes) : 0;
  return { n: y.length, loss, accuracy: y.length ? correct / y.length : 0, confusion };
}
