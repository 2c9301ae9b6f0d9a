/** Exit codes every `keel` command uses. */
export const EXIT = {
  ok: 0,
  /** Something failed at run time: a server unreachable, a workflow failed. */
  failure: 1,
  /** The command was called wrongly: unknown command or option, bad value. */
  usage: 2,
} as const;
