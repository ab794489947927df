import { OpenAPIHono, createRoute } from "@hono/zod-openapi";
import { createPolicy, deletePolicy, describePolicy, listPoliciesPage, patchPolicy } from "../services/policies.js";
import type { ServiceContext } from "../services/context.js";
import { tick } from "../scheduler/tick.js";
import { audit } from "../services/audit.js";
import { requireRole } from "./auth.js";
import type { AppEnv } from "./env.js";
import { ListQuery, NameParam, Policy, PolicyCreate, PolicyDetail, PolicyPatch, TickResult, errorResponses, jsonBody, jsonOk, page } from "./schemas.js";

export function policyRoutes(sweep?: (ctx: ServiceContext) => Promise<number>) {
  return (app: OpenAPIHono<AppEnv>): void => {
    app.openapi(
      createRoute({ method: "post", path: "/v1/policies", tags: ["policies"], middleware: [requireRole("admin")], request: jsonBody(PolicyCreate), responses: { 201: jsonOk(Policy, "Created"), ...errorResponses } }),
      async (c) => c.json(await createPolicy(c.get("ctx"), c.req.valid("json")), 201),
    );
    app.openapi(
      createRoute({ method: "get", path: "/v1/policies", tags: ["policies"], middleware: [requireRole("viewer")], request: { query: ListQuery }, responses: { 200: jsonOk(page(Policy)), ...errorResponses } }),
      async (c) => c.json(await listPoliciesPage(c.get("ctx"), c.req.valid("query")), 200),
    );
    app.openapi(
      createRoute({ method: "get", path: "/v1/policies/{name}", tags: ["policies"], middleware: [requireRole("viewer")], request: { params: NameParam }, responses: { 200: jsonOk(PolicyDetail), ...errorResponses } }),
      async (c) => c.json(await describePolicy(c.get("ctx"), c.req.valid("param").name), 200),
    );
    app.openapi(
      createRoute({ method: "patch", path: "/v1/policies/{name}", tags: ["policies"], middleware: [requireRole("admin")], request: { params: NameParam, ...jsonBody(PolicyPatch) }, responses: { 200: jsonOk(Policy), ...errorResponses } }),
      async (c) => c.json(await patchPolicy(c.get("ctx"), c.req.valid("param").name, c.req.valid("json") as never), 200),
    );
    app.openapi(
      createRoute({ method: "delete", path: "/v1/policies/{name}", tags: ["policies"], middleware: [requireRole("admin")], request: { params: NameParam }, responses: { 204: { description: "Deleted; its backups are kept" }, ...errorResponses } }),
      async (c) => {
        await deletePolicy(c.get("ctx"), c.req.valid("param").name);
        return c.body(null, 204);
      },
    );
    app.openapi(
      createRoute({ method: "post", path: "/v1/tick", tags: ["scheduler"], middleware: [requireRole("operator")], responses: { 200: jsonOk(TickResult), ...errorResponses } }),
      async (c) => {
        const ctx = c.get("ctx");
        const result = await tick(ctx, { sweep });
        // Who made the scheduler act, when a call changed anything (a CronJob calls every minute).
        if (result.created || result.requeued || result.deleted) await audit(ctx, { action: "scheduler.tick", subject: "scheduler", detail: { ...result } });
        return c.json(result, 200);
      },
    );
  };
}
