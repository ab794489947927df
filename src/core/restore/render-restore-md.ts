// RESTORE.md of a restore bundle: every procedure of the Deckhouse etcd guide, written out for the
// cluster and backup at hand (node names, InternalIPs, etcd version, sizes and hashes), so that an
// operator on a broken master copies commands instead of composing them. Missing facts become
// visible <PLACEHOLDERS> plus a warning at the top — never "undefined" or "null" in a command.

import type { Backup } from "../backup-types.js";
import { restoreView, type RestoreMaster, type RestoreView } from "./restore-view.js";

export interface RestoreMdOptions {
  bundleName: string;
  /** When the bundle was assembled (RFC 3339); shown in the header. */
  downloadedAt?: string;
}

const PKI_FLAGS =
  "--cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/ca.crt --key /etc/kubernetes/pki/etcd/ca.key";

export function renderRestoreMd(backup: Backup, opts: RestoreMdOptions): string {
  const v = restoreView(backup);
  const parts = [
    header(backup, v, opts),
    backupFacts(backup, v),
    nodes(v),
    contents(),
    decryptAndVerify(backup),
    getTools(v),
    singleMaster(v),
    multiMaster(v),
    singleObjects(v),
    listMembers(v),
    forceNewCluster(v),
    infiniteRestart(v),
  ];
  return `${parts.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd()}\n`;
}

const sh = (...lines: string[]): string => ["```sh", ...lines, "```", ""].join("\n");
const human = (n: number): string => {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let x = n;
  let u = 0;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${n} bytes (${x.toFixed(1)} ${units[u]})`;
};

function header(backup: Backup, v: RestoreView, opts: RestoreMdOptions): string {
  const lines = [
    `# Restoring etcd of cluster \`${backup.cluster}\``,
    "",
    `Backup \`${backup.id}\`, taken ${backup.createdAt}. Bundle \`${opts.bundleName}\`` +
      (opts.downloadedAt ? `, assembled ${opts.downloadedAt}.` : "."),
    "",
    "etcd-vault wrote this file for this one cluster and this one backup. The commands below carry the",
    "node names, addresses and versions recorded when the snapshot was taken" +
      (v.discoveredAt ? ` (cluster facts of ${v.discoveredAt}).` : "."),
    "If masters were replaced or readdressed since then, check every value against the live nodes first.",
    "",
  ];
  if (v.warnings.length > 0) {
    lines.push("> **Warning — some facts are missing from this backup; fill in the placeholders by hand:**");
    for (const w of v.warnings) lines.push(`> - ${w}`);
    lines.push("");
  }
  return lines.join("\n");
}

function backupFacts(backup: Backup, v: RestoreView): string {
  const row = (k: string, val: string) => `| ${k} | ${val} |`;
  const etcd = backup.etcd;
  return [
    "## The backup",
    "",
    "| | |",
    "|---|---|",
    row("Cluster", `\`${backup.cluster}\``),
    row("Backup id", `\`${backup.id}\``),
    row("Taken at (UTC)", backup.createdAt),
    row("Policy", backup.policy ? `\`${backup.policy}\`` : "manual backup"),
    row("etcd version", v.etcdVersion ?? "unknown — `<ETCD_VERSION>`"),
    row("etcd revision", etcd.revision === null ? "unknown" : String(etcd.revision)),
    row("Keys", etcd.keys === null ? "unknown" : String(etcd.keys)),
    row("Kubernetes version", backup.facts?.kubernetesVersion ?? "unknown"),
    row("Deckhouse version", backup.facts?.deckhouseVersion ?? "unknown"),
    row("Snapshot size (decrypted)", human(backup.plaintext.size)),
    row("Snapshot SHA-256 (decrypted)", `\`${backup.plaintext.sha256}\``),
    row("`snapshot.db.age` size", human(backup.ciphertext.size)),
    row("`snapshot.db.age` SHA-256", `\`${backup.ciphertext.sha256}\``),
    row("Encrypted to", backup.recipients.length ? backup.recipients.map((r) => `\`${r}\``).join("<br>") : "unknown"),
    "",
  ].join("\n");
}

function nodes(v: RestoreView): string {
  const lines = ["## Control-plane nodes", ""];
  if (v.masters.length === 0 || v.masters[0]!.placeholder) {
    lines.push("No control-plane nodes were recorded. Find them with", "");
    lines.push(sh("d8 k get nodes -l node-role.kubernetes.io/control-plane= -o wide"));
  } else {
    lines.push("| Node | InternalIP | etcd pod |", "|---|---|---|");
    for (const m of v.masters) lines.push(`| \`${m.name}\` | ${m.ipKnown ? `\`${m.ip}\`` : `unknown — \`${m.ip}\``} | ${m.etcdPod ?? "—"} |`);
    lines.push("");
  }
  const which =
    v.topology === "single"
      ? "**This cluster has one master: follow [the single-master restore](#3-single-master-restore).**"
      : v.topology === "multi"
        ? `**This cluster has ${v.masters.length} masters: follow [the multi-master restore](#4-multi-master-restore).**`
        : "**The number of masters is unknown: count them with the command above, then pick section 3 (one master) or 4 (several).**";
  lines.push(which, "");
  return lines.join("\n");
}

function contents(): string {
  return [
    "## What is in this bundle",
    "",
    "- `snapshot.db.age` — the etcd snapshot, age-encrypted. Decrypted, it holds every Secret of the cluster: keep it off shared disks and delete it when done.",
    "- `SHA256SUMS` — checksum of `snapshot.db.age` (`sha256sum -c SHA256SUMS`).",
    "- `backup.json` — the backup record: sizes, hashes, etcd revision and version, cluster facts.",
    "- `restore.sh` — the single-node restore as a script (section 3). It prints its plan and changes nothing without `--yes`.",
    "- `RESTORE.md` — this file.",
    "",
  ].join("\n");
}

function decryptAndVerify(backup: Backup): string {
  const pq = backup.recipients.some((r) => r.startsWith("age1pq1"));
  const lines = [
    "## 1. Decrypt and verify",
    "",
    "Run in the bundle folder. `key.txt` is one of your age identities (etcd-vault never holds it).",
    "",
    sh(
      "sha256sum -c SHA256SUMS",
      "age -d -i key.txt -o snapshot.db snapshot.db.age",
      `echo "${backup.plaintext.sha256}  snapshot.db" | sha256sum -c -`,
      `test "$(stat -c %s snapshot.db)" = ${backup.plaintext.size} && echo "size OK"`,
    ),
    pq
      ? "**This backup is encrypted to a post-quantum recipient (`age1pq1…`): it needs age 1.3 or newer.** Debian's age 1.1.1 cannot read it."
      : "A file encrypted to a post-quantum recipient (`age1pq1…`) needs age 1.3 or newer; this one is not, so any age release works.",
    "",
    "etcd's snapshot stream ends with 32 bytes that are the SHA-256 of everything before them; a stream",
    "carries them exactly when its length modulo 512 is 32. `snapshot restore` (etcdctl and etcdutl) checks",
    "and strips them itself, and refuses a snapshot without them unless given `--skip-hash-check`. To check by hand:",
    "",
    sh(
      "size=$(stat -c %s snapshot.db)",
      "if [ $((size % 512)) -eq 32 ]; then",
      "  want=$(tail -c 32 snapshot.db | od -An -v -tx1 | tr -d ' \\n')",
      "  got=$(head -c $((size - 32)) snapshot.db | sha256sum | cut -d' ' -f1)",
      '  if [ "$want" = "$got" ]; then echo "trailer OK"; else echo "trailer MISMATCH: do not restore"; fi',
      "else",
      '  echo "no trailer: restore with --skip-hash-check"',
      "fi",
    ),
    "With the etcd-vault CLI at hand, `etcd-vault verify <bundle folder or .tar> --identity key.txt` does all of the",
    "above in one pass without writing the decrypted snapshot.",
    "",
  ];
  return lines.join("\n");
}

function getTools(v: RestoreView): string {
  const ver = v.etcdVersion ?? "<ETCD_VERSION>";
  const dir = `etcd-v${ver}-linux-amd64`;
  const hasEtcdutl = v.minor === null || v.major! > 3 || (v.major === 3 && v.minor >= 5);
  const tools = hasEtcdutl ? `${dir}/etcdctl ${dir}/etcdutl` : `${dir}/etcdctl`;
  return [
    `## 2. Get etcdctl${hasEtcdutl ? " and etcdutl" : ""} for etcd ${ver}`,
    "",
    "Use the same minor version as the cluster's etcd; a different patch release is fine.",
    hasEtcdutl
      ? "Since etcd 3.5, offline work on data files (`snapshot restore`) belongs to `etcdutl`; `etcdctl` still does it with a deprecation notice."
      : "etcd 3.4 has no `etcdutl`: `etcdctl snapshot restore` does the offline work.",
    "",
    "From the etcd release (use `arm64` instead of `amd64` on ARM nodes):",
    "",
    sh(
      `curl -fsSLO "https://github.com/etcd-io/etcd/releases/download/v${ver}/etcd-v${ver}-linux-amd64.tar.gz"`,
      `tar -xzf etcd-v${ver}-linux-amd64.tar.gz`,
      `install -m 0755 ${tools} /usr/local/bin/`,
      hasEtcdutl ? "etcdctl version && etcdutl version" : "etcdctl version",
    ),
    "Or from the node itself. The etcd pod's image has `etcdctl` (and, in recent images, `etcdutl`):",
    "",
    sh(
      `d8 k -n kube-system exec -ti etcd-$(hostname) -- etcdctl version`,
      `crictl ps -a --name '^etcd$'                 # the etcd container, running or not`,
      `crictl exec <CONTAINER-ID> etcdctl version   # while it runs`,
      "# containerd keeps the image unpacked on the node; the binaries stay there after etcd stops:",
      `find /var/lib/containerd -type f \\( -name etcdctl -o -name etcdutl \\) 2>/dev/null`,
      `install -m 0755 <PATH-FOUND-ABOVE> /usr/local/bin/`,
    ),
  ].join("\n");
}

/** The restore command for one node; etcdutl on 3.5+, etcdctl on 3.4 (same flags). */
function restoreCommand(v: RestoreView, m: RestoreMaster, dataDir: string): string[] {
  const tool = v.major === 3 && v.minor !== null && v.minor < 5 ? "ETCDCTL_API=3 etcdctl" : "etcdutl";
  const peer = `https://${hostPort(m.ip, 2380)}`;
  return [
    `${tool} snapshot restore snapshot.db \\`,
    `  --name ${m.name} \\`,
    `  --initial-cluster ${m.name}=${peer} \\`,
    `  --initial-advertise-peer-urls ${peer} \\`,
    `  --data-dir ${dataDir}`,
  ];
}

function singleMaster(v: RestoreView): string {
  const targets = v.masters;
  const perNode = targets.length > 1;
  const restoreBlocks = targets.flatMap((m) => [
    ...(perNode ? [`On \`${m.name}\`:`, ""] : []),
    sh(...restoreCommand(v, m, "/var/lib/etcd-restore")),
  ]);
  return [
    "## 3. Single-master restore",
    "",
    v.topology === "multi"
      ? "This cluster has several masters: do not start here. Section 4 brings it down to one master and then sends you here."
      : "Run everything as root on the master node.",
    "",
    "### The scripted way: restore.sh",
    "",
    "`restore.sh` carries the facts of this backup. It checks that it runs as root, that etcdutl/etcdctl matches",
    "the backup's etcd version, that the disk has room, and which master it is on (by hostname, or `--node`).",
    "Then it verifies and decrypts the snapshot, stops etcd, copies `/var/lib/etcd/member` to a new",
    "`/var/lib/deckhouse-etcd-backup-<time>` folder, restores into a fresh directory, swaps it in, starts etcd",
    "and waits until it is healthy.",
    "",
    sh(
      "./restore.sh --identity key.txt          # checks and prints the plan; changes nothing",
      "./restore.sh --identity key.txt --yes    # does it",
    ),
    "Already decrypted? Pass `--snapshot snapshot.db` instead of `--identity`. `./restore.sh --help` lists every",
    "option and the environment variables that move its paths.",
    "",
    "### By hand",
    "",
    "1. Get etcdctl/etcdutl (section 2) and decrypt the snapshot into `snapshot.db` (section 1).",
    "2. Stop etcd. It is a static pod, so moving its manifest away stops it; wait until the container is gone.",
    "",
    sh(
      "mv /etc/kubernetes/manifests/etcd.yaml ~/etcd.yaml",
      "while [ -n \"$(crictl ps -q --name '^etcd$')\" ]; do sleep 2; done",
    ),
    "3. Keep a copy of the current data, in a folder that did not exist before:",
    "",
    sh("cp -a /var/lib/etcd/member/ /var/lib/deckhouse-etcd-backup-$(date -u +%Y%m%dT%H%M%SZ)"),
    "4. Restore into a new directory next to the data. (The guide restores straight into `/var/lib/etcd`, but",
    "   etcdctl 3.4 refuses any existing directory and etcdutl 3.5 any non-empty one, and `/var/lib/etcd` also",
    "   holds the nightly `etcd-backup.tar.gz`.)",
    "",
    ...restoreBlocks,
    "   With etcdutl 3.5.x or newer whose `snapshot restore --help` lists `--bump-revision`, add",
    "   `--bump-revision 1000000000 --mark-compacted`: revisions then keep moving forward, so kube-apiserver",
    "   watch caches and controllers do not sit on revisions newer than the restored data.",
    "",
    "5. Swap the restored member in:",
    "",
    sh(
      "rm -rf /var/lib/etcd/member",
      "mv /var/lib/etcd-restore/member /var/lib/etcd/member",
      "rmdir /var/lib/etcd-restore",
    ),
    "6. Start etcd again and wait for it:",
    "",
    sh(
      "mv ~/etcd.yaml /etc/kubernetes/manifests/etcd.yaml",
      `etcdctl ${PKI_FLAGS} --endpoints https://127.0.0.1:2379/ endpoint health`,
    ),
  ].join("\n");
}

function multiMaster(v: RestoreView): string {
  const lines = [
    "## 4. Multi-master restore",
    "",
    v.topology === "single"
      ? "This cluster had one master when the backup was taken, so this section does not apply unless masters were added since."
      : "etcd can only be restored on one member; the cluster goes down to that one master and grows back afterwards.",
    "",
    "1. Turn on high availability explicitly (global parameter `highAvailability`), so that components do not",
    "   drop to one replica (and lose, for example, a Prometheus replica with its volume) while there is one master:",
    "",
    sh("d8 k edit mc global      # under spec.settings set: highAvailability: true"),
    "2. Switch the cluster to a single master: for a cloud cluster lower the master count following Deckhouse's",
    "   instructions; for static masters, remove all but one of them from the cluster.",
    "3. On the master that stays, restore as in section 3.",
    "4. Once etcd runs again, delete the Node objects of the masters removed in step 2.",
    "5. Restart all nodes of the cluster.",
    "6. Wait until the Deckhouse queue is empty:",
    "",
    sh("d8 k -n d8-system exec svc/deckhouse-leader -c deckhouse -- deckhouse-controller queue main"),
    "7. Switch the cluster back to multi-master, following Deckhouse's instructions for cloud or for static/hybrid clusters.",
    "",
  ];
  const masters = v.masters;
  if (masters.length < 2) {
    lines.push("Step 4 for each removed master:", "", sh("d8 k delete node <MASTER_NODE_NAME>"));
    return lines.join("\n");
  }
  lines.push("Steps 3 and 4 depend on which master you keep:", "");
  for (const keep of masters) {
    const others = masters.filter((m) => m !== keep);
    lines.push(
      `### Keeping \`${keep.name}\` (${keep.ip})`,
      "",
      `Step 3, on \`${keep.name}\`:`,
      "",
      sh(`./restore.sh --identity key.txt --node ${keep.name} --yes`),
      `or by hand: section 3, with the restore command for \`${keep.name}\` at its step 4.`,
      "",
      "Step 4:",
      "",
      sh(...others.map((m) => `d8 k delete node ${m.name}`)),
    );
  }
  return lines.join("\n");
}

function singleObjects(v: RestoreView): string {
  const ver = v.etcdVersion ?? "<ETCD_VERSION>";
  return [
    "## 5. Restoring single objects",
    "",
    "To get back a few objects (a deleted Deployment, a Secret) without rolling the whole cluster back: load the",
    "snapshot into a throwaway etcd, read the objects with `etcdhelper`, and create them again. Below,",
    "`snapshot.db` is the decrypted snapshot (section 1) and `<NAMESPACE>` the namespace you are after.",
    "(`etcd-vault extract` will do this without an etcd; it does not exist yet.)",
    "",
    `1. Start a pod from the cluster's own etcd image (${ver}), so versions match:`,
    "",
    sh(
      "cat <<EOF >etcd.pod.yaml",
      "apiVersion: v1",
      "kind: Pod",
      "metadata:",
      "  name: etcdrestore",
      "  namespace: default",
      "spec:",
      "  containers:",
      "  - name: etcd",
      "    image: IMAGE",
      "    imagePullPolicy: IfNotPresent",
      '    command: ["/bin/sh", "-c", "sleep 96h"]',
      "    volumeMounts:",
      "    - name: etcddir",
      "      mountPath: /default.etcd",
      "  volumes:",
      "  - name: etcddir",
      "    emptyDir: {}",
      "EOF",
      `IMG=$(d8 k -n kube-system get pod -l component=etcd -o jsonpath="{.items[0].spec.containers[*].image}")`,
      'sed -i -e "s#IMAGE#$IMG#" etcd.pod.yaml',
      "d8 k create -f etcd.pod.yaml",
    ),
    "   Recent etcd images are distroless (no `/bin/sh`). If the pod does not start, run the same steps on a",
    "   machine of your own with the binaries of section 2 (the snapshot holds every Secret: pick that machine with care).",
    "",
    "2. Copy `etcdhelper` (build it from source or take it from a prebuilt image) and the snapshot into the pod:",
    "",
    sh(
      "d8 k cp snapshot.db default/etcdrestore:/tmp/etcd-snapshot.bin",
      "d8 k cp etcdhelper default/etcdrestore:/usr/bin/etcdhelper",
    ),
    "3. Inside the pod, restore the snapshot and start etcd:",
    "",
    sh(
      "d8 k -n default exec -it etcdrestore -- sh",
      "chmod +x /usr/bin/etcdhelper",
      "etcdctl snapshot restore /tmp/etcd-snapshot.bin --data-dir /default.etcd/restored",
      "etcd --data-dir /default.etcd/restored &",
    ),
    "4. Still inside, dump the objects you need (here: everything mentioning `<NAMESPACE>`), one YAML per key:",
    "",
    sh(
      "mkdir /tmp/restored_yaml && cd /tmp/restored_yaml",
      "for o in $(etcdhelper -endpoint 127.0.0.1:2379 ls /registry/ | grep <NAMESPACE>); do",
      '  etcdhelper -endpoint 127.0.0.1:2379 get "$o" > "$(echo "$o" | sed -e "s#/registry/##g;s#/#_#g").yaml"',
      "done",
    ),
    "   `/registry/deployments/<NAMESPACE>/web` becomes `deployments_<NAMESPACE>_web.yaml`.",
    "",
    "5. Copy them to the master, strip runtime fields (`metadata.uid`, `resourceVersion`, `creationTimestamp`,",
    "   `managedFields`, `status`), and create the objects:",
    "",
    sh(
      "d8 k cp default/etcdrestore:/tmp/restored_yaml restored_yaml",
      "d8 k create -f restored_yaml/deployments_<NAMESPACE>_<NAME>.yaml",
    ),
    "6. Delete the temporary pod:",
    "",
    sh("d8 k delete -f etcd.pod.yaml"),
  ].join("\n");
}

function listMembers(v: RestoreView): string {
  const endpoints = v.masters.map((m) => `https://${hostPort(m.ip, 2379)}`).join(",") || "https://<MASTER_IP>:2379";
  const pod = "$(d8 k -n kube-system get pod -l component=etcd,tier=control-plane -o name | head -n1)";
  return [
    "## 6. Listing etcd members",
    "",
    "Option 1, `member list` (the last column says whether a member is a learner):",
    "",
    sh(
      `d8 k -n kube-system exec -ti ${pod} -- \\`,
      `  etcdctl ${PKI_FLAGS} \\`,
      "  --endpoints https://127.0.0.1:2379/ member list -w table",
    ),
    "Option 2, `endpoint status` against every master (the fifth column, `true`, marks the leader):",
    "",
    sh(
      `d8 k -n kube-system exec -ti ${pod} -- \\`,
      `  etcdctl ${PKI_FLAGS} \\`,
      `  --endpoints ${endpoints} endpoint status -w table`,
    ),
    "If the masters' addresses changed since the backup, collect them live instead:",
    "",
    sh(
      "MASTER_NODE_IPS=$(d8 k get nodes -l node-role.kubernetes.io/control-plane= \\",
      "  -o 'jsonpath={range .items[*]}{.status.addresses[?(@.type==\"InternalIP\")].address}{\"\\n\"}{end}')",
      "ENDPOINTS=$(for ip in $MASTER_NODE_IPS; do printf 'https://%s:2379,' \"$ip\"; done)",
      `d8 k -n kube-system exec -ti ${pod} -- \\`,
      `  etcdctl ${PKI_FLAGS} \\`,
      '  --endpoints "${ENDPOINTS%,}" endpoint status -w table',
    ),
  ].join("\n");
}

function forceNewCluster(v: RestoreView): string {
  const masters = v.masters;
  const stopLines = masters.length > 1
    ? masters.map((m) => `# on ${m.name}, unless it is the one you keep:\nmv /etc/kubernetes/manifests/etcd.yaml ~/etcd.yaml`)
    : ["# on every master except the one you keep:\nmv /etc/kubernetes/manifests/etcd.yaml ~/etcd.yaml"];
  return [
    "## 7. Rebuilding the etcd cluster (`--force-new-cluster`)",
    "",
    "When the etcd cluster has lost quorum for good, or to go from several masters to one. This throws away the",
    "consensus and starts a one-member cluster from the data of the chosen node: whatever it had not received is lost.",
    "",
    `1. Choose the node to rebuild from (masters: ${masters.map((m) => `\`${m.name}\``).join(", ")}). Going to one master, it is the one that stays.`,
    "2. Stop etcd on every other master by taking its manifest out of the manifests folder:",
    "",
    sh(...stopLines),
    "3. On the chosen node, add `--force-new-cluster` to the etcd command in `/etc/kubernetes/manifests/etcd.yaml`",
    "   (`spec.containers[0].command`, a line `- --force-new-cluster` after `- etcd`); kubelet restarts etcd with it:",
    "",
    sh("vi /etc/kubernetes/manifests/etcd.yaml", "grep -n -- '--force-new-cluster' /etc/kubernetes/manifests/etcd.yaml"),
    "4. Once etcd is up (section 6 shows one member), remove the flag again, or every restart forces a new cluster:",
    "",
    sh("sed -i '/--force-new-cluster/d' /etc/kubernetes/manifests/etcd.yaml"),
  ].join("\n");
}

function infiniteRestart(v: RestoreView): string {
  const tool = v.major === 3 && v.minor !== null && v.minor < 5 ? "ETCDCTL_API=3 etcdctl" : "etcdutl";
  const lines = [
    "## 8. Fixing an etcd restart loop",
    "",
    "For when `--force-new-cluster` did not help: etcd keeps restarting and its log says",
    "`panic: unexpected removal of unknown remote peer`. This happens when a master came back with an old etcd",
    "disk and a new address, with no other master around. The fix rebuilds the member from the node's own",
    "database file (`/var/lib/etcd/member/snap/db`, which has no hash trailer, hence `--skip-hash-check`).",
    "",
    `1. Get ${tool === "etcdutl" ? "etcdutl" : "etcdctl"} (section 2).`,
    "2. Make a new data directory from the local database, on the broken master:",
    "",
  ];
  for (const m of v.masters) {
    const peer = `https://${hostPort(m.ip, 2380)}`;
    lines.push(
      `On \`${m.name}\`:`,
      "",
      sh(
        `${tool} snapshot restore /var/lib/etcd/member/snap/db --name ${m.name} \\`,
        `  --initial-cluster=${m.name}=${peer} --initial-advertise-peer-urls=${peer} \\`,
        "  --skip-hash-check=true --data-dir /var/lib/etcdtest",
      ),
    );
  }
  lines.push(
    "3. Switch to it, keeping the old directory (not in `/tmp`: that is often memory-backed and the reboot below empties it):",
    "",
    sh(
      "cp -a /var/lib/etcd /var/lib/etcd-before-fix-$(date -u +%Y%m%dT%H%M%SZ)",
      "rm -rf /var/lib/etcd",
      "mv /var/lib/etcdtest /var/lib/etcd",
    ),
    "4. Remove the etcd and kube-apiserver containers, then reboot the master:",
    "",
    sh('crictl ps -a --name "^etcd|^kube-apiserver"', "crictl rm <CONTAINER-ID>   # each one listed", "reboot"),
  );
  return lines.join("\n");
}

export function hostPort(ip: string, port: number): string {
  return ip.includes(":") && !ip.startsWith("<") ? `[${ip}]:${port}` : `${ip}:${port}`;
}
