// The deployment files checked against the code they deploy, so a manifest that drifts fails here:
// - deploy/Dockerfile (parsed): base, stages, user, entry point, port, data dir, build context;
// - deploy/kubernetes (rendered like kustomize for the parts we use): wiring, env names and values
//   against the config schema and the commands' own reads, pod security;
// - the manifests' commands, run for real: `serve` with the manifests' environment (probes over
//   HTTP), then the CronJob's `tick` and the runner Deployment's `runner` against it;
// - deploy/cluster-rbac.yaml against the Kubernetes API calls the kube adapter makes, recorded by
//   a TLS proxy in front of the kube simulator (the simulator only records execs);
// - docs/fleet-onboarding.md: its API calls exist with those bodies, its kubeconfig recipe works,
//   its `kubectl auth can-i` checks are granted.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { connect as tlsConnect } from "node:tls";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
// The names the AWS SDK's default credential chain reads from the environment (a dependency of
// @aws-sdk/client-s3, which the S3 store leaves credentials to when a target has none).
import { ENV_KEY, ENV_SECRET, ENV_SESSION } from "@aws-sdk/credential-provider-env";
import { DEFAULT_ETCD_SETTINGS } from "../src/core/cluster-types.js";
import { parseKubeconfig } from "../src/core/kubeconfig.js";
import { MIGRATIONS_DIR } from "../src/catalog/sqlite.js";
import { BUNDLE } from "../bin/build.js";
import { envSchema, loadConfig } from "../src/entry/config.js";
import { VERSION } from "../src/entry/version.js";
import { KubeClusterAccess } from "../src/kube/cluster-access.js";
import { freePort } from "./support/etcd.js";
import { etcdPod, masterNode, randomBytesCommand, startKubeSim, type KubeSim } from "./support/kube-sim.js";
import { startTestService, type TestService } from "./helpers/service.js";

const ROOT = join(import.meta.dirname, "..");
const DEPLOY = join(ROOT, "deploy");
const K8S = join(DEPLOY, "kubernetes");
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");
const PKG = JSON.parse(read("package.json")) as { bin: Record<string, string>; engines: { node: string } };
const BIN = join(ROOT, PKG.bin["etcd-vault"]!);
const MASTER_KEY = "ab".repeat(32);
const ADMIN = "deploy-test-admin-token-0123456789";

// YAML objects are untyped by nature; every access below is checked by an expectation.
type Obj = Record<string, any>;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function parseYamlFile(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  return docs.map((d) => {
    if (d.errors.length) throw new Error(`${relative(ROOT, file)}: ${d.errors[0]!.message}`);
    return d.toJS() as Obj;
  }).filter((o) => o !== null);
}

// ---------- Dockerfile ----------

interface Instruction { op: string; args: string }
interface Stage { from: string; name: string | null; instructions: Instruction[] }

/** Stages with their instructions; line continuations joined, comments dropped, ARG defaults substituted in FROM. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let cur = "";
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line)) continue;
    if (/\\\s*$/.test(line)) {
      cur += line.replace(/\\\s*$/, " ");
      continue;
    }
    cur += line;
    if (cur.trim()) logical.push(cur.trim());
    cur = "";
  }
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\w+)\s+([\s\S]*)$/.exec(l)!;
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === "ARG" && !stages.length) {
      const [k, v] = args.split("=");
      globalArgs.set(k!, v ?? "");
    } else if (op === "FROM") {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      const from = f[1]!.replace(/\$\{?(\w+)\}?/g, (_, k: string) => globalArgs.get(k) ?? "");
      stages.push({ from, name: f[2] ?? null, instructions: [] });
    } else {
      stages.at(-1)!.instructions.push({ op, args });
    }
  }
  return stages;
}

const all = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op);
const last = (s: Stage, op: string) => all(s, op).at(-1);
const execForm = (args: string) => JSON.parse(args) as string[];

/** `.dockerignore` as Docker applies it: the last pattern matching the path or a parent wins. */
function dockerIgnored(patterns: string[], path: string): boolean {
  const toRe = (glob: string) =>
    new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*\//g, "\u0000").replace(/\*\*/g, ".*").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]").replace(/\u0000/g, "(?:.*/)?")}$`);
  const parts = path.split("/");
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith("!");
    const re = toRe((negated ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, ""));
    for (let i = 1; i <= parts.length; i++) {
      if (re.test(parts.slice(0, i).join("/"))) {
        ignored = !negated;
        break;
      }
    }
  }
  return ignored;
}

/** Context copies of a stage: [context source, absolute destination in that stage]. */
function contextCopiesOf(stage: Stage): (readonly [string, string])[] {
  const workdir = last(stage, "WORKDIR")!.args;
  return all(stage, "COPY")
    .filter((c) => !c.args.startsWith("--from"))
    .flatMap((c) => {
      const words = c.args.split(/\s+/);
      const dest = resolve(workdir, words.at(-1)!);
      return words.slice(0, -1).map((src) => [src, words.length > 2 || dest.endsWith("/") ? join(dest, src) : dest] as const);
    });
}

/** The image's ENTRYPOINT split into node, its flags and the script. */
function entryPoint(final: Stage): { node: string; flags: string[]; script: string } {
  const entry = execForm(last(final, "ENTRYPOINT")!.args);
  return { node: entry[0]!, flags: entry.slice(1, -1), script: entry.at(-1)! };
}

describe("deploy/Dockerfile", () => {
  const stages = parseDockerfile(readFileSync(join(DEPLOY, "Dockerfile"), "utf8"));
  const final = stages.at(-1)!;
  const contextCopies = contextCopiesOf(final);
  const inImage = (repoPath: string) => contextCopies.some(([src]) => repoPath === src || repoPath.startsWith(`${src}/`));
  /** `COPY --from=<stage> <path> <dest>` of the final stage: [stage, path in that stage, destination]. */
  const stageCopies = all(final, "COPY")
    .filter((c) => c.args.startsWith("--from="))
    .map((c) => {
      const [from, src, dest] = c.args.split(/\s+/) as [string, string, string];
      return [from.slice("--from=".length), src, resolve(last(final, "WORKDIR")!.args, dest)] as const;
    });

  it("is multi-stage, on a Node LTS line that every native dependency supports", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const m = /^node:(\d+)-([a-z]+)(-slim)?(@sha256:[0-9a-f]{64})?$/.exec(final.from);
    expect(m, `final base ${final.from}`).not.toBeNull();
    const major = Number(m![1]);
    expect(major % 2, "even Node majors are the LTS lines").toBe(0);
    expect(major).toBeGreaterThanOrEqual(Number(/(\d+)/.exec(PKG.engines.node)![1]));
    // better-sqlite3 declares its supported Node majors as `20.x || 22.x || …`.
    const sqliteEngines = JSON.parse(read("node_modules/better-sqlite3/package.json")).engines.node as string;
    expect(sqliteEngines.split("||").map((s) => s.trim()), `better-sqlite3 engines ${sqliteEngines}`).toContain(`${major}.x`);
    // Build and runtime stages share the base, so the compiled addon matches the runtime's ABI and libc.
    for (const s of stages) expect(s.from).toBe(final.from);
  });

  it("builds the bundle and ships production dependencies only, with a toolchain for the native addon", () => {
    const [fromStage, modules] = stageCopies.find(([, src]) => /node_modules$/.test(src)) ?? [];
    expect(modules, "node_modules comes from a build stage").toBeDefined();
    const build = stages.find((s) => s.name === fromStage)!;
    expect(build).toBeDefined();
    expect(build).not.toBe(final);
    const runs = all(build, "RUN").map((r) => r.args);
    const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r));
    expect(ci, "the build stage runs npm ci").toBeGreaterThanOrEqual(0);
    expect(runs[ci]).not.toMatch(/--ignore-scripts/); // better-sqlite3 builds in its install script
    expect(readdirSync(join(ROOT, "node_modules/better-sqlite3"))).toContain("binding.gyp");
    // Development dependencies (esbuild for the bundle) are dropped before node_modules is copied:
    // either npm ci installs production ones only, or a later step prunes the rest.
    const omitted = /--omit=dev\b/.test(runs[ci]!) || runs.slice(ci).some((r) => /\bnpm prune\b[^&]*--omit=dev\b/.test(r));
    expect(omitted, "node_modules in the image holds production dependencies only").toBe(true);
    const toolchain = runs.join(" ");
    for (const tool of ["python3", "make", "g++"]) expect(toolchain).toMatch(new RegExp(`\\b${tool.replace("+", "\\+")}`));
    // The lock file goes into the build stage: `npm ci` installs exactly it.
    expect(all(build, "COPY").map((c) => c.args).join(" ")).toMatch(/package-lock\.json/);
    // The bundle is made there by the package's own build script, from the sources it needs.
    const buildScript = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts.build!;
    expect(buildScript).toContain("bin/build.js");
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    const built = contextCopiesOf(build).map(([src]) => src);
    for (const p of ["bin", "src", "tsconfig.json", "package.json"]) expect(built, `the build stage copies ${p}`).toContain(p);
  });

  it("copies everything the app reads at run time, from paths that exist", () => {
    for (const [src] of contextCopies) expect(statSync(join(ROOT, src)), src).toBeTruthy();
    const needed = [
      relative(ROOT, BIN), // the entry point
      "bin/build.js", // imported by the entry point (it only builds where src/ exists)
      relative(ROOT, MIGRATIONS_DIR), // applied by the catalog at start
      "package.json", // "type": "module"
    ];
    for (const p of needed) expect(inImage(p), `${p} is copied into the image`).toBe(true);
    expect(inImage("src"), "the image runs the bundle, not the sources").toBe(false);
    // The bundle comes from the build stage to where bin/etcd-vault.js loads it.
    const dist = stageCopies.find(([, src]) => /\/dist$/.test(src));
    expect(dist, "dist/ is copied from the build stage").toBeDefined();
    const binDest = contextCopies.find(([src]) => src === "bin")![1];
    expect(join(dist![2], "etcd-vault.mjs")).toBe(join(dirname(binDest), relative(ROOT, BUNDLE)));
    // src/catalog/sqlite.ts looks for migrations/ in the directories above the bundle.
    const dest = (p: string) => contextCopies.find(([src]) => src === p)![1];
    expect(dirname(dest("migrations"))).toBe(dirname(dist![2]));
  });

  it("runs `etcd-vault serve` through the package's bin as a non-root user, with npm start's node flags", () => {
    const user = last(final, "USER")!.args;
    const [uid, gid] = user.split(":");
    expect(uid, "numeric uid, so runAsNonRoot can verify it").toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid ?? uid)).toBeGreaterThan(0);
    const entry = entryPoint(final);
    expect(entry.node).toBe("node");
    const copy = contextCopies.find(([, dest]) => entry.script.startsWith(`${dest}/`))!;
    expect(copy, `${entry.script} comes from the build context`).toBeDefined();
    expect(join(ROOT, copy[0], relative(copy[1], entry.script))).toBe(BIN);
    expect(execForm(last(final, "CMD")!.args)).toEqual(["serve"]);
    // The same V8 flags as `npm start` and the bin's #! line.
    const start = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts.start!.split(/\s+/);
    expect(start.slice(1, start.indexOf(relative(ROOT, BIN)))).toEqual(entry.flags);
    expect(read(relative(ROOT, BIN)).split("\n")[0]).toBe(`#!/usr/bin/env -S node ${entry.flags.join(" ")}`.trimEnd());
  });

  it("exposes the default PORT and keeps the data dir on a volume owned by that user", () => {
    const defaults = envSchema.parse({});
    expect(last(final, "EXPOSE")!.args).toBe(String(defaults.PORT));
    const env = new Map(all(final, "ENV").flatMap((e) => [...e.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!] as const)));
    const dataDir = env.get("ETCD_VAULT_DATA_DIR")!;
    expect(dataDir).toMatch(/^\//);
    expect(execForm(last(final, "VOLUME")!.args)).toEqual([dataDir]);
    const uid = last(final, "USER")!.args.split(":")[0];
    const run = all(final, "RUN").map((r) => r.args).join(" ");
    expect(run).toContain(`mkdir -p ${dataDir}`);
    expect(run).toMatch(new RegExp(`chown ${uid}(:\\d+)? ${dataDir}`));
    expect(last(final, "HEALTHCHECK")!.args).toContain("/healthz");
  });

  it(".dockerignore lets through what the Dockerfile copies and keeps out local state", () => {
    const patterns = read(".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    const copied = [...new Set(stages.flatMap(contextCopiesOf).map(([src]) => src))].flatMap((src) => {
      const abs = join(ROOT, src);
      return statSync(abs).isDirectory() ? walk(abs).map((f) => relative(ROOT, f)) : [src];
    });
    for (const f of copied) expect(dockerIgnored(patterns, f), `${f} reaches the build context`).toBe(false);
    for (const f of ["node_modules/hono/package.json", "var/catalog.db", "var/master.key", ".git/HEAD", ".wrangler/state/x", ".dev.vars", "test/deploy.test.ts", "src/local.db", "src/entry/prod.kubeconfig"]) {
      expect(dockerIgnored(patterns, f), `${f} stays out of the build context`).toBe(true);
    }
  });
});

// ---------- Kubernetes manifests ----------

const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);
const KNOWN_KINDS = new Set(["Namespace", "ConfigMap", "Secret", "PersistentVolumeClaim", "Service", "Deployment", "CronJob", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]);

interface Kustomization { dir: string; spec: Obj }

function kustomizationAt(dir: string): Kustomization {
  const [spec] = parseYamlFile(join(dir, "kustomization.yaml"));
  // Only what this renderer implements; anything else must be taught here first.
  const known = new Set(["apiVersion", "kind", "namespace", "labels", "resources", "images", "components", "patches"]);
  for (const k of Object.keys(spec!)) expect(known, `${relative(ROOT, dir)}/kustomization.yaml: '${k}'`).toContain(k);
  return { dir, spec: spec! };
}

/** What `kustomize build` gives for base + components, for the features used here. */
function render(base: string, components: string[] = []): Obj[] {
  const k = kustomizationAt(base);
  const objs = (k.spec.resources as string[]).flatMap((r) => parseYamlFile(join(base, r)));
  for (const c of components) {
    const comp = kustomizationAt(join(base, c));
    expect(comp.spec.kind).toBe("Component");
    objs.push(...(comp.spec.resources as string[]).flatMap((r) => parseYamlFile(join(comp.dir, r))));
    for (const p of (comp.spec.patches ?? []) as Array<{ path: string }>) {
      for (const patch of parseYamlFile(join(comp.dir, p.path))) {
        expect(patch.kind, "only ConfigMap data patches are rendered here").toBe("ConfigMap");
        const target = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === patch.metadata.name)!;
        expect(target, `patch target ${patch.metadata.name}`).toBeDefined();
        target.data = { ...target.data, ...patch.data };
      }
    }
  }
  for (const o of objs) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace ??= k.spec.namespace;
  for (const img of (k.spec.images ?? []) as Array<{ name: string; newName?: string; newTag?: string }>) {
    for (const c of podSpecs(objs).flatMap((p) => p.spec.containers as Obj[])) {
      if (c.image.split(":")[0] === img.name) c.image = `${img.newName ?? img.name}:${img.newTag ?? c.image.split(":")[1]}`;
    }
  }
  return objs;
}

function podSpecs(objs: Obj[]): Array<{ owner: Obj; spec: Obj; labels: Record<string, string> }> {
  return objs.flatMap((o) => {
    if (o.kind === "Deployment") return [{ owner: o, spec: o.spec.template.spec, labels: o.spec.template.metadata.labels }];
    if (o.kind === "CronJob") return [{ owner: o, spec: o.spec.jobTemplate.spec.template.spec, labels: o.spec.jobTemplate.spec.template.metadata?.labels ?? {} }];
    return [];
  });
}

const containersOf = (objs: Obj[]) => podSpecs(objs).flatMap((p) => (p.spec.containers as Obj[]).map((c) => ({ ...p, c })));
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** A container's environment as Kubernetes would build it; `secrets` holds the values of referenced Secrets. */
function containerEnv(objs: Obj[], c: Obj, secrets: Record<string, Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of (c.envFrom ?? []) as Obj[]) {
    if (from.configMapRef) {
      const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === from.configMapRef.name);
      if (!cm && !from.configMapRef.optional) throw new Error(`ConfigMap ${from.configMapRef.name} is not in the manifests`);
      Object.assign(env, cm?.data ?? {});
    } else if (from.secretRef) {
      Object.assign(env, secrets[from.secretRef.name] ?? {});
    } else throw new Error(`envFrom ${JSON.stringify(from)}: not rendered here`);
  }
  for (const e of (c.env ?? []) as Obj[]) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const v = secrets[ref.name]?.[ref.key];
      if (v !== undefined) env[e.name] = v;
      else if (!ref.optional) throw new Error(`${e.name}: Secret ${ref.name} key ${ref.key} not given`);
    } else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      const v = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === ref.name)?.data?.[ref.key];
      if (v !== undefined) env[e.name] = v;
      else if (!ref.optional) throw new Error(`${e.name}: ConfigMap ${ref.name} key ${ref.key} missing`);
    } else throw new Error(`${e.name}: ${JSON.stringify(e.valueFrom)} not rendered here`);
  }
  return env;
}

/** Every env name a container can receive (envFrom keys included), whatever the Secrets hold. */
function envNames(objs: Obj[], c: Obj, secretExample: Obj | undefined): string[] {
  const names = ((c.env ?? []) as Obj[]).map((e) => e.name as string);
  for (const from of (c.envFrom ?? []) as Obj[]) {
    if (from.configMapRef) names.push(...Object.keys(objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === from.configMapRef.name)?.data ?? {}));
    if (from.secretRef) names.push(...Object.keys(secretExample?.stringData ?? {}));
  }
  return names;
}

/**
 * The environment a command reads: the config schema when its module calls loadConfig (then also
 * the AWS SDK's credential variables: S3 stores come from the config), plus every
 * `process.env.NAME` the module reads itself. `serve` lives in cli.ts; others in <name>-command.ts.
 */
function envReadBy(command: string): Set<string> {
  const own = join(ROOT, "src/entry", `${command}-command.ts`);
  const file = readdirSync(join(ROOT, "src/entry")).includes(`${command}-command.ts`) ? own : join(ROOT, "src/entry/cli.ts");
  const text = readFileSync(file, "utf8");
  const names = new Set([...text.matchAll(/process\.env(?:\.([A-Z0-9_]+)|\[["']([A-Z0-9_]+)["']\])/g)].map((m) => (m[1] ?? m[2])!));
  if (text.includes("loadConfig(")) for (const n of [...Object.keys(envSchema.shape), ENV_KEY, ENV_SECRET, ENV_SESSION]) names.add(n);
  return names;
}

describe("deploy/kubernetes", () => {
  const base = render(K8S);
  const external = render(K8S, ["external-scheduler"]);
  const secretExample = parseYamlFile(join(K8S, "secret.example.yaml"))[0]!;
  const nsObj = base.find((o) => o.kind === "Namespace")!;
  const service = base.find((o) => o.kind === "Service")!;
  const server = containersOf(base).find((x) => matches(service.spec.selector, x.labels))!;
  const serverSecrets = { [secretExample.metadata.name]: { ETCD_VAULT_MASTER_KEY: MASTER_KEY, ETCD_VAULT_ADMIN_TOKEN: ADMIN } };

  it("renders from files that all parse, with known kinds, and no manifest left out", () => {
    const referenced = new Set<string>([join(K8S, "kustomization.yaml"), join(K8S, "secret.example.yaml")]);
    const visit = (dir: string) => {
      const k = kustomizationAt(dir);
      for (const r of [...(k.spec.resources ?? []), ...((k.spec.patches ?? []) as Obj[]).map((p) => p.path)]) referenced.add(join(dir, r));
      for (const c of (k.spec.components ?? []) as string[]) visit(join(dir, c));
      referenced.add(join(dir, "kustomization.yaml"));
    };
    visit(K8S);
    visit(join(K8S, "external-scheduler"));
    for (const f of walk(K8S)) {
      expect(f.endsWith(".yaml"), f).toBe(true);
      expect(referenced, `${relative(ROOT, f)} is used by a kustomization`).toContain(f);
    }
    for (const o of [...external, secretExample]) expect(KNOWN_KINDS, `${o.kind} ${o.metadata?.name}`).toContain(o.kind);
  });

  it("puts everything in the namespace, and runs this release's image", () => {
    for (const o of [...external, secretExample]) {
      if (!CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(nsObj.metadata.name);
    }
    for (const o of parseYamlFile(join(K8S, "external-scheduler/tick-cronjob.yaml"))) expect(o.metadata.namespace).toBe(nsObj.metadata.name);
    const images = new Set(containersOf(external).map((x) => x.c.image));
    expect([...images]).toEqual([`${kustomizationAt(K8S).spec.images[0].name}:${VERSION}`]);
    for (const { c } of containersOf(external)) expect(c.command, `${c.name}: the image's ENTRYPOINT runs; args are the CLI's`).toBeUndefined();
  });

  it("wires the Service to exactly the server pods, on the port the server listens on", () => {
    const selected = containersOf(external).filter((x) => matches(service.spec.selector, x.labels));
    expect(selected.map((x) => x.owner.metadata.name)).toEqual([server.owner.metadata.name]);
    for (const d of external.filter((o) => o.kind === "Deployment")) expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels)).toBe(true);
    const port = service.spec.ports[0];
    const cport = (server.c.ports as Obj[]).find((p) => p.name === port.targetPort || p.containerPort === port.targetPort)!;
    expect(cport, `targetPort ${port.targetPort}`).toBeDefined();
    const config = loadConfig(containerEnv(base, server.c, serverSecrets));
    expect(cport.containerPort).toBe(config.PORT);
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      const p = server.c[probe]?.httpGet;
      if (!p) continue;
      expect([cport.name, cport.containerPort], `${probe} port`).toContain(p.port);
    }
    expect(server.c.livenessProbe.httpGet.path).toBe("/healthz");
    expect(server.c.readinessProbe.httpGet.path).toBe("/readyz");
  });

  it("answers the probe paths without a token (on the real app)", async () => {
    const svc: TestService = await startTestService();
    try {
      for (const { c } of containersOf(external)) {
        for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
          const path = c[probe]?.httpGet?.path;
          if (path) expect((await svc.call("GET", path, undefined, null)).status, `${c.name} ${probe} ${path}`).toBe(200);
        }
      }
    } finally {
      await svc.stop();
    }
  });

  it("keeps the server at one replica, replaced by Recreate, with its data dir on the claim", () => {
    const d = server.owner;
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy.type).toBe("Recreate");
    const config = loadConfig(containerEnv(base, server.c, serverSecrets));
    const mount = (server.c.volumeMounts as Obj[]).find((m) => m.mountPath === config.dataDir)!;
    expect(mount, `a volume is mounted at ETCD_VAULT_DATA_DIR (${config.dataDir})`).toBeDefined();
    const volume = (server.spec.volumes as Obj[]).find((v) => v.name === mount.name)!;
    const pvc = base.find((o) => o.kind === "PersistentVolumeClaim" && o.metadata.name === volume.persistentVolumeClaim?.claimName)!;
    expect(pvc, "the data volume is a PersistentVolumeClaim in the manifests").toBeDefined();
    expect(pvc.spec.accessModes).toEqual(["ReadWriteOnce"]);
    // The image declares the same directory (ENV and VOLUME) and owns it for the same uid.
    const final = parseDockerfile(readFileSync(join(DEPLOY, "Dockerfile"), "utf8")).at(-1)!;
    expect(execForm(last(final, "VOLUME")!.args)).toEqual([config.dataDir]);
  });

  it("gives every command only environment names that it reads, with values the schema accepts", () => {
    for (const [objs, label] of [[base, "base"], [external, "external-scheduler"]] as const) {
      for (const { c } of containersOf(objs)) {
        const command = c.args[0] as string;
        const readable = envReadBy(command);
        for (const name of envNames(objs, c, secretExample)) expect(readable, `${label}: ${c.name} (${command}) gets ${name}`).toContain(name);
      }
      // The server's settings parse (the Secret's values are the test's).
      expect(() => loadConfig(containerEnv(objs, server.c, serverSecrets))).not.toThrow();
    }
    expect(loadConfig(containerEnv(base, server.c, serverSecrets)).ETCD_VAULT_SCHEDULER).toBe("on");
    expect(loadConfig(containerEnv(external, server.c, serverSecrets)).ETCD_VAULT_SCHEDULER).toBe("off");
    // The Secret example carries exactly the keys the server reads from it, and its placeholders
    // are invalid, so an unedited copy stops the server instead of running with a known token.
    const refs = ((server.c.env ?? []) as Obj[]).filter((e) => e.valueFrom?.secretKeyRef?.name === secretExample.metadata.name).map((e) => e.valueFrom.secretKeyRef.key);
    expect(Object.keys(secretExample.stringData).sort()).toEqual(refs.sort());
    const placeholders = { [secretExample.metadata.name]: secretExample.stringData as Record<string, string> };
    expect(() => loadConfig(containerEnv(base, server.c, placeholders))).toThrow(/ETCD_VAULT_ADMIN_TOKEN/);
    // Tokens come from Secrets, never literal values in a manifest.
    for (const { c } of containersOf(external)) {
      for (const e of (c.env ?? []) as Obj[]) if (/TOKEN|KEY|SECRET/.test(e.name)) expect(e.valueFrom?.secretKeyRef, e.name).toBeDefined();
    }
  });

  it("runs nothing as root: restricted pod security everywhere, matching the image's user", () => {
    expect(nsObj.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    const final = parseDockerfile(readFileSync(join(DEPLOY, "Dockerfile"), "utf8")).at(-1)!;
    const imageUid = Number(last(final, "USER")!.args.split(":")[0]);
    for (const { owner, spec } of podSpecs(external)) {
      const where = `${owner.kind} ${owner.metadata.name}`;
      expect(spec.securityContext.runAsNonRoot, where).toBe(true);
      expect(spec.securityContext.runAsUser, where).toBe(imageUid);
      expect(spec.securityContext.seccompProfile.type, where).toBe("RuntimeDefault");
      expect(spec.automountServiceAccountToken, `${where}: no API token of the management cluster`).toBe(false);
      // Service links from the Service `etcd-vault` would be named ETCD_VAULT_*.
      expect(spec.enableServiceLinks, where).toBe(false);
      for (const k of ["hostNetwork", "hostPID", "hostIPC"]) expect(spec[k], where).not.toBe(true);
      for (const v of (spec.volumes ?? []) as Obj[]) expect(Object.keys(v).filter((k) => k !== "name"), `${where} volume ${v.name}`).toEqual([expect.stringMatching(/^(emptyDir|persistentVolumeClaim|configMap|secret|projected)$/)]);
      for (const c of spec.containers as Obj[]) {
        const sc = c.securityContext;
        expect(sc.allowPrivilegeEscalation, `${where} ${c.name}`).toBe(false);
        expect(sc.readOnlyRootFilesystem, `${where} ${c.name}`).toBe(true);
        expect(sc.capabilities.drop, `${where} ${c.name}`).toEqual(["ALL"]);
        expect(sc.privileged ?? false).toBe(false);
        expect(sc.runAsUser ?? imageUid).not.toBe(0);
        // os.tmpdir() must stay writable with a read-only root (Node and libraries write there).
        const tmp = (c.volumeMounts as Obj[]).find((m) => m.mountPath === "/tmp");
        expect((spec.volumes as Obj[]).find((v) => v.name === tmp?.name)?.emptyDir, `${where} ${c.name}: /tmp is an emptyDir`).toBeDefined();
        expect(c.resources?.limits?.memory, `${where} ${c.name}: memory limit`).toBeDefined();
      }
    }
  });
});

// ---------- the manifests' commands, for real ----------

interface CliRun { proc: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> }
const children = new Set<ChildProcess>();
/** The image runs the bin with these node flags; so do these tests. */
const IMAGE_NODE_FLAGS = entryPoint(parseDockerfile(readFileSync(join(DEPLOY, "Dockerfile"), "utf8")).at(-1)!).flags;

function startCli(args: string[], env: Record<string, string>): CliRun {
  const proc = spawn(process.execPath, [...IMAGE_NODE_FLAGS, BIN, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (err += d));
  const exit = new Promise<number | null>((r) => proc.once("exit", (code) => (children.delete(proc), r(code))));
  return { proc, stdout: () => out, stderr: () => err, exit };
}

async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = startCli(args, env);
  const code = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe("the manifests' commands run against a real server", () => {
  const objs = render(K8S, ["external-scheduler"]);
  const secretExample = parseYamlFile(join(K8S, "secret.example.yaml"))[0]!;
  const service = objs.find((o) => o.kind === "Service")!;
  const byArg0 = (cmd: string) => containersOf(objs).filter((x) => x.c.args[0] === cmd);
  const server = containersOf(objs).find((x) => matches(service.spec.selector, x.labels))!;
  let dir: string;
  let base: string;
  let serve: CliRun;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, json: (await res.json().catch(() => null)) as any };
  };
  /** A --server URL from a manifest must name the Service and its port; here it points at the test server. */
  const local = (args: string[]) =>
    args.map((a, i) => {
      if (args[i - 1] !== "--server") return a;
      const u = new URL(a);
      expect([service.metadata.name, `${service.metadata.name}.${service.metadata.namespace}`, `${service.metadata.name}.${service.metadata.namespace}.svc`]).toContain(u.hostname);
      expect(Number(u.port || 80)).toBe(service.spec.ports[0].port);
      return base;
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "etcd-vault-deploy-"));
    const env = containerEnv(objs, server.c, { [secretExample.metadata.name]: { ETCD_VAULT_MASTER_KEY: MASTER_KEY, ETCD_VAULT_ADMIN_TOKEN: ADMIN } });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    serve = startCli(server.c.args, { ...env, PORT: String(port), ETCD_VAULT_DATA_DIR: join(dir, "data"), TMPDIR: dir });
    await until("the server's /healthz", async () => {
      if (serve.proc.exitCode !== null) throw new Error(`serve exited ${serve.proc.exitCode}: ${serve.stderr()}`);
      return (await fetch(`${base}/healthz`)).ok;
    }).catch((e) => {
      throw new Error(`${(e as Error).message}\n${serve.stderr()}`);
    });
  });
  afterAll(async () => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null) c.kill("SIGKILL");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("names real commands and flags", async () => {
    const help = (await runCli(["--help"])).stdout;
    const commands = new Set([...help.matchAll(/^ {2}([a-z][\w-]*) {2,}/gm)].map((m) => m[1]!));
    expect(commands).toContain("serve");
    for (const { c } of containersOf(objs)) {
      const [cmd, ...rest] = c.args as string[];
      expect(commands, `${c.name}: ${cmd}`).toContain(cmd);
      const usage = (await runCli([cmd!, "--help"])).stdout;
      for (const flag of rest.filter((a) => a.startsWith("--"))) expect(usage, `${cmd} ${flag}`).toContain(flag);
    }
  });

  it("serve: the probes answer over HTTP on the configured port", async () => {
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      const path = server.c[probe].httpGet.path as string;
      expect((await fetch(`${base}${path}`)).status, `${probe} ${path}`).toBe(200);
    }
  });

  it("the CronJob's tick ticks through the API with its operator token", async () => {
    const [tick] = byArg0("tick");
    expect(tick!.owner.kind).toBe("CronJob");
    const token = await api("POST", "/v1/tokens", { name: "tick", role: "operator" });
    expect(token.status).toBe(201);
    const ref = (tick!.c.env as Obj[]).find((e) => e.name === "ETCD_VAULT_TOKEN")!.valueFrom.secretKeyRef;
    const env = containerEnv(objs, tick!.c, { [ref.name]: { [ref.key]: token.json.token } });
    const r = await runCli(local(tick!.c.args), env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ created: expect.any(Number), requeued: expect.any(Number), deleted: expect.any(Number) });
  });

  it("the runner Deployment's runner claims with its runner token and stops cleanly on SIGTERM", async () => {
    const [runner] = byArg0("runner");
    expect(runner!.owner.kind).toBe("Deployment");
    expect(runner!.labels["etcd-vault.io/pool"], "the runner pods carry a pool label").toBeDefined();
    const token = await api("POST", "/v1/tokens", { name: "runners", role: "runner", pool: null });
    expect(token.status).toBe(201);
    const ref = (runner!.c.env as Obj[]).find((e) => e.name === "ETCD_VAULT_RUNNER_TOKEN")!.valueFrom.secretKeyRef;
    const run = startCli(local(runner!.c.args), { ...containerEnv(objs, runner!.c, { [ref.name]: { [ref.key]: token.json.token } }), TMPDIR: dir });
    await until("the runner's first claim", async () => {
      if (run.proc.exitCode !== null) throw new Error(`runner exited ${run.proc.exitCode}: ${run.stderr()}`);
      const list = await api("GET", "/v1/tokens");
      return (list.json.items as Obj[]).find((t) => t.id === token.json.id)?.lastUsedAt;
    }).catch((e) => {
      throw new Error(`${(e as Error).message}\n${run.stderr()}`);
    });
    run.proc.kill("SIGTERM");
    expect(await run.exit, run.stderr()).toBe(0);
    expect(run.stdout()).toContain("runner stopped");
  });
});

// ---------- fleet cluster RBAC ----------

interface ApiRequest { method: string; path: string; upgrade: boolean }
interface Attributes { verb: string; group?: string; resource?: string; namespace?: string; name?: string; nonResourceURL?: string }

/** A TLS proxy in front of the simulator (same certificate) that records every request, upgrades included. */
async function startRecordingProxy(sim: KubeSim): Promise<{ url: string; requests: ApiRequest[]; close(): Promise<void> }> {
  const requests: ApiRequest[] = [];
  const sockets = new Set<Duplex>();
  const record = (req: IncomingMessage, upgrade: boolean) => requests.push({ method: req.method ?? "GET", path: new URL(req.url ?? "/", "https://proxy").pathname, upgrade });
  const server = createHttpsServer({ key: readFileSync(join(sim.dir, "server.key")), cert: readFileSync(join(sim.dir, "server.crt")) }, (req, res) => {
    record(req, false);
    const up = httpsRequest({ host: "127.0.0.1", port: sim.port, method: req.method, path: req.url, headers: req.headers, ca: sim.caPem }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    record(req, true);
    sockets.add(socket);
    const up = tlsConnect({ host: "127.0.0.1", port: sim.port, ca: sim.caPem }, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    sockets.add(up);
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    async close() {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Authorization attributes of a request, as the API server derives them (k8s RequestInfo). */
function attributesOf(r: ApiRequest): Attributes[] {
  const parts = r.path.split("/").filter(Boolean).map(decodeURIComponent);
  let group: string;
  let rest: string[];
  if (parts[0] === "api" && parts.length >= 2) [group, rest] = ["", parts.slice(2)];
  else if (parts[0] === "apis" && parts.length >= 3) [group, rest] = [parts[1]!, parts.slice(3)];
  else return [{ verb: r.method.toLowerCase(), nonResourceURL: r.path }];
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) [namespace, rest] = [rest[1], rest.slice(2)];
  const [resource, name, sub] = rest;
  const full = sub ? `${resource}/${sub}` : resource!;
  // Connect subresources over a WebSocket upgrade are GETs; since Kubernetes 1.35 the API server
  // also checks `create` for them (AuthorizePodWebsocketUpgradeCreatePermission), as for SPDY POSTs.
  const verbs =
    r.method === "GET" && r.upgrade && ["exec", "attach", "portforward"].includes(sub ?? "") ? ["get", "create"]
    : r.method === "GET" ? [name ? "get" : "list"]
    : [{ POST: "create", PUT: "update", PATCH: "patch", DELETE: name ? "delete" : "deletecollection" }[r.method] ?? r.method.toLowerCase()];
  return verbs.map((verb) => ({ verb, group, resource: full, namespace, name }));
}

/** One grant: a verb on one resource (or non-resource URL), in one namespace or cluster-wide ("*"). */
interface Grant { scope: string; verb: string; group?: string; resource?: string; name?: string; nonResourceURL?: string; source: string }

function grantsOf(rbac: Obj[], sa: { namespace: string; name: string }): Grant[] {
  const boundToSa = (b: Obj) => (b.subjects as Obj[]).some((s) => s.kind === "ServiceAccount" && s.name === sa.name && s.namespace === sa.namespace);
  const grants: Grant[] = [];
  for (const b of rbac.filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")) {
    expect(boundToSa(b), `${b.kind} ${b.metadata.name} binds the ServiceAccount`).toBe(true);
    const role = rbac.find((o) => o.kind === b.roleRef.kind && o.metadata.name === b.roleRef.name && (o.kind === "ClusterRole" || o.metadata.namespace === b.metadata.namespace));
    expect(role, `${b.kind} ${b.metadata.namespace ?? ""}/${b.metadata.name} → ${b.roleRef.kind} ${b.roleRef.name}`).toBeDefined();
    const scope = b.kind === "ClusterRoleBinding" ? "*" : b.metadata.namespace;
    const source = `${role!.kind} ${role!.metadata.namespace ? `${role!.metadata.namespace}/` : ""}${role!.metadata.name}`;
    for (const rule of role!.rules as Obj[]) {
      for (const verb of rule.verbs as string[]) {
        if (rule.nonResourceURLs) {
          expect(scope, "non-resource URLs only through a ClusterRoleBinding").toBe("*");
          for (const url of rule.nonResourceURLs as string[]) grants.push({ scope, verb, nonResourceURL: url, source });
          continue;
        }
        for (const group of rule.apiGroups as string[]) {
          for (const resource of rule.resources as string[]) {
            for (const name of (rule.resourceNames as string[] | undefined) ?? [undefined]) grants.push({ scope, verb, group, resource, name, source });
          }
        }
      }
    }
  }
  // Every role is bound; nothing is granted by wildcard.
  for (const r of rbac.filter((o) => o.kind === "Role" || o.kind === "ClusterRole")) expect(grants.some((g) => g.source.endsWith(`/${r.metadata.name}`) || g.source === `${r.kind} ${r.metadata.name}`), `${r.kind} ${r.metadata.name} is bound`).toBe(true);
  for (const g of grants) for (const v of [g.verb, g.group, g.resource, g.name, g.nonResourceURL]) expect(v).not.toBe("*");
  return grants;
}

function allows(g: Grant, a: Attributes): boolean {
  if (g.verb !== a.verb) return false;
  if (a.nonResourceURL !== undefined || g.nonResourceURL !== undefined) return g.nonResourceURL === a.nonResourceURL;
  if (g.scope !== "*" && g.scope !== a.namespace) return false;
  return g.group === a.group && g.resource === a.resource && (g.name === undefined || g.name === a.name);
}

describe("deploy/cluster-rbac.yaml grants exactly what the kube adapter calls", () => {
  const rbac = parseYamlFile(join(DEPLOY, "cluster-rbac.yaml"));
  const sa = rbac.find((o) => o.kind === "ServiceAccount")!;
  const tokenSecret = rbac.find((o) => o.kind === "Secret")!;
  const grants = grantsOf(rbac, sa.metadata);
  const DIGEST_IMAGE = `registry.deckhouse.io/deckhouse/ce@sha256:${"cd".repeat(32)}`;
  let sim: KubeSim;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  const access = new KubeClusterAccess({ requestTimeoutMs: 5000 });
  const conn = () => ({ name: "fleet-1", kubeconfig: sim.kubeconfigWith({ server: proxy.url }), etcd: { ...DEFAULT_ETCD_SETTINGS } });

  beforeAll(async () => {
    // Deckhouse-like: etcd images pinned by digest (so discovery falls back to `etcdctl version`
    // over exec), the deckhouse Deployment visible, three masters.
    const exec = [
      { argvIncludes: ["version"], exit: { code: 0, stdout: "etcdctl version: 3.5.16\nAPI version: 3.5\n" } },
      { argvIncludes: ["snapshot"], run: randomBytesCommand(64 * 1024) },
    ];
    sim = await startKubeSim({
      nodes: ["m1", "m2", "m3"].map((n, i) => masterNode(n, `10.0.0.${i + 1}`)),
      pods: ["m1", "m2", "m3"].map((n) => etcdPod(n, { image: DIGEST_IMAGE, exec })),
      deployments: [{ namespace: "d8-system", name: "deckhouse", annotations: { "core.deckhouse.io/version": "v1.70.3" }, containers: [{ name: "deckhouse", image: DIGEST_IMAGE }] }],
    });
    proxy = await startRecordingProxy(sim);
  });
  afterAll(async () => {
    await proxy?.close();
    await sim?.close();
  });

  it("defines a ServiceAccount in kube-system with a long-lived token Secret", () => {
    expect(sa.metadata.namespace).toBe("kube-system");
    expect(tokenSecret.type).toBe("kubernetes.io/service-account-token");
    expect(tokenSecret.metadata.namespace).toBe(sa.metadata.namespace);
    expect(tokenSecret.metadata.annotations["kubernetes.io/service-account.name"]).toBe(sa.metadata.name);
  });

  it("the adapter calls only client-node methods whose requests this test records", () => {
    // If this fails, the adapter gained a call: reach it in the scenario below and grant it.
    const sources = readdirSync(join(ROOT, "src/kube")).map((f) => readFileSync(join(ROOT, "src/kube", f), "utf8")).join("\n");
    const calls = new Set([...sources.matchAll(/\bapi\.(\w+)\(/g)].map((m) => m[1]!));
    expect([...calls].sort()).toEqual(["getCode", "listNamespacedPod", "listNode", "readNamespacedDeployment"]);
    // Exec and the WebSocketHandler it opens its socket through: the pods/exec upgrade, nothing else.
    expect([...new Set([...sources.matchAll(/new (\w+)\(kc\b/g)].map((m) => m[1]))].sort()).toEqual(["Exec", "WebSocketHandler"]);
    // The public surface of the adapter is the three ClusterAccess methods exercised below.
    const methods = Object.getOwnPropertyNames(KubeClusterAccess.prototype).filter((m) => m !== "constructor" && !["scope", "etcdctlVersion"].includes(m));
    expect(methods.sort()).toEqual(["discover", "execSnapshot", "snapshotCandidates"]);
  });

  it("every call of discovery and capture is granted, and every grant is used", async () => {
    const facts = await access.discover(conn());
    expect(facts).toMatchObject({ multiMaster: true, etcdVersion: "3.5.16", deckhouseVersion: "v1.70.3", kubernetesVersion: "v1.30.4" });
    // Old clusters label masters only node-role.kubernetes.io/master: a second nodes list.
    const saved = sim.config.nodes;
    sim.config.nodes = [{ name: "old1", internalIP: "10.0.1.1", labels: { "node-role.kubernetes.io/master": "" } }];
    expect((await access.discover(conn())).masters).toEqual([{ name: "old1", internalIP: "10.0.1.1" }]);
    sim.config.nodes = saved;
    // Capture: candidates, then the snapshot exec, streamed to the end.
    const [pod] = await access.snapshotCandidates(conn());
    const exec = await access.execSnapshot(conn(), pod!.name, { idleTimeoutMs: 10_000 });
    let bytes = 0;
    for await (const chunk of exec.stdout) bytes += chunk.length;
    await exec.done;
    expect(bytes).toBe(64 * 1024);

    const attrs = proxy.requests.flatMap(attributesOf);
    expect(proxy.requests.some((r) => r.upgrade && r.path.endsWith("/exec"))).toBe(true);
    for (const a of attrs) expect(grants.some((g) => allows(g, a)), `not granted: ${JSON.stringify(a)}`).toBe(true);
    for (const g of grants) expect(attrs.some((a) => allows(g, a)), `granted but never used: ${JSON.stringify(g)}`).toBe(true);
  });

  it("the core part alone (no d8-system) still discovers, without the Deckhouse version", async () => {
    const scopes = new Set(rbac.map((o) => o.metadata.labels["etcd-vault.io/scope"]));
    expect([...scopes].sort()).toEqual(["core", "deckhouse"]);
    for (const o of rbac) expect(o.metadata.namespace === "d8-system" ? "deckhouse" : "core", `${o.kind} ${o.metadata.name}`).toBe(o.metadata.labels["etcd-vault.io/scope"]);
    sim.config.forbid = ["/apis/apps/v1/namespaces/d8-system/"];
    try {
      const facts = await access.discover(conn());
      expect(facts.deckhouseVersion).toBeNull();
      expect(facts.etcdPods).toHaveLength(3);
    } finally {
      sim.config.forbid = [];
    }
  });

  // ---------- docs/fleet-onboarding.md ----------

  const doc = read("docs/fleet-onboarding.md");
  const blocks = [...doc.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, text: m[2]! }));

  it("the doc's kubeconfig recipe gives a kubeconfig that etcd-vault accepts and discovers with", async () => {
    const block = blocks.find((b) => b.text.includes("<<EOF"))!.text;
    expect(block).toContain(`-n ${tokenSecret.metadata.namespace} get secret ${tokenSecret.metadata.name}`);
    const template = /<<EOF\n([\s\S]*?)\nEOF/.exec(block)![1]!;
    const vars: Record<string, string> = { CLUSTER: "fleet-1", SERVER: proxy.url, CA: Buffer.from(sim.caPem).toString("base64"), TOKEN: sim.token };
    const kubeconfig = template.replace(/\$\{?(\w+)\}?/g, (_, k: string) => {
      expect(vars, `doc variable $${k}`).toHaveProperty(k);
      return vars[k]!;
    });
    expect(parseKubeconfig(kubeconfig)).toMatchObject({ contextName: "fleet-1", auth: "token" });
    const facts = await access.discover({ name: "fleet-1", kubeconfig, etcd: { ...DEFAULT_ETCD_SETTINGS } });
    expect(facts.masters).toHaveLength(3);
  });

  it("the doc's `kubectl auth can-i` checks are all granted", () => {
    const block = blocks.find((b) => b.text.includes("auth can-i"))!.text;
    const sas = /SA=(\S+)/.exec(block)![1];
    expect(sas).toBe(`system:serviceaccount:${sa.metadata.namespace}:${sa.metadata.name}`);
    const checks = block.split("\n").filter((l) => l.includes("auth can-i"));
    expect(checks.length).toBeGreaterThanOrEqual(4);
    for (const line of checks) {
      const m = /auth can-i (\w+) ([\w.]+)(?:\/([\w-]+))?(?: --subresource=(\w+))?(?: -n ([\w-]+))?/.exec(line)!;
      const [, verb, res, name, sub, ns] = m;
      const [resource, ...groupParts] = res!.split(".");
      const a: Attributes = { verb: verb!, group: groupParts.length ? groupParts.join(".") : ["deployments"].includes(resource!) ? "apps" : "", resource: sub ? `${resource}/${sub}` : resource, namespace: ns, name };
      expect(grants.some((g) => allows(g, a)), line).toBe(true);
    }
  });
});

describe("docs/fleet-onboarding.md calls the API as it is", () => {
  let svc: TestService;
  let openapi: Obj;
  beforeAll(async () => {
    svc = await startTestService();
    openapi = (await svc.call("GET", "/openapi.json", undefined, null)).json;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  /** Shell commands of the doc's code blocks: quote-aware, joined over `\` and `|` line ends. */
  function commands(text: string): string[] {
    const out: string[] = [];
    let cur = "";
    let quoted = false;
    for (const ch of text) {
      if (ch === "'") quoted = !quoted;
      if (ch === "\n" && !quoted && !/[\\|]\s*$/.test(cur)) {
        if (cur.trim()) out.push(cur.trim());
        cur = "";
      } else cur += ch;
    }
    if (cur.trim()) out.push(cur.trim());
    return out;
  }

  it("every curl names a route with its method, and sends only fields that route takes", () => {
    const doc = read("docs/fleet-onboarding.md");
    const shell = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => commands(m[1]!));
    const calls = shell.filter((c) => /\bcurl\b/.test(c) && c.includes("$EV/v1/"));
    expect(calls.length).toBeGreaterThanOrEqual(6);
    const routes = Object.entries(openapi.paths as Record<string, Obj>).map(([p, ops]) => ({ re: new RegExp(`^${p.replace(/\{[^}]+\}/g, "[^/]+")}$`), p, ops }));
    for (const c of calls) {
      const path = /"\$EV(\/v1\/[^"?\s]*)/.exec(c)![1]!.replace(/\$\{?\w+\}?/g, "x");
      const method = (/-X (\w+)/.exec(c)?.[1] ?? (/\s(-d|--data\S*)\s/.test(c) ? "POST" : "GET")).toLowerCase();
      const route = routes.find((r) => r.re.test(path));
      expect(route, `${method} ${path}`).toBeDefined();
      const op = route!.ops[method];
      expect(op, `${method.toUpperCase()} ${route!.p}`).toBeDefined();
      const body = /'(\{[\s\S]*\})'/.exec(c)?.[1];
      if (!body) continue;
      const json = JSON.parse(body.replace(/\$\w+/g, "null")) as Obj;
      const ref = op.requestBody?.content?.["application/json"]?.schema?.$ref as string | undefined;
      expect(ref, `${method.toUpperCase()} ${route!.p} takes a JSON body`).toBeDefined();
      const schema = openapi.components.schemas[ref!.split("/").at(-1)!] as Obj;
      for (const k of Object.keys(json)) expect(Object.keys(schema.properties), `${route!.p}: field ${k}`).toContain(k);
      for (const k of (schema.required ?? []) as string[]) expect(Object.keys(json), `${route!.p}: required ${k}`).toContain(k);
    }
  });
});
