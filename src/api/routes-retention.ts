import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { applyRetention, planRetention } from "../services/retention.js";
import { getPolicyRow } from "../services/policies.js";
import { getClusterRow } from "../services/clusters.js";
import type { ServiceContext } from "../services/context.js";
import { requireRole } from "./auth.js";
import type { AppEnv } from "./env.js";
import { Name, errorResponses, jsonBody, jsonOk } from "./schemas.js";

const Scope = z.strictObject({ policy: Name.optional(), cluster: Name.optional() }).openapi("RetentionScope");
const Apply = Scope.extend({ expect: z.array(z.string().min(1)).max(100_000).optional() }).openapi("RetentionApply");
const Item = z.object({ backupId: z.string(), cluster: z.string(), policy: z.string().nullable(), reasons: z.array(z.string()) });
const Plan = z.object({ keep: z.array(Item), delete: z.array(Item), summary: z.record(z.string(), z.unknown()) }).openapi("RetentionPlan");

async function checkScope(ctx: ServiceContext, s: { policy?: string; cluster?: string }) {
  if (s.policy) await getPolicyRow(ctx, s.policy);
  if (s.cluster) await getClusterRow(ctx, s.cluster);
}

export function retentionRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/retention/plan",
      tags: ["retention"],
      middleware: [requireRole("viewer")],
      request: { body: { content: { "application/json": { schema: Scope } }, required: false } },
      responses: { 200: jsonOk(Plan, "What would be kept and deleted, with reasons"), ...errorResponses },
    }),
    async (c) => {
      const scope = c.req.valid("json") ?? {};
      await checkScope(c.get("ctx"), scope);
      return c.json(await planRetention(c.get("ctx"), scope), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/retention/apply",
      tags: ["retention"],
      middleware: [requireRole("operator")],
      request: jsonBody(Apply),
      responses: { 200: jsonOk(Plan.extend({ deleted: z.array(z.string()) }), "Recomputed plan and the ids deleted"), ...errorResponses },
    }),
    async (c) => {
      const body = c.req.valid("json");
      await checkScope(c.get("ctx"), body);
      return c.json(await applyRetention(c.get("ctx"), body), 200);
    },
  );
}
