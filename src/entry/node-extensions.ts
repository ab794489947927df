// Route groups and background work the Node edition adds on top of the foundation. Later layers
// (capture, scheduler, retention, links, runners, dashboard) register themselves here.
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../api/env.js";
import type { ServiceContext } from "../services/context.js";
import type { Config } from "./config.js";

export function nodeExtensions(): Array<(app: OpenAPIHono<AppEnv>) => void> {
  return [];
}

export async function startBackground(
  _svc: ServiceContext,
  _config: Config,
  _setWake: (fn: () => void) => void,
): Promise<{ stop(): Promise<void> }> {
  return { stop: async () => {} };
}
