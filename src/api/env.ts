// Hono typing shared by every route file.
import type { RequestContext, ServiceContext } from "../services/context.js";

export interface AppEnv {
  Variables: {
    svc: ServiceContext;
    ctx: RequestContext;
    requestId: string;
  };
}

/** How the hosting runtime tells the app the peer address (Node socket, or Workers' header). */
export type RemoteAddrFn = (c: import("hono").Context) => string | null;
