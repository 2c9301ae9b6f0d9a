import path from 'node:path';

/** Whether `file` lies strictly under `folder` (both absolute, normalised): the containment test for allowed folders. */
export function isInside(file: string, folder: string): boolean {
  const relative = path.relative(folder, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}
