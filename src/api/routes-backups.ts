import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { deleteBackup, getBackup, listBackupsJson, setHold } from "../services/backups.js";
import { requestManualBackup } from "../services/manual-backup.js";
import { cancelRun, getRunRow, listRunsJson, runView } from "../services/runs.js";
import { requireRole } from "./auth.js";
import type { AppEnv } from "./env.js";
import { jsonText } from "./json-text.js";
import {
  Backup,
  BackupState,
  HoldBody,
  IdParam,
  ListQuery,
  ManualBackup,
  Name,
  NameParam,
  Run,
  RunState,
  errorResponses,
  jsonOk,
  page,
} from "./schemas.js";

export function backupRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/clusters/{name}/backups",
      tags: ["backups"],
      middleware: [requireRole("operator")],
      request: { params: NameParam, body: { content: { "application/json": { schema: ManualBackup } }, required: false } },
      responses: { 202: jsonOk(Run, "Queued"), ...errorResponses },
    }),
    async (c) => {
      const body = (c.req.valid("json") ?? {}) as z.infer<typeof ManualBackup>;
      const run = await requestManualBackup(c.get("ctx"), c.req.valid("param").name, body);
      return c.json(runView(run), 202);
    },
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/runs",
      tags: ["runs"],
      middleware: [requireRole("viewer")],
      request: { query: ListQuery.extend({ cluster: Name.optional(), policy: Name.optional(), state: RunState.optional() }) },
      responses: { 200: jsonOk(page(Run)), ...errorResponses },
    }),
    // JSON text rendered by the catalog (services/runs.ts runJson).
    async (c) => jsonText(c, await listRunsJson(c.get("ctx"), c.req.valid("query"))),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/runs/{id}",
      tags: ["runs"],
      middleware: [requireRole("viewer")],
      request: { params: IdParam },
      responses: { 200: jsonOk(Run), ...errorResponses },
    }),
    async (c) => c.json(runView(await getRunRow(c.get("ctx"), c.req.valid("param").id)), 200),
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/runs/{id}/cancel",
      tags: ["runs"],
      middleware: [requireRole("operator")],
      request: { params: IdParam },
      responses: { 200: jsonOk(Run), ...errorResponses },
    }),
    async (c) => c.json(runView(await cancelRun(c.get("ctx"), c.req.valid("param").id)), 200),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/backups",
      tags: ["backups"],
      middleware: [requireRole("viewer")],
      request: {
        query: ListQuery.extend({
          cluster: Name.optional(),
          policy: Name.optional(),
          manual: z.enum(["true", "false"]).optional(),
          state: BackupState.optional(),
        }),
      },
      responses: { 200: jsonOk(page(Backup)), ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      // JSON text rendered by the catalog (services/backups.ts backupJson).
      return jsonText(c, await listBackupsJson(c.get("ctx"), { ...q, manual: q.manual === undefined ? undefined : q.manual === "true" }));
    },
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/backups/{id}",
      tags: ["backups"],
      middleware: [requireRole("viewer")],
      request: { params: IdParam },
      responses: { 200: jsonOk(Backup), ...errorResponses },
    }),
    async (c) => c.json(await getBackup(c.get("ctx"), c.req.valid("param").id), 200),
  );
  app.openapi(
    createRoute({
      method: "delete",
      path: "/v1/backups/{id}",
      tags: ["backups"],
      middleware: [requireRole("operator")],
      request: { params: IdParam },
      responses: { 200: jsonOk(Backup), ...errorResponses },
    }),
    async (c) => c.json(await deleteBackup(c.get("ctx"), c.req.valid("param").id), 200),
  );
  app.openapi(
    createRoute({
      method: "put",
      path: "/v1/backups/{id}/hold",
      tags: ["backups"],
      middleware: [requireRole("operator")],
      request: { params: IdParam, body: { content: { "application/json": { schema: HoldBody } }, required: true } },
      responses: { 200: jsonOk(Backup), ...errorResponses },
    }),
    async (c) => c.json(await setHold(c.get("ctx"), c.req.valid("param").id, c.req.valid("json").reason), 200),
  );
  app.openapi(
    createRoute({
      method: "delete",
      path: "/v1/backups/{id}/hold",
      tags: ["backups"],
      middleware: [requireRole("operator")],
      request: { params: IdParam },
      responses: { 200: jsonOk(Backup), ...errorResponses },
    }),
    async (c) => c.json(await setHold(c.get("ctx"), c.req.valid("param").id, null), 200),
  );
}
