/**
 * The churn world: a seeded simulation of a subscription business's customers, stepped week by
 * week, pure (no I/O). `generate.ts` writes what it emits to Postgres.
 *
 * Each customer has fixed traits (region, acquisition channel, an unobserved frailty), a contract
 * that can change (plan, contract length, payment method, autopay, fee from a price list) and a
 * latent engagement that drifts as a random walk. Engagement drives orders (fewer as it drops)
 * and support contacts (more, and more complaints, as it drops); complaints and regional outages
 * leave a decaying frustration. Each day a customer decides to leave with a probability that
 * rises with a month-to-month contract, a high fee, short tenure, low engagement, frustration,
 * invoice payment without autopay, and the frailty nobody observes; most then wind down (order
 * less, complain more) for one to seven weeks before they cancel, some leave at once. Features
 * computed from the events therefore predict churn, noisily.
 *
 * The optional drift, from a day on (the first weekly snapshot day on or after the one asked
 * for) and scaled by its strength, adds a new plan `flex`, raises order amounts, lowers order
 * frequency, and changes the label relation (price matters more; contract, engagement and
 * complaints less; a competitor in the south takes customers). Everything before the drift day
 * is exactly what the same seed gives without drift (only the running order / event ids move).
 *
 * Randomness comes from `Random` (xoshiro128**) seeded per customer, so a customer's data does
 * not depend on how the generation is chunked.
 */
import { Random } from '../../lib/ml/random.js';

export const PLANS = ['basic', 'standard', 'premium', 'flex'] as const;
export const REGIONS = ['north', 'south', 'east', 'west'] as const;
export const CONTRACTS = ['month_to_month', 'one_year', 'two_year'] as const;
export const PAYMENT_METHODS = ['card', 'bank_transfer', 'invoice'] as const;
export const CHANNELS = ['organic', 'paid_search', 'referral', 'partner'] as const;
export const SUPPORT_KINDS = ['question', 'billing', 'technical', 'complaint'] as const;

const BASIC = 0;
const PREMIUM = 2;
const FLEX = 3;
const SOUTH = 1;
const MONTH_TO_MONTH = 0;
const INVOICE = 2;
const BILLING = 1;
const TECHNICAL = 2;
const COMPLAINT = 3;

const DAY = 86_400;
/** Raw events start this many days before the period, so the first snapshots have history. */
export const HISTORY_DAYS = 90;
/** Feature snapshots of the activity views are taken every this many days (midnight UTC). */
export const SNAPSHOT_EVERY_DAYS = 7;
/** Labels are predictions made at noon UTC (snapshots of that day, taken at midnight, have landed by then). */
export const LABEL_TIME_OF_DAY = 0.5;
/** Shares of activity snapshots first written without late events, then backfilled days later… */
const ORDER_BACKFILL_SHARE = 0.02;
const SUPPORT_BACKFILL_SHARE = 0.01;
/** …their first versions miss the events of this many days before the snapshot. */
const LATE_DAYS = 3;

/** How far engagement drops while winding down, and the share of customers who leave without doing so. */
const WIND_DOWN_DROP = 1.6;
const SUDDEN_SHARE = 0.25;

/** Engagement's random walk: daily autocorrelation and noise. */
const WALK_RHO = 0.95;
const WALK_SIGMA = 0.2;
/** Daily decay of frustration, and usual support contacts per day. */
const FRUSTRATION_DECAY = 0.95;
const SUPPORT_RATE = 0.018;
/** The simulation's step: the snapshot week. */
const STEP_DAYS = 7;

const PLAN_FEE = [19.9, 39.9, 69.9, 24.9];
const REGION_PRICE_LEVEL = [1, 0.95, 1.05, 1];
/** Share of customers paying by card, bank transfer, invoice who use autopay. */
const AUTOPAY_SHARE = [0.7, 0.8, 0.15];
const CONTRACT_DISCOUNT = [1, 0.9, 0.8];
const PLAN_ORDER_RATE = [0.075, 0.1, 0.14, 0.09];
const PLAN_ORDER_AMOUNT = [28, 42, 65, 31];

/** What the drift changes, at strength 1 (scaled linearly by the strength). */
const DRIFT = {
  /** Share of new signups taking the new plan `flex`, and of month-to-month customers moving to it. */
  flexSignups: 0.5,
  flexMigration: 0.25,
  /** Signups move from the west to the south. */
  southSignups: 0.1,
  /** Relative change of order frequency and order amounts. */
  orderRate: -0.2,
  orderAmount: 0.3,
  /** Relative change of the hazard's coefficients: price matters more, engagement and complaints less. */
  feeEffect: 2,
  contractEffect: -0.6,
  engagementEffect: -0.7,
  frustrationEffect: -0.7,
  /** Leavers disengage less visibly before they go. */
  windDown: -0.7,
  /** Added log-odds: flex customers and a competitor in the south. */
  flexHazard: 0.8,
  southHazard: 1,
};

/** The hazard model: log-odds of deciding to leave on a given day. */
const HAZARD = {
  intercept: -4.8,
  contract: [0.9, -0.25, -1.1],
  feePer20: 0.35,
  tenure: -0.22,
  engagement: -1.1,
  frustration: 0.6,
  invoiceWithoutAutopay: 0.35,
  autopay: -0.2,
  channel: [0, 0.25, -0.3, 0],
  frailty: 0.25,
};

export interface WorldParams {
  seed: number;
  customers: number;
  /** Epoch seconds of the period's first midnight (UTC). */
  startSec: number;
  /** Length of the period in days. */
  days: number;
  /** A label says whether the customer churns within this many days after the prediction time. */
  horizonDays: number;
  /** Day offsets (from the start) of the calendar months' first days inside the period. */
  monthStarts: number[];
  drift?: { fromDay: number; strength: number };
}

/**
 * Where the rows go: a call per row, its arguments the columns of its table in order (see
 * `generate.ts`). Timestamps are epoch seconds; categories are indexes into the lists above; NaN = null.
 */
export interface RowSink {
  customer(id: number, signupSec: number, plan: number, region: number, contract: number, payment: number, autopay: number, channel: number, fee: number, churnSec: number): void;
  order(orderId: number, customerId: number, sec: number, amount: number): void;
  support(eventId: number, customerId: number, sec: number, kind: number, severity: number): void;
  profile(
    customerId: number,
    eventSec: number,
    createdSec: number,
    plan: number,
    region: number,
    contract: number,
    payment: number,
    autopay: number,
    channel: number,
    fee: number,
    tenureDays: number,
  ): void;
  orderActivity(
    customerId: number,
    eventSec: number,
    createdSec: number,
    orders7d: number,
    orders30d: number,
    orders90d: number,
    spend30d: number,
    avgOrderValue90d: number,
    daysSinceLastOrder: number,
  ): void;
  supportActivity(
    customerId: number,
    eventSec: number,
    createdSec: number,
    tickets30d: number,
    tickets90d: number,
    complaints30d: number,
    complaints90d: number,
    maxSeverity30d: number,
    daysSinceLastTicket: number,
  ): void;
  label(customerId: number, sec: number, churned: number): void;
}

/** Streams of randomness, so adding draws to one never shifts another. */
const STREAM = { customer: 1, labels: 2, world: 3 } as const;

function mixSeed(seed: number, index: number, stream: number): number {
  let h = Math.imul((seed ^ 0x5bd1e995) >>> 0, 0x85ebca6b);
  h ^= Math.imul(index + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 15), 0x27d4eb2f);
  h ^= Math.imul(stream, 0x165667b1);
  h = Math.imul(h ^ (h >>> 13), 0x9e3779b1);
  return (h ^ (h >>> 16)) >>> 0;
}

function pick(u: number, weights: readonly number[]): number {
  let acc = 0;
  for (let i = 0; i < weights.length - 1; i++) {
    acc += weights[i]!;
    if (u < acc) return i;
  }
  return weights.length - 1;
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function roundCents(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Standard normal draws by Box–Muller, using both of each pair (Random.normal() drops one). */
class Gaussian {
  private spare = NaN;
  constructor(private readonly rng: Random) {}

  next(): number {
    const spare = this.spare;
    if (spare === spare) {
      this.spare = NaN;
      return spare;
    }
    let u = 0;
    while (u === 0) u = this.rng.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * this.rng.next();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}

/** Index of the first element of sorted `a[0..n)` that is >= x. */
function lowerBound(a: number[], n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One simulated customer; the arrays are reused from one customer to the next. */
class Customer {
  id = 0;
  existing = false;
  signupDay = 0;
  region = 0;
  channel = 0;
  churnDay = Infinity;
  orderDay: number[] = [];
  orderAmount: number[] = [];
  /** prefix sums of orderAmount: spendBefore[i] = sum of the first i amounts. */
  spendBefore: number[] = [0];
  supportDay: number[] = [];
  supportKind: number[] = [];
  supportSeverity: number[] = [];
  /** Profile versions: from `day` on, the contract below holds. */
  versionDay: number[] = [];
  versionPlan: number[] = [];
  versionContract: number[] = [];
  versionPayment: number[] = [];
  versionAutopay: number[] = [];
  versionFee: number[] = [];

  reset(): void {
    this.churnDay = Infinity;
    this.orderDay.length = 0;
    this.orderAmount.length = 0;
    this.spendBefore.length = 1;
    this.supportDay.length = 0;
    this.supportKind.length = 0;
    this.supportSeverity.length = 0;
    this.versionDay.length = 0;
    this.versionPlan.length = 0;
    this.versionContract.length = 0;
    this.versionPayment.length = 0;
    this.versionAutopay.length = 0;
    this.versionFee.length = 0;
  }
}

/** Writes a row of an activity view: its features at day `s`, from the events seen before `seenUntil` (<= s). */
type SnapshotWriter = (this: ChurnWorld, sink: RowSink, id: number, s: number, eventSec: number, createdSec: number, seenUntil: number) => void;

export interface WorldCounts {
  customers: number;
  orders: number;
  support_events: number;
  customer_profile: number;
  order_activity: number;
  support_activity: number;
  labels: number;
  positives: number;
}

export class ChurnWorld {
  readonly params: WorldParams;
  /** Per region and day of the period (+ history): extra support contacts per day from outages. */
  private readonly outage: Float32Array[];
  /** Per customer: first label day, number of label days, churn day (Infinity = never). */
  private readonly eligibleFirst: Int32Array;
  private readonly eligibleCount: Int32Array;
  private readonly churnDays: Float64Array;
  private readonly customer = new Customer();
  /** The simulated customer's final contract (for the raw customers table) and the stream its snapshots use. */
  private finalPlan = 0;
  private finalContract = 0;
  private finalPayment = 0;
  private finalAutopay = 0;
  private finalFee = 0;
  private snapshotRng: Random | undefined;
  private labelTotal = 1n;
  private labelCumulative = 0n;
  private labelCursor = 0;
  private nextOrderId = 1;
  private nextEventId = 1;
  private simulated = 0;
  readonly counts: WorldCounts = {
    customers: 0,
    orders: 0,
    support_events: 0,
    customer_profile: 0,
    order_activity: 0,
    support_activity: 0,
    labels: 0,
    positives: 0,
  };

  /**
   * The day the drift takes effect: the first weekly snapshot day on or after `drift.fromDay`, so
   * that no simulation step straddles it (Infinity without drift).
   */
  readonly driftStartDay: number;

  constructor(params: WorldParams) {
    this.params = params;
    this.driftStartDay = params.drift ? Math.ceil(params.drift.fromDay / STEP_DAYS) * STEP_DAYS : Infinity;
    this.eligibleFirst = new Int32Array(params.customers);
    this.eligibleCount = new Int32Array(params.customers);
    this.churnDays = new Float64Array(params.customers);
    const rng = new Random(mixSeed(params.seed, 0, STREAM.world));
    const span = HISTORY_DAYS + params.days;
    this.outage = REGIONS.map(() => {
      const extra = new Float32Array(span);
      // About one outage a month per region, lasting one to three days.
      const outages = Math.max(1, Math.round(span / 30));
      for (let k = 0; k < outages; k++) {
        const begin = rng.int(span);
        const length = 1 + rng.int(3);
        const intensity = 0.03 + 0.12 * rng.next();
        for (let d = begin; d < Math.min(span, begin + length); d++) extra[d] = extra[d]! + intensity;
      }
      return extra;
    });
  }

  /** Simulates customers [from, to) in order and emits their raw events and feature snapshots. */
  emitCustomers(from: number, to: number, sink: RowSink): void {
    if (from !== this.simulated) throw new Error(`customers must be emitted in order: expected ${this.simulated}, got ${from}`);
    for (let i = from; i < to; i++) {
      this.simulate(i);
      this.emit(i, sink);
    }
    this.simulated = to;
  }

  /** Customer-days a label could be drawn from, over the customers emitted so far. */
  eligibleDays(): number {
    let total = 0;
    for (let i = 0; i < this.simulated; i++) total += this.eligibleCount[i]!;
    return total;
  }

  /**
   * Emits exactly `labelRows` labels, for customers [from, to): customer-days drawn without
   * replacement, spread over customers in proportion to their eligible days. Call after every
   * customer was emitted, with consecutive ranges from 0; `eligibleDays()` must be at least `labelRows`.
   */
  emitLabels(labelRows: number, from: number, to: number, sink: RowSink): void {
    if (from === 0) {
      const eligible = this.eligibleDays();
      if (this.simulated !== this.params.customers) throw new Error('emit every customer before the labels');
      if (eligible < labelRows) throw new Error(`only ${eligible} eligible customer-days for ${labelRows} labels`);
      this.labelTotal = BigInt(eligible);
      this.labelCumulative = 0n;
      this.labelCursor = 0;
    }
    if (from !== this.labelCursor) throw new Error(`labels must be emitted in order: expected ${this.labelCursor}, got ${from}`);
    const { startSec, horizonDays, seed } = this.params;
    const rows = BigInt(labelRows);
    for (let i = from; i < to; i++) {
      const eligible = this.eligibleCount[i]!;
      if (eligible === 0) continue;
      const before = Number((rows * this.labelCumulative) / this.labelTotal);
      this.labelCumulative += BigInt(eligible);
      let wanted = Number((rows * this.labelCumulative) / this.labelTotal) - before;
      if (wanted === 0) continue;
      const rng = new Random(mixSeed(seed, i, STREAM.labels));
      const first = this.eligibleFirst[i]!;
      const churnDay = this.churnDays[i]!;
      const id = i + 1;
      // Knuth's selection sampling: `wanted` of the `eligible` days, in order.
      for (let j = 0; j < eligible && wanted > 0; j++) {
        if (rng.next() * (eligible - j) < wanted) {
          const at = first + j + LABEL_TIME_OF_DAY;
          const churned = churnDay <= at + horizonDays ? 1 : 0;
          sink.label(id, startSec + Math.round(at * DAY), churned);
          this.counts.labels++;
          this.counts.positives += churned;
          wanted--;
        }
      }
    }
    this.labelCursor = to;
  }

  private simulate(index: number): void {
    const p = this.params;
    const c = this.customer;
    c.reset();
    const rng = new Random(mixSeed(p.seed, index, STREAM.customer));
    const gauss = new Gaussian(rng);
    const driftDay = this.driftStartDay;
    const s = p.drift ? p.drift.strength : 0;

    c.id = index + 1;
    // Who they are. Every draw is made whatever the drift, so the drift changes nothing before its day.
    c.existing = rng.next() < 0.72;
    const tenureAtStart = Math.min(2500, Math.exp(5 + gauss.next()));
    const signupU = rng.next();
    c.signupDay = c.existing ? -tenureAtStart : signupU * p.days;
    const drifted = !c.existing && c.signupDay >= driftDay;
    c.region = pick(rng.next(), drifted ? [0.3, 0.25 + DRIFT.southSignups * s, 0.2, 0.25 - DRIFT.southSignups * s] : [0.3, 0.25, 0.2, 0.25]);
    c.channel = pick(rng.next(), [0.45, 0.25, 0.15, 0.15]);
    let plan = pick(rng.next(), [0.45, 0.35, 0.2]);
    const flexU = rng.next();
    if (drifted && flexU < DRIFT.flexSignups * s) plan = FLEX;
    const contractU = rng.next();
    let contract = plan === FLEX ? MONTH_TO_MONTH : pick(contractU, [0.55, 0.28, 0.17]);
    const payment = pick(rng.next(), [0.55, 0.28, 0.17]);
    const autopay = rng.next() < AUTOPAY_SHARE[payment]! ? 1 : 0;
    // Fees come from a price list: plan, contract discount, regional price level, a promotion for some.
    const priceLevel = REGION_PRICE_LEVEL[c.region]!;
    const promo = rng.next() < 0.15 ? 0.8 : 1;
    const feeOf = (pl: number, ct: number) => Math.round(PLAN_FEE[pl]! * CONTRACT_DISCOUNT[ct]! * priceLevel * promo) - 0.01;
    let fee = feeOf(plan, contract);
    const baseEngagement = 0.45 * gauss.next();
    const frailty = HAZARD.frailty * gauss.next();
    const orderRateScale = Math.exp(0.25 * gauss.next());
    const migrateU = rng.next();
    const migrateDay = driftDay + 30 * rng.next();

    const addVersion = (day: number) => {
      // Changes drawn in the same step keep the order they were made in.
      const previous = c.versionDay.length ? c.versionDay[c.versionDay.length - 1]! : -Infinity;
      c.versionDay.push(Math.max(day, previous));
      c.versionPlan.push(plan);
      c.versionContract.push(contract);
      c.versionPayment.push(payment);
      c.versionAutopay.push(autopay);
      c.versionFee.push(fee);
    };
    addVersion(c.existing ? 0 : c.signupDay);

    let walk = c.existing ? 0.5 * gauss.next() : 0.2 + 0.3 * gauss.next();
    let frustration = 0;
    let decidedDay = Infinity;
    let decidedAfterDrift = false;
    const outage = this.outage[c.region]!;
    const staticHazard =
      HAZARD.intercept +
      (payment === INVOICE && !autopay ? HAZARD.invoiceWithoutAutopay : 0) +
      (autopay ? HAZARD.autopay : 0) +
      HAZARD.channel[c.channel]! +
      frailty;

    // The simulation steps through the weeks of the snapshot grid (the first one starts at the
    // signup): rates are constant within a step, events fall uniformly inside it.
    let from = Math.max(-HISTORY_DAYS, c.signupDay);
    while (from < p.days) {
      const to = Math.min(p.days, (Math.floor(from / STEP_DAYS) + 1) * STEP_DAYS);
      const width = to - from;
      const after = from >= driftDay;
      const rho = Math.pow(WALK_RHO, width);
      walk = rho * walk + WALK_SIGMA * Math.sqrt((1 - rho * rho) / (1 - WALK_RHO * WALK_RHO)) * gauss.next();
      const mood = baseEngagement + walk;
      // A customer who decided to leave disengages over about ten days before cancelling.
      const mid = from + width / 2;
      const windDown = mid >= decidedDay ? WIND_DOWN_DROP * Math.min(1, (mid - decidedDay) / 10) * (decidedAfterDrift ? 1 + DRIFT.windDown * s : 1) : 0;
      const engagement = mood - windDown;

      // Existing month-to-month customers move to the new plan after the drift.
      if (after && from <= migrateDay && migrateDay < to && c.existing && contract === MONTH_TO_MONTH && plan !== PREMIUM && migrateU < DRIFT.flexMigration * s) {
        plan = FLEX;
        fee = feeOf(plan, contract);
        addVersion(migrateDay + rng.next() * Math.min(1, to - migrateDay));
      }

      // Orders.
      const rate = PLAN_ORDER_RATE[plan]! * orderRateScale * Math.exp(0.9 * engagement) * (after ? 1 + DRIFT.orderRate * s : 1);
      let n = poisson(rng, rate * width);
      const amountScale = PLAN_ORDER_AMOUNT[plan]! * (after ? 1 + DRIFT.orderAmount * s : 1);
      while (n-- > 0) {
        const amount = Math.max(2.5, amountScale * Math.exp(0.45 * gauss.next() - 0.1));
        c.orderDay.push(from + width * rng.next());
        c.orderAmount.push(roundCents(amount));
      }

      // Support contacts: unhappy customers call more, outages make everyone in the region call.
      let outageLoad = 0;
      for (let d = Math.floor(from); d < to; d++) {
        outageLoad += outage[d + HISTORY_DAYS]! * (Math.min(to, d + 1) - Math.max(from, d));
      }
      const usualLoad = SUPPORT_RATE * Math.exp(-0.6 * engagement) * (plan === PREMIUM ? 1.2 : 1) * width;
      let m = poisson(rng, usualLoad + outageLoad);
      while (m-- > 0) {
        const u = rng.next();
        const v = rng.next();
        const w = rng.next();
        let kind: number;
        let severity: number;
        let t: number;
        if (u * (usualLoad + outageLoad) < outageLoad) {
          // A contact about an outage: on one of the outage days.
          let target = w * outageLoad;
          t = from;
          for (let d = Math.floor(from); d < to; d++) {
            const lo = Math.max(from, d);
            const load = outage[d + HISTORY_DAYS]! * (Math.min(to, d + 1) - lo);
            if (target < load || d + 1 >= to) {
              t = lo + (Math.min(to, d + 1) - lo) * rng.next();
              break;
            }
            target -= load;
          }
          kind = v < 0.7 ? TECHNICAL : COMPLAINT;
          severity = 3 + Math.floor(3 * rng.next());
        } else {
          t = from + width * rng.next();
          const complaintShare = 0.06 + 0.3 * sigmoid(-1.5 * engagement + 0.8 * frustration - 1);
          const billingShare = payment === INVOICE ? 0.3 : 0.18;
          kind = v < complaintShare ? COMPLAINT : v < complaintShare + billingShare ? BILLING : v < complaintShare + billingShare + 0.25 ? TECHNICAL : 0;
          severity =
            kind === COMPLAINT ? 2 + Math.floor(3.6 * w) : kind === TECHNICAL ? 1 + Math.floor(5 * w) : kind === BILLING ? 1 + Math.floor(3 * w) : w < 0.7 ? 1 : 2;
        }
        c.supportDay.push(t);
        c.supportKind.push(kind);
        c.supportSeverity.push(Math.min(5, severity));
        frustration += kind === COMPLAINT ? 0.4 * severity : kind === TECHNICAL ? 0.08 * severity : kind === BILLING ? 0.1 * severity : 0.02;
      }

      if (to > 0) {
        // Rare plan changes: engaged customers upgrade, disengaged ones downgrade.
        const changeU = rng.next();
        const changeAt = from + width * rng.next();
        if (changeU < 0.0012 * width && plan !== FLEX) {
          const next = engagement > 0.2 ? Math.min(PREMIUM, plan + 1) : engagement < -0.2 ? Math.max(BASIC, plan - 1) : plan;
          if (next !== plan) {
            plan = next;
            fee = feeOf(plan, contract);
            addVersion(changeAt);
          }
        }
        // Contracts running out become month-to-month.
        const expireU = rng.next();
        const expireAt = from + width * rng.next();
        if (contract !== MONTH_TO_MONTH && expireU < 0.0015 * width) {
          contract = MONTH_TO_MONTH;
          fee = feeOf(plan, contract);
          addVersion(expireAt);
        }

        // Deciding to leave in this step?
        if (decidedDay === Infinity) {
          const tenure = Math.max(0, mid - c.signupDay);
          let logit =
            staticHazard +
            HAZARD.contract[contract]! * (after ? 1 + DRIFT.contractEffect * s : 1) +
            HAZARD.feePer20 * ((fee - 40) / 20) * (after ? 1 + DRIFT.feeEffect * s : 1) +
            HAZARD.tenure * Math.log1p(tenure / 30) +
            HAZARD.engagement * mood * (after ? 1 + DRIFT.engagementEffect * s : 1) +
            HAZARD.frustration * frustration * (after ? 1 + DRIFT.frustrationEffect * s : 1);
          if (after) logit += (plan === FLEX ? DRIFT.flexHazard * s : 0) + (c.region === SOUTH ? DRIFT.southHazard * s : 0);
          const perDay = sigmoid(logit);
          const decideU = rng.next();
          const decideAt = from + width * rng.next();
          const u = rng.next();
          const v = rng.next();
          if (decideU < -Math.expm1(width * Math.log1p(-perDay))) {
            decidedDay = decideAt;
            decidedAfterDrift = after;
            // Some leave at once, most after a few weeks of winding down.
            c.churnDay = decidedDay + (u < SUDDEN_SHARE ? 3 * v : 7 + 45 * v);
          }
        }
      }
      frustration *= Math.pow(FRUSTRATION_DECAY, width);

      if (c.churnDay < to) {
        // Events can't come after leaving.
        trimAfter(c.orderDay, c.orderAmount, undefined, c.churnDay);
        trimAfter(c.supportDay, c.supportKind, c.supportSeverity, c.churnDay);
        break;
      }
      from = to;
    }
    // Events were drawn step by step; within a step they are not yet in order.
    sortEvents(c.orderDay, c.orderAmount, undefined);
    sortEvents(c.supportDay, c.supportKind, c.supportSeverity);
    for (let k = 0; k < c.orderAmount.length; k++) c.spendBefore.push(c.spendBefore[k]! + c.orderAmount[k]!);

    // The customer's final contract, kept for the raw customers table.
    this.finalPlan = plan;
    this.finalContract = contract;
    this.finalPayment = payment;
    this.finalAutopay = autopay;
    this.finalFee = fee;

    // Label days: from the first activity snapshot's day, while still a customer at the
    // prediction time, with the horizon inside the period.
    const firstSnapshot = c.existing ? 0 : Math.ceil(c.signupDay / SNAPSHOT_EVERY_DAYS) * SNAPSHOT_EVERY_DAYS;
    const lastLabel = Math.min(p.days - p.horizonDays - 1, Math.ceil(c.churnDay - LABEL_TIME_OF_DAY) - 1);
    this.eligibleFirst[index] = firstSnapshot;
    this.eligibleCount[index] = Math.max(0, lastLabel - firstSnapshot + 1);
    this.churnDays[index] = c.churnDay;
    this.snapshotRng = rng;
  }

  private emit(index: number, sink: RowSink): void {
    const p = this.params;
    const c = this.customer;
    const rng = this.snapshotRng!;
    const sec = (day: number) => p.startSec + Math.round(day * DAY);
    const counts = this.counts;
    const id = c.id;

    sink.customer(
      id,
      sec(c.signupDay),
      this.finalPlan,
      c.region,
      this.finalContract,
      this.finalPayment,
      this.finalAutopay,
      c.channel,
      this.finalFee,
      c.churnDay === Infinity ? NaN : sec(c.churnDay),
    );
    counts.customers++;

    const nOrders = c.orderDay.length;
    for (let k = 0; k < nOrders; k++) sink.order(this.nextOrderId++, id, sec(c.orderDay[k]!), c.orderAmount[k]!);
    counts.orders += nOrders;
    const nSupport = c.supportDay.length;
    for (let k = 0; k < nSupport; k++) sink.support(this.nextEventId++, id, sec(c.supportDay[k]!), c.supportKind[k]!, c.supportSeverity[k]!);
    counts.support_events += nSupport;

    // customer_profile: a row per contract version, and a monthly refresh of tenure.
    const end = Math.min(p.days, c.churnDay);
    const versions = c.versionDay.length;
    let v = 0;
    let m = 0;
    while (m < p.monthStarts.length && p.monthStarts[m]! <= c.versionDay[0]!) m++;
    while (v < versions || (m < p.monthStarts.length && p.monthStarts[m]! < end)) {
      const nextVersion = v < versions ? c.versionDay[v]! : Infinity;
      const nextMonth = m < p.monthStarts.length && p.monthStarts[m]! < end ? p.monthStarts[m]! : Infinity;
      let day: number;
      let at: number;
      if (nextVersion <= nextMonth) {
        day = nextVersion;
        at = v;
        v++;
        if (nextVersion === nextMonth) m++;
      } else {
        day = nextMonth;
        at = v - 1;
        m++;
      }
      if (day >= end) continue;
      const eventSec = sec(day);
      sink.profile(
        id,
        eventSec,
        eventSec + 60 + rng.int(2 * 3600),
        c.versionPlan[at]!,
        c.region,
        c.versionContract[at]!,
        c.versionPayment[at]!,
        c.versionAutopay[at]!,
        c.channel,
        c.versionFee[at]!,
        Math.floor(day - c.signupDay),
      );
      counts.customer_profile++;
    }

    // order_activity and support_activity: weekly snapshots at midnight while a customer.
    const firstSnapshot = this.eligibleFirst[index]!;
    for (let s = firstSnapshot; s < end; s += SNAPSHOT_EVERY_DAYS) {
      const eventSec = p.startSec + s * DAY;
      this.activitySnapshot(this.orderSnapshot, ORDER_BACKFILL_SHARE, rng, sink, id, s, eventSec);
      this.activitySnapshot(this.supportSnapshot, SUPPORT_BACKFILL_SHARE, rng, sink, id, s, eventSec);
    }
  }

  /**
   * Writes an activity view's snapshot of day `s`, created within three hours after midnight; a
   * `backfillShare` of them is first written without the last days' late events, and the
   * correction lands days later.
   */
  private activitySnapshot(write: SnapshotWriter, backfillShare: number, rng: Random, sink: RowSink, id: number, s: number, eventSec: number): void {
    const created = eventSec + 300 + rng.int(3 * 3600);
    if (rng.next() < backfillShare) {
      write.call(this, sink, id, s, eventSec, created, s - LATE_DAYS);
      write.call(this, sink, id, s, eventSec, eventSec + 2 * DAY + rng.int(4 * DAY), s);
    } else {
      write.call(this, sink, id, s, eventSec, created, s);
    }
  }

  /** Order features at day `s`, from the orders seen before `seenUntil` (<= s). */
  private orderSnapshot(sink: RowSink, id: number, s: number, eventSec: number, createdSec: number, seenUntil: number): void {
    const c = this.customer;
    const n = c.orderDay.length;
    const hi = lowerBound(c.orderDay, n, seenUntil);
    const lo7 = Math.min(hi, lowerBound(c.orderDay, n, s - 7));
    const lo30 = Math.min(hi, lowerBound(c.orderDay, n, s - 30));
    const lo90 = Math.min(hi, lowerBound(c.orderDay, n, s - 90));
    const orders90 = hi - lo90;
    const spend30 = roundCents(c.spendBefore[hi]! - c.spendBefore[lo30]!);
    const aov90 = orders90 > 0 ? roundCents((c.spendBefore[hi]! - c.spendBefore[lo90]!) / orders90) : NaN;
    const since = hi > 0 ? Math.floor(s - c.orderDay[hi - 1]!) : NaN;
    sink.orderActivity(id, eventSec, createdSec, hi - lo7, hi - lo30, orders90, spend30, aov90, since);
    this.counts.order_activity++;
  }

  private supportSnapshot(sink: RowSink, id: number, s: number, eventSec: number, createdSec: number, seenUntil: number): void {
    const c = this.customer;
    const n = c.supportDay.length;
    const hi = lowerBound(c.supportDay, n, seenUntil);
    const lo30 = Math.min(hi, lowerBound(c.supportDay, n, s - 30));
    const lo90 = Math.min(hi, lowerBound(c.supportDay, n, s - 90));
    let complaints30 = 0;
    let complaints90 = 0;
    let maxSeverity30 = 0;
    for (let k = lo90; k < hi; k++) {
      if (c.supportKind[k] === COMPLAINT) {
        complaints90++;
        if (k >= lo30) complaints30++;
      }
      if (k >= lo30 && c.supportSeverity[k]! > maxSeverity30) maxSeverity30 = c.supportSeverity[k]!;
    }
    const since = hi > 0 ? Math.floor(s - c.supportDay[hi - 1]!) : NaN;
    sink.supportActivity(id, eventSec, createdSec, hi - lo30, hi - lo90, complaints30, complaints90, maxSeverity30, since);
    this.counts.support_activity++;
  }
}

/** A Poisson draw by inversion (the rates here are small). */
function poisson(rng: Random, lambda: number): number {
  if (lambda <= 0) return 0;
  const limit = Math.exp(-lambda);
  let k = 0;
  let product = rng.next();
  while (product > limit) {
    k++;
    product *= rng.next();
  }
  return k;
}

function trimAfter(days: number[], a: number[], b: number[] | undefined, until: number): void {
  let w = 0;
  for (let k = 0; k < days.length; k++) {
    if (days[k]! < until) {
      days[w] = days[k]!;
      a[w] = a[k]!;
      if (b) b[w] = b[k]!;
      w++;
    }
  }
  days.length = w;
  a.length = w;
  if (b) b.length = w;
}

/** Insertion sort: events arrive almost in order (only same-day events can be swapped). */
function sortEvents(days: number[], a: number[], b: number[] | undefined): void {
  for (let k = 1; k < days.length; k++) {
    const day = days[k]!;
    if (day >= days[k - 1]!) continue;
    const av = a[k]!;
    const bv = b ? b[k]! : 0;
    let j = k - 1;
    while (j >= 0 && days[j]! > day) {
      days[j + 1] = days[j]!;
      a[j + 1] = a[j]!;
      if (b) b[j + 1] = b[j]!;
      j--;
    }
    days[j + 1] = day;
    a[j + 1] = av;
    if (b) b[j + 1] = bv;
  }
}
