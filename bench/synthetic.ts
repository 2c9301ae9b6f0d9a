/**
 * A seeded synthetic binary problem for benchmarks: 20 features (normal, skewed, a few
 * informative interactions, some pure noise), label drawn from a logistic of a nonlinear score
 * so that both a linear model and trees have something to learn, positives near 30 %.
 */
import { Random } from '../lib/ml/random.js';
import { matrix, type Matrix } from '../lib/ml/types.js';

export interface SyntheticProblem {
  x: Matrix;
  y: Uint8Array;
}

export function syntheticProblem(rows: number, seed: number, cols = 20): SyntheticProblem {
  const random = new Random(seed);
  const x = matrix(rows, cols);
  const y = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) {
      const z = random.normal();
      // Every fourth feature is skewed (log-normal), like amounts and counts in real data.
      x.data[row + c] = c % 4 === 3 ? Math.exp(0.5 * z) : z;
    }
    const f = (c: number) => x.data[row + c]!;
    const score =
      0.8 * f(0) - 0.6 * f(1) + 0.4 * f(2) + 0.5 * Math.log(f(3)) + 0.7 * f(4) * f(5) - 0.5 * (f(6) > 0.5 ? 1 : 0) +
      0.6 * Math.sin(2 * f(7)) + 0.3 * f(8) * f(8) - 1.2;
    y[r] = random.next() < 1 / (1 + Math.exp(-score)) ? 1 : 0;
  }
  return { x, y };
}
