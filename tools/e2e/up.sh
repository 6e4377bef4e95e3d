#!/usr/bin/env bash
# Starts the local control plane of the e2e tier on loopback ports only (make e2e-up).
#
# Builds what is missing (tools/e2e/cluster.sh), then starts etcd, kube-apiserver (Pod Security
# admission on, service-account signing key and serving certificates made here with openssl),
# kube-controller-manager, kube-scheduler, kwok with fake nodes (CPU, GPU and three tainted edge
# nodes), a Prometheus (the Debian package's binary, on PATH) and the Argo Rollouts controller,
# installs the CRDs and writes .e2e/env. State lives in .e2e/run/ of the work tree; every pid is
# recorded in .e2e/run/pids/ so that tools/e2e/down.sh stops exactly these processes.
#
# Environment: MLPLANE_E2E_CACHE (build cache), E2E_CPU_NODES (default 2), E2E_GPU_NODES
# (default 1), E2E_START_TIMEOUT (seconds per component, default 120).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE="$ROOT/.e2e"
RUN="$STATE/run"
CPU_NODES=${E2E_CPU_NODES:-2}
GPU_NODES=${E2E_GPU_NODES:-1}
TIMEOUT=${E2E_START_TIMEOUT:-120}

die() { echo "up.sh: error: $*" >&2; exit 1; }
log() { echo "up.sh: $*" >&2; }

for tool in kubectl openssl python3 curl; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
# Prometheus answers the Argo Rollouts controller's analyses (tests/e2e/test_rollout_analysis.py).
# It is the Debian package's binary, which `make judges` installs as root beside promtool;
# without it the cluster starts without Prometheus and that test skips, except under CI=true
# (as tools/install-judges.sh reads it), where a missing judge fails the run.
PROMETHEUS_BIN=$(command -v prometheus || true)
if [ -z "$PROMETHEUS_BIN" ]; then
  [[ ! ${CI:-} =~ ^([Tt]rue|TRUE|1|yes)$ ]] || die "prometheus is not on PATH (make judges installs it as root)"
  log "prometheus is not on PATH: the cluster starts without it (make judges installs it as root)"
fi

if [ -d "$RUN/pids" ] && compgen -G "$RUN/pids/*.pid" >/dev/null; then
  for f in "$RUN"/pids/*.pid; do
    if kill -0 "$(cat "$f")" 2>/dev/null; then
      echo "up.sh: error: a cluster is already running from $RUN (pid $(cat "$f") of" \
           "$(basename "$f" .pid)); run 'make e2e-down' first" >&2
      exit 3  # run.sh must not stop a cluster that it did not start
    fi
  done
  log "removing the state of a previous run whose processes are gone"
fi
rm -rf "$RUN"

T0=$(date +%s)
bash "$HERE/cluster.sh" build
OUT=$(bash "$HERE/cluster.sh" dir)
BIN="$OUT/bin"
CRDS="$OUT/crds"
T_BUILT=$(date +%s)

mkdir -p "$RUN"/{pki,logs,pids,etcd}
chmod 700 "$RUN"

# If anything below fails, stop what was started so that no process is left behind.
trap 'rc=$?; if [ $rc -ne 0 ]; then log "start-up failed: stopping what was started (logs were in $RUN/logs)";
      tail -n 20 "$RUN"/logs/*.log >&2 2>/dev/null || true; bash "$HERE/down.sh" --keep-logs >&2 || true; fi' EXIT

# --- ports: free loopback ports, chosen now ------------------------------------------------
read -r P_ETCD P_ETCD_PEER P_API P_KCM P_SCHED P_KWOK P_RO_METRICS P_RO_HEALTHZ P_PROM < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(9):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)
cat >"$RUN/ports" <<EOF
etcd=$P_ETCD
etcd-peer=$P_ETCD_PEER
kube-apiserver=$P_API
kube-controller-manager=$P_KCM
kube-scheduler=$P_SCHED
kwok=$P_KWOK
rollouts-controller-metrics=$P_RO_METRICS
rollouts-controller-healthz=$P_RO_HEALTHZ
prometheus=$P_PROM
EOF

# --- PKI: a throwaway CA, the API server's serving cert, an admin client cert, the SA key ---
PKI="$RUN/pki"
(
  cd "$PKI"
  umask 077
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
    -subj "/CN=mlplane-e2e-ca" 2>/dev/null
  cat >apiserver.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
  cat >client.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
    -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile apiserver.ext -out apiserver.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
    -subj "/O=system:masters/CN=mlplane-e2e-admin" 2>/dev/null
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile client.ext -out admin.crt 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
) || die "openssl could not make the certificates"

KUBECONFIG_FILE="$STATE/kubeconfig"
b64() { base64 -w0 <"$1"; }
cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mlplane-e2e
  cluster:
    server: https://127.0.0.1:$P_API
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: mlplane-e2e-admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
contexts:
- name: mlplane-e2e
  context: {cluster: mlplane-e2e, user: mlplane-e2e-admin}
current-context: mlplane-e2e
EOF
chmod 600 "$KUBECONFIG_FILE"
export KUBECONFIG="$KUBECONFIG_FILE"

# --- process helpers -------------------------------------------------------------------------
start() {   # start NAME BINARY ARGS...: in its own session, output to logs/NAME.log, pid recorded
  local name=$1; shift
  local pid exe
  setsid "$@" >"$RUN/logs/$name.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$RUN/pids/$name.pid"
  # setsid execs in place here (a background job is no group leader): the pid is the binary's.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    [ "$(basename "$exe")" = "$(basename "$1")" ] && break
    sleep 0.1
  done
  [ "$(basename "$exe")" = "$(basename "$1")" ] || die "$name: pid $pid is not $1 (exe: ${exe:-gone}); log: $(tail -n 5 "$RUN/logs/$name.log")"
  log "started $name (pid $pid)"
}

wait_for() {   # wait_for NAME DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local name=$1 what=$2 deadline=$(( $(date +%s) + TIMEOUT )); shift 2
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$RUN/pids/$name.pid")" 2>/dev/null; then
      die "$name exited before $what; its log ($RUN/logs/$name.log) ends with:
$(tail -n 30 "$RUN/logs/$name.log")"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "$name: no $what after ${TIMEOUT}s (log: $RUN/logs/$name.log)"
    sleep 0.5
  done
  log "$name: $what"
}

# --- etcd ------------------------------------------------------------------------------------
start etcd "$BIN/etcd" --name e2e --data-dir "$RUN/etcd" \
  --listen-client-urls "http://127.0.0.1:$P_ETCD" --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
  --listen-peer-urls "http://127.0.0.1:$P_ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_ETCD_PEER" \
  --initial-cluster "e2e=http://127.0.0.1:$P_ETCD_PEER" \
  --auto-compaction-retention=1 --quota-backend-bytes=2147483648 --unsafe-no-fsync
wait_for etcd "healthy" curl -fsS "http://127.0.0.1:$P_ETCD/health"

# --- kube-apiserver --------------------------------------------------------------------------
cat >"$RUN/admission.yaml" <<'EOF'
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    # The upstream defaults: namespaces choose their level with the pod-security.kubernetes.io
    # labels (the generated namespaces enforce "restricted").
    defaults: {enforce: privileged, enforce-version: latest, audit: privileged, audit-version: latest, warn: privileged, warn-version: latest}
    exemptions: {usernames: [], runtimeClasses: [], namespaces: []}
EOF
start kube-apiserver "$BIN/kube-apiserver" \
  --bind-address=127.0.0.1 --secure-port="$P_API" \
  --etcd-servers="http://127.0.0.1:$P_ETCD" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --requestheader-client-ca-file="$PKI/ca.crt" --requestheader-allowed-names=mlplane-e2e-admin \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/admin.crt" --proxy-client-key-file="$PKI/admin.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,DefaultStorageClass,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
  --admission-control-config-file="$RUN/admission.yaml" \
  --allow-privileged=false --profiling=false --enable-priority-and-fairness=false \
  --endpoint-reconciler-type=none
wait_for kube-apiserver "/readyz ok" kubectl get --raw /readyz

# --- controller manager and scheduler ------------------------------------------------------
start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$KUBECONFIG_FILE" --authentication-kubeconfig="$KUBECONFIG_FILE" \
  --authorization-kubeconfig="$KUBECONFIG_FILE" \
  --bind-address=127.0.0.1 --secure-port="$P_KCM" --leader-elect=false \
  --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
  --use-service-account-credentials=true --service-cluster-ip-range=10.96.0.0/16 \
  --kube-api-qps=100 --kube-api-burst=200 --profiling=false
start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$KUBECONFIG_FILE" --authentication-kubeconfig="$KUBECONFIG_FILE" \
  --authorization-kubeconfig="$KUBECONFIG_FILE" \
  --bind-address=127.0.0.1 --secure-port="$P_SCHED" --leader-elect=false --profiling=false
wait_for kube-controller-manager "default service account" kubectl -n default get serviceaccount default

# --- kwok and its fake nodes -------------------------------------------------------------------
start kwok "$BIN/kwok" --kubeconfig="$KUBECONFIG_FILE" --config="$OUT/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --server-address="127.0.0.1:$P_KWOK" --node-ip=127.0.0.1 --node-port="$P_KWOK" \
  --cidr=10.244.0.0/16 --node-lease-duration-seconds=40 \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key"

node_yaml() {   # node_yaml NAME GPUS
  local gpu_labels="" gpu_taint="" gpu_capacity=""
  if [ "$2" -gt 0 ]; then
    gpu_labels='    nvidia.com/gpu.present: "true"'
    gpu_taint='  taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]'
    gpu_capacity="    nvidia.com/gpu: \"$2\""
  fi
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $1
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
$gpu_labels
spec:
$gpu_taint
status:
  allocatable: &capacity
    cpu: "64"
    memory: 512Gi
    pods: "110"
    ephemeral-storage: 1Ti
$gpu_capacity
  capacity: *capacity
EOF
}
# Edge nodes (the edge profile, targets/kubernetes/edge.py): labelled as edge nodes of one site
# each, with the residency of the site's data, and tainted so that no other pod lands there.
# Two EU sites and one US site: a model reading EU data runs on exactly the first two.
edge_node_yaml() {   # edge_node_yaml NAME SITE RESIDENCY
  node_yaml "$1" 0 | awk -v site="$2" -v residency="$3" '{ print }
    /^    type: kwok$/ { print "    node-role.kubernetes.io/edge: \"\""
                         print "    topology.kubernetes.io/zone: " site
                         print "    mlplane.dev/residency: " residency }
    /^spec:$/ { print "  taints: [{key: node-role.kubernetes.io/edge, value: \"true\", effect: NoSchedule}]" }'
}
{
  for i in $(seq 0 $((CPU_NODES - 1))); do node_yaml "kwok-cpu-$i" 0; done
  for i in $(seq 0 $((GPU_NODES - 1))); do node_yaml "kwok-gpu-$i" 8; done
  edge_node_yaml kwok-edge-0 store-eu-0001 eu
  edge_node_yaml kwok-edge-1 store-eu-0002 eu
  edge_node_yaml kwok-edge-2 store-us-0101 us
} | sed '/^$/d' >"$RUN/nodes.yaml"
kubectl apply -f "$RUN/nodes.yaml" >/dev/null
wait_for kwok "nodes Ready" kubectl wait --for=condition=Ready node --all --timeout=5s

# --- CRDs (server-side: several are too large for the last-applied annotation) --------------
kubectl apply --server-side --force-conflicts --field-manager=mlplane-e2e \
  -f "$CRDS/argo-rollouts" -f "$CRDS/prometheus-operator" -f "$CRDS/external-secrets" >/dev/null \
  || die "installing the CRDs failed"
kubectl wait --for=condition=Established crd --all --timeout="${TIMEOUT}s" >/dev/null \
  || die "the CRDs were not established"
log "CRDs established: $(kubectl get crd -o name | wc -l)"

# --- Prometheus, for the canary analyses --------------------------------------------------------
# The analyses query http://prometheus-operated.<monitoring namespace>.svc:9090, a name only a
# cluster's DNS resolves. The controller runs on this machine, so it reaches that address through
# HTTP_PROXY set to this Prometheus: Go's HTTP server answers a request in proxy form
# (GET http://host/path) by its path, and Go clients never proxy loopback addresses, so the
# controller's calls to the API server go direct. Nothing runs in kwok's pods, so nothing is
# scraped from them: a test serves the series itself and lists its endpoint in a file of
# $RUN/prometheus/targets/ (file discovery, read again when a file changes), scraped every second.
PROXY=""
if [ -n "$PROMETHEUS_BIN" ]; then
  mkdir -p "$RUN/prometheus/targets" "$RUN/prometheus/data"
  cat >"$RUN/prometheus/prometheus.yml" <<PROM
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: e2e-tests
    honor_labels: true
    file_sd_configs: [{files: ["$RUN/prometheus/targets/*.json"]}]
PROM
  start prometheus "$PROMETHEUS_BIN" --config.file="$RUN/prometheus/prometheus.yml" \
    --storage.tsdb.path="$RUN/prometheus/data" --storage.tsdb.retention.time=6h \
    --web.listen-address="127.0.0.1:$P_PROM" --log.level=warn
  wait_for prometheus "ready" curl -fsS "http://127.0.0.1:$P_PROM/-/ready"
  PROXY="http://127.0.0.1:$P_PROM"
fi

# --- Argo Rollouts controller (after its CRDs) -------------------------------------------------
# The assignments hold for the processes that start runs (bash exports a function's prefix
# assignments to its children), not for this script.
HTTP_PROXY=$PROXY http_proxy=$PROXY \
  start rollouts-controller "$BIN/rollouts-controller" --kubeconfig="$KUBECONFIG_FILE" \
  --leader-elect=false --metricsPort="$P_RO_METRICS" --healthzPort="$P_RO_HEALTHZ" --loglevel=warn
wait_for rollouts-controller "healthz ok" curl -fsS "http://127.0.0.1:$P_RO_HEALTHZ/healthz"

# --- .e2e/env --------------------------------------------------------------------------------
# The engine (tools/e2e/engine.sh) is built into its own cache directory; its bin dir goes on
# PATH first when that script exists and reports it.
ENGINE_BIN=""
if [ -f "$HERE/engine.sh" ]; then
  ENGINE_BIN=$(bash "$HERE/engine.sh" --bin-dir 2>/dev/null || true)
fi
q() { printf '%q' "$1"; }
{
  echo "# Written by tools/e2e/up.sh: source it to talk to the e2e cluster and the local engine."
  echo "export KUBECONFIG=$(q "$KUBECONFIG_FILE")"
  echo "export MLPLANE_E2E_CLUSTER_BIN=$(q "$BIN")"
  echo "export MLPLANE_E2E_CRDS=$(q "$CRDS")"
  echo "export MLPLANE_E2E_ENGINE_BIN=$(q "$ENGINE_BIN")"
  echo "export PATH=$(q "${ENGINE_BIN:+$ENGINE_BIN:}$BIN"):\$PATH"
  echo "export PULUMI_HOME=$(q "$STATE/pulumi-home")"
  echo "export PULUMI_BACKEND_URL=$(q "file://$STATE/pulumi-state")"
  echo "export PULUMI_CONFIG_PASSPHRASE=mlplane-e2e"
  echo "export PULUMI_SKIP_UPDATE_CHECK=true"
  echo "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
  if [ -n "$PROMETHEUS_BIN" ]; then
    echo "export MLPLANE_E2E_PROMETHEUS=$(q "http://127.0.0.1:$P_PROM")"
    echo "export MLPLANE_E2E_PROMETHEUS_TARGETS=$(q "$RUN/prometheus/targets")"
  fi
} >"$STATE/env"
mkdir -p "$STATE/pulumi-home" "$STATE/pulumi-state"

T_UP=$(date +%s)
trap - EXIT
log "cluster up: https://127.0.0.1:$P_API, $(kubectl get nodes --no-headers | wc -l) kwok nodes Ready"
log "build/check $((T_BUILT - T0))s, start-up $((T_UP - T_BUILT))s; 'source .e2e/env' to use it"
echo "$((T_UP - T_BUILT))" >"$RUN/startup-seconds"
