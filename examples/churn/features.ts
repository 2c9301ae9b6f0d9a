/**
 * Feature definitions of the churn example (Feast style): the `customer` entity, three feature
 * views over the offline tables `generate.ts` writes, and the `churn_model` feature service the
 * default training pipeline uses.
 */
import type { FeatureDefinitionsInput } from '../../lib/features/definitions.js';
import { IDENTIFIER } from '../../lib/features/definitions.js';

export const CHURN_SCHEMA = 'churn';
export const CHURN_LABELS_TABLE = 'churn.labels';
export const CHURN_LABEL = 'churned';
export const CHURN_ENTITY_KEY = 'customer_id';
export const CHURN_FEATURE_SERVICE = 'churn_model';

const DAY = 24 * 3600;

/** The features the default model uses, as `view:feature` references. */
export const CHURN_MODEL_FEATURES = [
  'customer_profile:plan',
  'customer_profile:contract',
  'customer_profile:region',
  'customer_profile:payment_method',
  'customer_profile:autopay',
  'customer_profile:monthly_fee',
  'customer_profile:tenure_days',
  'order_activity:orders_7d',
  'order_activity:orders_30d',
  'order_activity:orders_90d',
  'order_activity:spend_30d',
  'order_activity:avg_order_value_90d',
  'order_activity:days_since_last_order',
  'support_activity:tickets_30d',
  'support_activity:tickets_90d',
  'support_activity:complaints_30d',
  'support_activity:complaints_90d',
  'support_activity:max_severity_30d',
  'support_activity:days_since_last_ticket',
] as const;

type FeatureView = FeatureDefinitionsInput['featureViews'][number];

/** The churn example's definitions over the tables of `schema` (default `churn`). */
export function churnDefinitionsFor(schema: string = CHURN_SCHEMA): FeatureDefinitionsInput {
  if (!IDENTIFIER.test(schema)) throw new Error(`schema must match ^[a-z_][a-z0-9_]{0,62}$, got ${JSON.stringify(schema)}`);
  /** A view of the `customer` entity over the snapshot table of the same name. */
  const customerView = (name: string, ttlSeconds: number, description: string, features: FeatureView['features']): FeatureView => ({
    name,
    entity: 'customer',
    source: { table: `${schema}.${name}`, eventTimestamp: 'event_timestamp', createdTimestamp: 'created_timestamp' },
    ttlSeconds,
    description,
    tags: { example: 'churn' },
    features,
  });
  return {
    entities: [
      {
        name: 'customer',
        joinKeys: [{ name: CHURN_ENTITY_KEY, type: 'int64' }],
        description: 'A subscriber of the churn example.',
      },
    ],
    featureViews: [
      customerView('customer_profile', 0, 'Contract and account facts: a row when the contract changes and a monthly refresh of tenure.', [
        { name: 'plan', type: 'string', description: 'basic, standard, premium (and flex after the drift)' },
        { name: 'region', type: 'string' },
        { name: 'contract', type: 'string', description: 'month_to_month, one_year, two_year' },
        { name: 'payment_method', type: 'string', description: 'card, bank_transfer, invoice' },
        { name: 'autopay', type: 'bool' },
        { name: 'acquisition_channel', type: 'string', description: 'organic, paid_search, referral, partner' },
        { name: 'monthly_fee', type: 'float64' },
        { name: 'tenure_days', type: 'int64', description: 'days since signup at the snapshot' },
      ]),
      customerView('order_activity', 14 * DAY, 'Weekly snapshot of order behaviour before the snapshot time.', [
        { name: 'orders_7d', type: 'int64' },
        { name: 'orders_30d', type: 'int64' },
        { name: 'orders_90d', type: 'int64' },
        { name: 'spend_30d', type: 'float64' },
        { name: 'avg_order_value_90d', type: 'float64', description: 'null without an order in 90 days' },
        { name: 'days_since_last_order', type: 'int64', description: 'null when the customer never ordered' },
      ]),
      customerView('support_activity', 14 * DAY, 'Weekly snapshot of support contacts before the snapshot time.', [
        { name: 'tickets_30d', type: 'int64' },
        { name: 'tickets_90d', type: 'int64' },
        { name: 'complaints_30d', type: 'int64' },
        { name: 'complaints_90d', type: 'int64' },
        { name: 'max_severity_30d', type: 'int64', description: '0 without a contact in 30 days' },
        { name: 'days_since_last_ticket', type: 'int64', description: 'null when the customer never contacted support' },
      ]),
    ],
    featureServices: [
      {
        name: CHURN_FEATURE_SERVICE,
        features: [...CHURN_MODEL_FEATURES],
        description: 'The features of the default churn model.',
      },
    ],
  };
}

export const churnDefinitions: FeatureDefinitionsInput = churnDefinitionsFor(CHURN_SCHEMA);
