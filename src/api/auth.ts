// Bearer-token authentication and role checks. Roles: admin (everything but the runner routes;
// targets, tokens and the audit log are admin only), operator (backups, links, holds, tick,
// retention apply, discovery), viewer (read), runner (runner routes only).

import type { MiddlewareHandler } from "hono";
import { VaultError } from "../core/errors.js";
import { authenticate } from "../services/tokens.js";
import type { Role } from "../services/context.js";
import type { AppEnv, RemoteAddrFn } from "./env.js";

const RANK: Record<Exclude<Role, "runner">, number> = { viewer: 1, operator: 2, admin: 3 };

export function roleAllows(have: Role, need: Role): boolean {
  if (need === "runner" || have === "runner") return have === need;
  return RANK[have] >= RANK[need];
}

/** Authenticates every /v1 request and builds the per-request context. */
export function authMiddleware(remoteAddr: RemoteAddrFn): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const svc = c.get("svc");
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const actor = await authenticate(svc, m ? m[1]! : null);
    c.set("ctx", { ...svc, actor, remoteAddr: remoteAddr(c), requestId: c.get("requestId") });
    await next();
  };
}

export function requireRole(need: Role): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const actor = c.get("ctx").actor;
    if (!roleAllows(actor.role, need)) {
      throw new VaultError("forbidden", `role '${actor.role}' may not ${c.req.method} ${c.req.routePath}; needs '${need}'`);
    }
    await next();
  };
}
