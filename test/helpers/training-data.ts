/**
 * Small seeded binary-classification tables for pipeline tests: a few numeric features, a
 * category and a 0/1 label whose log-odds depend on them (about 25 % positives).
 */
import type { Table } from '../../lib/data/table.js';
import { categoryColumn, createTable, numberColumn, timestampColumn } from '../../lib/data/table.js';
import { Random } from '../../lib/ml/random.js';

export interface SyntheticOptions {
  rows: number;
  seed?: number;
  /** Share of tenure values left null. */
  missing?: number;
  /** Intercept shift; very negative gives almost no positives. */
  bias?: number;
}

export function syntheticChurnTable({ rows, seed = 1, missing = 0, bias = -1.3 }: SyntheticOptions): Table {
  const random = new Random(seed);
  const tenure: Array<number | null> = [];
  const spend: number[] = [];
  const tickets: number[] = [];
  const plan: string[] = [];
  const label: number[] = [];
  const ids: number[] = [];
  const times: number[] = [];
  const plans = ['basic', 'plus', 'pro'];
  for (let i = 0; i < rows; i++) {
    const t = random.next() * 48;
    const s = 20 + random.next() * 80;
    const k = Math.floor(random.next() * 6);
    const p = plans[Math.floor(random.next() * 3)]!;
    const logit = bias - 0.05 * t + 0.015 * s + 0.45 * k + (p === 'basic' ? 0.6 : 0) + (random.next() - 0.5) * 1.5;
    ids.push(i + 1);
    times.push(Date.UTC(2026, 0, 1) + i * 60_000);
    tenure.push(random.next() < missing ? null : Math.round(t * 10) / 10);
    spend.push(Math.round(s * 100) / 100);
    tickets.push(k);
    plan.push(p);
    label.push(random.next() < 1 / (1 + Math.exp(-logit)) ? 1 : 0);
  }
  return createTable([
    numberColumn('customer_id', ids),
    timestampColumn('event_timestamp', times),
    numberColumn('tenure_months', tenure),
    numberColumn('monthly_spend', spend),
    numberColumn('support_tickets', tickets),
    categoryColumn('plan', plan),
    numberColumn('churned', label),
  ]);
}
