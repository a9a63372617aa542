#!/usr/bin/env bash
# Runs CMD as if the entra-emulator were Microsoft Entra ID, Microsoft Graph and Azure Resource Manager:
#
#   hack/as-azure.sh [--env FILE | --emulator https://127.0.0.1:PORT --ca CA_FILE] [--forward PORT]... -- CMD [ARG]...
#
# CMD runs in a network and mount namespace of its own (unshare; root needed), which has a loopback
# interface and nothing else, in which
#   - login.microsoftonline.com, graph.microsoft.com and management.azure.com resolve to 127.0.0.1
#     (a bind-mounted /etc/hosts), and port 443 there is the emulator, as is the emulator's own
#     127.0.0.1:PORT (its discovery documents name it);
#   - the emulator's CA is trusted: a bind-mounted system CA bundle with the CA added, and SSL_CERT_FILE,
#     REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS pointing at it (as Go/OpenSSL, requests and Node read them);
#   - each --forward PORT makes the caller's 127.0.0.1:PORT reachable at the same address (e.g. the
#     kube-apiserver, for an operator run this way).
# The traffic crosses the namespaces only through Unix sockets in a private temporary directory
# (hack/as-azure/forward.py); nothing listens on any address but loopback. The emulator must serve a
# certificate for the three names: start it with --hostname login.microsoftonline.com --hostname
# graph.microsoft.com --hostname management.azure.com (make demo does). FILE defaults to .demo/emulator.env
# (make demo's), from which AZURE_AUTHORITY_HOST and CA_FILE are read, and nothing else.
# CMD's exit status is the script's; every helper process is stopped by PID on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
env_file="$here/../.demo/emulator.env" emulator="" ca="" forwards=()
while [ $# -gt 0 ]; do
  case "$1" in
    --env) env_file="$2"; shift 2 ;;
    --emulator) emulator="$2"; shift 2 ;;
    --ca) ca="$2"; shift 2 ;;
    --forward) forwards+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "as-azure: unknown option $1 (usage: see the top of $0)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "as-azure: no command (usage: $0 [--env FILE] [--forward PORT]... -- CMD ...)" >&2; exit 2; }
if [ -z "$emulator" ]; then
  [ -f "$env_file" ] || { echo "as-azure: no $env_file (run DEMO_KEEP=1 make demo, or pass --emulator and --ca)" >&2; exit 2; }
  emulator="$(sed -n 's/^AZURE_AUTHORITY_HOST=//p' "$env_file" | tr -d "'\"")"
  ca="$(sed -n 's/^CA_FILE=//p' "$env_file" | tr -d "'\"")"
fi
hostport="${emulator#https://}"; hostport="${hostport%%/*}"
emu_host="${hostport%:*}" emu_port="${hostport##*:}"
case "$emu_host" in 127.*) ;; *) echo "as-azure: the emulator must be on a loopback address, not $emu_host" >&2; exit 2 ;; esac
[ -f "$ca" ] || { echo "as-azure: no CA file '$ca'" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "as-azure: needs root (unshare --net --mount)" >&2; exit 2; }
command -v unshare >/dev/null && command -v ip >/dev/null || { echo "as-azure: needs unshare (util-linux) and ip (iproute2)" >&2; exit 2; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/as-azure.XXXXXXXX")"   # 0700, removed on exit
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

system_bundle=/etc/ssl/certs/ca-certificates.crt
{ [ -f "$system_bundle" ] && cat "$system_bundle"; cat "$ca"; } >"$dir/ca-bundle.crt"
cp "$ca" "$dir/emulator-ca.pem"
cat >"$dir/hosts" <<HOSTS
127.0.0.1 localhost
::1 localhost
127.0.0.1 login.microsoftonline.com graph.microsoft.com management.azure.com
HOSTS

# The outside halves: one Unix socket per target.
ready=()
start_outside() { # SOCK HOST:PORT
  python3 "$here/as-azure/forward.py" outside "$1" "$2" >"$1.ready" &
  pids+=($!) ready+=("$1.ready")
}
start_outside "$dir/emulator.sock" "$emu_host:$emu_port"
inside=("127.0.0.1:443=$dir/emulator.sock" "$emu_host:$emu_port=$dir/emulator.sock")
for p in "${forwards[@]}"; do
  start_outside "$dir/fwd-$p.sock" "127.0.0.1:$p"
  inside+=("127.0.0.1:$p=$dir/fwd-$p.sock")
done
for f in "${ready[@]}"; do
  for _ in $(seq 100); do grep -q ready "$f" 2>/dev/null && break; sleep 0.05; done
  grep -q ready "$f" || { echo "as-azure: a forwarder did not start" >&2; exit 1; }
done

# The inside: loopback up, the hosts file and CA bundle bind-mounted (this mount namespace only, private
# propagation), the inside forwarder, then CMD with the CA variables.
set +e
unshare --net --mount --propagation private --fork -- bash -c '
  set -euo pipefail
  dir="$1"; shift; forward="$1"; shift
  n="$1"; shift; inside=("${@:1:$n}"); shift "$n"
  ip link set lo up
  mount --bind "$dir/hosts" /etc/hosts
  [ -f /etc/ssl/certs/ca-certificates.crt ] && mount --bind "$dir/ca-bundle.crt" /etc/ssl/certs/ca-certificates.crt
  python3 "$forward" inside "${inside[@]}" >"$dir/inside.ready" &
  fwd=$!
  trap "kill $fwd 2>/dev/null || true" EXIT
  for _ in $(seq 100); do grep -q ready "$dir/inside.ready" 2>/dev/null && break; sleep 0.05; done
  grep -q ready "$dir/inside.ready" || { echo "as-azure: the inside forwarder did not start" >&2; exit 1; }
  export SSL_CERT_FILE="$dir/ca-bundle.crt" REQUESTS_CA_BUNDLE="$dir/ca-bundle.crt" NODE_EXTRA_CA_CERTS="$dir/emulator-ca.pem"
  "$@"
' as-azure "$dir" "$here/as-azure/forward.py" "${#inside[@]}" "${inside[@]}" "$@"
rc=$?
exit $rc
