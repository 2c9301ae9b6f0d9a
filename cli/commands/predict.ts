/**
 * `keel predict <name>`: asks the running gateway for predictions, so an engineer can try a model
 * the way services call it (same routing, enrichment, logging). Rows come from `--features`,
 * `--entity`, or a CSV / JSON-lines / JSON-array file (`-` = stdin) sent as one `instances` batch.
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { parseCsv } from '../../lib/data/csv.js';
import { columnValues } from '../../lib/data/table.js';
import { InvalidInput, KeelError } from '../../lib/errors.js';
import { loadConfig } from '../../lib/config.js';

interface PredictOptions {
  features?: string;
  entity?: string;
  file?: string;
  requestId?: string;
  gateway?: string;
  key?: string;
  variant?: string;
  json?: boolean;
}

export function predictCommand(): Command {
  return new Command('predict')
    .description('Get predictions from the running gateway (POST /v1/models/:name/predict)')
    .argument('<name>', 'model name')
    .option('--features <json>', 'one row of features, e.g. \'{"tenure_months": 3, "plan": "basic"}\'')
    .option('--entity <json>', 'an entity whose online features fill the row, e.g. \'{"customer_id": 42}\'')
    .option('--file <path>', 'rows as CSV, JSON lines or a JSON array of feature objects (- = stdin), sent as one batch')
    .option('--request-id <id>', 'request id to use (default: the gateway makes one)')
    .option('--gateway <url>', 'gateway URL (default KEEL_GATEWAY_URL, else http://KEEL_HOST:PORT)')
    .option('--key <token>', 'API key (default KEEL_API_KEY)')
    .option('--variant <name>', 'ask for one variant (x-keel-variant; needs an admin key)')
    .option('--json', 'print the gateway answer as JSON on stdout')
    .action(async (name: string, options: PredictOptions) => {
      const body = await requestBody(options);
      const gateway = options.gateway ?? process.env.KEEL_GATEWAY_URL ?? defaultGatewayUrl();
      const key = options.key ?? process.env.KEEL_API_KEY;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (key) headers.authorization = `Bearer ${key}`;
      if (options.variant) headers['x-keel-variant'] = options.variant;
      let response: Response;
      try {
        response = await fetch(new URL(`/v1/models/${encodeURIComponent(name)}/predict`, gateway), { method: 'POST', headers, body: JSON.stringify(body) });
      } catch (error) {
        throw new KeelError('Unavailable', `cannot reach the gateway at ${gateway} (${(error as Error).cause ?? (error as Error).message}); start it with keel up or keel gateway, or pass --gateway`);
      }
      const answer: unknown = await response.json().catch(() => null);
      if (!response.ok) {
        const error = (answer as { error?: { code?: string; message?: string } } | null)?.error;
        const message = `gateway answered ${response.status}${error?.code ? ` ${error.code}` : ''}: ${error?.message ?? 'no error message'}`;
        // A request the gateway refuses is the caller's to fix (exit 2); its own trouble is a failure (exit 1).
        throw response.status < 500 ? new InvalidInput(message) : new KeelError('GatewayError', message);
      }
      if (options.json) return void process.stdout.write(`${JSON.stringify(answer)}\n`);
      const rows = (answer as { predictions?: unknown[] }).predictions ?? [answer];
      for (const row of rows as Array<Record<string, unknown>>) {
        process.stdout.write(
          `${String(row.request_id ?? '')}  v${String(row.model_version)} (${String(row.variant)})  prediction ${String(row.prediction)}  probability ${Number(row.probability).toFixed(4)}\n`,
        );
      }
    });
}

function defaultGatewayUrl(): string {
  const { host, port } = loadConfig().gateway;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

async function requestBody(options: PredictOptions): Promise<Record<string, unknown>> {
  const given = [options.features, options.entity, options.file].filter((v) => v !== undefined).length;
  if (given !== 1) throw new InvalidInput('give exactly one of --features, --entity or --file');
  const extra = options.requestId ? { request_id: options.requestId } : {};
  if (options.features !== undefined) return { features: jsonObject(options.features, '--features'), ...extra };
  if (options.entity !== undefined) return { entity: jsonObject(options.entity, '--entity'), ...extra };
  const text = options.file === '-' ? await readStdin() : await readFile(options.file!, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new InvalidInput(`cannot read --file ${options.file}: ${error.code ?? error.message}`);
  });
  return { instances: rowsOf(text, options.file!), ...extra };
}

function jsonObject(text: string, option: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidInput(`${option} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInput(`${option} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** Feature objects from a JSON array, JSON lines or CSV (header row; empty cells are null). */
function rowsOf(text: string, file: string): Array<{ features: Record<string, unknown> }> {
  const trimmed = text.trim();
  if (trimmed === '') throw new InvalidInput(`--file ${file} is empty`);
  let rows: Array<Record<string, unknown>>;
  if (trimmed.startsWith('[')) {
    const parsed: unknown = JSON.parse(trimmed);
    if (!Array.isArray(parsed)) throw new InvalidInput(`--file ${file}: expected a JSON array of objects`);
    rows = parsed.map((row, i) => jsonObject(JSON.stringify(row), `--file ${file} row ${i + 1}`));
  } else if (trimmed.startsWith('{')) {
    rows = trimmed.split('\n').filter((line) => line.trim() !== '').map((line, i) => jsonObject(line, `--file ${file} line ${i + 1}`));
  } else {
    const table = parseCsv(trimmed);
    const columns = table.columns.map((c) => [c.name, columnValues(c)] as const);
    rows = Array.from({ length: table.rowCount }, (_, r) => Object.fromEntries(columns.map(([name, values]) => [name, values[r] ?? null])));
  }
  return rows.map((features) => ({ features }));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
