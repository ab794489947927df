// Commands beyond serve/migrate (tick, runner, verify), kept here so cli.ts stays small.
export interface Command {
  summary: string;
  usage: string;
  /** Exit code; a negative value means "keep running" (servers). */
  run(args: string[]): Promise<number>;
}

export const extraCommands: Record<string, Command> = {};
