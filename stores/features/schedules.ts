/**
 * One Temporal Schedule per online feature view, each starting `materializeFeatures` with
 * `{views: [view]}` every `interval` with overlap policy SKIP (a run still going when the next is
 * due makes that one be skipped: runs of one view never pile up; the watermark makes the next run
 * cover the skipped time). Schedule id `materialize-<view>` (the prefix is an option).
 *
 * `ensureMaterializationSchedules` makes the schedules equal to the given views: creates missing
 * ones, updates those whose interval, task queue or arguments differ (keeping their paused state),
 * and deletes the schedules it owns — id prefix, workflow type `materializeFeatures` and this task
 * queue — whose view is not in the list (no longer online, or no longer defined).
 * `startMaterializeFeatures` starts one run now (what `keel features materialize` does).
 */
import type { Client, ScheduleDescription, ScheduleOptionsAction, ScheduleSpec, WorkflowHandle } from '@temporalio/client';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common';
import { InvalidInput } from '../../lib/errors.js';
import { identifierSchema } from '../../lib/features/definitions.js';
import type { MaterializeFeaturesInput, MaterializeFeaturesResult } from '../../lib/schemas/materialize-features.js';
import { materializeFeaturesInputSchema } from '../../lib/schemas/materialize-features.js';
import { ORCHESTRATION_QUEUE } from '../../lib/task-queues.js';
import { describeZodError } from '../../lib/validation.js';

export const MATERIALIZE_WORKFLOW = 'materializeFeatures';
export const MATERIALIZE_SCHEDULE_PREFIX = 'materialize-';

export interface MaterializationSchedulesOptions {
  /** Views to schedule: names, or definitions (those with `online: false` are left out). */
  views: ReadonlyArray<string | { name: string; online?: boolean }>;
  /** How often each view is materialized: ms or a duration string ('15 minutes'); default 1 hour. */
  interval?: Duration;
  /** Task queue of the started workflows; default `keel`. */
  taskQueue?: string;
  /** Schedule id prefix; default `materialize-`. */
  idPrefix?: string;
}

export interface MaterializationSchedulesResult {
  /** Schedule ids, sorted. */
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
}

const DEFAULT_INTERVAL = '1 hour';

/** Makes the materialization schedules equal to `views` (see the module comment). */
export async function ensureMaterializationSchedules(
  client: Client,
  options: MaterializationSchedulesOptions,
): Promise<MaterializationSchedulesResult> {
  const taskQueue = options.taskQueue ?? ORCHESTRATION_QUEUE;
  const prefix = options.idPrefix ?? MATERIALIZE_SCHEDULE_PREFIX;
  const every = msToNumber(options.interval ?? DEFAULT_INTERVAL);
  if (!Number.isFinite(every) || every < 1000) throw new InvalidInput('interval must be at least 1 second', 'interval');
  const views = options.views
    .filter((v) => typeof v === 'string' || v.online !== false)
    .map((v) => (typeof v === 'string' ? v : v.name));
  views.forEach((view, i) => {
    if (!identifierSchema.safeParse(view).success) {
      throw new InvalidInput(`feature view name ${JSON.stringify(view)} must match ^[a-z_][a-z0-9_]{0,62}$`, `views[${i}]`);
    }
  });
  const wanted = new Map(views.map((view) => [`${prefix}${view}`, view]));
  const result: MaterializationSchedulesResult = { created: [], updated: [], deleted: [], unchanged: [] };

  for (const [scheduleId, view] of [...wanted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const spec: ScheduleSpec = { intervals: [{ every }] };
    const action: ScheduleOptionsAction = {
      type: 'startWorkflow',
      workflowType: MATERIALIZE_WORKFLOW,
      taskQueue,
      workflowId: scheduleId,
      args: [{ views: [view] } satisfies MaterializeFeaturesInput],
    };
    const handle = client.schedule.getHandle(scheduleId);
    let description: ScheduleDescription | undefined;
    try {
      description = await handle.describe();
    } catch (error) {
      if (!(error instanceof ScheduleNotFoundError)) throw error;
    }
    if (!description) {
      await client.schedule.create({
        scheduleId,
        spec,
        action,
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
        memo: { keel: MATERIALIZE_WORKFLOW, view },
      });
      result.created.push(scheduleId);
      continue;
    }
    if (scheduleMatches(description, every, taskQueue, view)) {
      result.unchanged.push(scheduleId);
      continue;
    }
    await handle.update((previous) => ({
      ...previous,
      spec,
      action,
      policies: { ...previous.policies, overlap: ScheduleOverlapPolicy.SKIP },
    }));
    result.updated.push(scheduleId);
  }

  for await (const summary of client.schedule.list()) {
    const id = summary.scheduleId;
    if (!id.startsWith(prefix) || wanted.has(id)) continue;
    if (summary.action?.workflowType !== MATERIALIZE_WORKFLOW) continue;
    const handle = client.schedule.getHandle(id);
    try {
      const description = await handle.describe();
      if (description.action.type !== 'startWorkflow' || description.action.taskQueue !== taskQueue) continue;
      await handle.delete();
      result.deleted.push(id);
    } catch (error) {
      if (!(error instanceof ScheduleNotFoundError)) throw error;
    }
  }
  result.deleted.sort();
  return result;
}

function scheduleMatches(description: ScheduleDescription, every: number, taskQueue: string, view: string): boolean {
  const intervals = description.spec.intervals ?? [];
  const action = description.action;
  return (
    intervals.length === 1 &&
    intervals[0]!.every === every &&
    (intervals[0]!.offset ?? 0) === 0 &&
    (description.spec.calendars ?? []).length === 0 &&
    description.policies.overlap === ScheduleOverlapPolicy.SKIP &&
    action.type === 'startWorkflow' &&
    action.workflowType === MATERIALIZE_WORKFLOW &&
    action.taskQueue === taskQueue &&
    JSON.stringify(action.args) === JSON.stringify([{ views: [view] }])
  );
}

/**
 * Starts `materializeFeatures` now (input checked with the workflow's schema first: bad input is
 * an `InvalidInput` naming the field). The workflow id defaults to `materialize-<views or all>-<ms>`.
 */
export async function startMaterializeFeatures(
  client: Client,
  input: MaterializeFeaturesInput = {},
  options: { taskQueue?: string; workflowId?: string } = {},
): Promise<WorkflowHandle<(input: MaterializeFeaturesInput) => Promise<MaterializeFeaturesResult>>> {
  const parsed = materializeFeaturesInputSchema.safeParse(input);
  if (!parsed.success) {
    const problem = describeZodError(parsed.error);
    throw new InvalidInput(problem.message, problem.field);
  }
  const label = parsed.data.views ? parsed.data.views.join('-').slice(0, 100) : 'all';
  return client.workflow.start<(input: MaterializeFeaturesInput) => Promise<MaterializeFeaturesResult>>(MATERIALIZE_WORKFLOW, {
    taskQueue: options.taskQueue ?? ORCHESTRATION_QUEUE,
    workflowId: options.workflowId ?? `materialize-${label}-${Date.now()}`,
    args: [input],
  });
}
