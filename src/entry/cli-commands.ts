// Commands beyond serve/migrate, kept here so cli.ts stays small. Each module is loaded only
// when its command runs.
export interface Command {
  summary: string;
  usage: string;
  /** Exit code; a negative value means "keep running" (servers). */
  run(args: string[]): Promise<number>;
}

const lazy = (summary: string, usage: string, load: () => Promise<Command>): Command => ({
  summary,
  usage,
  run: async (args) => (await load()).run(args),
});

export const extraCommands: Record<string, Command> = {
  tick: lazy(
    "run one scheduler tick (via the API with --server, or on a SQLite file with --db)",
    `etcd-vault tick --server URL            token from ETCD_VAULT_TOKEN (operator or admin)
etcd-vault tick --db FILE [--now TIME]   tick a local catalog directly (TIME: RFC 3339, default now)
  [--until TIME --every DURATION]        replay: tick repeatedly from --now to --until`,
    async () => (await import("./tick-command.js")).tickCommand,
  ),
  runner: lazy(
    "execute captures and discoveries for a control plane (remote runner)",
    "etcd-vault runner --server URL [--pool NAME] [--concurrency N] [--name NAME]   (token: ETCD_VAULT_RUNNER_TOKEN)",
    async () => (await import("./runner-command.js")).runnerCommand,
  ),
};
