# shellcheck shell=bash
# Shared helpers for scripts/services/start.sh and stop.sh.
# Sourced, not executed. Bash only (uses arrays, [[ ]], local).
#
# Layout of $LAUNCHBAY_SERVICES_DIR (default /tmp/launchbay-services):
#   <name>.pid    one PID per file, written only for processes *we* started
#   env.sh        `export` lines, each tagged "# launchbay:<service>" so a
#                 restart or stop can replace/remove exactly its own lines
#   docker/ sshd/ slurm/ ray/ postgres/ s3/ registry/   per-service scratch dirs and logs

LAUNCHBAY_SERVICES_DIR="${LAUNCHBAY_SERVICES_DIR:-/tmp/launchbay-services}"
SERVICES_DIR="$LAUNCHBAY_SERVICES_DIR"
ENV_FILE="$SERVICES_DIR/env.sh"
ALL_SERVICES=(docker sshd slurm ray postgres s3 registry)

log() { printf '[services %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

die() {
    printf '[services] ERROR: %s\n' "$*" >&2
    exit 1
}

# Print the last lines of each given log file to stderr, so a failure in CI
# shows *why* the engine did not come up without anyone logging in.
show_logs() {
    local f
    for f in "$@"; do
        [[ -f "$f" ]] || continue
        printf -- '----- tail of %s -----\n' "$f" >&2
        tail -n 40 "$f" >&2 || true
    done
}

# Expand "all" and validate names into the global array SERVICES.
expand_services() {
    local s
    SERVICES=()
    [[ $# -gt 0 ]] || set -- all
    for s in "$@"; do
        case "$s" in
            all) SERVICES+=("${ALL_SERVICES[@]}") ;;
            docker | sshd | slurm | ray | postgres | s3 | registry) SERVICES+=("$s") ;;
            *) die "unknown service '$s' (expected: ${ALL_SERVICES[*]} all)" ;;
        esac
    done
}

pid_file() { printf '%s/%s.pid\n' "$SERVICES_DIR" "$1"; }

# True if PID exists and is not a zombie. Our daemons are reparented to
# PID 1 when start.sh exits; if PID 1 is slow to reap, kill -0 alone would
# report an exited daemon as alive.
proc_running() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
    [[ -n "$st" && "$st" != Z ]]
}

# True if pid file NAME exists and its process is alive *and* its command
# line contains EXPECT (guards against PID reuse after a VM restore).
pid_alive() {
    local name="$1" expect="${2:-}" f pid cmd
    f="$(pid_file "$name")"
    [[ -s "$f" ]] || return 1
    pid="$(<"$f")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    proc_running "$pid" || return 1
    [[ -z "$expect" ]] && return 0
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmd" == *"$expect"* ]]
}

record_pid() { printf '%s\n' "$2" >"$(pid_file "$1")"; }

# kill_recorded NAME [EXPECT [TIMEOUT]]: stop the process recorded in pid
# file NAME (TERM, wait up to TIMEOUT seconds, default 10, then KILL) and
# remove the pid file. Never touches a PID we did not record.
kill_recorded() {
    local name="$1" expect="${2:-}" timeout="${3:-10}" f pid i
    f="$(pid_file "$name")"
    [[ -f "$f" ]] || return 0
    if pid_alive "$name" "$expect"; then
        pid="$(<"$f")"
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < timeout * 10; i++)); do
            proc_running "$pid" || break
            sleep 0.1
        done
        if proc_running "$pid"; then
            log "$name (pid $pid) still alive after ${timeout}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$f"
}

# Start a long-running foreground daemon detached in its own session, so it
# outlives this script and is not hit by signals sent to the caller's process
# group. In a non-interactive shell a background job is not a group leader,
# so setsid(1) calls setsid() and execs in place: $! is the daemon's own PID.
spawn() {
    local name="$1" logf="$2"
    shift 2
    # Append (earlier runs stay for debugging) after a marker line, so a log
    # tail shown on failure makes clear which run it belongs to.
    printf '===== launchbay start %s: %s =====\n' "$(date '+%F %T')" "$*" >>"$logf"
    setsid "$@" </dev/null >>"$logf" 2>&1 &
    record_pid "$name" "$!"
}

# wait_until [-p NAME]... SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s
# until it succeeds; return 1 after SECONDS. Bounded so a broken engine fails
# the run instead of hanging CI. Each -p NAME is a pid file whose process
# must stay alive meanwhile: a daemon that exits at once (port taken, bad
# config) fails the wait immediately rather than after the full timeout.
wait_until() {
    local watch=() limit what deadline n
    while [[ "${1:-}" == -p ]]; do
        watch+=("$2")
        shift 2
    done
    limit="$1" what="$2"
    shift 2
    deadline=$((SECONDS + limit))
    while ! "$@" >/dev/null 2>&1; do
        for n in ${watch[@]+"${watch[@]}"}; do
            if ! pid_alive "$n"; then
                log "$n exited while waiting for $what"
                return 1
            fi
        done
        if ((SECONDS >= deadline)); then
            log "timed out after ${limit}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# Install Debian packages that are missing. `apt-get update` runs at most
# once per start.sh invocation; nothing runs when everything is installed,
# so a warm start never touches the network.
APT_UPDATED=0
ensure_apt() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if ((EUID != 0)); then die "need root to install: ${missing[*]}"; fi
    if ((!APT_UPDATED)); then
        log "apt-get update"
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
}

# Replace this service's lines in env.sh: `env_set SERVICE K=V ...`.
env_set() {
    local svc="$1" kv
    shift
    env_clear "$svc"
    for kv in "$@"; do
        printf 'export %s=%q  # launchbay:%s\n' "${kv%%=*}" "${kv#*=}" "$svc" >>"$ENV_FILE"
    done
}

env_clear() {
    [[ -f "$ENV_FILE" ]] || return 0
    sed -i "/# launchbay:$1\$/d" "$ENV_FILE"
}
