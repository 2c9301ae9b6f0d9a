import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import type { FeatureDefinitionsInput, FeatureViewInput } from '../../lib/features/definitions.js';
import { definitionVersion, entitySchema, featureServiceSchema, featureViewSchema } from '../../lib/features/definitions.js';
import { createDb, type Db } from '../../stores/db.js';
import {
  applyFeatureDefinitions,
  loadFeatureDefinitions,
  resolveFeatureRefs,
  validateFeatureDefinitions,
} from '../../stores/features/registry.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';

const customerStats: FeatureViewInput = {
  name: 'customer_stats',
  entity: 'customer',
  source: { table: 'features.customer_stats', createdTimestamp: 'created_timestamp' },
  features: [
    { name: 'spend_30d', type: 'float64' },
    { name: 'orders_30d', type: 'int64' },
    { name: 'plan', type: 'string' },
  ],
  ttlSeconds: 86_400 * 30,
};
const customerProfile: FeatureViewInput = {
  name: 'customer_profile',
  entity: 'customer',
  source: { table: 'customer_profile' },
  features: [
    { name: 'age', type: 'int64' },
    { name: 'autopay', type: 'bool' },
  ],
};
const merchantStats: FeatureViewInput = {
  name: 'merchant_stats',
  entity: 'merchant',
  source: { table: 'merchant_stats' },
  features: [{ name: 'volume', type: 'float64' }],
};

function project(): FeatureDefinitionsInput {
  return {
    entities: [
      { name: 'customer', joinKeys: [{ name: 'customer_id', type: 'int64' }], description: 'a paying customer' },
      { name: 'merchant', joinKeys: [{ name: 'merchant_id', type: 'string' }] },
    ],
    featureViews: [customerStats, customerProfile, merchantStats],
    featureServices: [
      { name: 'churn_v1', features: ['customer_stats:spend_30d', 'customer_profile:age'] },
      { name: 'merchant_risk', features: ['merchant_stats:volume'] },
    ],
  };
}

/** Catches the InvalidInput `work` throws and checks its message and field. */
function assertInvalid(work: () => unknown, message: RegExp, field?: string): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof InvalidInput, `expected InvalidInput, got ${String(error)}`);
    assert.match(error.message, message);
    if (field !== undefined) assert.equal(error.field, field);
    return true;
  });
}

describe('feature registry (Postgres)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
  });
  after(async () => {
    await db?.end();
    await database?.drop();
  });

  const timestamps = async (table: string, name: string) =>
    (await db.query<{ created_at: Date; updated_at: Date }>(`SELECT created_at, updated_at FROM ${table} WHERE name = $1`, [name]))
      .rows[0]!;

  it('creates every definition, with defaults filled in and versions from definitionVersion', async () => {
    const result = await applyFeatureDefinitions(db, project());
    assert.deepEqual(result, {
      created: [
        'entity/customer',
        'entity/merchant',
        'feature_view/customer_profile',
        'feature_view/customer_stats',
        'feature_view/merchant_stats',
        'feature_service/churn_v1',
        'feature_service/merchant_risk',
      ],
      updated: [],
      deleted: [],
      unchanged: [],
    });
    const stored = await loadFeatureDefinitions(db);
    assert.deepEqual(
      stored.featureViews.map((v) => v.name),
      ['customer_profile', 'customer_stats', 'merchant_stats'],
    );
    const stats = stored.featureViews.find((v) => v.name === 'customer_stats')!;
    assert.deepEqual(stats, featureViewSchema.parse(customerStats));
    assert.equal(stats.source.eventTimestamp, 'event_timestamp');
    assert.equal(stats.online, true);
    assert.deepEqual(stats.tags, {});
    const profile = stored.featureViews.find((v) => v.name === 'customer_profile')!;
    assert.equal(profile.ttlSeconds, 0);
    assert.equal(profile.source.createdTimestamp, undefined);
    assert.deepEqual(stored.versions, {
      'entity/customer': definitionVersion(entitySchema.parse(project().entities[0])),
      'entity/merchant': definitionVersion(entitySchema.parse(project().entities[1])),
      'feature_view/customer_profile': definitionVersion(featureViewSchema.parse(customerProfile)),
      'feature_view/customer_stats': definitionVersion(featureViewSchema.parse(customerStats)),
      'feature_view/merchant_stats': definitionVersion(featureViewSchema.parse(merchantStats)),
      'feature_service/churn_v1': definitionVersion(featureServiceSchema.parse(project().featureServices![0])),
      'feature_service/merchant_risk': definitionVersion(featureServiceSchema.parse(project().featureServices![1])),
    });
    for (const version of Object.values(stored.versions)) assert.match(version, /^[0-9a-f]{16}$/);
  });

  it('leaves unchanged definitions alone, whatever the property order in code', async () => {
    const before = await loadFeatureDefinitions(db);
    const stamps = await timestamps('feature_views', 'customer_stats');
    const reordered = project();
    reordered.featureViews = [
      merchantStats,
      customerProfile,
      {
        ttlSeconds: customerStats.ttlSeconds,
        features: customerStats.features,
        source: { createdTimestamp: 'created_timestamp', table: 'features.customer_stats', eventTimestamp: 'event_timestamp' },
        entity: 'customer',
        name: 'customer_stats',
      },
    ];
    const result = await applyFeatureDefinitions(db, reordered);
    assert.deepEqual(result.created, []);
    assert.deepEqual(result.updated, []);
    assert.deepEqual(result.deleted, []);
    assert.equal(result.unchanged.length, 7);
    assert.deepEqual((await loadFeatureDefinitions(db)).versions, before.versions);
    assert.deepEqual(await timestamps('feature_views', 'customer_stats'), stamps);
  });

  it('updates a changed definition: new version, same created_at, later updated_at', async () => {
    const before = await loadFeatureDefinitions(db);
    const stamps = await timestamps('feature_views', 'customer_stats');
    const changed = project();
    changed.featureViews = [{ ...customerStats, ttlSeconds: 86_400 * 7 }, customerProfile, merchantStats];
    const result = await applyFeatureDefinitions(db, changed);
    assert.deepEqual(result.updated, ['feature_view/customer_stats']);
    assert.deepEqual(result.created, []);
    assert.deepEqual(result.deleted, []);
    const after = await loadFeatureDefinitions(db);
    assert.notEqual(after.versions['feature_view/customer_stats'], before.versions['feature_view/customer_stats']);
    assert.equal(after.featureViews.find((v) => v.name === 'customer_stats')!.ttlSeconds, 86_400 * 7);
    const newStamps = await timestamps('feature_views', 'customer_stats');
    assert.deepEqual(newStamps.created_at, stamps.created_at);
    assert.ok(newStamps.updated_at > stamps.updated_at);
    // Every other item kept its version.
    for (const [key, version] of Object.entries(before.versions)) {
      if (key !== 'feature_view/customer_stats') assert.equal(after.versions[key], version, key);
    }
  });

  it('deletes what is no longer declared (unlike feast apply)', async () => {
    const smaller: FeatureDefinitionsInput = {
      entities: [project().entities[0]!],
      featureViews: [{ ...customerStats, ttlSeconds: 86_400 * 7 }, customerProfile],
      featureServices: [project().featureServices![0]!],
    };
    const result = await applyFeatureDefinitions(db, smaller);
    assert.deepEqual(result.deleted, ['entity/merchant', 'feature_view/merchant_stats', 'feature_service/merchant_risk']);
    assert.deepEqual(result.created, []);
    assert.deepEqual(result.updated, []);
    const stored = await loadFeatureDefinitions(db);
    assert.deepEqual(
      stored.entities.map((e) => e.name),
      ['customer'],
    );
    assert.deepEqual(
      stored.featureServices.map((s) => s.name),
      ['churn_v1'],
    );
    assert.deepEqual(Object.keys(stored.versions).sort(), [
      'entity/customer',
      'feature_service/churn_v1',
      'feature_view/customer_profile',
      'feature_view/customer_stats',
    ]);
    // An empty project empties the registry.
    const emptied = await applyFeatureDefinitions(db, { entities: [], featureViews: [] });
    assert.equal(emptied.deleted.length, 4);
    assert.deepEqual(await loadFeatureDefinitions(db), { entities: [], featureViews: [], featureServices: [], versions: {} });
  });

  it('serialises concurrent applies: the registry ends equal to one of them', async () => {
    const a = project();
    const b: FeatureDefinitionsInput = { entities: [project().entities[1]!], featureViews: [merchantStats] };
    await Promise.all([applyFeatureDefinitions(db, a), applyFeatureDefinitions(db, b), applyFeatureDefinitions(db, a)]);
    const names = Object.keys((await loadFeatureDefinitions(db)).versions).sort();
    const fromA = [
      'entity/customer',
      'entity/merchant',
      'feature_service/churn_v1',
      'feature_service/merchant_risk',
      'feature_view/customer_profile',
      'feature_view/customer_stats',
      'feature_view/merchant_stats',
    ];
    const fromB = ['entity/merchant', 'feature_view/merchant_stats'];
    assert.ok([fromA, fromB].some((e) => JSON.stringify(e) === JSON.stringify(names)), `unexpected mix: ${names.join(', ')}`);
  });

  describe('bad definitions are an InvalidInput naming the item and field, and change nothing', () => {
    const bad = (mutate: (p: FeatureDefinitionsInput) => void): FeatureDefinitionsInput => {
      const p = structuredClone(project());
      mutate(p);
      return p;
    };
    const rejects = async (input: FeatureDefinitionsInput, message: RegExp, field: string) => {
      const before = await loadFeatureDefinitions(db);
      await assert.rejects(applyFeatureDefinitions(db, input), (error: unknown) => {
        assert.ok(error instanceof InvalidInput, `expected InvalidInput, got ${String(error)}`);
        assert.match(error.message, message);
        assert.equal(error.field, field);
        return true;
      });
      assert.deepEqual(await loadFeatureDefinitions(db), before);
    };

    before(async () => {
      await applyFeatureDefinitions(db, project());
    });

    it('a bad identifier', () =>
      rejects(
        bad((p) => (p.featureViews[1]!.name = 'Customer-Profile')),
        /feature view Customer-Profile \(featureViews\[1\]\): name: must match \^\[a-z_\]/,
        'featureViews[1].name',
      ));
    it('a bad feature name deep inside a view', () =>
      rejects(
        bad((p) => (p.featureViews[0]!.features[2]!.name = 'plan type')),
        /feature view customer_stats \(featureViews\[0\]\): features\[2\].name: must match/,
        'featureViews[0].features[2].name',
      ));
    it('a bad source table', () =>
      rejects(
        bad((p) => (p.featureViews[0]!.source.table = 'public."x"')),
        /feature view customer_stats \(featureViews\[0\]\): source.table: must be table or schema.table/,
        'featureViews[0].source.table',
      ));
    it('a bad source column', () =>
      rejects(
        bad((p) => (p.featureViews[0]!.source.createdTimestamp = 'created at')),
        /source.createdTimestamp: must match/,
        'featureViews[0].source.createdTimestamp',
      ));
    it('an unknown key', () =>
      rejects(
        bad((p) => Object.assign(p.featureViews[2]!, { ttl: 5 })),
        /feature view merchant_stats \(featureViews\[2\]\): ttl: Unrecognized key/,
        'featureViews[2].ttl',
      ));
    it('a bad feature type', () =>
      rejects(
        bad((p) => ((p.featureViews[2]!.features[0] as { type: string }).type = 'float')),
        /featureViews\[2\]\): features\[0\].type: /,
        'featureViews[2].features[0].type',
      ));
    it('a view without features', () =>
      rejects(
        bad((p) => (p.featureViews[2]!.features = [])),
        /merchant_stats .*features: a feature view needs at least one feature/,
        'featureViews[2].features',
      ));
    it('a negative TTL', () =>
      rejects(
        bad((p) => (p.featureViews[0]!.ttlSeconds = -1)),
        /customer_stats .*ttlSeconds/,
        'featureViews[0].ttlSeconds',
      ));
    it('an entity without join keys', () =>
      rejects(
        bad((p) => (p.entities[1]!.joinKeys = [])),
        /entity merchant \(entities\[1\]\): joinKeys: an entity needs at least one join key/,
        'entities[1].joinKeys',
      ));
    it('a list that is not a list', () =>
      rejects({ entities: {}, featureViews: [] } as unknown as FeatureDefinitionsInput, /entities must be an array/, 'entities'));
    it('a name declared twice', () =>
      rejects(
        bad((p) => p.featureViews.push({ ...merchantStats })),
        /feature view merchant_stats is declared twice \(featureViews\[2\] and featureViews\[3\]\)/,
        'featureViews[3].name',
      ));
    it('a view of an undeclared entity', () =>
      rejects(
        bad((p) => (p.featureViews[2]!.entity = 'merchnt')),
        /feature view merchant_stats: entity merchnt is not declared \(entities: customer, merchant\)/,
        'featureViews[2].entity',
      ));
    it('a feature named like a join key or timestamp', async () => {
      await rejects(
        bad((p) => (p.featureViews[1]!.features[0]!.name = 'customer_id')),
        /feature view customer_profile: feature customer_id is also a join key of entity customer/,
        'featureViews[1].features[0].name',
      );
      await rejects(
        bad((p) => (p.featureViews[0]!.features[1]!.name = 'created_timestamp')),
        /feature view customer_stats: feature created_timestamp is also the created timestamp/,
        'featureViews[0].features[1].name',
      );
      await rejects(
        bad((p) => (p.featureViews[0]!.source.createdTimestamp = 'event_timestamp')),
        /createdTimestamp and source.eventTimestamp are both event_timestamp/,
        'featureViews[0].source.createdTimestamp',
      );
    });
    it('a service naming an unknown view', () =>
      rejects(
        bad((p) => (p.featureServices![0]!.features = ['customer_stats:plan', 'customer_stat:spend_30d'])),
        /feature service churn_v1: unknown feature view customer_stat in reference customer_stat:spend_30d \(feature views: customer_stats, customer_profile, merchant_stats\)/,
        'featureServices[0].features[1]',
      ));
    it('a service naming an unknown feature, listing the view’s features', () =>
      rejects(
        bad((p) => (p.featureServices![0]!.features = ['customer_stats:spend_7d'])),
        /feature service churn_v1: feature view customer_stats has no feature spend_7d .*its features: spend_30d, orders_30d, plan/,
        'featureServices[0].features[0]',
      ));
    it('a service mixing entities', () =>
      rejects(
        bad((p) => p.featureServices![0]!.features.push('merchant_stats:volume')),
        /feature service churn_v1: feature view merchant_stats .*keyed by entity merchant, but feature view customer_stats is keyed by customer/,
        'featureServices[0].features[2]',
      ));
    it('a malformed reference in a service', () =>
      rejects(
        bad((p) => (p.featureServices![1]!.features = ['merchant_stats.volume'])),
        /feature service merchant_risk \(featureServices\[1\]\): features\[0\]: a feature reference is view:feature/,
        'featureServices[1].features[0]',
      ));
  });
});

describe('resolveFeatureRefs', () => {
  const definitions = validateFeatureDefinitions(project());

  it('groups references by view, in order of first appearance, keeping request order', () => {
    const resolved = resolveFeatureRefs(definitions, ['customer_stats:plan', 'customer_profile:age', 'customer_stats:spend_30d']);
    assert.equal(resolved.entity.name, 'customer');
    assert.deepEqual(resolved.refs, ['customer_stats:plan', 'customer_profile:age', 'customer_stats:spend_30d']);
    assert.deepEqual(
      resolved.groups.map((g) => [g.view.name, g.features.map((f) => f.name)]),
      [
        ['customer_stats', ['plan', 'spend_30d']],
        ['customer_profile', ['age']],
      ],
    );
    assert.equal(resolved.service, undefined);
  });

  it('resolves a feature service', () => {
    const resolved = resolveFeatureRefs(definitions, { service: 'merchant_risk' });
    assert.equal(resolved.service?.name, 'merchant_risk');
    assert.equal(resolved.entity.name, 'merchant');
    assert.deepEqual(resolved.refs, ['merchant_stats:volume']);
  });

  it('names what is wrong', () => {
    assertInvalid(() => resolveFeatureRefs(definitions, { service: 'churn' }), /unknown feature service "churn" \(feature services: churn_v1, merchant_risk\)/, 'service');
    assertInvalid(() => resolveFeatureRefs(definitions, ['nope:x']), /unknown feature view nope in reference nope:x/, 'features[0]');
    assertInvalid(
      () => resolveFeatureRefs(definitions, ['customer_profile:age', 'customer_profile:height']),
      /feature view customer_profile has no feature height \(reference customer_profile:height; its features: age, autopay\)/,
      'features[1]',
    );
    assertInvalid(
      () => resolveFeatureRefs(definitions, ['customer_profile:age', 'merchant_stats:volume']),
      /feature view merchant_stats \(reference merchant_stats:volume\) is keyed by entity merchant, but feature view customer_profile is keyed by customer/,
      'features[1]',
    );
    assertInvalid(
      () => resolveFeatureRefs(definitions, ['customer_profile:age'], { entity: 'merchant' }),
      /feature view customer_profile .* is keyed by entity customer, but the entity table is keyed by merchant/,
    );
    assertInvalid(() => resolveFeatureRefs(definitions, []), /no features requested/, 'features');
    assertInvalid(() => resolveFeatureRefs(definitions, ['customer_profile:Age']), /"customer_profile:Age" is not view:feature/, 'features[0]');
  });
});
