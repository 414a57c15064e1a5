#!/usr/bin/env bash
# Stop what scripts/services/start.sh started:
#
#   scripts/services/stop.sh [docker|sshd|slurm|ray|postgres|s3|registry|all]...   (default: all)
#
# Only PIDs recorded in $LAUNCHBAY_SERVICES_DIR/*.pid are signalled (plus
# `ray stop` for Ray, which has no single parent process). An engine that
# start.sh found already running and merely reused has no pid file and is
# left alone. Scratch dirs, keys and the cached base image are kept so the
# next start is fast; the service's env.sh lines are removed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/services/lib.sh
source "$HERE/lib.sh"

stop_docker() {
    # dockerd stops running containers on SIGTERM (up to 10 s each, in
    # parallel) before it exits, hence the longer wait.
    kill_recorded docker dockerd 30
    # Its managed containerd normally exits with it; clean up if not.
    kill_recorded docker-containerd containerd
    env_clear docker
}

stop_sshd() {
    # Only the listener; sessions still open end on their own.
    kill_recorded sshd sshd
    env_clear sshd
}

stop_slurm() {
    local d="$SERVICES_DIR/slurm"
    # Cancel leftover test jobs first: slurmstepd processes would otherwise
    # outlive slurmd. Only when our slurmctld is the one answering.
    if pid_alive slurmctld slurmctld; then
        local jobs
        jobs="$(SLURM_CONF="$d/slurm.conf" squeue -h -o %i 2>/dev/null || true)"
        if [[ -n "$jobs" ]]; then
            log "slurm: cancelling jobs ${jobs//$'\n'/ }"
            # shellcheck disable=SC2086
            SLURM_CONF="$d/slurm.conf" scancel $jobs 2>/dev/null || true
            local i
            for ((i = 0; i < 50; i++)); do
                pgrep -x slurmstepd >/dev/null || break
                sleep 0.1
            done
        fi
    fi
    kill_recorded slurmd slurmd
    kill_recorded slurmctld slurmctld
    kill_recorded munge munged
    env_clear slurm
}

stop_ray() {
    local venv="${LAUNCHBAY_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv}"
    if [[ -f "$(pid_file ray)" ]]; then
        if pid_alive ray gcs_server && [[ -x "$venv/bin/ray" ]]; then
            log "stopping ray (ray stop)"
            # `ray stop` finds Ray's processes itself; escalate to --force
            # (SIGKILL) if the GCS survives the graceful pass.
            PATH="$venv/bin:$PATH" ray stop >/dev/null 2>&1 || true
            if pid_alive ray gcs_server; then
                PATH="$venv/bin:$PATH" ray stop --force >/dev/null 2>&1 || true
            fi
        fi
        kill_recorded ray-raylet raylet 5
        kill_recorded ray gcs_server 5
    fi
    env_clear ray
}

stop_postgres() {
    # The postmaster's PID (from postmaster.pid at start): SIGTERM is a
    # "smart" shutdown, which waits for clients; SIGINT is "fast" (rolls back
    # open transactions, disconnects): what a stop of a test cluster wants.
    # A test that restarts the cluster (pg_ctl restart: the fault the team
    # store must survive) leaves a new postmaster: take its PID from our own
    # cluster's postmaster.pid, never from a process search.
    local f pid i data="$SERVICES_DIR/postgres/data"
    f="$(pid_file postgres)"
    if [[ -f "$f" && -s "$data/postmaster.pid" ]]; then
        record_pid postgres "$(head -n 1 "$data/postmaster.pid")"
    fi
    if pid_alive postgres postgres; then
        pid="$(<"$f")"
        log "stopping postgres (pid $pid, fast shutdown)"
        kill -INT "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            proc_running "$pid" || break
            sleep 0.1
        done
    fi
    kill_recorded postgres postgres 5
    env_clear postgres
}

stop_s3() {
    kill_recorded s3 moto_server
    env_clear s3
}

stop_registry() {
    # Both instances; their storage folders stay (pushed images outlive a restart).
    kill_recorded registry-private docker-registry
    kill_recorded registry-open docker-registry
    env_clear registry
}

main() {
    expand_services "$@"
    [[ -d "$SERVICES_DIR" ]] || exit 0
    local s i
    # Reverse order: Ray (slowest) first, Docker last.
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        s="${SERVICES[i]}"
        "stop_$s"
    done
}

main "$@"
