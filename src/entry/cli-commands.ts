// Commands beyond serve/migrate, kept here so cli.ts stays small. Each module is loaded only
// when its command runs (or its --help is asked for).
export interface Command {
  summary: string;
  usage: string | (() => Promise<string>);
  /** Exit code; a negative value means "keep running" (servers). */
  run(args: string[]): Promise<number>;
}

export async function usageOf(cmd: Command): Promise<string> {
  return typeof cmd.usage === "string" ? cmd.usage : cmd.usage();
}

const lazy = (summary: string, load: () => Promise<Command>): Command => ({
  summary,
  usage: async () => usageOf(await load()),
  run: async (args) => (await load()).run(args),
});

export const extraCommands: Record<string, Command> = {
  tick: lazy(
    "run one scheduler tick (via the API with --server, or on a SQLite file with --db)",
    async () => (await import("./tick-command.js")).tickCommand,
  ),
  verify: lazy("check a restore bundle: sums, decryption, plaintext hash and etcd trailer", async () => {
    const { runVerify, VERIFY_USAGE } = await import("./verify-command.js");
    return {
      summary: "check a restore bundle",
      usage: VERIFY_USAGE,
      run: (args) => runVerify(args, { stdout: process.stdout, stderr: process.stderr, isTTY: Boolean(process.stderr.isTTY) }),
    };
  }),
  runner: lazy(
    "execute captures and discoveries for a control plane (remote runner)",
    async () => (await import("./runner-command.js")).runnerCommand,
  ),
};
