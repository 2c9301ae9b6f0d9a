/**
 * On-demand features of the churn example: pure functions of retrieved features, computed the
 * same way when the training set is built and when the gateway serves a request. A pipeline asks
 * for them by name (`data.onDemand`); their code hashes go into the model's feature spec.
 */
import { defineOnDemandFeature } from '../../lib/features/on-demand.js';

export const churnOnDemandFeatures = [
  defineOnDemandFeature({
    name: 'spend_per_order_30d',
    inputs: ['spend_30d', 'orders_30d'],
    type: 'float64',
    description: 'average order value over 30 days; null without an order',
    fn: ({ spend_30d, orders_30d }) =>
      typeof spend_30d === 'number' && typeof orders_30d === 'number' && orders_30d > 0 ? spend_30d / orders_30d : null,
  }),
  defineOnDemandFeature({
    name: 'is_new_customer',
    inputs: ['tenure_days'],
    type: 'bool',
    description: 'tenure under 90 days',
    fn: ({ tenure_days }) => (typeof tenure_days === 'number' ? tenure_days < 90 : null),
  }),
];

/** The feature-module contract's name for them (lib/features/modules.ts), so this file can be listed in KEEL_FEATURE_MODULES. */
export const onDemandFeatures = churnOnDemandFeatures;
