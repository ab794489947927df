// restore.sh of a restore bundle: the single-node etcd restore as a careful bash script with this
// backup's facts baked in. It prints a plan and changes nothing without --yes; it never overwrites
// data (the old member/ is copied to a new timestamped folder first); it restores into a fresh
// directory because etcdctl 3.4 refuses an existing --data-dir (etcdutl 3.5 a non-empty one).
//
// Facts checked here with Debian's etcdctl 3.4.23 (`snapshot restore`):
//   - with the 32-byte SHA-256 trailer it verifies the hash, strips the trailer and restores;
//   - without it, it refuses ("snapshot missing hash but --skip-hash-check=false");
//   - a corrupted body fails the hash check ("expected sha256 …");
//   - `--data-dir` must not exist at all, not even empty;
//   - it has no --bump-revision / --mark-compacted (etcdutl ≥ 3.5.x has them; probed via --help).
// So the script checks the trailer itself (clear error before etcd is touched), hands the file to
// the tool as it is, and adds --skip-hash-check only when there is no trailer.
//
// The static part of the script is a String.raw template so backslashes stay literal; bash's own
// `${…}` expansions are written `@{…}` and converted at the end, leaving `${…}` for TS facts.

import type { Backup } from "../backup-types.js";
import { restoreView } from "./restore-view.js";

/** Single-quotes a value for bash (safe for any byte string). */
export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Values that land in comments: one printable line, whatever the record holds. */
const comment = (s: string): string => s.replace(/[^\x20-\x7e]/g, "?");

export function renderRestoreSh(backup: Backup): string {
  const v = restoreView(backup);
  const masters = v.masters.filter((m) => !m.placeholder);
  const names = masters.map((m) => shq(m.name)).join(" ");
  const ips = masters.map((m) => shq(m.ipKnown ? m.ip : "")).join(" ");
  const script = String.raw`#!/usr/bin/env bash
# restore.sh: restores etcd of cluster ${comment(backup.cluster)} from backup ${comment(backup.id)}
# (taken ${comment(backup.createdAt)}) on one master node. Written by etcd-vault for this backup only; the
# facts below come from backup.json. RESTORE.md (section 3) explains the procedure it follows.
#
#   ./restore.sh --identity key.txt          checks everything, prints the plan, changes nothing
#   ./restore.sh --identity key.txt --yes    restores
#   ./restore.sh --help                      all options
#
# Environment overrides (defaults are the layout of a Deckhouse/kubeadm master):
#   ETCD_MANIFESTS_DIR   /etc/kubernetes/manifests        kubelet's static pod folder
#   ETCD_MANIFEST        $ETCD_MANIFESTS_DIR/etcd.yaml    etcd's static pod manifest (moved away = etcd stops)
#   ETCD_DATA_DIR        /var/lib/etcd                    etcd data dir, holds member/
#   ETCD_PKI_DIR         /etc/kubernetes/pki/etcd         ca.crt + ca.key, the client cert of the health check
#   ETCD_BACKUP_PARENT   /var/lib                         where deckhouse-etcd-backup-<time>/ is created
#   ETCD_ENDPOINT        https://127.0.0.1:2379           client URL for the health check
#   ETCDUTL              etcdutl from PATH                restore tool, preferred when present
#   ETCDCTL              etcdctl from PATH                restore tool without etcdutl; health check
#   AGE                  age from PATH                    decrypts snapshot.db.age
#   RESTORE_WORK_DIR     the folder of this script        where snapshot.db is decrypted to
#   ETCD_STOP_TIMEOUT    120                              seconds to wait for etcd to stop
#   ETCD_HEALTH_TIMEOUT  300                              seconds to wait for etcd to be healthy
set -euo pipefail
umask 077

# --- facts of this backup -------------------------------------------------------------------------
CLUSTER=${shq(backup.cluster)}
BACKUP_ID=${shq(backup.id)}
BACKUP_CREATED=${shq(backup.createdAt)}
ETCD_VERSION=${shq(v.etcdVersion ?? "")}  # empty: unknown
SNAPSHOT_SHA256=${shq(backup.plaintext.sha256)}
SNAPSHOT_SIZE=${String(Math.trunc(backup.plaintext.size))}
CIPHERTEXT_SHA256=${shq(backup.ciphertext.sha256)}
MASTER_NAMES=(${names})
MASTER_IPS=(${ips})  # empty: unknown

# --- paths -------------------------------------------------------------------------------------------
ETCD_MANIFESTS_DIR="@{ETCD_MANIFESTS_DIR:-/etc/kubernetes/manifests}"
ETCD_MANIFEST="@{ETCD_MANIFEST:-$ETCD_MANIFESTS_DIR/etcd.yaml}"
ETCD_DATA_DIR="@{ETCD_DATA_DIR:-/var/lib/etcd}"
ETCD_PKI_DIR="@{ETCD_PKI_DIR:-/etc/kubernetes/pki/etcd}"
ETCD_BACKUP_PARENT="@{ETCD_BACKUP_PARENT:-/var/lib}"
ETCD_ENDPOINT="@{ETCD_ENDPOINT:-https://127.0.0.1:2379}"
ETCD_STOP_TIMEOUT="@{ETCD_STOP_TIMEOUT:-120}"
ETCD_HEALTH_TIMEOUT="@{ETCD_HEALTH_TIMEOUT:-300}"
SCRIPT_DIR="$(cd "$(dirname "@{BASH_SOURCE[0]}")" && pwd)"
RESTORE_WORK_DIR="@{RESTORE_WORK_DIR:-$SCRIPT_DIR}"
CIPHERTEXT="$SCRIPT_DIR/snapshot.db.age"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
BACKUP_DIR="$ETCD_BACKUP_PARENT/deckhouse-etcd-backup-$STAMP"
STAGING="$ETCD_DATA_DIR/.restore-$STAMP"

say() { printf '%s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<'EOF'
Usage: restore.sh (--identity FILE | --snapshot FILE) [--yes] [options]

Restores etcd on this master node from the snapshot in this bundle. Without --yes it runs
every check and prints what it would do, changing nothing.

  --identity FILE   age identity that decrypts snapshot.db.age
  --snapshot FILE   an already decrypted snapshot (instead of --identity)
  --yes             act: stop etcd, keep a copy of its data, restore, start it
  --node NAME       restore as this master (default: the one whose name is this hostname)
  --ip ADDRESS      peer address of that master (default: its InternalIP from the backup)
  --force           go on despite an etcd minor/major version mismatch, a snapshot that differs
                    from the backup record, or a missing etcd manifest
  --no-wait         do not wait for etcd to become healthy afterwards
  --allow-non-root  skip the root check (tests, unusual setups)
  --help            this text

Paths can be moved with environment variables; see the top of this script.
EOF
}

identity="" snapshot="" yes=0 force=0 wait_health=1 allow_non_root=0 node="" ip=""
while (($# > 0)); do
  case "$1" in
    --identity) identity="@{2:?--identity needs a file}"; shift 2 ;;
    --identity=*) identity="@{1#*=}"; shift ;;
    --snapshot) snapshot="@{2:?--snapshot needs a file}"; shift 2 ;;
    --snapshot=*) snapshot="@{1#*=}"; shift ;;
    --node) node="@{2:?--node needs a name}"; shift 2 ;;
    --node=*) node="@{1#*=}"; shift ;;
    --ip) ip="@{2:?--ip needs an address}"; shift 2 ;;
    --ip=*) ip="@{1#*=}"; shift ;;
    --yes) yes=1; shift ;;
    --force) force=1; shift ;;
    --no-wait) wait_health=0; shift ;;
    --allow-non-root) allow_non_root=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# --- preflight (read-only) ---------------------------------------------------------------------------
if [[ -n $identity && -n $snapshot ]]; then die "give --identity or --snapshot, not both"; fi
if [[ -z $identity && -z $snapshot ]]; then die "give --identity FILE (age key) or --snapshot FILE (decrypted); see --help"; fi
if ((allow_non_root == 0)) && [[ $(id -u) -ne 0 ]]; then die "run as root (or pass --allow-non-root)"; fi

if [[ -n $identity ]]; then
  [[ -r $identity ]] || die "cannot read identity file $identity"
  [[ -r $CIPHERTEXT ]] || die "missing $CIPHERTEXT"
  [[ -r $SCRIPT_DIR/SHA256SUMS ]] || die "missing $SCRIPT_DIR/SHA256SUMS"
  listed="$(awk '$2 == "snapshot.db.age" || $2 == "*snapshot.db.age" { print $1 }' "$SCRIPT_DIR/SHA256SUMS")"
  [[ $listed == "$CIPHERTEXT_SHA256" ]] || die "SHA256SUMS does not list the snapshot.db.age of backup $BACKUP_ID"
  AGE="@{AGE:-$(command -v age || true)}"
  [[ -n $AGE ]] || die "age is not installed (https://github.com/FiloSottile/age/releases; age 1.3+ for post-quantum keys)"
  for tool in sha256sum stat; do command -v "$tool" >/dev/null || die "$tool is missing"; done
else
  [[ -r $snapshot ]] || die "cannot read snapshot $snapshot"
fi

# Restore tool: etcdutl owns offline restores since etcd 3.5; etcdctl does it on 3.4.
ETCDUTL="@{ETCDUTL:-$(command -v etcdutl || true)}"
ETCDCTL="@{ETCDCTL:-$(command -v etcdctl || true)}"
if [[ -n $ETCDUTL && -x $ETCDUTL ]]; then RESTORE_TOOL="$ETCDUTL"
elif [[ -n $ETCDCTL && -x $ETCDCTL ]]; then RESTORE_TOOL="$ETCDCTL"
else die "neither etcdutl nor etcdctl found; RESTORE.md section 2 shows where to get them"
fi
tool_version="$(ETCDCTL_API=3 "$RESTORE_TOOL" version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true)"
if [[ -z $ETCD_VERSION ]]; then
  warn "the backup does not record its etcd version; using $RESTORE_TOOL $tool_version unchecked"
elif [[ -z $tool_version ]]; then
  ((force)) || die "cannot read the version of $RESTORE_TOOL (pass --force to use it anyway)"
  warn "cannot read the version of $RESTORE_TOOL; going on because of --force"
else
  IFS=. read -r want_major want_minor want_patch <<<"$ETCD_VERSION"
  IFS=. read -r have_major have_minor have_patch <<<"$tool_version"
  if [[ $want_major != "$have_major" || $want_minor != "$have_minor" ]]; then
    ((force)) || die "$RESTORE_TOOL is $tool_version but the backup is from etcd $ETCD_VERSION; get a $want_major.$want_minor.x tool (RESTORE.md section 2) or pass --force"
    warn "$RESTORE_TOOL is $tool_version, the backup is from etcd $ETCD_VERSION; going on because of --force"
  elif [[ $want_patch != "$have_patch" ]]; then
    warn "$RESTORE_TOOL is $tool_version, the backup is from etcd $ETCD_VERSION (patch releases differ; that is fine)"
  fi
fi

# Which master this is: --node, else the hostname; a single-master backup names its only master.
host="$(uname -n)"
NODE_NAME="" NODE_IP="" how=""
for i in "@{!MASTER_NAMES[@]}"; do
  name="@{MASTER_NAMES[$i]}"
  if [[ -n $node && $name == "$node" ]] || [[ -z $node && ( $name == "$host" || $name == "@{host%%.*}" ) ]]; then
    NODE_NAME="$name" NODE_IP="@{MASTER_IPS[$i]}" how="@{node:+--node}"
    how="@{how:-hostname}"
  fi
done
if [[ -z $NODE_NAME ]]; then
  if [[ -n $node ]]; then
    warn "--node $node is not among the masters recorded in the backup (@{MASTER_NAMES[*]:-none})"
    NODE_NAME="$node" how="--node"
  elif ((@{#MASTER_NAMES[@]} == 1)); then
    warn "this host ($host) is not @{MASTER_NAMES[0]}, the only master in the backup; restoring as @{MASTER_NAMES[0]}"
    NODE_NAME="@{MASTER_NAMES[0]}" NODE_IP="@{MASTER_IPS[0]}" how="only master"
  elif ((@{#MASTER_NAMES[@]} == 0)); then
    warn "the backup records no masters; restoring as this host ($host)"
    NODE_NAME="@{host%%.*}" how="hostname"
  else
    die "this host ($host) is none of the masters in the backup (@{MASTER_NAMES[*]}); pass --node NAME"
  fi
fi
if [[ -n $ip ]]; then NODE_IP="$ip"; fi
[[ -n $NODE_IP ]] || die "the InternalIP of $NODE_NAME is unknown; pass --ip ADDRESS"
if [[ $NODE_IP == *:* ]]; then PEER_URL="https://[$NODE_IP]:2380"; else PEER_URL="https://$NODE_IP:2380"; fi

[[ -d $ETCD_MANIFESTS_DIR ]] || die "no static pod folder at $ETCD_MANIFESTS_DIR"
if [[ ! -f $ETCD_MANIFEST ]]; then
  ((force)) || die "no etcd manifest at $ETCD_MANIFEST (pass --force to restore anyway and start etcd yourself)"
  warn "no etcd manifest at $ETCD_MANIFEST; you will have to start etcd yourself"
fi
[[ -d $ETCD_BACKUP_PARENT ]] || die "backup parent folder $ETCD_BACKUP_PARENT does not exist"
# Never reuse a folder: two runs within one second get -1, -2, … (mkdir below fails on a race).
suffix=0
while [[ -e $BACKUP_DIR ]]; do
  suffix=$((suffix + 1))
  BACKUP_DIR="$ETCD_BACKUP_PARENT/deckhouse-etcd-backup-$STAMP-$suffix"
done

# Free space, summed per filesystem: restored db + WAL next to the data, the copy of the old
# member/ in the backup folder, the decrypted snapshot in the work folder.
existing_parent() { local p="$1"; while [[ ! -e $p ]]; do p="$(dirname "$p")"; done; printf '%s\n' "$p"; }
old_member_bytes=0
if [[ -d $ETCD_DATA_DIR/member ]]; then
  old_member_bytes="$(du -sb "$ETCD_DATA_DIR/member" | cut -f1)"
fi
declare -A need_on=() path_on=()
add_need() {
  local dir dev
  dir="$(existing_parent "$1")"
  dev="$(stat -c %d "$dir")"
  need_on[$dev]=$(( @{need_on[$dev]:-0} + $2 ))
  path_on[$dev]="$dir"
}
add_need "$ETCD_DATA_DIR" $((2 * SNAPSHOT_SIZE))
add_need "$ETCD_BACKUP_PARENT" "$old_member_bytes"
if [[ -n $identity ]]; then add_need "$RESTORE_WORK_DIR" "$SNAPSHOT_SIZE"; fi
for dev in "@{!need_on[@]}"; do
  have="$(df -P -B1 "@{path_on[$dev]}" | awk 'NR == 2 { print $4 }')"
  if ((have < need_on[$dev])); then
    die "not enough space on the filesystem of @{path_on[$dev]}: need @{need_on[$dev]} bytes, have $have"
  fi
done

# Decrypted under a fresh name (never clobbering a snapshot.db of the operator's), removed on exit.
if [[ -n $identity ]]; then SNAPSHOT_FILE="$RESTORE_WORK_DIR/.snapshot-$STAMP.db"; else SNAPSHOT_FILE="$snapshot"; fi

say "etcd restore of cluster $CLUSTER from backup $BACKUP_ID (taken $BACKUP_CREATED)"
say "  this node:     $NODE_NAME, peer URL $PEER_URL (chosen by $how)"
say "  restore tool:  $RESTORE_TOOL $tool_version (backup: etcd @{ETCD_VERSION:-unknown})"
say "  snapshot:      $SNAPSHOT_SIZE bytes, sha256 $SNAPSHOT_SHA256"
if ((@{#MASTER_NAMES[@]} > 1)); then
  say "  note:          this cluster has @{#MASTER_NAMES[@]} masters; etcd comes back with $NODE_NAME as its only"
  say "                 member. Follow RESTORE.md section 4 for the other masters."
fi
say "Plan:"
step=0
plan() { step=$((step + 1)); say "  $step. $*"; }
if [[ -n $identity ]]; then
  plan "check snapshot.db.age against SHA256SUMS"
  plan "decrypt it with $identity to $SNAPSHOT_FILE"
fi
plan "check the snapshot's size, SHA-256 and etcd hash trailer"
if [[ -f $ETCD_MANIFEST ]]; then
  plan "stop etcd: move $ETCD_MANIFEST to $BACKUP_DIR/etcd.yaml and wait up to @{ETCD_STOP_TIMEOUT}s"
fi
if [[ -d $ETCD_DATA_DIR/member ]]; then
  plan "copy $ETCD_DATA_DIR/member to $BACKUP_DIR/member"
fi
plan "restore the snapshot into $STAGING as member $NODE_NAME"
plan "put the restored member/ in place of $ETCD_DATA_DIR/member"
if [[ -f $ETCD_MANIFEST ]]; then
  plan "put the manifest back at $ETCD_MANIFEST (kubelet starts etcd)"
  if ((wait_health)); then plan "wait up to @{ETCD_HEALTH_TIMEOUT}s until $ETCD_ENDPOINT is healthy"; fi
fi

if ((yes == 0)); then
  say ""
  say "Nothing was changed. Run again with --yes to do this."
  exit 0
fi

# --- acting ---------------------------------------------------------------------------------------------
stage="checks"
decrypted=""
manifest_moved=0
on_exit() {
  local rc=$?
  if [[ -n $decrypted ]]; then rm -f "$decrypted" "$decrypted.partial"; fi
  ((rc == 0)) && return 0
  case "$stage" in
    checks) say "Nothing on this node was changed." >&2 ;;
    stopped | copied | restoring)
      say "etcd is stopped, its data is untouched (a copy may be in $BACKUP_DIR/member)." >&2
      if ((manifest_moved)); then say "To start it as it was: mv '$BACKUP_DIR/etcd.yaml' '$ETCD_MANIFEST'" >&2; fi ;;
    swapping | swapped)
      say "The data in $ETCD_DATA_DIR may be half replaced; the old member/ is in $BACKUP_DIR/member." >&2
      if ((manifest_moved)); then say "The etcd manifest is in $BACKUP_DIR/etcd.yaml." >&2; fi ;;
    started) say "etcd was restored and its manifest is back, but it did not report healthy in time." >&2 ;;
  esac
  return "$rc"
}
trap on_exit EXIT

if [[ -n $identity ]]; then
  say "==> checking snapshot.db.age against SHA256SUMS"
  (cd "$SCRIPT_DIR" && sha256sum -c SHA256SUMS) || die "snapshot.db.age does not match SHA256SUMS: the download is corrupt"
  say "==> decrypting to $SNAPSHOT_FILE"
  decrypted="$SNAPSHOT_FILE"
  rm -f "$SNAPSHOT_FILE.partial"
  "$AGE" -d -i "$identity" -o "$SNAPSHOT_FILE.partial" "$CIPHERTEXT" || die "age could not decrypt snapshot.db.age with $identity (wrong key?)"
  mv -f "$SNAPSHOT_FILE.partial" "$SNAPSHOT_FILE"
fi

say "==> checking the snapshot"
size="$(stat -c %s "$SNAPSHOT_FILE")"
sum="$(sha256sum "$SNAPSHOT_FILE" | cut -d ' ' -f 1)"
if [[ $size != "$SNAPSHOT_SIZE" || $sum != "$SNAPSHOT_SHA256" ]]; then
  ((force)) || die "snapshot is $size bytes with sha256 $sum; the backup record says $SNAPSHOT_SIZE bytes, $SNAPSHOT_SHA256"
  warn "snapshot differs from the backup record; going on because of --force"
fi
# etcd's snapshot stream ends with the SHA-256 of everything before it; it is there when
# size % 512 == 32 (bbolt files are whole pages). The restore tool checks and strips it again.
skip_hash=0
if ((size % 512 == 32)); then
  want="$(tail -c 32 "$SNAPSHOT_FILE" | od -An -v -tx1 | tr -d ' \n')"
  got="$(head -c $((size - 32)) "$SNAPSHOT_FILE" | sha256sum | cut -d ' ' -f 1)"
  [[ $want == "$got" ]] || die "the snapshot's etcd hash trailer does not match its content: corrupt snapshot"
  say "    size, sha256 and etcd hash trailer OK"
else
  warn "the snapshot has no etcd hash trailer; restoring with --skip-hash-check"
  skip_hash=1
fi

if [[ -f $ETCD_MANIFEST ]]; then
  say "==> stopping etcd"
  mkdir -m 0700 "$BACKUP_DIR"
  stage="stopped"
  mv "$ETCD_MANIFEST" "$BACKUP_DIR/etcd.yaml"
  manifest_moved=1
else
  mkdir -m 0700 "$BACKUP_DIR"
  stage="stopped"
fi
etcd_running() {
  if command -v crictl >/dev/null 2>&1 && [[ -n "$(crictl ps -q --name '^etcd$' 2>/dev/null || true)" ]]; then return 0; fi
  # bbolt holds an exclusive flock on the database for as long as etcd has it open.
  local db="$ETCD_DATA_DIR/member/snap/db"
  if [[ -f $db ]] && command -v flock >/dev/null 2>&1 && ! flock -n -x "$db" true; then return 0; fi
  return 1
}
waited=0
while etcd_running; do
  ((waited < ETCD_STOP_TIMEOUT)) || die "etcd is still running after @{ETCD_STOP_TIMEOUT}s"
  sleep 2
  waited=$((waited + 2))
done

if [[ -d $ETCD_DATA_DIR/member ]]; then
  say "==> copying $ETCD_DATA_DIR/member to $BACKUP_DIR/member"
  cp -a "$ETCD_DATA_DIR/member" "$BACKUP_DIR/member"
fi
stage="copied"

say "==> restoring into $STAGING"
stage="restoring"
mkdir -p "$ETCD_DATA_DIR"
args=(snapshot restore "$SNAPSHOT_FILE" --name "$NODE_NAME" --initial-cluster "$NODE_NAME=$PEER_URL"
  --initial-advertise-peer-urls "$PEER_URL" --data-dir "$STAGING")
if ((skip_hash)); then args+=(--skip-hash-check); fi
# Newer etcdutl can move revisions past everything clients have seen (kube-apiserver watch caches);
# read --help into a variable first: grep -q on a pipe would SIGPIPE the tool under pipefail.
restore_help="$(ETCDCTL_API=3 "$RESTORE_TOOL" snapshot restore --help 2>&1 || true)"
if [[ $restore_help == *--bump-revision* && $restore_help == *--mark-compacted* ]]; then
  args+=(--bump-revision 1000000000 --mark-compacted)
fi
ETCDCTL_API=3 "$RESTORE_TOOL" "@{args[@]}"
[[ -d $STAGING/member ]] || die "$RESTORE_TOOL did not create $STAGING/member"

say "==> putting the restored member in place"
stage="swapping"
if [[ -d $ETCD_DATA_DIR/member ]]; then mv "$ETCD_DATA_DIR/member" "$ETCD_DATA_DIR/.replaced-member-$STAMP"; fi
mv "$STAGING/member" "$ETCD_DATA_DIR/member"
rmdir "$STAGING"
rm -rf "$ETCD_DATA_DIR/.replaced-member-$STAMP"
stage="swapped"

if ((manifest_moved)); then
  say "==> starting etcd"
  # Write under a dot name first: kubelet ignores hidden files, so it never sees a half-copied manifest.
  manifest_tmp="$(dirname "$ETCD_MANIFEST")/.etcd.yaml.$STAMP"
  cp -p "$BACKUP_DIR/etcd.yaml" "$manifest_tmp"
  mv "$manifest_tmp" "$ETCD_MANIFEST"
  stage="started"
  if ((wait_health)); then
    if [[ -z $ETCDCTL || ! -x $ETCDCTL ]]; then
      warn "no etcdctl to check health with; watch 'crictl ps --name etcd' instead"
    else
      tls=()
      if [[ $ETCD_ENDPOINT == https://* ]]; then
        tls=(--cacert "$ETCD_PKI_DIR/ca.crt" --cert "$ETCD_PKI_DIR/ca.crt" --key "$ETCD_PKI_DIR/ca.key")
      fi
      say "==> waiting for $ETCD_ENDPOINT to be healthy"
      waited=0
      until ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ETCD_ENDPOINT" @{tls[@]+"@{tls[@]}"} --command-timeout 5s endpoint health >/dev/null 2>&1; do
        ((waited < ETCD_HEALTH_TIMEOUT)) || die "etcd did not become healthy within @{ETCD_HEALTH_TIMEOUT}s; check 'crictl ps -a --name etcd' and its logs"
        sleep 3
        waited=$((waited + 3))
      done
      say "    etcd is healthy"
    fi
  fi
fi
stage="done"

say ""
say "Restored etcd on $NODE_NAME from backup $BACKUP_ID."
say "The previous data and manifest are in $BACKUP_DIR."
if ((@{#MASTER_NAMES[@]} > 1)); then
  say "Next (RESTORE.md section 4): delete the Node objects of the removed masters, restart all nodes,"
  say "wait for the Deckhouse queue, then grow back to multi-master."
fi
`;
  return script.replaceAll("@{", "${");
}
