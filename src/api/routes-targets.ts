import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { checkTarget, createTarget, deleteTarget, getTarget, listTargets, patchTarget } from "../services/targets.js";
import { requireRole } from "./auth.js";
import type { AppEnv } from "./env.js";
import { NameParam, Target, TargetCheck, TargetCreate, TargetPatch, errorResponses, jsonBody, jsonOk } from "./schemas.js";

export function targetRoutes(app: OpenAPIHono<AppEnv>): void {
  const admin = [requireRole("admin")];
  app.openapi(
    createRoute({ method: "post", path: "/v1/targets", tags: ["targets"], middleware: admin, request: jsonBody(TargetCreate), responses: { 201: jsonOk(Target, "Created"), ...errorResponses } }),
    async (c) => c.json(await createTarget(c.get("ctx"), c.req.valid("json")), 201),
  );
  app.openapi(
    createRoute({ method: "get", path: "/v1/targets", tags: ["targets"], middleware: admin, responses: { 200: jsonOk(z.object({ items: z.array(Target), nextCursor: z.null() })), ...errorResponses } }),
    async (c) => c.json({ items: await listTargets(c.get("ctx")), nextCursor: null }, 200),
  );
  app.openapi(
    createRoute({ method: "get", path: "/v1/targets/{name}", tags: ["targets"], middleware: admin, request: { params: NameParam }, responses: { 200: jsonOk(Target), ...errorResponses } }),
    async (c) => c.json(await getTarget(c.get("ctx"), c.req.valid("param").name), 200),
  );
  app.openapi(
    createRoute({ method: "patch", path: "/v1/targets/{name}", tags: ["targets"], middleware: admin, request: { params: NameParam, ...jsonBody(TargetPatch) }, responses: { 200: jsonOk(Target), ...errorResponses } }),
    async (c) => c.json(await patchTarget(c.get("ctx"), c.req.valid("param").name, c.req.valid("json")), 200),
  );
  app.openapi(
    createRoute({ method: "delete", path: "/v1/targets/{name}", tags: ["targets"], middleware: admin, request: { params: NameParam }, responses: { 204: { description: "Deleted" }, ...errorResponses } }),
    async (c) => {
      await deleteTarget(c.get("ctx"), c.req.valid("param").name);
      return c.body(null, 204);
    },
  );
  app.openapi(
    createRoute({ method: "post", path: "/v1/targets/{name}/check", tags: ["targets"], middleware: admin, request: { params: NameParam }, responses: { 200: jsonOk(TargetCheck), ...errorResponses } }),
    async (c) => c.json(await checkTarget(c.get("ctx"), c.req.valid("param").name), 200),
  );
}
