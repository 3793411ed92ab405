#!/usr/bin/env bash
# Runs a private ClickHouse server for development and tests, without systemd
# or Docker: `make clickhouse-up`, `make run`, `make test` and CI call it.
#
#   deploy/local/clickhouse.sh start     start it (installs the distro package
#                                        if needed); succeeds at once if a
#                                        server already answers on the port
#   deploy/local/clickhouse.sh stop      stop the server this script started
#   deploy/local/clickhouse.sh restart   stop, then start
#   deploy/local/clickhouse.sh status    exit 0 if a server answers, else 1
#
# Environment:
#   DATA_DIR                  data folder, relative to the repository root
#                             unless absolute (default: DATA_DIR of .env,
#                             else ./data); the server keeps everything in
#                             $DATA_DIR/clickhouse
#   CLICKHOUSE_TCP_PORT       native protocol port (default 9000)
#   CLICKHOUSE_HTTP_PORT      HTTP port (default 8123)
#   CLICKHOUSE_IPV6           auto (default), 1 or 0: also listen on ::1
#   CLICKHOUSE_START_TIMEOUT  seconds to wait for the server (default 60)
#   CLICKHOUSE_STOP_TIMEOUT   seconds to wait before SIGKILL (default 60)
#
# The server listens on loopback only and its "default" user has no
# password. The configuration is generated from clickhouse-config.xml and
# clickhouse-users.xml next to this script. Written for the Debian 12 package
# (ClickHouse 18.16), which runs as root without complaint when its data
# folder belongs to root.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
# The package puts clickhouse-server in /usr/sbin.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

tcp_port=${CLICKHOUSE_TCP_PORT:-9000}
http_port=${CLICKHOUSE_HTTP_PORT:-8123}
start_timeout=${CLICKHOUSE_START_TIMEOUT:-60}
stop_timeout=${CLICKHOUSE_STOP_TIMEOUT:-60}
host=127.0.0.1

log() { printf 'clickhouse.sh: %s\n' "$*"; }
die() {
	printf 'clickhouse.sh: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	echo "usage: $0 {start|stop|restart|status}" >&2
	exit 2
}

check_number() { # name value
	[[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a number, got '$2'"
}
check_number CLICKHOUSE_TCP_PORT "$tcp_port"
check_number CLICKHOUSE_HTTP_PORT "$http_port"
check_number CLICKHOUSE_START_TIMEOUT "$start_timeout"
check_number CLICKHOUSE_STOP_TIMEOUT "$stop_timeout"
((tcp_port >= 1 && tcp_port <= 65535)) || die "CLICKHOUSE_TCP_PORT out of range: $tcp_port"
((http_port >= 1 && http_port <= 65535)) || die "CLICKHOUSE_HTTP_PORT out of range: $http_port"
((tcp_port != http_port)) || die "CLICKHOUSE_TCP_PORT and CLICKHOUSE_HTTP_PORT are both $tcp_port"

# dotenv_value KEY: KEY's value in the repository's .env (which abacus reads
# too), for the simple KEY=value, KEY="value" and KEY='value' forms.
dotenv_value() {
	local file="$repo_root/.env" line value
	[[ -r $file ]] || return 0
	line=$(grep -E "^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=" "$file" | tail -n1) || return 0
	value=${line#*=}
	value=${value#"${value%%[![:space:]]*}"}
	case $value in
	\"*) value=${value#\"} value=${value%%\"*} ;;
	\'*) value=${value#\'} value=${value%%\'*} ;;
	*) value=${value%%[[:space:]]#*} value=${value%"${value##*[![:space:]]}"} ;;
	esac
	printf '%s' "$value"
}

# Absolute data folder: from the environment, else .env, else ./data; a
# relative one is relative to the repository root.
data_dir=${DATA_DIR:-$(dotenv_value DATA_DIR)}
data_dir=${data_dir:-./data}
[[ $data_dir == /* ]] || data_dir="$repo_root/$data_dir"
data_dir=$(realpath -m -- "$data_dir")

ch_dir="$data_dir/clickhouse"
config="$ch_dir/config.xml"
users="$ch_dir/users.xml"
pid_file="$ch_dir/clickhouse-server.pid"
lock_file="$ch_dir/.lock"
log_dir="$ch_dir/log"
console_log="$log_dir/console.log"
err_log="$log_dir/clickhouse-server.err.log"
db_dir="$ch_dir/db"

# --- helpers -----------------------------------------------------------------

# Serializes start/stop/restart of the same data folder.
take_lock() {
	mkdir -p "$ch_dir"
	exec 9>"$lock_file"
	flock -w $((start_timeout + stop_timeout + 30)) 9 || die "another clickhouse.sh holds $lock_file"
}

# answers: true if a ClickHouse server answers "SELECT 1" on the TCP port.
# (The client is always run under timeout: some client invocations of this
# version spin forever, e.g. --help.)
answers() {
	command -v clickhouse-client >/dev/null 2>&1 || return 1
	timeout 10 clickhouse-client --host "$host" --port "$tcp_port" --connect_timeout=2 \
		--query "SELECT 1" >/dev/null 2>&1
}

server_version() {
	timeout 10 clickhouse-client --host "$host" --port "$tcp_port" --connect_timeout=2 \
		--query "SELECT version()" 2>/dev/null || echo unknown
}

# alive PID: the process exists and is not a zombie (without an init that
# reaps orphans, a stopped server can linger as a zombie).
alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
	[[ -n $state && $state != Z ]]
}

# ours PID: the process is a clickhouse-server running our configuration.
ours() {
	alive "$1" || return 1
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "--config-file=$config"
}

# our_pid prints the pid of the server this script started, if it runs.
our_pid() {
	local pid f
	for f in "$pid_file" "$db_dir/status"; do
		[[ -r $f ]] || continue
		pid=$(grep -oE '[0-9]+' "$f" | head -n1) || true
		if [[ -n $pid ]] && ours "$pid"; then
			echo "$pid"
			return 0
		fi
	done
	return 0
}

ipv6_loopback() {
	case ${CLICKHOUSE_IPV6:-auto} in
	0 | no | false) return 1 ;;
	1 | yes | true) return 0 ;;
	auto) ;;
	*) die "CLICKHOUSE_IPV6 must be auto, 1 or 0, got '$CLICKHOUSE_IPV6'" ;;
	esac
	# ::1 is configured on lo (absent when IPv6 is off in the kernel or
	# disabled for this network namespace).
	[[ -r /proc/net/if_inet6 ]] && grep -qiE '^0{31}1 ' /proc/net/if_inet6
}

install_clickhouse() {
	local sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null 2>&1 ||
			die "clickhouse-server is not installed; as root: apt-get install clickhouse-server clickhouse-client"
		sudo=(sudo)
	fi
	command -v apt-get >/dev/null 2>&1 ||
		die "clickhouse-server is not installed and there is no apt-get to install it"
	log "installing clickhouse-server and clickhouse-client with apt-get"
	# Keep the package from starting its own server (as user clickhouse, on
	# port 9000) through invoke-rc.d: we start ours.
	local policy=/usr/sbin/policy-rc.d added_policy=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
		"${sudo[@]}" chmod 755 "$policy"
		added_policy=1
	fi
	local rc=0
	{
		"${sudo[@]}" apt-get update &&
			"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y clickhouse-server clickhouse-client
	} || rc=$?
	if ((added_policy)); then
		"${sudo[@]}" rm -f "$policy"
	fi
	((rc == 0)) || die "apt-get could not install clickhouse-server clickhouse-client (exit $rc)"
	command -v clickhouse-server >/dev/null 2>&1 || die "clickhouse-server still not found after installing it"
}

xml_escape() {
	local s=$1
	s=${s//&/&amp;}
	s=${s//</&lt;}
	s=${s//>/&gt;}
	printf '%s' "$s"
}

sed_escape() { printf '%s' "$1" | sed -e 's/[|&\\]/\\&/g'; }

# render TEMPLATE OUTPUT: replaces the @NAME@ placeholders.
render() {
	local ipv6_expr
	if ipv6_loopback; then
		ipv6_expr='s|^@LISTEN_IPV6@$|    <listen_host>::1</listen_host>|'
	else
		ipv6_expr='/^@LISTEN_IPV6@$/d'
	fi
	local args=(-e "$ipv6_expr")
	local name value
	for name in LOG_DIR DB_DIR TMP_DIR USER_FILES_DIR FORMAT_SCHEMA_DIR USERS_CONFIG TCP_PORT HTTP_PORT; do
		case $name in
		LOG_DIR) value=$log_dir ;;
		DB_DIR) value=$db_dir ;;
		TMP_DIR) value=$ch_dir/tmp ;;
		USER_FILES_DIR) value=$ch_dir/user_files ;;
		FORMAT_SCHEMA_DIR) value=$ch_dir/format_schemas ;;
		USERS_CONFIG) value=$users ;;
		TCP_PORT) value=$tcp_port ;;
		HTTP_PORT) value=$http_port ;;
		esac
		args+=(-e "s|@${name}@|$(sed_escape "$(xml_escape "$value")")|g")
	done
	sed "${args[@]}" "$1" >"$2.tmp"
	if grep -qE '@[A-Z_]+@' "$2.tmp"; then
		die "unreplaced placeholder in $2: $(grep -oE '@[A-Z_]+@' "$2.tmp" | head -n1)"
	fi
	mv -f "$2.tmp" "$2"
}

print_address() {
	log "ClickHouse $(server_version) is ready"
	log "  native: clickhouse://$host:$tcp_port/default (clickhouse-client --port $tcp_port)"
	log "  http:   http://$host:$http_port/"
}

# show_logs OFFSET: what the server logged since OFFSET bytes of the error log.
show_logs() {
	local offset=$1
	echo "---- $err_log (new lines, last 40) ----" >&2
	if [[ -r $err_log ]]; then
		tail -c +"$((offset + 1))" "$err_log" | tail -n 40 >&2
	else
		echo "(no error log)" >&2
	fi
	echo "---- $console_log (last 20) ----" >&2
	if [[ -r $console_log ]]; then
		tail -n 20 "$console_log" >&2
	else
		echo "(no console log)" >&2
	fi
	echo "----" >&2
}

# wait_ready PID ERR_OFFSET: polls until the server answers; fails if the
# process exits or the timeout passes.
wait_ready() {
	local pid=$1 offset=$2 started=$SECONDS
	while ((SECONDS - started < start_timeout)); do
		if answers; then
			log "server answered after $((SECONDS - started)) s (pid $pid)"
			return 0
		fi
		if ! alive "$pid"; then
			log "clickhouse-server (pid $pid) exited before answering on $host:$tcp_port" >&2
			show_logs "$offset"
			rm -f "$pid_file"
			return 1
		fi
		sleep 0.5
	done
	log "clickhouse-server (pid $pid) did not answer on $host:$tcp_port within $start_timeout s" >&2
	show_logs "$offset"
	kill -TERM "$pid" 2>/dev/null || true
	return 1
}

# --- commands ----------------------------------------------------------------

cmd_start() {
	if ! command -v clickhouse-server >/dev/null 2>&1 || ! command -v clickhouse-client >/dev/null 2>&1; then
		install_clickhouse
	fi
	take_lock

	local pid
	pid=$(our_pid)
	if answers; then
		if [[ -n $pid ]]; then
			log "already running (pid $pid, data in $ch_dir)"
		else
			log "a ClickHouse server already answers on $host:$tcp_port (not started from $ch_dir); using it"
		fi
		print_address
		return 0
	fi

	local offset=0
	[[ -r $err_log ]] && offset=$(wc -c <"$err_log")
	if [[ -n $pid ]]; then
		log "clickhouse-server (pid $pid) is running but not answering yet; waiting"
		wait_ready "$pid" "$offset" || exit 1
		print_address
		return 0
	fi
	rm -f "$pid_file"

	mkdir -p "$log_dir" "$db_dir" "$ch_dir/tmp" "$ch_dir/user_files" "$ch_dir/format_schemas"
	render "$script_dir/clickhouse-config.xml" "$config"
	render "$script_dir/clickhouse-users.xml" "$users"

	local listen="$host"
	ipv6_loopback && listen="$listen and [::1]"
	log "starting clickhouse-server on $listen, tcp $tcp_port, http $http_port, data in $ch_dir"
	# In its own session, so that Ctrl-C in `make run` or the end of the
	# calling shell does not stop it; it runs until `stop`.
	{
		echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) start"
	} >>"$console_log"
	# fd 9 (the lock) is closed for it, or it would hold the lock forever.
	(cd "$ch_dir" && exec setsid clickhouse-server --config-file="$config" \
		</dev/null >>"$console_log" 2>&1 9>&-) &
	pid=$!
	echo "$pid" >"$pid_file"

	wait_ready "$pid" "$offset" || exit 1
	# setsid forks when it has to; trust the pid the server wrote itself.
	local real
	real=$(grep -oE '[0-9]+' "$db_dir/status" 2>/dev/null | head -n1) || true
	if [[ -n $real && $real != "$pid" ]] && ours "$real"; then
		echo "$real" >"$pid_file"
	fi
	print_address
}

cmd_stop() {
	[[ -d $ch_dir ]] || {
		log "not running (no $ch_dir)"
		return 0
	}
	take_lock
	local pid
	pid=$(our_pid)
	if [[ -z $pid ]]; then
		rm -f "$pid_file"
		if answers; then
			log "warning: a ClickHouse server answers on $host:$tcp_port but was not started from $ch_dir; leaving it alone" >&2
		else
			log "not running"
		fi
		return 0
	fi
	log "stopping clickhouse-server (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	local started=$SECONDS
	while alive "$pid"; do
		if ((SECONDS - started >= stop_timeout)); then
			log "still running after $stop_timeout s; sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
			sleep 1
			alive "$pid" && die "could not stop clickhouse-server (pid $pid)"
			break
		fi
		sleep 0.2
	done
	rm -f "$pid_file"
	log "stopped after $((SECONDS - started)) s"
}

cmd_status() {
	local pid
	pid=$(our_pid)
	if answers; then
		if [[ -n $pid ]]; then
			log "running: ClickHouse $(server_version) on $host:$tcp_port (pid $pid, data in $ch_dir)"
		else
			log "running: ClickHouse $(server_version) on $host:$tcp_port (not started from $ch_dir)"
		fi
		return 0
	fi
	if [[ -n $pid ]]; then
		log "clickhouse-server (pid $pid) is running but does not answer on $host:$tcp_port"
	elif ! command -v clickhouse-client >/dev/null 2>&1; then
		log "not running (clickhouse-client is not installed)"
	else
		log "not running on $host:$tcp_port"
	fi
	return 1
}

[[ $# -eq 1 ]] || usage
case $1 in
start) cmd_start ;;
stop) cmd_stop ;;
restart)
	cmd_stop
	exec 9>&- # release the lock before start takes it again
	cmd_start
	;;
status) cmd_status ;;
*) usage ;;
esac
