/**
 * `node --import tsx bench/gateway/profile-summary.ts <file.cpuprofile> [--skip S] [--top N]`: the
 * steady-state CPU breakdown of a server profiled by `npm run bench:gateway -- --profile`. Samples
 * of the first S seconds (start-up, model loading, warm-up; default 5) are left out; prints the
 * top N functions by self time and by inclusive time (each function counted once per sample).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { skip: { type: 'string', default: '5' }, top: { type: 'string', default: '40' } },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: profile-summary.ts <file.cpuprofile> [--skip seconds] [--top N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as CpuProfile;
const skipMicros = Number(args.skip) * 1e6;
const top = Number(args.top);

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);
const label = (n: ProfileNode) => {
  const file = n.callFrame.url.replace(/^.*\/node_modules\//, '').replace(/^.*\//, '');
  return `${n.callFrame.functionName || '(anonymous)'} ${file}${file ? `:${n.callFrame.lineNumber + 1}` : ''}`;
};

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let counted = 0;
let t = profile.startTime;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i]!;
  if (t - profile.startTime < skipMicros) continue;
  counted++;
  let node = byId.get(profile.samples[i]!);
  if (!node) continue;
  const leaf = label(node);
  self.set(leaf, (self.get(leaf) ?? 0) + 1);
  const seen = new Set<string>();
  while (node) {
    const l = label(node);
    if (!seen.has(l)) {
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + 1);
    }
    const parent = parentOf.get(node.id);
    node = parent === undefined ? undefined : byId.get(parent);
  }
}

const show = (title: string, counts: Map<string, number>) => [
  `--- ${title}`,
  ...[...counts].sort((a, b) => b[1] - a[1]).slice(0, top).map(([l, c]) => `${((100 * c) / counted).toFixed(1).padStart(5)} %  ${l}`),
];
// Piped into head, stdout may close early: that is not an error.
process.stdout.on('error', () => process.exit(0));
process.stdout.write([`${counted} samples after the first ${args.skip} s`, ...show('self', self), ...show('inclusive', inclusive), ''].join('\n'));
