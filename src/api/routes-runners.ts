// Runner routes (role `runner` only). Every request names the runner process in the
// `x-etcd-vault-runner` header; with the token id it forms the lease owner.
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { invalidInput } from "../core/errors.js";
import {
  MAX_PART_BYTES,
  claimForRunner,
  completeForRunner,
  discoveredForRunner,
  failForRunner,
  receivePart,
  runnerHeartbeat,
} from "../services/runner-jobs.js";
import { requireRole } from "./auth.js";
import type { AppEnv } from "./env.js";
import { respondError } from "./errors.js";
import { Backup, Facts, IdParam, Run, errorResponses, jsonBody, jsonOk } from "./schemas.js";

const RUNNER = /^[A-Za-z0-9._:-]{1,100}$/;
function runnerName(c: Context<AppEnv>): string {
  const name = c.req.header("x-etcd-vault-runner") ?? "";
  if (!RUNNER.test(name)) throw invalidInput("x-etcd-vault-runner", "header must name the runner (letters, digits, . _ : -; ≤ 100)");
  return name;
}

const Claim = z.strictObject({ waitSeconds: z.number().int().min(0).max(25).optional() }).openapi("RunnerClaim");
const Job = z
  .object({
    run: Run,
    leaseMs: z.number(),
    cluster: z.object({
      name: z.string(),
      kubeconfig: z.string(),
      context: z.string().nullable(),
      etcd: z.object({ namespace: z.string(), selector: z.string(), container: z.string(), command: z.array(z.string()) }),
    }),
    capture: z.object({ backupId: z.string(), recipients: z.array(z.string()), partBytes: z.number() }).nullable(),
  })
  .openapi("RunnerJob");
const Sized = z.object({ size: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
const Complete = z
  .strictObject({
    // Cleaned, not refused (core/text.ts): a good capture is never thrown away over its labels.
    pod: z.string().max(253),
    plaintext: Sized,
    ciphertext: Sized,
    timings: z.object({
      execFirstByteMs: z.number().nullable(),
      streamMs: z.number().nullable(),
      uploadMs: z.number().nullable(),
      totalMs: z.number().nullable(),
    }),
    // Checked in the handler: facts that do not pass become null (the backup keeps no facts)
    // instead of refusing a good capture.
    facts: z.unknown().optional().openapi({ description: "The cluster's facts (as Cluster.facts) or null; facts that do not validate are dropped, not the backup" }),
    etcd: z.object({ revision: z.number().nullable(), keys: z.number().nullable() }).optional(),
  })
  .openapi("RunnerComplete");
const Fail = z
  .strictObject({
    code: z.enum(["exec_failed", "snapshot_corrupt", "timeout", "storage_failed", "cancelled", "upstream_failed", "internal"]),
    // Cleaned by the service (core/text.ts), not refused: a runner's failure must be recorded.
    message: z.string().max(8192),
    pod: z.string().max(253).nullable().optional(),
  })
  .openapi("RunnerFail");

export function runnerRoutes(app: OpenAPIHono<AppEnv>): void {
  const runner = [requireRole("runner")];
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/runners/claim",
      tags: ["runners"],
      middleware: runner,
      request: jsonBody(Claim),
      responses: { 200: jsonOk(Job, "A run to execute, with its lease"), 204: { description: "No work" }, ...errorResponses },
    }),
    async (c) => {
      const ctx = c.get("ctx");
      const wait = (c.req.valid("json").waitSeconds ?? 20) * 1000;
      const job = await claimForRunner(ctx, ctx.actor, runnerName(c), wait, c.req.raw.signal);
      if (!job) return c.body(null, 204);
      c.header("cache-control", "no-store");
      return c.json(job, 200);
    },
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/runners/runs/{id}/heartbeat",
      tags: ["runners"],
      middleware: runner,
      request: { params: IdParam },
      responses: { 200: jsonOk(z.object({ leaseExpiresAt: z.string() })), ...errorResponses },
    }),
    async (c) => {
      const ctx = c.get("ctx");
      return c.json(await runnerHeartbeat(ctx, ctx.actor, runnerName(c), c.req.valid("param").id), 200);
    },
  );
  // A raw body, so a plain Hono route (zod-openapi would read the body as JSON); documented here.
  app.openAPIRegistry.registerPath({
    method: "put",
    path: "/v1/runners/runs/{id}/parts/{part}",
    tags: ["runners"],
    summary: "Upload the next part of the run's ciphertext (parts in order, 1 to 10000)",
    request: {
      params: z.object({ id: z.string(), part: z.string().regex(/^([1-9][0-9]{0,3}|10000)$/).openapi({ description: "Part number, 1 to 10000" }) }),
      headers: z.object({
        "x-etcd-vault-runner": z.string().openapi({ description: "The runner process's name" }),
        "x-part-sha256": z.string().optional().openapi({ description: "SHA-256 of the body in hex; a mismatch is a 400 and nothing is stored" }),
      }),
      body: { content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } }, required: true },
    },
    responses: {
      200: jsonOk(z.object({ partNumber: z.number(), size: z.number(), sha256: z.string() })),
      ...errorResponses,
    },
  });
  app.put(
    "/v1/runners/runs/:id/parts/:part",
    requireRole("runner"),
    bodyLimit({
      maxSize: MAX_PART_BYTES,
      onError: (c) => respondError(c as never, "payload_too_large", `a part may be at most ${MAX_PART_BYTES} bytes`),
    }),
    async (c) => {
      const ctx = c.get("ctx");
      const raw = c.req.param("part");
      const part = /^[1-9][0-9]{0,4}$/.test(raw) ? Number(raw) : NaN;
      if (!(part <= 10_000)) throw invalidInput("part", "must be an integer from 1 to 10000");
      const expected = c.req.header("x-part-sha256")?.trim().toLowerCase();
      if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) throw invalidInput("x-part-sha256", "must be the part's SHA-256 in hex");
      const body = new Uint8Array(await c.req.arrayBuffer());
      // Checked before anything is stored: a damaged part never takes the part number.
      return c.json(await receivePart(ctx, ctx.actor, runnerName(c), c.req.param("id"), part, body, expected), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/runners/runs/{id}/complete",
      tags: ["runners"],
      middleware: runner,
      request: { params: IdParam, ...jsonBody(Complete) },
      responses: { 200: jsonOk(Backup, "The backup is available"), ...errorResponses },
    }),
    async (c) => {
      const ctx = c.get("ctx");
      const body = c.req.valid("json");
      const facts = Facts.nullable().safeParse(body.facts ?? null);
      if (!facts.success) ctx.log.warn("runner reported facts that do not validate; the backup keeps none", { run: c.req.valid("param").id });
      return c.json(await completeForRunner(ctx, ctx.actor, runnerName(c), c.req.valid("param").id, { ...body, facts: facts.success ? facts.data : null }), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/runners/runs/{id}/fail",
      tags: ["runners"],
      middleware: runner,
      request: { params: IdParam, ...jsonBody(Fail) },
      responses: { 200: jsonOk(Run), ...errorResponses },
    }),
    async (c) => {
      const ctx = c.get("ctx");
      return c.json(await failForRunner(ctx, ctx.actor, runnerName(c), c.req.valid("param").id, c.req.valid("json")), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/runners/runs/{id}/discovered",
      tags: ["runners"],
      middleware: runner,
      request: { params: IdParam, ...jsonBody(z.strictObject({ facts: Facts })) },
      responses: { 200: jsonOk(Run), ...errorResponses },
    }),
    async (c) => {
      const ctx = c.get("ctx");
      return c.json(await discoveredForRunner(ctx, ctx.actor, runnerName(c), c.req.valid("param").id, c.req.valid("json").facts), 200);
    },
  );
}
