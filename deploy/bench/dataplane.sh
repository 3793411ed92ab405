#!/usr/bin/env bash
# Data plane benchmark: requests/s and p50/p99 latency of Abacus's assign,
# OFREP and record endpoints, of its roles split, of a bare Echo floor and
# of other OFREP servers, measured side by side in one run on this machine.
#
#   deploy/bench/dataplane.sh            (or: make bench-dataplane)
#
# Each benchmark is `wrk -t$THREADS -c$CONNS -d$DURATION --latency` with
# deploy/bench/dataplane.lua (a new user per request, or a pool of
# $USER_POOL users). The benchmarks run in $ROUNDS alternating rounds (each
# round starts one benchmark later in the list), after a warm-up, and the
# script prints a markdown table (every round, the medians) and the ratios.
#
# Everything listens on 127.0.0.1 and is started and stopped by this script,
# in a temporary directory; wrk sends traffic to loopback only and every run
# is bounded by $DURATION.
#
# Environment (all optional):
#   ROUNDS=3 DURATION=10s WARMUP=2s THREADS=2 CONNS=32 USER_POOL=1000
#   PORT_BASE=18400        loopback ports PORT_BASE .. PORT_BASE+19
#   ABACUS_BIN             a prebuilt abacus binary (default: built from this tree)
#   NATS_SERVER_BIN        nats-server for the api role against an external NATS
#                          (default: nats-server on PATH; skipped when absent)
#   GOFF_RELAY_PROXY_BIN   a prebuilt GO Feature Flag relay proxy (skipped when unset)
#   FLAGD_BIN              a prebuilt flagd (skipped when unset)
#   BENCH_ONLY             extended regex: run only the benchmarks whose name matches
#   PPROF_DIR              write a CPU profile of abacus (all roles) under assign load there
#   CLICKHOUSE_URL         default: a scratch database abacus_bench_<pid> on
#                          127.0.0.1:$CLICKHOUSE_TCP_PORT, dropped at the end; when the
#                          local ClickHouse does not answer, the script starts it with
#                          deploy/local/clickhouse.sh and stops it at the end
#   CLICKHOUSE_TCP_PORT=9000 CLICKHOUSE_HTTP_PORT=8123
#
# A peer binary must listen on loopback only: the script checks each server's
# listening sockets and skips a server that listens on any other address.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LUA="$ROOT/deploy/bench/dataplane.lua"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
USER_POOL=${USER_POOL:-1000}
PORT_BASE=${PORT_BASE:-18400}
BENCH_ONLY=${BENCH_ONLY:-}
PPROF_DIR=${PPROF_DIR:-}
CLICKHOUSE_TCP_PORT=${CLICKHOUSE_TCP_PORT:-9000}
CLICKHOUSE_HTTP_PORT=${CLICKHOUSE_HTTP_PORT:-8123}
BENCH_DB=
if [[ -z ${CLICKHOUSE_URL:-} ]]; then
	BENCH_DB=abacus_bench_$$ # a scratch database, dropped at the end
	CLICKHOUSE_URL=clickhouse://127.0.0.1:$CLICKHOUSE_TCP_PORT/$BENCH_DB
fi
NATS_SERVER_BIN=${NATS_SERVER_BIN:-$(command -v nats-server || true)}
GOFF_RELAY_PROXY_BIN=${GOFF_RELAY_PROXY_BIN:-}
FLAGD_BIN=${FLAGD_BIN:-}
export CLICKHOUSE_TCP_PORT CLICKHOUSE_HTTP_PORT

H=127.0.0.1
P_ALL=$((PORT_BASE + 0))      # abacus serve (all roles, embedded NATS)
P_API=$((PORT_BASE + 1))      # abacus serve --target=api, external NATS
P_APIE=$((PORT_BASE + 2))     # abacus serve --target=api, embedded NATS
P_NATS=$((PORT_BASE + 3))     # nats-server -js
P_FLOOR=$((PORT_BASE + 4))    # deploy/bench/floor
P_GOFF=$((PORT_BASE + 5))     # GO Feature Flag relay proxy
P_FLAGD=$((PORT_BASE + 6))    # flagd evaluation (gRPC/connect)
P_FLAGD_OFREP=$((PORT_BASE + 7))
P_FLAGD_SYNC=$((PORT_BASE + 8))
P_FLAGD_MGMT=$((PORT_BASE + 9))
P_PPROF=$((PORT_BASE + 10))

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'dataplane: %s\n' "$*" >&2; exit 1; }

for tool in wrk curl ss awk; do
	command -v "$tool" >/dev/null || die "needs $tool (wrk: apt-get install -y wrk; ss: iproute2)"
done
[[ -n ${ABACUS_BIN:-} ]] || command -v go >/dev/null || die "needs go to build abacus, or ABACUS_BIN"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/abacus-dataplane.XXXXXX")
PIDS=()
STARTED_CLICKHOUSE=0

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	if [[ -n $BENCH_DB ]]; then
		curl -s -o /dev/null --data-binary "DROP DATABASE IF EXISTS $BENCH_DB" "http://$H:$CLICKHOUSE_HTTP_PORT/" || true
	fi
	if [[ $STARTED_CLICKHOUSE == 1 ]]; then
		bash "$ROOT/deploy/local/clickhouse.sh" stop >/dev/null 2>&1 || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in $(seq "$PORT_BASE" $((PORT_BASE + 10))); do
	if (exec 3<>"/dev/tcp/$H/$p") 2>/dev/null; then
		die "port $p on $H is taken: set PORT_BASE"
	fi
done

# wait_port waits for a TCP listener on $H:$1 for at most $2 seconds.
wait_port() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		(exec 3<>"/dev/tcp/$H/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_http waits for URL $1 to answer 200 for at most $2 seconds.
wait_http() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null) == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}

# loopback_only succeeds when every TCP socket that process $1 listens on is
# bound to a loopback address.
loopback_only() {
	local addrs bad
	addrs=$(ss -Hltnp 2>/dev/null | awk -v p="pid=$1," 'index($0, p) {print $4}')
	[[ -n $addrs ]] || return 1
	bad=$(grep -Ev '^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):[0-9]+$' <<<"$addrs" || true)
	if [[ -n $bad ]]; then
		printf 'dataplane: pid %s listens on %s, not loopback only\n' "$1" "$(tr '\n' ' ' <<<"$bad")" >&2
		return 1
	fi
}

# start NAME DIR CMD...: starts CMD in DIR with a clean environment (plus
# the variables in the array ENV), its output in $TMP/NAME.log; sets PID.
start() {
	local name=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	(cd "$dir" && exec env -i PATH="$PATH" HOME="$dir" "${ENV[@]}" "$@") >"$TMP/$name.log" 2>&1 &
	PID=$!
	PIDS+=("$PID")
}

# stop_pid stops process $1 (a server that failed its checks).
stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------- build
mkdir -p "$TMP/bin"
if [[ -z ${ABACUS_BIN:-} ]]; then
	log "building abacus and the floor from $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo 'this tree')"
	(cd "$ROOT" && go build -o "$TMP/bin/abacus" ./cmd/abacus)
	ABACUS_BIN=$TMP/bin/abacus
else
	log "building the floor"
fi
(cd "$ROOT" && go build -o "$TMP/bin/floor" ./deploy/bench/floor)

# ------------------------------------------------------------ ClickHouse
ch_ping() { [[ $(curl -s "http://$H:$CLICKHOUSE_HTTP_PORT/ping" 2>/dev/null) == Ok.* ]]; }
if ! ch_ping; then
	log "starting the local ClickHouse (deploy/local/clickhouse.sh)"
	bash "$ROOT/deploy/local/clickhouse.sh" start >&2
	STARTED_CLICKHOUSE=1
	ch_ping || die "ClickHouse does not answer on $H:$CLICKHOUSE_HTTP_PORT"
fi

# --------------------------------------------------------------- servers
ADMIN_KEY=$("$ABACUS_BIN" keys generate)
declare -A URL KEY TEST FLAG UP SETTLE

# setup_abacus NAME: creates a data plane key and a running test on the
# Abacus server NAME. The key's rate_limit_multiplier (1000, the most a key
# may have) lifts the data plane's limits (ratelimit.DataPlane: 120,000 a
# minute) far above what this machine serves, so that they are checked on
# every request but never bind.
setup_abacus() {
	local u=${URL[$1]} out
	out=$(curl -sf -X POST "$u/api/admin/keys" -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
		-d '{"name": "dataplane bench", "user_id": "bench", "permissions": ["ab_testing.assign", "ab_testing.record"], "rate_limit_multiplier": 1000}') ||
		die "$1: creating the data plane key failed"
	KEY[$1]=$(sed -n 's/.*"key" *: *"\([^"]*\)".*/\1/p' <<<"$out")
	out=$(curl -sf -X POST "$u/api/ab-testing/tests" -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' -d '{
		"test_name": "Data plane benchmark", "test_type": "routing", "key": "bench",
		"variants": [
			{"variant_id": "control", "variant_name": "Control", "configuration": {"route": "a"}, "traffic_percentage": 50},
			{"variant_id": "treatment", "variant_name": "Treatment", "configuration": {"route": "b"}, "traffic_percentage": 50}
		],
		"control_variant_id": "control", "primary_metric": "conversion"}') || die "$1: creating the test failed"
	TEST[$1]=$(sed -n 's/.*"test_id" *: *"\([^"]*\)".*/\1/p' <<<"$out")
	FLAG[$1]=bench
	curl -sf -X POST "$u/api/ab-testing/tests/${TEST[$1]}/start" -H "X-API-Key: $ADMIN_KEY" >/dev/null ||
		die "$1: starting the test failed"
	[[ -n ${KEY[$1]} && -n ${TEST[$1]} ]] || die "$1: no key or test id in the answers"
}

# start_abacus NAME PORT [serve flags]: production mode, the whole
# middleware chain (API keys, rate limits, input validation: the defaults).
start_abacus() {
	local name=$1 port=$2
	shift 2
	ENV+=(ENVIRONMENT=production API_KEY="$ADMIN_KEY" LOG_LEVEL=warn DATA_DIR="$TMP/$name/data"
		ABACUS_HTTP_ADDR="$H:$port")
	start "$name" "$TMP/$name" "$ABACUS_BIN" serve "$@"
	URL[$name]=http://$H:$port
	if ! wait_http "${URL[$name]}/readyz" 60; then
		tail -20 "$TMP/$name.log" >&2
		die "$name did not get ready"
	fi
	loopback_only "$PID" || die "$name listens beyond loopback"
	setup_abacus "$name"
	UP[$name]=1
}

log "starting abacus serve (all roles, embedded NATS, ClickHouse $CLICKHOUSE_URL)"
ENV=(CLICKHOUSE_URL="$CLICKHOUSE_URL")
[[ -z $PPROF_DIR ]] || ENV+=(ABACUS_PPROF_ADDR="$H:$P_PPROF")
start_abacus all "$P_ALL"
SETTLE[all]=1

log "starting abacus serve --target=api (embedded NATS)"
ENV=()
start_abacus api-embedded "$P_APIE" --target=api

if [[ -n $NATS_SERVER_BIN ]]; then
	log "starting $("$NATS_SERVER_BIN" --version 2>&1 | head -1) -js on $H:$P_NATS"
	ENV=()
	start nats "$TMP/nats" "$NATS_SERVER_BIN" -js -a "$H" -p "$P_NATS" -sd "$TMP/nats/store"
	wait_port "$P_NATS" 20 || die "nats-server did not start (see its log)"
	loopback_only "$PID" || die "nats-server listens beyond loopback"
	log "starting abacus serve --target=api (external NATS)"
	ENV=(NATS_URL="nats://$H:$P_NATS")
	start_abacus api-external "$P_API" --target=api
else
	log "no nats-server (NATS_SERVER_BIN): the api role against an external NATS is skipped"
fi

log "starting the floor (bare Echo + experiment.Bucket)"
ENV=()
start floor "$TMP/floor" "$TMP/bin/floor" -addr "$H:$P_FLOOR"
wait_port "$P_FLOOR" 20 || die "the floor did not start"
URL[floor]=http://$H:$P_FLOOR KEY[floor]="" TEST[floor]=bench FLAG[floor]=bench UP[floor]=1

if [[ -n $GOFF_RELAY_PROXY_BIN ]]; then
	log "starting GO Feature Flag relay proxy ($GOFF_RELAY_PROXY_BIN)"
	mkdir -p "$TMP/goff"
	cat >"$TMP/goff/flags.goff.yaml" <<-'EOF'
		bench:
		  variations:
		    control: "control"
		    treatment: "treatment"
		  defaultRule:
		    percentage:
		      control: 50
		      treatment: 50
	EOF
	cat >"$TMP/goff/goff-proxy.yaml" <<-EOF
		server:
		  mode: http
		  host: $H
		  port: $P_GOFF
		logLevel: error
		hideBanner: true
		pollingInterval: 600000
		retriever:
		  kind: file
		  path: $TMP/goff/flags.goff.yaml
		authorizedKeys:
		  evaluation:
		    - dataplane-bench-key
	EOF
	ENV=()
	start goff "$TMP/goff" "$GOFF_RELAY_PROXY_BIN" --config "$TMP/goff/goff-proxy.yaml"
	if wait_http "http://$H:$P_GOFF/health" 30 && loopback_only "$PID"; then
		URL[goff]=http://$H:$P_GOFF KEY[goff]=dataplane-bench-key FLAG[goff]=bench UP[goff]=1
	else
		tail -5 "$TMP/goff.log" >&2
		log "GO Feature Flag did not start on loopback: skipped"
		stop_pid "$PID"
	fi
else
	log "GOFF_RELAY_PROXY_BIN is not set: GO Feature Flag skipped"
fi

if [[ -n $FLAGD_BIN ]]; then
	log "starting flagd ($FLAGD_BIN)"
	mkdir -p "$TMP/flagd"
	cat >"$TMP/flagd/flags.flagd.json" <<-'EOF'
		{"flags": {"bench": {
		  "state": "ENABLED",
		  "variants": {"control": "control", "treatment": "treatment"},
		  "defaultVariant": "control",
		  "targeting": {"fractional": [["control", 50], ["treatment", 50]]}
		}}}
	EOF
	ENV=()
	start flagd "$TMP/flagd" "$FLAGD_BIN" start --uri "file:$TMP/flagd/flags.flagd.json" \
		--port "$P_FLAGD" --ofrep-port "$P_FLAGD_OFREP" --sync-port "$P_FLAGD_SYNC" --management-port "$P_FLAGD_MGMT"
	if wait_port "$P_FLAGD_OFREP" 30 && sleep 1 && loopback_only "$PID"; then
		URL[flagd]=http://$H:$P_FLAGD_OFREP KEY[flagd]="" FLAG[flagd]=bench UP[flagd]=1
	else
		tail -5 "$TMP/flagd.log" >&2
		log "flagd did not start on loopback only: skipped"
		stop_pid "$PID"
	fi
else
	log "FLAGD_BIN is not set: flagd skipped"
fi

# ------------------------------------------------------------ benchmarks
# name|server|mode|users (0: a new user per request)
ALL_BENCHES=(
	"abacus assign|all|assign|0"
	"abacus ofrep|all|ofrep|0"
	"abacus assign, user pool|all|assign|$USER_POOL"
	"abacus ofrep, user pool|all|ofrep|$USER_POOL"
	"abacus record|all|record|0"
	"abacus assign, api role, external NATS|api-external|assign|0"
	"abacus assign, api role, embedded NATS|api-embedded|assign|0"
	"floor assign|floor|assign|0"
	"floor ofrep|floor|ofrep|0"
	"goff ofrep|goff|ofrep|0"
	"flagd ofrep|flagd|ofrep|0"
)
BENCHES=()
for b in "${ALL_BENCHES[@]}"; do
	IFS='|' read -r name server _ _ <<<"$b"
	[[ ${UP[$server]:-0} == 1 ]] || continue
	[[ -z $BENCH_ONLY ]] || grep -Eq -- "$BENCH_ONLY" <<<"$name" || continue
	BENCHES+=("$b")
done
((${#BENCHES[@]} > 0)) || die "no benchmark to run"

# to_ms converts wrk's latency (850.00us, 1.20ms, 1.01s, 2.00m) to ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.2f", n }'
}

# run_wrk BENCH DURATION: prints "rps p50_ms p99_ms bad" (bad: non-2xx
# answers plus socket errors).
run_wrk() {
	local name server mode users out rps p50 p99 bad
	IFS='|' read -r name server mode users <<<"$1"
	out=$(MODE=$mode USERS=$users API_KEY=${KEY[$server]} TEST_ID=${TEST[$server]:-bench} FLAG_KEY=${FLAG[$server]} \
		wrk -t"$THREADS" -c"$CONNS" -d"$2" --latency -s "$LUA" "${URL[$server]}" 2>&1) || {
		printf '%s\n' "$out" >&2
		die "wrk failed on $name"
	}
	printf '%s\n' "$out" >>"$TMP/wrk.log"
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	bad=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END {print n + 0}' <<<"$out")
	echo "$rps $p50 $p99 $bad"
}

# settle waits (at most 60 s) until the ingest of server $1 has caught up,
# so that one benchmark's ingest does not run during the next one.
settle() {
	local i body
	for ((i = 0; i < 600; i++)); do
		body=$(curl -s "${URL[$1]}/readyz" 2>/dev/null || true)
		if grep -q '"pending": *0[,}]' <<<"$body" && grep -q '"ack_pending": *0[,}]' <<<"$body"; then
			return 0
		fi
		sleep 0.1
	done
	log "$1: ingest still behind after 60 s"
}

after() {
	local server
	IFS='|' read -r _ server _ _ <<<"$1"
	[[ ${SETTLE[$server]:-0} != 1 ]] || settle "$server"
	sleep 1
}

# probe sends one request of each benchmark's kind, shows the answer, and
# fails unless it is a 2xx: a benchmark of error answers measures nothing.
probe() {
	local name server mode users path body code
	IFS='|' read -r name server mode users <<<"$1"
	case $mode in
	assign) path=/api/ab-testing/tests/${TEST[$server]:-bench}/assign body='{"user_id":"probe-1"}' ;;
	record) path=/api/ab-testing/tests/${TEST[$server]:-bench}/record body='{"user_id":"probe-1","metrics":{"conversion":1}}' ;;
	ofrep) path=/ofrep/v1/evaluate/flags/${FLAG[$server]} body='{"context":{"targetingKey":"probe-1"}}' ;;
	esac
	code=$(curl -s -o "$TMP/probe" -w '%{http_code}' -X POST "${URL[$server]}$path" \
		-H 'Content-Type: application/json' ${KEY[$server]:+-H "X-API-Key: ${KEY[$server]}"} -d "$body")
	log "probe  $name: $code $(head -c 160 "$TMP/probe")"
	[[ $code == 2* ]] || die "$name answers $code"
}
for b in "${BENCHES[@]}"; do
	probe "$b"
done

log "warm-up: $WARMUP each"
for b in "${BENCHES[@]}"; do
	run_wrk "$b" "$WARMUP" >/dev/null
	after "$b"
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
RESULTS=$TMP/results
: >"$RESULTS"
n=${#BENCHES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for ((k = 0; k < n; k++)); do
		i=$(((k + r - 1) % n))
		b=${BENCHES[$i]}
		IFS='|' read -r name _ _ _ <<<"$b"
		res=$(run_wrk "$b" "$DURATION")
		log "round $r/$ROUNDS  $name: $res (req/s p50_ms p99_ms bad)"
		printf '%d|%d|%s\n' "$i" "$r" "$res" >>"$RESULTS"
		after "$b"
	done
done

if [[ -n $PPROF_DIR ]]; then
	mkdir -p "$PPROF_DIR"
	log "CPU profile of abacus (all roles) under assign load: $PPROF_DIR/assign.cpu.pprof"
	secs=$(awk -v d="$DURATION" 'BEGIN { s = d + 0; if (d ~ /m$/) s *= 60; if (s > 2) s -= 2; print int(s) }')
	curl -s -o "$PPROF_DIR/assign.cpu.pprof" "http://$H:$P_PPROF/debug/pprof/profile?seconds=$secs" &
	prof=$!
	run_wrk "abacus assign|all|assign|0" "$DURATION" >/dev/null
	wait "$prof"
	cp "$ABACUS_BIN" "$PPROF_DIR/abacus"
fi

# ---------------------------------------------------------------- report
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {
	if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A MED_RPS
nproc=$(nproc 2>/dev/null || echo '?')
echo
echo "### Data plane benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS alternating rounds, $nproc cores, load average (1, 5, 15 min) before the rounds $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')."
echo
hdr="| Benchmark |"
sep="|---|"
for ((r = 1; r <= ROUNDS; r++)); do hdr+=" round $r req/s |"; sep+="---:|"; done
echo "$hdr median req/s | median p50 ms | median p99 ms | non-2xx |"
echo "$sep---:|---:|---:|---:|"
for ((i = 0; i < n; i++)); do
	IFS='|' read -r name _ _ _ <<<"${BENCHES[$i]}"
	rows=$(awk -F'|' -v i="$i" '$1 == i {print $3}' "$RESULTS")
	line="| $name |"
	for ((r = 1; r <= ROUNDS; r++)); do
		line+=" $(awk -F'|' -v i="$i" -v r="$r" '$1 == i && $2 == r {split($3, f, " "); printf "%.0f", f[1]}' "$RESULTS") |"
	done
	rps=$(awk '{print $1}' <<<"$rows" | median)
	p50=$(awk '{print $2}' <<<"$rows" | median)
	p99=$(awk '{print $3}' <<<"$rows" | median)
	bad=$(awk '{n += $4} END {print n + 0}' <<<"$rows")
	MED_RPS[$name]=$rps
	printf '%s %.0f | %s | %s | %s |\n' "$line" "$rps" "$p50" "$p99" "$bad"
done

# ratio A B TARGET: the ratio of the medians, and of the rounds (each round's
# A over the same round's B) as a range.
ratio() {
	local a=${MED_RPS[$1]:-} b=${MED_RPS[$2]:-} ia ib
	[[ -n $a && -n $b ]] || return 0
	for ((k = 0; k < n; k++)); do
		IFS='|' read -r nm _ _ _ <<<"${BENCHES[$k]}"
		[[ $nm == "$1" ]] && ia=$k
		[[ $nm == "$2" ]] && ib=$k
	done
	awk -F'|' -v a="$a" -v b="$b" -v ia="$ia" -v ib="$ib" -v na="$1" -v nb="$2" -v t="$3" '
		$1 == ia {split($3, f, " "); x[$2] = f[1]} $1 == ib {split($3, f, " "); y[$2] = f[1]}
		END {
			lo = 1e9; hi = 0
			for (r in x) if (r in y && y[r] > 0) { q = x[r] / y[r]; if (q < lo) lo = q; if (q > hi) hi = q }
			v = a / b
			printf "| %s / %s | %.2fx | %.2f-%.2fx | %s |\n", na, nb, v, lo, hi,
				t == "" ? "" : (v >= t ? "≥" t "x: met" : "≥" t "x: not met") }' "$RESULTS"
}
echo
echo "| Ratio (requests/s) | of the medians | per round | target |"
echo "|---|---:|---:|---|"
ratio "abacus assign" "floor assign" 0.75
ratio "abacus ofrep" "floor ofrep" 0.75
ratio "abacus ofrep" "floor assign" ""
ratio "abacus assign" "goff ofrep" 1.2
ratio "abacus ofrep" "goff ofrep" 1.2
ratio "abacus assign" "flagd ofrep" ""
ratio "abacus ofrep" "flagd ofrep" ""
ratio "abacus assign, user pool" "abacus assign" ""
ratio "abacus ofrep, user pool" "abacus ofrep" ""
ratio "abacus assign, api role, external NATS" "abacus assign" ""
ratio "abacus assign, api role, embedded NATS" "abacus assign" ""
ratio "abacus assign, api role, external NATS" "abacus assign, api role, embedded NATS" ""
ratio "goff ofrep" "floor ofrep" ""
