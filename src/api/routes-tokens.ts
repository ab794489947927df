import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { createToken, listTokens, revokeToken } from "../services/tokens.js";
import { requireRole } from "./auth.js";
import type { AppEnv } from "./env.js";
import { IdParam, Token, TokenCreate, errorResponses, jsonBody, jsonOk } from "./schemas.js";

export function tokenRoutes(app: OpenAPIHono<AppEnv>): void {
  const admin = [requireRole("admin")];
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/tokens",
      tags: ["tokens"],
      middleware: admin,
      request: jsonBody(TokenCreate),
      responses: { 201: jsonOk(Token.extend({ token: z.string() }), "Created; `token` is shown only here"), ...errorResponses },
    }),
    async (c) => c.json(await createToken(c.get("ctx"), c.req.valid("json")), 201),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/tokens",
      tags: ["tokens"],
      middleware: admin,
      responses: { 200: jsonOk(z.object({ items: z.array(Token), nextCursor: z.null() })), ...errorResponses },
    }),
    async (c) => c.json({ items: await listTokens(c.get("ctx")), nextCursor: null }, 200),
  );
  app.openapi(
    createRoute({
      method: "delete",
      path: "/v1/tokens/{id}",
      tags: ["tokens"],
      middleware: admin,
      request: { params: IdParam },
      responses: { 204: { description: "Revoked" }, ...errorResponses },
    }),
    async (c) => {
      await revokeToken(c.get("ctx"), c.req.valid("param").id);
      return c.body(null, 204);
    },
  );
}
