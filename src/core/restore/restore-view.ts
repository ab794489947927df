// The facts a restore bundle is written from, normalised once for RESTORE.md and restore.sh:
// masters with usable names and addresses (or visible placeholders), the etcd version split into
// numbers, the topology, and a warning for every fact that had to be replaced by a placeholder.

import type { Backup } from "../backup-types.js";

export interface RestoreMaster {
  name: string;
  /** The InternalIP, or a placeholder such as `<IP_OF_master-0>` when unknown. */
  ip: string;
  ipKnown: boolean;
  /** True for the single stand-in master rendered when the backup recorded none. */
  placeholder: boolean;
  etcdPod: string | null;
}

export interface RestoreView {
  masters: RestoreMaster[];
  /** `3.5.16` (no leading v, no image suffix), or null when unknown/unparseable. */
  etcdVersion: string | null;
  major: number | null;
  minor: number | null;
  patch: number | null;
  topology: "single" | "multi" | "unknown";
  discoveredAt: string | null;
  warnings: string[];
}

const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6 = /^[0-9a-fA-F:.]+$/;

const isIP = (s: string): boolean => {
  const m = IPV4.exec(s);
  if (m) return m.slice(1).every((p) => Number(p) <= 255);
  return s.includes(":") && IPV6.test(s);
};

export function restoreView(backup: Backup): RestoreView {
  const warnings: string[] = [];
  const facts = backup.facts;
  if (!facts) warnings.push("The backup carries no cluster facts: node names, addresses and topology are unknown.");

  const rawVersion = [backup.etcd?.version, facts?.etcdVersion].find((x) => typeof x === "string") ?? null;
  const vm = rawVersion === null ? null : /^v?(\d+)\.(\d+)\.(\d+)/.exec(rawVersion.trim());
  if (!vm) {
    warnings.push(
      rawVersion === null
        ? "The etcd version is unknown: `<ETCD_VERSION>` stands for it; read it with `etcdctl version` in the etcd pod."
        : `The etcd version '${rawVersion}' is not of the form X.Y.Z: \`<ETCD_VERSION>\` stands for it.`,
    );
  }

  // backup.json may come from an older or hand-edited record: tolerate odd shapes, never crash.
  const pods = Array.isArray(facts?.etcdPods) ? facts.etcdPods : [];
  const masters: RestoreMaster[] = [];
  for (const m of Array.isArray(facts?.masters) ? facts.masters : []) {
    if (typeof m?.name !== "string" || !NODE_NAME.test(m.name)) {
      warnings.push(`Skipped a master whose recorded name is not a valid node name.`);
      continue;
    }
    const ipKnown = typeof m.internalIP === "string" && isIP(m.internalIP);
    if (!ipKnown) warnings.push(`The InternalIP of master \`${m.name}\` is unknown: \`<IP_OF_${m.name}>\` stands for it.`);
    const pod = pods.find((p) => p.node === m.name);
    masters.push({
      name: m.name,
      ip: ipKnown ? m.internalIP! : `<IP_OF_${m.name}>`,
      ipKnown,
      placeholder: false,
      etcdPod: pod ? `${pod.name}${pod.ready ? "" : " (not Ready)"}` : null,
    });
  }
  if (masters.length === 0) {
    if (facts) warnings.push("No control-plane nodes were recorded: `<NODE_NAME>` and `<NODE_IP>` stand for the master you restore on.");
    masters.push({ name: "<NODE_NAME>", ip: "<NODE_IP>", ipKnown: false, placeholder: true, etcdPod: null });
  }

  const known = masters.filter((m) => !m.placeholder).length;
  if (facts?.multiMaster && known < 2) {
    warnings.push(`The facts say multi-master but list ${known} master(s): \`<MASTER_NODE_NAME>\` stands for the others.`);
  }
  const topology = known === 0 ? "unknown" : facts?.multiMaster || known > 1 ? "multi" : "single";
  return {
    masters,
    etcdVersion: vm ? `${vm[1]}.${vm[2]}.${vm[3]}` : null,
    major: vm ? Number(vm[1]) : null,
    minor: vm ? Number(vm[2]) : null,
    patch: vm ? Number(vm[3]) : null,
    topology,
    discoveredAt: facts?.discoveredAt ?? null,
    warnings,
  };
}
