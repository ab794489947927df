// Discovery through the API against the Kubernetes simulator: facts stored and shown; an
// unreachable cluster is a 502 naming the host and why, and nothing is stored.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, type TestService } from "./helpers/service.js";
import { etcdPod, masterNode, startKubeSim, generateCa, type KubeSim } from "./support/kube-sim.js";
import { freePort } from "./support/etcd.js";

let sim: KubeSim;
let s: TestService;

beforeAll(async () => {
  sim = await startKubeSim({
    gitVersion: "v1.30.4",
    nodes: [masterNode("master-0", "10.0.0.10"), masterNode("master-1", "10.0.0.11"), masterNode("master-2", "10.0.0.12"), { name: "worker-0", internalIP: "10.0.1.1" }],
    pods: [etcdPod("master-0", { image: "registry.k8s.io/etcd:3.5.16-0" }), etcdPod("master-1", { image: "registry.k8s.io/etcd:3.5.16-0", ready: false }), etcdPod("master-2", { image: "registry.k8s.io/etcd:3.5.16-0" })],
  });
  s = await startTestService();
});
afterAll(async () => {
  await s?.stop();
  await sim?.close();
});

describe("discovery", () => {
  it("reads masters, etcd pods and versions into the cluster's facts", async () => {
    expect((await s.call("POST", "/v1/clusters", { name: "prod-a", kubeconfig: sim.kubeconfig })).status).toBe(201);
    const r = await s.call("POST", "/v1/clusters/prod-a/discover");
    expect(r.status, r.text).toBe(200);
    const facts = (await s.call("GET", "/v1/clusters/prod-a")).json.facts;
    expect(facts.masters).toEqual([
      { name: "master-0", internalIP: "10.0.0.10" },
      { name: "master-1", internalIP: "10.0.0.11" },
      { name: "master-2", internalIP: "10.0.0.12" },
    ]);
    expect(facts.etcdPods).toEqual([
      { name: "etcd-master-0", node: "master-0", ready: true },
      { name: "etcd-master-1", node: "master-1", ready: false },
      { name: "etcd-master-2", node: "master-2", ready: true },
    ]);
    expect(facts.etcdVersion).toBe("3.5.16");
    expect(facts.kubernetesVersion).toBe("v1.30.4");
    expect(facts.multiMaster).toBe(true);
    expect(Date.parse(facts.discoveredAt)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("answers 502 naming the host and why, and stores nothing, for unreachable clusters", async () => {
    const port = await freePort();
    const other = generateCa(sim.dir, "other-ca");
    const cases: Array<[string, string, RegExp]> = [
      ["refused", sim.kubeconfigWith({ server: `https://127.0.0.1:${port}` }), /refused/i],
      ["tls", sim.kubeconfigWith({ caPem: other.certPem }), /TLS|certificate/i],
      ["auth", sim.kubeconfigWith({ token: "wrong-token-value" }), /auth|401/i],
    ];
    for (const [name, kubeconfig, why] of cases) {
      expect((await s.call("POST", "/v1/clusters", { name: `bad-${name}`, kubeconfig })).status).toBe(201);
      const r = await s.call("POST", `/v1/clusters/bad-${name}/discover`);
      expect(r.status, name).toBe(502);
      expect(r.json.error.code).toBe("upstream_failed");
      expect(r.json.error.message).toContain("127.0.0.1");
      expect(r.json.error.message).toMatch(why);
      expect(r.text).not.toContain("wrong-token-value");
      expect(r.text).not.toContain(sim.token);
      expect((await s.call("GET", `/v1/clusters/bad-${name}`)).json.facts).toBeNull();
    }
  });
});
