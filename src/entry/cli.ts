// `etcd-vault <command>`: the single command-line entry (bin/etcd-vault.js and `npm start`).
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ConfigError, loadConfig } from "./config.js";
import { VERSION } from "./version.js";

import { extraCommands, usageOf, type Command } from "./cli-commands.js";

const commands: Record<string, Command> = {
  serve: {
    summary: "serve the HTTP API, dashboard, scheduler and in-process runner (Node edition)",
    usage: `etcd-vault serve

Configuration comes from the environment (see README "Configuration"):
  PORT (8080), ETCD_VAULT_DATA_DIR (./var), ETCD_VAULT_STORAGE, ETCD_VAULT_ADMIN_TOKEN,
  ETCD_VAULT_MASTER_KEY, ETCD_VAULT_PUBLIC_URL, ETCD_VAULT_SCHEDULER (on|off),
  ETCD_VAULT_DEFAULT_RECIPIENTS, ETCD_VAULT_CONCURRENCY (4), ETCD_VAULT_EXEC_IDLE_TIMEOUT (60s),
  ETCD_VAULT_LEASE (2m), ETCD_VAULT_MANUAL_TTL (30d), ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS (false)`,
    async run(args) {
      parseArgs({ args, options: {}, allowPositionals: false });
      const config = loadConfig(process.env);
      const { serveNode } = await import("./node.js");
      await serveNode(config);
      return -1; // keep running
    },
  },
  migrate: {
    summary: "apply catalog migrations to the SQLite file and exit",
    usage: `etcd-vault migrate [--db FILE]

  --db FILE   catalog file (default: $ETCD_VAULT_DATA_DIR/catalog.db)`,
    async run(args) {
      const { values } = parseArgs({ args, options: { db: { type: "string" } } });
      const config = loadConfig(process.env);
      const file = values.db ?? join(config.dataDir, "catalog.db");
      const { openSqliteCatalog, pendingMigrations } = await import("../catalog/sqlite.js");
      const cat = openSqliteCatalog(file);
      const pending = pendingMigrations(cat.sqlite);
      cat.close();
      process.stdout.write(`catalog ${file}: migrations applied${pending ? ` (${pending} pending!)` : ""}\n`);
      return pending ? 1 : 0;
    },
  },
};

Object.assign(commands, extraCommands);

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `etcd-vault ${VERSION} — offsite, encrypted etcd backups for a fleet of clusters

Usage: etcd-vault <command> [options]

Commands:
${lines.join("\n")}

Run 'etcd-vault <command> --help' for a command's options. 'etcd-vault --version' prints the version.
`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "-v") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`etcd-vault: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`${await usageOf(cmd)}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`etcd-vault: ${e.message}\n`);
      return 78; // EX_CONFIG
    }
    const code = (e as { code?: string }).code;
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" || code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
      process.stderr.write(`etcd-vault ${name}: ${(e as Error).message}\n\n${await usageOf(cmd)}\n`);
      return 2;
    }
    process.stderr.write(`etcd-vault ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
