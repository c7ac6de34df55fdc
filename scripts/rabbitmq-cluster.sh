#!/usr/bin/env bash
# A local three-node RabbitMQ cluster for zc-events' fail-over tests.
#
#   scripts/rabbitmq-cluster.sh start    start zc1..zc3 on AMQP ports 5681, 5682, 5683 and join them
#   scripts/rabbitmq-cluster.sh status   print each node's state and the cluster membership
#   scripts/rabbitmq-cluster.sh stop     stop the nodes and remove everything start created
#   scripts/rabbitmq-cluster.sh kill N   kill -9 node N (1..3), as a crash would
#   scripts/rabbitmq-cluster.sh revive N start node N again (it rejoins the cluster)
#
# Nothing is shared with the broker on 5672, which keeps running: each node has its own data and
# log directories under one temporary folder, its own Erlang cookie (in a HOME of its own), its own
# config file and distribution port. The scripts in /usr/lib/rabbitmq/bin run as the caller
# (Debian's /usr/sbin wrappers switch to the rabbitmq user). The folder is recorded in
# $ZC_CLUSTER_STATE (default /tmp/zc-events-rabbitmq-cluster.path) so stop finds it.
set -euo pipefail

BIN=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
STATE=${ZC_CLUSTER_STATE:-/tmp/zc-events-rabbitmq-cluster.path}
PORTS=(5681 5682 5683)
DIST_PORTS=(25681 25682 25683)
NAMES=(zc1 zc2 zc3)

die() { echo "rabbitmq-cluster: $*" >&2; exit 1; }

base() { [[ -f $STATE ]] && cat "$STATE" || true; }

node_env() { # index -> exports the environment of node index (0-based)
  local i=$1 dir
  dir=$(base)
  [[ -n $dir ]] || die "not started (no $STATE)"
  export HOME="$dir/home"
  export RABBITMQ_NODENAME="${NAMES[$i]}@localhost"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=${PORTS[$i]}
  export RABBITMQ_DIST_PORT=${DIST_PORTS[$i]}
  export RABBITMQ_MNESIA_BASE="$dir/${NAMES[$i]}/mnesia"
  export RABBITMQ_LOG_BASE="$dir/${NAMES[$i]}/log"
  export RABBITMQ_PID_FILE="$dir/${NAMES[$i]}/pid"
  export RABBITMQ_CONFIG_FILE="$dir/${NAMES[$i]}/rabbitmq"
  export RABBITMQ_CONF_ENV_FILE="$dir/${NAMES[$i]}/rabbitmq-env.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/${NAMES[$i]}/enabled_plugins"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/${NAMES[$i]}/advanced.config"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

ctl() { # index args...
  local i=$1
  shift
  (node_env "$i" && "$BIN/rabbitmqctl" -q -n "${NAMES[$i]}@localhost" "$@")
}

start_node() { # index
  local i=$1
  (
    node_env "$i"
    mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
    "$BIN/rabbitmq-server" >"$RABBITMQ_LOG_BASE/stdout.log" 2>&1 &
    echo $! >"$(base)/${NAMES[$i]}/script.pid"
  )
}

wait_node() { # index seconds
  local i=$1
  for _ in $(seq 1 "$2"); do
    ctl "$i" await_startup >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "node ${NAMES[$i]} did not start: see $(base)/${NAMES[$i]}/log"
}

start() {
  if [[ -n $(base) ]]; then
    # A folder from a run that was killed (its nodes gone with it) must not block a new start.
    if status >/dev/null 2>&1; then
      die "already running in $(base) (run stop first)"
    fi
    echo "removing the remains of a cluster that is not running ($(base))"
    stop >/dev/null
  fi
  local dir i
  dir=$(mktemp -d /tmp/zc-events-rabbitmq-cluster.XXXXXX)
  echo "$dir" >"$STATE"
  mkdir -p "$dir/home"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$dir/home/.erlang.cookie"
  chmod 400 "$dir/home/.erlang.cookie"
  for i in 0 1 2; do
    mkdir -p "$dir/${NAMES[$i]}"
    printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "${PORTS[$i]}" \
      >"$dir/${NAMES[$i]}/rabbitmq.conf"
    printf '[].\n' >"$dir/${NAMES[$i]}/enabled_plugins"
    printf '[].\n' >"$dir/${NAMES[$i]}/advanced.config"
    : >"$dir/${NAMES[$i]}/rabbitmq-env.conf"
    start_node "$i"
  done
  for i in 0 1 2; do wait_node "$i" 60; done
  for i in 1 2; do
    ctl "$i" stop_app
    ctl "$i" join_cluster "${NAMES[0]}@localhost"
    ctl "$i" start_app
  done
  echo "cluster up in $dir: amqp://guest:guest@127.0.0.1:5681 ;5682 ;5683"
}

pid_of() { # index -> the beam pid of node index
  local f
  f="$(base)/${NAMES[$1]}/pid"
  [[ -f $f ]] && cat "$f" || true
}

kill_node() { # index
  local pid
  pid=$(pid_of "$1")
  [[ -n $pid ]] || die "node ${NAMES[$1]} has no pid file"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$(base)/${NAMES[$1]}/pid"
}

stop() {
  local dir i pid
  dir=$(base)
  if [[ -z $dir ]]; then
    echo "not running"
    return 0
  fi
  for i in 0 1 2; do
    ctl "$i" stop >/dev/null 2>&1 || true
  done
  local pids=()
  for i in 0 1 2; do
    pid=$(pid_of "$i")
    [[ -n $pid ]] && pids+=("$pid")
    pid=$(cat "$dir/${NAMES[$i]}/script.pid" 2>/dev/null || true)
    [[ -n $pid ]] && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  # The Erlang port mapper started by the first node serves the broker on 5672 too: leave it.
  case $dir in /tmp/zc-events-rabbitmq-cluster.*) rm -rf "$dir" ;; esac
  rm -f "$STATE"
  echo "cluster stopped and removed"
}

status() { # exit 0 only when all three nodes run (and are one cluster), 3 otherwise
  local i running=0
  [[ -n $(base) ]] || { echo "not running"; return 3; }
  for i in 0 1 2; do
    if ctl "$i" status >/dev/null 2>&1; then
      echo "${NAMES[$i]}@localhost amqp 127.0.0.1:${PORTS[$i]} running"
      running=$((running + 1))
    else
      echo "${NAMES[$i]}@localhost amqp 127.0.0.1:${PORTS[$i]} down"
    fi
  done
  for i in 0 1 2; do
    if ctl "$i" cluster_status --formatter json >"$(base)/cluster_status.json" 2>/dev/null; then
      python3 -c 'import json, sys; print("running nodes:", " ".join(sorted(json.load(open(sys.argv[1]))["running_nodes"])))' \
        "$(base)/cluster_status.json"
      break
    fi
  done
  [[ $running -eq 3 ]] || return 3
}

index_arg() {
  [[ ${1:-} =~ ^[123]$ ]] || die "node number must be 1, 2 or 3"
  echo $(($1 - 1))
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  kill) kill_node "$(index_arg "${2:-}")" ;;
  revive)
    i=$(index_arg "${2:-}")
    start_node "$i"
    wait_node "$i" 60
    ;;
  *) die "usage: $0 start|stop|status|kill N|revive N" ;;
esac
