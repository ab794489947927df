// The dashboard in real Chromium (Debian's, driven by playwright-core): sign in with a token, see
// the fleet with facts, RPO state and failures; a bad token is refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, type ServerType } from "@hono/node-server";
import { chromium, type Browser } from "playwright-core";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestService, type TestService } from "./helpers/service.js";
import { etcdPod, masterNode, startKubeSim, type KubeSim } from "./support/kube-sim.js";
import { freePort } from "./support/etcd.js";

const RCPT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
let s: TestService;
let sim: KubeSim;
let server: ServerType;
let base: string;
let browser: Browser;
let viewer: string;

beforeAll(async () => {
  sim = await startKubeSim({ nodes: [masterNode("master-0", "10.1.0.5")], pods: [etcdPod("master-0", { image: "registry.k8s.io/etcd:3.5.16-0" })] });
  s = await startTestService();
  await s.call("POST", "/v1/clusters", { name: "prod-a", labels: { env: "prod" }, kubeconfig: sim.kubeconfig, recipients: [RCPT] });
  await s.call("POST", "/v1/clusters/prod-a/discover");
  await s.call("POST", "/v1/policies", { name: "prod-6h", selector: { matchLabels: { env: "prod" } }, schedule: "0 */6 * * *", retention: { daily: 7 }, recipients: [RCPT] });
  viewer = (await s.call("POST", "/v1/tokens", { name: "wall screen", role: "viewer" })).json.token;
  const port = await freePort();
  server = serve({ fetch: s.app.fetch, port, hostname: "127.0.0.1" });
  base = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
  await s?.stop();
  await sim?.close();
});

describe("dashboard", () => {
  it("signs in with a token and shows the fleet", async () => {
    const page = await browser.newPage();
    await page.goto(base + "/");
    await page.fill('input[name="token"]', viewer);
    await page.click('button[type="submit"]');
    const row = page.locator('tr[data-cluster="prod-a"]');
    await row.waitFor();
    const text = await row.innerText();
    expect(text).toContain("env=prod");
    expect(text).toContain("3.5.16");
    expect(text).toContain("master-0 10.1.0.5");
    expect(text).toContain("none yet");
    expect(text).toContain("breached"); // a policy covers it and there is no backup yet
    expect(await page.locator("#policies").innerText()).toContain("prod-6h");
    expect(await page.content()).not.toContain(viewer); // the token lives in an HttpOnly cookie only
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === "ev_token")?.httpOnly).toBe(true);
    const shot = join(mkdtempSync(join(tmpdir(), "ev-shot-")), "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot) && statSync(shot).size > 5000).toBe(true);
    rmSync(join(shot, ".."), { recursive: true, force: true });
    await page.click("text=Sign out");
    await page.locator('input[name="token"]').waitFor();
    await page.close();
  });

  it("refuses a bad token", async () => {
    const page = await browser.newPage();
    await page.goto(base + "/");
    await page.fill('input[name="token"]', "evt_nope_nope");
    await page.click('button[type="submit"]');
    await page.locator("text=That token is not valid").waitFor();
    expect(await page.locator("#clusters").count()).toBe(0);
    await page.close();
  });
});
