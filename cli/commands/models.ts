import { Command } from 'commander';
import { loadConfig } from '../../lib/config.js';
import { InvalidInput } from '../../lib/errors.js';
import { createDb } from '../../stores/db.js';
import { setServeWithoutFeatures } from '../../stores/model-options.js';
import type { ModelVersion } from '../../stores/registry.js';
import { listModels, listVersions, parseModelRef, resolveModelVersion } from '../../stores/registry.js';

export function modelsCommand(): Command {
  return new Command('models')
    .description('List registered models, or the versions of one model with their aliases, metrics and gates')
    .argument('[name]', 'a model name')
    .option('--json', 'print JSON on stdout')
    .option('--serve-without-features <on|off>', 'serve {entity} predictions of this model even when none of its online features is present (default off: 422)')
    .action(async (name: string | undefined, options: { json?: boolean; serveWithoutFeatures?: string }) => {
      const serveWithoutFeatures = options.serveWithoutFeatures;
      if (serveWithoutFeatures !== undefined && (!name || !['on', 'off'].includes(serveWithoutFeatures))) {
        throw new InvalidInput('--serve-without-features takes on or off, after a model name', 'serve-without-features');
      }
      const db = createDb({ url: loadConfig().database.url, applicationName: 'keel-cli' });
      try {
        if (name && serveWithoutFeatures !== undefined) {
          await setServeWithoutFeatures(db, name, serveWithoutFeatures === 'on');
          const out = { model: name, serveWithoutFeatures: serveWithoutFeatures === 'on' };
          // Gateways read the option within 5 seconds.
          return void process.stdout.write(options.json ? `${JSON.stringify(out)}\n` : `${name}: served without online features: ${serveWithoutFeatures}\n`);
        }
        if (!name) {
          const models = await listModels(db);
          if (options.json) return void process.stdout.write(`${JSON.stringify(models)}\n`);
          if (models.length === 0) return void process.stdout.write('no models registered yet (run keel train)\n');
          for (const m of models) {
            const aliases = Object.entries(m.aliases).map(([alias, v]) => `${alias}=v${v}`).join(' ');
            process.stdout.write(`${m.name.padEnd(24)} ${String(m.versionCount).padStart(3)} versions  latest v${m.latestVersion ?? '-'}  ${aliases}\n`);
          }
          return;
        }
        const { model } = parseModelRef(name);
        const versions = await listVersions(db, model);
        if (options.json) return void process.stdout.write(`${JSON.stringify(versions.map(versionSummary))}\n`);
        for (const v of versions) {
          const s = versionSummary(v);
          process.stdout.write(`v${String(s.version).padEnd(4)} ${s.trainer.padEnd(8)} AUC ${s.testAuc?.toFixed(4) ?? '-'}  ${s.aliases.join(',').padEnd(20)} ${s.createdAt}  ${s.trainingWorkflowId}\n`);
        }
      } finally {
        await db.end();
      }
    });
}

export function lineageCommand(): Command {
  return new Command('lineage')
    .description('Show the full lineage of a model version: workflow, data, profile, feature views, trainer, seed, code version')
    .argument('<ref>', 'name@version or name@alias (e.g. churn@3, churn@candidate)')
    .option('--json', 'print JSON on stdout')
    .action(async (ref: string, options: { json?: boolean }) => {
      const { model, version } = parseModelRef(ref);
      const db = createDb({ url: loadConfig().database.url, applicationName: 'keel-cli' });
      try {
        const found = await resolveModelVersion(db, model, version);
        const out = { ...versionSummary(found), bundle: { uri: found.bundleUri, sha256: found.bundleSha256 }, lineage: found.lineage, gates: found.gates };
        process.stdout.write(options.json ? `${JSON.stringify(out)}\n` : `${JSON.stringify(out, null, 2)}\n`);
      } finally {
        await db.end();
      }
    });
}

export function versionSummary(v: ModelVersion) {
  const metrics = v.metrics as { test?: { auc?: number }; cv?: { mean: number; std: number } | null };
  return {
    model: v.model,
    version: v.version,
    aliases: v.aliases,
    trainer: v.trainer,
    testAuc: metrics.test?.auc ?? null,
    cv: metrics.cv ?? null,
    dataHash: v.dataHash,
    bundleSha256: v.bundleSha256,
    trainingWorkflowId: v.trainingWorkflowId,
    trainingRunId: v.trainingRunId,
    codeVersion: v.codeVersion,
    createdBy: v.createdBy,
    createdAt: v.createdAt,
  };
}
