/** @jsxImportSource hono/jsx */
// The dashboard: one server-rendered page (no SPA, no build) with the fleet at a glance — each
// cluster's newest backup, its age against the RPO, facts, recent failures, policies and their
// next slots. Sign-in stores the bearer token in an HttpOnly, SameSite=Strict cookie.

import type { Hono } from "hono";
import { getCookie, setCookie, deleteCookie } from "hono/cookie";
import { sql } from "drizzle-orm";
import type { AppEnv } from "../api/env.js";
import { authenticate } from "../services/tokens.js";
import { roleAllows } from "../api/auth.js";
import type { ServiceContext } from "../services/context.js";
import { listPolicies } from "../services/policies.js";
import { parseDuration, formatDuration } from "../core/duration.js";

const COOKIE = "ev_token";

const css = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#18324a;color:#fff;padding:12px 24px;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:18px;margin:0}main{padding:16px 24px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin-bottom:16px;padding:12px 16px}
h2{font-size:15px;margin:4px 0 10px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f2;vertical-align:top}
th{font-weight:600;color:#4b5563}.ok{color:#137333}.bad{color:#b3261e;font-weight:600}.muted{color:#6b7280}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{flex:1;min-width:140px;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 14px}
.card b{display:block;font-size:22px}code{font-size:12px}form.inline{display:inline}`;

function Layout(props: { children: unknown; signedIn?: string }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>etcd-vault</title>
        <style>{css}</style>
      </head>
      <body>
        <header>
          <h1>etcd-vault</h1>
          {props.signedIn ? (
            <form class="inline" method="post" action="/logout">
              <span>{props.signedIn} </span>
              <button type="submit">Sign out</button>
            </form>
          ) : null}
        </header>
        <main>{props.children}</main>
      </body>
    </html>
  );
}

const age = (ms: number) => formatDuration(Math.max(1000, Math.round(ms / 1000) * 1000));

async function fleet(ctx: ServiceContext) {
  const now = ctx.clock.now().getTime();
  const clusters = await ctx.catalog.db.all<{ name: string; labels: string; facts: string | null; at: number | null; id: string | null }>(sql`
    select c.name, c.labels, c.facts, b.created_at as at, b.id as id from clusters c
    left join backups b on b.id = (select id from backups x where x.cluster = c.name and x.state = 'available' order by x.created_at desc limit 1)
    order by c.name limit 500`);
  const rpos = await ctx.catalog.db.all<{ cluster: string; rpo: string }>(
    sql`select m.cluster as cluster, p.rpo as rpo from policy_members m join policies p on p.name = m.policy where p.paused = 0`,
  );
  const rpo = new Map<string, number>();
  for (const r of rpos) rpo.set(r.cluster, Math.min(parseDuration(r.rpo, "rpo"), rpo.get(r.cluster) ?? Infinity));
  const failed = await ctx.catalog.db.all<{ id: string; cluster: string; code: string; message: string; at: number }>(sql`
    select id, cluster, error_code as code, error_message as message, created_at as at from runs
    where error_code is not null and state in ('failed', 'queued') order by id desc limit 20`);
  const counts = (await ctx.catalog.db.all<{ available: number; bytes: number | null; running: number }>(sql`
    select (select count(*) from backups where state = 'available') as available,
           (select sum(cipher_size) from backups where state = 'available') as bytes,
           (select count(*) from runs where state = 'running') as running`))[0]!;
  return { now, clusters, rpo, failed, counts };
}

export function dashboardRoutes(app: Hono<AppEnv>): void {
  app.get("/", async (c) => {
    const svc = c.get("svc");
    const token = getCookie(c, COOKIE);
    const actor = token ? await authenticate(svc, token).catch(() => null) : null;
    if (!actor || !roleAllows(actor.role, "viewer")) {
      return c.html(
        <Layout>
          <section>
            <h2>Sign in</h2>
            <form method="post" action="/login">
              <label>
                API token (viewer or above){" "}
                <input type="password" name="token" autocomplete="off" size={60} required />
              </label>{" "}
              <button type="submit">Sign in</button>
            </form>
            {token ? <p class="bad">That token is not valid (expired, revoked, or a runner token).</p> : null}
          </section>
        </Layout>,
        token ? 401 : 200,
      );
    }
    const { now, clusters, rpo, failed, counts } = await fleet(svc);
    const policies = await listPolicies(svc);
    const breached = clusters.filter((k) => rpo.has(k.name) && (k.at === null || now - k.at > rpo.get(k.name)!)).length;
    return c.html(
      <Layout signedIn={`${actor.name} (${actor.role})`}>
        <div class="cards">
          <div class="card">Clusters<b>{clusters.length}</b></div>
          <div class="card">Available backups<b>{counts.available}</b></div>
          <div class="card">Stored<b>{((counts.bytes ?? 0) / 1024 ** 3).toFixed(2)} GiB</b></div>
          <div class="card">Capturing now<b>{counts.running}</b></div>
          <div class="card">RPO breached<b class={breached ? "bad" : "ok"}>{breached}</b></div>
        </div>
        <section>
          <h2>Clusters</h2>
          <table id="clusters">
            <tr><th>Cluster</th><th>Labels</th><th>Newest backup</th><th>RPO</th><th>etcd</th><th>Masters</th></tr>
            {clusters.map((k) => {
              const facts = k.facts ? (JSON.parse(k.facts) as { etcdVersion: string | null; masters: Array<{ name: string; internalIP: string | null }> }) : null;
              const limit = rpo.get(k.name);
              const late = limit !== undefined && (k.at === null || now - k.at > limit);
              return (
                <tr data-cluster={k.name}>
                  <td><b>{k.name}</b></td>
                  <td class="muted">{Object.entries(JSON.parse(k.labels) as Record<string, string>).map(([a, b]) => `${a}=${b}`).join(", ")}</td>
                  <td>{k.at === null ? <span class="muted">none yet</span> : <span>{age(now - k.at)} ago <code>{k.id}</code></span>}</td>
                  <td>{limit === undefined ? <span class="muted">no policy</span> : <span class={late ? "bad" : "ok"}>{late ? "breached" : "ok"} ({formatDuration(limit)})</span>}</td>
                  <td>{facts?.etcdVersion ?? <span class="muted">unknown</span>}</td>
                  <td>{facts ? facts.masters.map((m) => `${m.name} ${m.internalIP ?? "?"}`).join(", ") : <span class="muted">not discovered</span>}</td>
                </tr>
              );
            })}
          </table>
        </section>
        <section>
          <h2>Policies</h2>
          <table id="policies">
            <tr><th>Policy</th><th>Selector</th><th>Schedule</th><th>Retention</th><th>Target</th></tr>
            {policies.map((p) => (
              <tr>
                <td><b>{p.name}</b>{p.paused ? <span class="muted"> (paused)</span> : null}</td>
                <td>{Object.entries(p.selector.matchLabels).map(([a, b]) => `${a}=${b}`).join(", ") || "all clusters"}</td>
                <td><code>{p.schedule}</code> {p.timezone}{p.spread !== "0s" ? `, spread ${p.spread}` : ""}</td>
                <td>{Object.entries(p.retention).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(", ")}</td>
                <td>{p.target}</td>
              </tr>
            ))}
          </table>
        </section>
        <section>
          <h2>Recent failures</h2>
          {failed.length === 0 ? (
            <p class="muted">None.</p>
          ) : (
            <table id="failures">
              <tr><th>Run</th><th>Cluster</th><th>Error</th></tr>
              {failed.map((r) => (
                <tr><td><code>{r.id}</code></td><td>{r.cluster}</td><td><span class="bad">{r.code}</span> {r.message}</td></tr>
              ))}
            </table>
          )}
        </section>
      </Layout>,
    );
  });
  app.post("/login", async (c) => {
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token.trim() : "";
    const secure = new URL(c.req.url).protocol === "https:";
    setCookie(c, COOKIE, token, { httpOnly: true, sameSite: "Strict", secure, path: "/", maxAge: 8 * 3600 });
    return c.redirect("/", 303);
  });
  app.post("/logout", (c) => {
    deleteCookie(c, COOKIE, { path: "/" });
    return c.redirect("/", 303);
  });
}
