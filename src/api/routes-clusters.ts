import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { parseSelector } from "../core/labels.js";
import {
  createCluster,
  deleteCluster,
  discoverCluster,
  getCluster,
  listClustersJson,
  patchCluster,
} from "../services/clusters.js";
import { requireRole } from "./auth.js";
import type { AppEnv } from "./env.js";
import { jsonText } from "./json-text.js";
import { DiscoveryQueued } from "../services/runner-handoff.js";
import { Cluster, ClusterCreate, ClusterPatch, ListQuery, NameParam, Run, errorResponses, jsonBody, jsonOk, page } from "./schemas.js";

export function clusterRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/clusters",
      tags: ["clusters"],
      middleware: [requireRole("admin")],
      request: jsonBody(ClusterCreate),
      responses: { 201: jsonOk(Cluster, "Registered"), ...errorResponses },
    }),
    async (c) => c.json(await createCluster(c.get("ctx"), c.req.valid("json")), 201),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/clusters",
      tags: ["clusters"],
      middleware: [requireRole("viewer")],
      request: { query: ListQuery.extend({ selector: z.string().optional() }) },
      responses: { 200: jsonOk(page(Cluster)), ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const selector = q.selector ? parseSelector(q.selector, "selector") : undefined;
      // JSON text rendered by the catalog (services/clusters.ts clusterJson).
      return jsonText(c, await listClustersJson(c.get("ctx"), { ...q, selector }));
    },
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/clusters/{name}",
      tags: ["clusters"],
      middleware: [requireRole("viewer")],
      request: { params: NameParam },
      responses: { 200: jsonOk(Cluster), ...errorResponses },
    }),
    async (c) => c.json(await getCluster(c.get("ctx"), c.req.valid("param").name), 200),
  );
  app.openapi(
    createRoute({
      method: "patch",
      path: "/v1/clusters/{name}",
      tags: ["clusters"],
      middleware: [requireRole("admin")],
      request: {
        params: NameParam,
        // Hono's JSON validator also accepts application/merge-patch+json.
        ...jsonBody(ClusterPatch),
      },
      responses: { 200: jsonOk(Cluster), ...errorResponses },
    }),
    async (c) => {
      return c.json(await patchCluster(c.get("ctx"), c.req.valid("param").name, c.req.valid("json")), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "delete",
      path: "/v1/clusters/{name}",
      tags: ["clusters"],
      middleware: [requireRole("admin")],
      request: { params: NameParam, query: z.object({ purgeBackups: z.enum(["true", "false"]).optional() }) },
      responses: { 204: { description: "Deleted" }, ...errorResponses },
    }),
    async (c) => {
      await deleteCluster(c.get("ctx"), c.req.valid("param").name, c.req.valid("query").purgeBackups === "true");
      return c.body(null, 204);
    },
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/clusters/{name}/discover",
      tags: ["clusters"],
      middleware: [requireRole("operator")],
      request: { params: NameParam },
      responses: {
        200: jsonOk(Cluster, "Facts refreshed"),
        202: jsonOk(Run, "Handed to a runner that did not finish within 20 s (Worker edition); poll the run"),
        502: errorResponses[400],
        ...errorResponses,
      },
    }),
    async (c) => {
      try {
        return c.json(await discoverCluster(c.get("ctx"), c.req.valid("param").name), 200);
      } catch (e) {
        if (e instanceof DiscoveryQueued) return c.json(e.run, 202);
        throw e;
      }
    },
  );
}

