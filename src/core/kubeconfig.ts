// Kubeconfig validation, runtime-neutral (yaml + zod). A kubeconfig is stored sealed and used later
// by the in-process adapter or by a remote runner, so it must be self-contained: embedded
// certificate data, no file paths (they would name files on whichever machine happens to run it).
// Every message names a field, never a value: the text is full of credentials.

import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { invalidInput } from "./errors.js";

export type KubeAuthKind = "token" | "client-certificate" | "exec" | "auth-provider";

export interface KubeconfigSummary {
  contextName: string;
  /** The cluster's API server URL as written (always https). */
  server: string;
  /** `hostname:port` of the server (port omitted when it is the https default). */
  host: string;
  /** Which kind of credentials the context's user carries (the value itself is never returned). */
  auth: KubeAuthKind;
}

const nonEmpty = z.string().min(1);

const clusterSchema = z.looseObject({
  server: nonEmpty,
  "certificate-authority-data": nonEmpty.optional(),
  "certificate-authority": z.string().optional(),
  "insecure-skip-tls-verify": z.boolean().optional(),
  "tls-server-name": z.string().optional(),
});

const userSchema = z.looseObject({
  token: z.string().optional(),
  tokenFile: z.string().optional(),
  "client-certificate-data": z.string().optional(),
  "client-key-data": z.string().optional(),
  "client-certificate": z.string().optional(),
  "client-key": z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  exec: z.looseObject({ command: nonEmpty, args: z.array(z.string()).nullish(), apiVersion: z.string().optional() }).optional(),
  "auth-provider": z.looseObject({ name: nonEmpty }).optional(),
});

const contextSchema = z.looseObject({ cluster: nonEmpty, user: nonEmpty, namespace: z.string().optional() });

const kubeconfigSchema = z.looseObject({
  clusters: z.array(z.looseObject({ name: nonEmpty, cluster: clusterSchema })).nullish(),
  users: z.array(z.looseObject({ name: nonEmpty, user: userSchema })).nullish(),
  contexts: z.array(z.looseObject({ name: nonEmpty, context: contextSchema })).nullish(),
  "current-context": z.string().nullish(),
});

type Cluster = z.infer<typeof clusterSchema>;
type User = z.infer<typeof userSchema>;

const fail = (reason: string) => invalidInput("kubeconfig", reason);

function parseText(text: string): unknown {
  try {
    // prettyErrors off: the pretty form quotes the offending source line, which may hold a token.
    return parseYaml(text, { prettyErrors: false, maxAliasCount: 50 });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const before = text.slice(0, e.pos[0]);
      const line = before.split("\n").length;
      const col = before.length - before.lastIndexOf("\n");
      throw fail(`not valid YAML (${e.code} at line ${line}, column ${col})`);
    }
    throw fail("not valid YAML");
  }
}

function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("");
}

/** Base64 check without decoding into a runtime-specific buffer type. */
function isBase64(s: string): boolean {
  return /^[A-Za-z0-9+/\r\n]+={0,2}\s*$/.test(s);
}

function decodesToPem(s: string, label: string): boolean {
  if (!isBase64(s)) return false;
  try {
    return atob(s.replace(/\s+/g, "")).includes(`-----BEGIN ${label}`);
  } catch {
    return false;
  }
}

function checkCluster(name: string, c: Cluster): { server: string; host: string } {
  const where = `cluster '${name}'`;
  let url: URL;
  try {
    url = new URL(c.server);
  } catch {
    throw fail(`${where}: server is not a URL`);
  }
  if (url.protocol !== "https:") throw fail(`${where}: server must be an https:// URL`);
  if (url.username || url.password) throw fail(`${where}: server URL must not carry credentials`);
  if (c["certificate-authority"]) {
    throw fail(`${where}: certificate-authority (a file path) is not supported; embed certificate-authority-data`);
  }
  const ca = c["certificate-authority-data"];
  if (ca !== undefined && !decodesToPem(ca, "CERTIFICATE")) {
    throw fail(`${where}: certificate-authority-data is not base64 of a PEM certificate`);
  }
  return { server: c.server, host: url.host };
}

/**
 * What in a user makes client-node run a command or read a file on this host, as client-node 1.4
 * decides it: ExecAuth takes `exec` (whatever else the user has — it runs first and its token
 * wins), an auth-provider named `exec` or with `config.exec`; the azure and gcp providers run
 * `config.cmd-path`; FileAuth reads `config.tokenFile`; `token-file` is read for the token.
 */
function hostAccess(u: Record<string, unknown>): { command: string | null; file: string | null } {
  const provider = (u["auth-provider"] ?? null) as { name?: unknown; config?: Record<string, unknown> } | null;
  const config = provider?.config ?? {};
  const command =
    u.exec != null
      ? "an exec credential plugin"
      : provider && (provider.name === "exec" || config.exec != null)
        ? "an exec auth-provider"
        : provider && config["cmd-path"] != null
          ? "an auth-provider with cmd-path"
          : null;
  const file = u["token-file"] != null || u.tokenFile != null ? "token-file" : config.tokenFile != null || config["token-file"] != null ? "auth-provider tokenFile" : null;
  return { command, file };
}

function checkUser(name: string, u: User, allowCommands: boolean): KubeAuthKind {
  const where = `user '${name}'`;
  for (const key of ["tokenFile", "token-file", "client-certificate", "client-key"] as const) {
    if ((u as Record<string, unknown>)[key] != null) throw fail(`${where}: ${key} (a file path) is not supported; embed the data instead`);
  }
  const access = hostAccess(u as Record<string, unknown>);
  if (access.file) throw fail(`${where}: ${access.file} (a file path) is not supported; embed the data instead`);
  if (access.command && !allowCommands) {
    throw fail(
      `${where}: ${access.command} runs a command on the etcd-vault host and is refused; embed a token or a client certificate, or set ${CREDENTIAL_COMMANDS_SETTING}=true where etcd-vault (and its runners) run`,
    );
  }
  const cert = u["client-certificate-data"];
  const key = u["client-key-data"];
  if (cert || key) {
    if (!cert || !key) throw fail(`${where}: client-certificate-data and client-key-data must be given together`);
    if (!decodesToPem(cert, "CERTIFICATE")) throw fail(`${where}: client-certificate-data is not base64 of a PEM certificate`);
    if (!decodesToPem(key, "")) throw fail(`${where}: client-key-data is not base64 of a PEM key`);
    return "client-certificate";
  }
  if (u.token) return "token";
  if (u.exec) return "exec";
  if (u["auth-provider"]) return "auth-provider";
  if (u.username || u.password) throw fail(`${where}: basic auth (username/password) is not supported`);
  throw fail(`${where}: has no credentials (token, client certificate and key, exec or auth-provider)`);
}

/** The first entry with that name (kubectl and client-node take the first, too). */
function find<E extends { name: string }>(list: E[] | null | undefined, name: string): E | undefined {
  return (list ?? []).find((e) => e.name === name);
}

/**
 * Validate a kubeconfig and summarise the context that will be used: the given `context`, else the
 * current-context. Throws `invalid_input` (field `kubeconfig` or `context`) with a reason that
 * names what is wrong and never echoes a value from the text.
 */
export interface KubeconfigOptions {
  /**
   * Allow credentials that run a command on this host: an `exec` plugin, or an `auth-provider`
   * with a `cmd-path` (client-node runs both). Off unless the operator turns it on
   * (ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS): whoever may register a cluster would otherwise run
   * any command next to the master key.
   */
  allowCommands?: boolean;
}

export const CREDENTIAL_COMMANDS_SETTING = "ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS";

export function parseKubeconfig(text: string, context?: string, options: KubeconfigOptions = {}): KubeconfigSummary {
  return analyse(text, context, options).summary;
}

/**
 * The summary and the validated document as JSON text (secrets included: for the Kubernetes client
 * only). The client must load this, not the original text: its own YAML parser (js-yaml) reads
 * some texts differently (`<<` merge keys, unquoted dates as names), and a kubeconfig must not mean
 * one thing to the validator and another to the client.
 */
export function loadableKubeconfig(text: string, context?: string, options: KubeconfigOptions = {}): { summary: KubeconfigSummary; json: string } {
  return analyse(text, context, options);
}

function analyse(text: string, context: string | undefined, options: KubeconfigOptions): { summary: KubeconfigSummary; json: string } {
  if (typeof text !== "string" || !text.trim()) throw fail("is empty");
  const raw = parseText(text);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw fail("must be a YAML mapping");
  const parsed = kubeconfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw fail(`${issuePath(issue.path) || "document"}: ${issue.message}`);
  }
  const kc = parsed.data;

  let contextName: string;
  if (context !== undefined && context !== "") {
    if (!find(kc.contexts, context)) throw invalidInput("context", `context '${context}' is not defined in the kubeconfig`);
    contextName = context;
  } else {
    if (!kc["current-context"]) throw fail("has no current-context (set one, or give `context`)");
    contextName = kc["current-context"];
  }
  const ctx = find(kc.contexts, contextName)?.context;
  if (!ctx) throw fail(`current-context '${contextName}' is not defined in contexts`);
  const cluster = find(kc.clusters, ctx.cluster)?.cluster;
  if (!cluster) throw fail(`context '${contextName}' names cluster '${ctx.cluster}', which is not defined`);
  const user = find(kc.users, ctx.user)?.user;
  if (!user) throw fail(`context '${contextName}' names user '${ctx.user}', which is not defined`);

  const { server, host } = checkCluster(ctx.cluster, cluster);
  const auth = checkUser(ctx.user, user, options.allowCommands === true);
  // client-node reads every user when it loads a document (a `token-file` of any user is read
  // right then), so the entries no context here uses are held to the same rules…
  for (const other of kc.users ?? []) if (other.user !== user) checkUser(other.name, other.user, options.allowCommands === true);
  for (const other of kc.clusters ?? []) {
    if (other.cluster !== cluster && other.cluster["certificate-authority"]) {
      throw fail(`cluster '${other.name}': certificate-authority (a file path) is not supported; embed certificate-authority-data`);
    }
  }
  // …and the client gets only the entries this context uses, as validated.
  const byName = <E extends { name: string }>(list: E[] | null | undefined, name: string) => (list ?? []).find((e) => e.name === name);
  const rawDoc = raw as Record<string, unknown>;
  const minimal = {
    apiVersion: rawDoc.apiVersion ?? "v1",
    kind: rawDoc.kind ?? "Config",
    clusters: [byName(rawDoc.clusters as Array<{ name: string }>, ctx.cluster)],
    users: [byName(rawDoc.users as Array<{ name: string }>, ctx.user)],
    contexts: [byName(rawDoc.contexts as Array<{ name: string }>, contextName)],
    "current-context": contextName,
  };
  let json: string;
  try {
    json = JSON.stringify(minimal);
  } catch {
    throw fail("contains an alias that refers to itself");
  }
  return { summary: { contextName, server, host, auth }, json };
}
