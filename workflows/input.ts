import { ApplicationFailure, patched } from '@temporalio/workflow';
import type { z } from 'zod';
import { describeZodError } from '../lib/validation.js';

/**
 * Validates workflow input as the workflow's first step. Bad input can never succeed on retry,
 * so it fails the workflow at once with a non-retryable `InvalidInput` naming the field. No
 * input at all is `{}`; `null` is refused (runs started before that patch took null as `{}`).
 */
export function parseWorkflowInput<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const input = raw === undefined || (raw === null && !patched('refuse-null-input')) ? {} : raw;
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problem = describeZodError(parsed.error);
  throw ApplicationFailure.create({
    type: 'InvalidInput',
    message: problem.field ? problem.message : `input: ${problem.message}`,
    nonRetryable: true,
    details: [{ field: problem.field || null }],
  });
}
