// Health, readiness, audit listing and the OpenAPI document.
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { listAudit } from "../services/audit.js";
import { requireRole } from "./auth.js";
import type { AppEnv } from "./env.js";
import { AuditEvent, ListQuery, errorResponses, jsonOk, page } from "./schemas.js";

export function auditRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/audit",
      tags: ["audit"],
      middleware: [requireRole("admin")],
      request: { query: ListQuery.extend({ subject: z.string().optional(), action: z.string().optional() }) },
      responses: { 200: jsonOk(page(AuditEvent)), ...errorResponses },
    }),
    async (c) => c.json(await listAudit(c.get("ctx"), c.req.valid("query")), 200),
  );
}
