import type { ChildProcess } from 'node:child_process';

/** Collects the last 200 000 characters a child writes on stdout and stderr, for failure messages. */
export function collectOutput(child: ChildProcess): () => string {
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return () => output;
}
