import type { z } from 'zod';

/** The first problem zod found, as a field path and a sentence that names it. */
export interface InputProblem {
  field: string;
  message: string;
}

export function describeZodError(error: z.ZodError): InputProblem {
  const issue = error.issues[0];
  if (!issue) return { field: '', message: 'invalid input' };
  const field = issue.path.map(String).join('.');
  return { field, message: field ? `${field}: ${issue.message}` : issue.message };
}
