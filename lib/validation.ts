import type { z } from 'zod';

/** The first problem zod found, as a field path and a sentence that names it. */
export interface InputProblem {
  field: string;
  message: string;
}

export function describeZodError(error: z.ZodError): InputProblem {
  const issue = error.issues[0];
  if (!issue) return { field: '', message: 'invalid input' };
  if (issue.code === 'unrecognized_keys') {
    // zod reports an unknown key at its parent object: the key itself is the field to name.
    const field = [...issue.path, issue.keys[0]!].map(String).join('.');
    const others = issue.keys.slice(1);
    return { field, message: `${field}: unknown key${others.length ? ` (and ${others.join(', ')})` : ''}` };
  }
  const field = issue.path.map(String).join('.');
  return { field, message: field ? `${field}: ${issue.message}` : issue.message };
}
