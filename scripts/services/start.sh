#!/usr/bin/env bash
# Start real engines for launchbay's integration tests on a bare Debian
# machine (root, no systemd, loopback only):
#
#   scripts/services/start.sh [docker|sshd|slurm|ray|postgres|s3|registry|all]...   (default: all)
#   source "${LAUNCHBAY_SERVICES_DIR:-/tmp/launchbay-services}/env.sh"
#   scripts/services/stop.sh  [docker|sshd|slurm|ray|postgres|s3|registry|all]...
#
# Idempotent: a service whose recorded PID is alive is left as is (only its
# env.sh lines and a cheap smoke check are redone). Missing apt packages are
# installed. Every wait is bounded; on failure the engine's log tail is shown
# and the script exits non-zero. See /work/shared/ENGINES.md for the recipes.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/services/lib.sh
source "$HERE/lib.sh"

# ---------------------------------------------------------------- docker ---

DOCKER_SOCK=unix:///var/run/docker.sock
BASE_IMAGE=launchbay-test-base:bookworm
BASE_SUITE=bookworm
BASE_CACHE_DIR=/var/cache/launchbay
BASE_TAR="$BASE_CACHE_DIR/base-$BASE_SUITE.tar"

start_docker() {
    local d="$SERVICES_DIR/docker"
    mkdir -p "$d"
    ensure_apt docker.io debootstrap
    export DOCKER_HOST="$DOCKER_SOCK"

    if pid_alive docker dockerd; then
        log "docker: dockerd already running (pid $(<"$(pid_file docker)"))"
    elif docker version >/dev/null 2>&1; then
        # Someone else's dockerd owns the socket: use it, but record no PID
        # so stop.sh will never kill it.
        log "docker: a dockerd not started by us answers on $DOCKER_SOCK; using it"
    else
        # --bridge=none: no docker0 bridge may be created on these machines;
        # containers use network "none" or "host". No iptables either.
        spawn docker "$d/dockerd.log" dockerd --host="$DOCKER_SOCK" \
            --bridge=none --iptables=false --ip-masq=false
        if ! wait_until -p docker 60 "dockerd" docker version; then
            show_logs "$d/dockerd.log"
            die "dockerd did not become ready"
        fi
        # dockerd runs its own containerd child; remember it so stop.sh can
        # clean it up if dockerd dies without taking it down.
        local cpid
        cpid="$(pgrep -P "$(<"$(pid_file docker)")" -x containerd || true)"
        [[ -z "$cpid" ]] || record_pid docker-containerd "$cpid"
    fi

    ensure_base_image "$d"
    env_set docker "DOCKER_HOST=$DOCKER_SOCK" "LAUNCHBAY_TEST_BASE_IMAGE=$BASE_IMAGE"
    verify_docker
}

# The Debian mirror apt uses here (deb822 .sources or one-line .list). The
# machine only reaches its configured mirror, so never guess another host.
debian_mirror() {
    local m=""
    if [[ -n "${LAUNCHBAY_DEBIAN_MIRROR:-}" ]]; then
        printf '%s\n' "$LAUNCHBAY_DEBIAN_MIRROR"
        return
    fi
    shopt -s nullglob
    local sources=(/etc/apt/sources.list.d/*.sources)
    local lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
    shopt -u nullglob
    if ((${#sources[@]})); then
        # Paragraph mode: one stanza per record; take the first URI of the
        # first enabled "deb" stanza whose Suites contain exactly $suite.
        m="$(awk -v suite="$BASE_SUITE" 'BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; uris = ""; suites = ""; enabled = "yes"
                for (i = 1; i <= NF; i++) {
                    l = $i
                    if (l ~ /^[ \t]*#/) continue
                    if (sub(/^Types:[ \t]*/, "", l)) types = l
                    else if (sub(/^URIs:[ \t]*/, "", l)) uris = l
                    else if (sub(/^Suites:[ \t]*/, "", l)) suites = l
                    else if (sub(/^Enabled:[ \t]*/, "", l)) enabled = l
                }
                if (enabled == "no" || (" " types " ") !~ / deb /) next
                if ((" " suites " ") ~ (" " suite " ")) {
                    split(uris, u, /[ \t]+/); print u[1]; exit
                }
            }' "${sources[@]}")"
    fi
    if [[ -z "$m" ]]; then
        local f
        for f in "${lists[@]}"; do
            [[ -f "$f" ]] || continue
            # "deb [options] URI SUITE COMPONENTS..."
            m="$(awk -v suite="$BASE_SUITE" '$1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
                    if ($(i + 1) == suite) { print $i; exit }
                }' "$f")"
            [[ -z "$m" ]] || break
        done
    fi
    [[ -n "$m" ]] || die "no '$BASE_SUITE' deb source in /etc/apt; set LAUNCHBAY_DEBIAN_MIRROR"
    printf '%s\n' "$m"
}

# Build the rootfs tarball once with debootstrap (40-60 s) and keep it, so a
# dockerd data wipe only costs a ~5 s `docker import`.
build_base_tar() {
    local logf="$1/debootstrap.log" mirror rootfs
    mirror="$(debian_mirror)"
    mkdir -p "$BASE_CACHE_DIR"
    rootfs="$(mktemp -d "$BASE_CACHE_DIR/rootfs.XXXXXX")"
    log "docker: debootstrap $BASE_SUITE from $mirror (log: $logf)"
    if ! debootstrap --variant=minbase \
        --include=python3,python3-pip,python3-venv,ca-certificates \
        "$BASE_SUITE" "$rootfs" "$mirror" >"$logf" 2>&1; then
        show_logs "$logf" "$rootfs/debootstrap/debootstrap.log"
        rm -rf "$rootfs"
        die "debootstrap failed"
    fi
    rm -f "$rootfs"/var/cache/apt/archives/*.deb
    # HTTPS leaves this machine through a proxy with its own CA: ship the
    # host bundle at a path of its own so pip inside a host-network
    # container works with PIP_CERT=/etc/launchbay-ca.crt.
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/launchbay-ca.crt"
    tar --numeric-owner -C "$rootfs" -cf "$BASE_TAR.tmp" .
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$rootfs"
}

ensure_base_image() {
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
    [[ -s "$BASE_TAR" ]] || build_base_tar "$1"
    log "docker: importing $BASE_TAR as $BASE_IMAGE"
    # An imported image has no config; give it a sane PATH and locale.
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --message "launchbay test base ($BASE_SUITE minbase + python3)" \
        - "$BASE_IMAGE" <"$BASE_TAR" >/dev/null
}

verify_docker() {
    local out
    out="$(docker run --rm --network none "$BASE_IMAGE" python3 -c 'print(1)')" ||
        die "docker: smoke container failed"
    [[ "$out" == 1 ]] || die "docker: smoke container printed '$out'"
}

# ------------------------------------------------------------------ sshd ---

SSH_PORT=2222

start_sshd() {
    local d="$SERVICES_DIR/sshd"
    ensure_apt openssh-server openssh-client rsync
    mkdir -p "$d" /run/sshd # /run/sshd: sshd's privilege-separation dir
    chmod 700 "$d"
    [[ -f "$d/host_ed25519" ]] ||
        ssh-keygen -q -t ed25519 -N '' -C launchbay-test-host -f "$d/host_ed25519"
    [[ -f "$d/client_ed25519" ]] ||
        ssh-keygen -q -t ed25519 -N '' -C launchbay-test-client -f "$d/client_ed25519"
    cp "$d/client_ed25519.pub" "$d/authorized_keys"
    write_sshd_config "$d"

    if pid_alive sshd sshd; then
        log "sshd: already running (pid $(<"$(pid_file sshd)"))"
    else
        /usr/sbin/sshd -t -f "$d/sshd_config" || die "sshd: bad config $d/sshd_config"
        # -D: stay in the foreground so $! is the listener's PID; -e: log to
        # stderr (our log file) since there is no syslog here.
        spawn sshd "$d/sshd.log" /usr/sbin/sshd -D -e -f "$d/sshd_config"
        if ! wait_until -p sshd 15 "sshd on 127.0.0.1:$SSH_PORT" \
            ssh-keyscan -T 1 -t ed25519 -p "$SSH_PORT" 127.0.0.1; then
            show_logs "$d/sshd.log"
            die "sshd did not become ready"
        fi
    fi

    # ssh-keyscan writes "[127.0.0.1]:2222 ssh-ed25519 AAAA..." for a
    # non-default port: the form both OpenSSH and asyncssh read.
    ssh-keyscan -T 5 -t ed25519 -p "$SSH_PORT" 127.0.0.1 2>/dev/null >"$d/known_hosts.tmp"
    [[ -s "$d/known_hosts.tmp" ]] || die "sshd: ssh-keyscan returned nothing"
    mv "$d/known_hosts.tmp" "$d/known_hosts"

    env_set sshd LAUNCHBAY_TEST_SSH_HOST=127.0.0.1 "LAUNCHBAY_TEST_SSH_PORT=$SSH_PORT" \
        LAUNCHBAY_TEST_SSH_USER=root "LAUNCHBAY_TEST_SSH_KEY=$d/client_ed25519" \
        "LAUNCHBAY_TEST_SSH_KNOWN_HOSTS=$d/known_hosts"
    verify_sshd "$d"
}

write_sshd_config() {
    local d="$1"
    # StrictModes no: the scratch dir lives under /tmp. UsePAM no: no PAM
    # stack is configured for a second sshd. Subsystem sftp: asyncssh/scp.
    # Generous MaxStartups/MaxSessions: tests open many short connections.
    cat >"$d/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 100
LogLevel INFO
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

verify_sshd() {
    local d="$1" out
    out="$(ssh -i "$d/client_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o UserKnownHostsFile="$d/known_hosts" -o StrictHostKeyChecking=yes \
        -p "$SSH_PORT" root@127.0.0.1 python3 --version 2>&1)" ||
        {
            show_logs "$d/sshd.log"
            die "sshd: test login failed: $out"
        }
    [[ "$out" == Python* ]] || die "sshd: unexpected output '$out'"
}

# ----------------------------------------------------------------- slurm ---

start_slurm() {
    local d="$SERVICES_DIR/slurm"
    ensure_apt slurm-wlm munge
    mkdir -p "$d/state" "$d/spool"
    ensure_munge "$d"
    write_slurm_conf "$d"
    export SLURM_CONF="$d/slurm.conf"

    if pid_alive slurmctld slurmctld; then
        log "slurm: slurmctld already running"
    else
        spawn slurmctld "$d/slurmctld.out" slurmctld -D -f "$SLURM_CONF"
    fi
    if pid_alive slurmd slurmd; then
        log "slurm: slurmd already running"
    else
        spawn slurmd "$d/slurmd.out" slurmd -D -f "$SLURM_CONF" -N localhost
    fi
    if ! wait_until -p slurmctld -p slurmd 30 "slurm node localhost IDLE" slurm_node_idle; then
        scontrol show node localhost >&2 || true
        show_logs "$d/slurmctld.log" "$d/slurmd.log" "$d/slurmctld.out" "$d/slurmd.out"
        die "slurm did not become ready"
    fi
    env_set slurm "SLURM_CONF=$SLURM_CONF" LAUNCHBAY_TEST_SLURM=1
    verify_slurm "$d"
}

# munged needs a key readable only by munge. The Debian package creates one;
# make one if it is missing. Reuse a munged that already answers.
ensure_munge() {
    local d="$1" key=/etc/munge/munge.key
    if [[ ! -s "$key" ]]; then
        log "slurm: creating $key"
        mkdir -p /etc/munge
        head -c 1024 /dev/urandom >"$key"
    fi
    chown munge:munge "$key"
    chmod 400 "$key"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    munge_ok && return 0
    pid_alive munge munged && return 0
    # setpriv execs (no fork), so the recorded PID is munged itself.
    spawn munge "$d/munged.out" setpriv --reuid=munge --regid=munge --init-groups \
        /usr/sbin/munged --foreground
    if ! wait_until -p munge 15 "munged" munge_ok; then
        show_logs "$d/munged.out" /var/log/munge/munged.log
        die "munged did not become ready"
    fi
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

slurm_node_idle() {
    local st
    st="$(scontrol show node localhost 2>/dev/null | sed -n 's/.*[[:space:]]State=\([^ ]*\).*/\1/p')"
    case "$st" in
        IDLE) return 0 ;;
        # Saved state from an earlier run can leave the node DOWN ("unexpected
        # reboot") or drained; this is a throwaway test cluster, so resume it.
        *DOWN* | *DRAIN*) scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
    esac
    return 1
}

write_slurm_conf() {
    local d="$1"
    # As in ENGINES.md: single node, no cgroups, no accounting database.
    cat >"$d/slurm.conf" <<EOF
ClusterName=test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerParameters=batch_sched_delay=0
MinJobAge=300
MailProg=/bin/true
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

verify_slurm() {
    local d="$1" jid
    rm -f "$d/verify.out"
    jid="$(sbatch --parsable -J launchbay-verify -o "$d/verify.out" --wrap 'echo launchbay-ok')" ||
        die "slurm: sbatch failed"
    jid="${jid%%;*}"
    if ! wait_until 30 "slurm job $jid" slurm_job_done "$jid"; then
        scontrol show job "$jid" >&2 || true
        die "slurm: test job $jid did not complete"
    fi
    scontrol show job "$jid" | grep -q 'JobState=COMPLETED' ||
        die "slurm: test job $jid ended as $(scontrol show job "$jid" | grep -o 'JobState=[A-Z_]*')"
    grep -q launchbay-ok "$d/verify.out" || die "slurm: test job output missing"
}

slurm_job_done() {
    scontrol show job "$1" 2>/dev/null |
        grep -Eq 'JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)'
}

# ------------------------------------------------------------------- ray ---

RAY_DASHBOARD=http://127.0.0.1:8265

start_ray() {
    local d="$SERVICES_DIR/ray" venv="${LAUNCHBAY_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv}"
    mkdir -p "$d"
    [[ -x "$venv/bin/ray" ]] || die "ray: $venv/bin/ray missing (pip install 'ray[default]' into LAUNCHBAY_VENV)"
    # Without this Ray swaps 127.0.0.1 for the machine's address and binds there.
    export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
    # "Activate" the venv: a job's `python` comes from ray start's PATH.
    export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"

    if pid_alive ray gcs_server && ray_dashboard_ok; then
        log "ray: already running (gcs_server pid $(<"$(pid_file ray)"))"
    elif ray_dashboard_ok; then
        log "ray: a Ray cluster not started by us answers on $RAY_DASHBOARD; using it"
    else
        # setsid: Ray's daemons get their own session, away from signals
        # aimed at the caller's process group (pytest, CI step).
        if ! setsid ray start --head --node-ip-address=127.0.0.1 --port=6379 \
            --dashboard-host=127.0.0.1 --dashboard-port=8265 --num-cpus=2 \
            --object-store-memory=200000000 --disable-usage-stats \
            --include-dashboard=true </dev/null >"$d/ray-start.log" 2>&1; then
            show_logs "$d/ray-start.log"
            die "ray start failed"
        fi
        if ! wait_until 90 "ray dashboard $RAY_DASHBOARD" ray_dashboard_ok; then
            show_logs "$d/ray-start.log" /tmp/ray/session_latest/logs/dashboard.log
            die "ray dashboard did not become ready"
        fi
        record_ray_pids
    fi
    env_set ray "LAUNCHBAY_TEST_RAY_ADDRESS=$RAY_DASHBOARD"
}

ray_dashboard_ok() {
    curl -fsS --noproxy '*' -m 2 "$RAY_DASHBOARD/api/version" >/dev/null 2>&1
}

# Ray daemonizes everything; remember its GCS and raylet so stop.sh can
# verify `ray stop` really took them down (and for the idempotency check).
record_ray_pids() {
    local pid
    pid="$(pgrep -n -f 'gcs_server.*--gcs_server_port=6379' || true)"
    [[ -z "$pid" ]] || record_pid ray "$pid"
    pid="$(pgrep -n -f '/raylet .*--gcs-address=127.0.0.1:6379' || true)"
    [[ -z "$pid" ]] || record_pid ray-raylet "$pid"
}

# -------------------------------------------------------------- postgres ---

# A throwaway PostgreSQL 15 cluster (Debian's packages; the package's own
# cluster is never started): owned by the postgres user, in a folder it can
# enter, listening on 127.0.0.1 and on a socket in that folder only. The
# superuser logs in over the socket (trust); over TCP every role needs its
# password (scram-sha-256), so the team-store tests exercise PGPASSFILE the
# way a user's ~/.pgpass works. Roles: lb (owns the launchbay database) and
# lb_reader (read-only grants, given per schema by the tests).
PG_PORT=55432
PG_BIN=/usr/lib/postgresql/15/bin

start_postgres() {
    local d="$SERVICES_DIR/postgres" data
    ensure_apt postgresql
    data="$d/data"
    mkdir -p "$d"
    chown postgres:postgres "$d"
    chmod 700 "$d"
    if [[ ! -s "$data/PG_VERSION" ]]; then
        log "postgres: initdb $data"
        runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -U postgres \
            --auth-local=trust --auth-host=scram-sha-256 >"$d/initdb.log" 2>&1 ||
            {
                show_logs "$d/initdb.log"
                die "postgres: initdb failed"
            }
    fi
    # our own cluster's postmaster (after a restart in a fault test it is a new process)
    [[ ! -s "$data/postmaster.pid" ]] ||
        record_pid postgres "$(head -n 1 "$data/postmaster.pid")"
    if pid_alive postgres postgres; then
        log "postgres: already running (pid $(<"$(pid_file postgres)"))"
    else
        # -w: pg_ctl returns once the server accepts connections
        if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$d/postgres.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $d -c max_connections=300" start >&2; then
            show_logs "$d/postgres.log"
            die "postgres did not start"
        fi
        record_pid postgres "$(head -n 1 "$data/postmaster.pid")"
    fi
    pg_admin -v ON_ERROR_STOP=1 -q <<'SQL' || die "postgres: creating the test roles failed"
SELECT 'CREATE ROLE lb LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lb') \gexec
SELECT 'CREATE ROLE lb_reader LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lb_reader') \gexec
SELECT 'CREATE DATABASE launchbay OWNER lb' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'launchbay') \gexec
SQL
    # The passwords are throwaway ones of this loopback-only cluster; they
    # live in a pgpass file (mode 600), never on a command line or in a URL.
    [[ -s "$d/pgpass" ]] || {
        umask 077
        printf '127.0.0.1:%s:*:lb:%s\n127.0.0.1:%s:*:lb_reader:%s\n' \
            "$PG_PORT" "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" \
            "$PG_PORT" "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" >"$d/pgpass"
    }
    local role pw
    for role in lb lb_reader; do
        pw="$(awk -F: -v r="$role" '$4 == r { print $5 }' "$d/pgpass")"
        printf "ALTER ROLE %s PASSWORD '%s';\n" "$role" "$pw" | pg_admin -q -v ON_ERROR_STOP=1 ||
            die "postgres: setting the $role password failed"
    done
    env_set postgres "LAUNCHBAY_TEST_PG=postgresql://lb@127.0.0.1:$PG_PORT/launchbay" \
        "LAUNCHBAY_TEST_PG_READER=postgresql://lb_reader@127.0.0.1:$PG_PORT/launchbay" \
        "LAUNCHBAY_TEST_PGPASSFILE=$d/pgpass" "LAUNCHBAY_TEST_PG_DATA=$data"
    verify_postgres "$d"
}

pg_admin() {
    runuser -u postgres -- psql -X -h "$SERVICES_DIR/postgres" -p "$PG_PORT" -U postgres -d postgres "$@"
}

verify_postgres() {
    local out
    out="$(PGPASSFILE="$1/pgpass" psql -X -At -h 127.0.0.1 -p "$PG_PORT" -U lb -d launchbay \
        -c 'SELECT 1' 2>&1)" || die "postgres: login as lb failed: $out"
    [[ "$out" == 1 ]] || die "postgres: unexpected output '$out'"
}

# -------------------------------------------------------------------- s3 ---

# moto's standalone server: an S3 *emulator* over real HTTP (no MinIO,
# SeaweedFS or Garage installs from the registries here). It keeps objects in
# memory, so a restart empties it; the bucket is made again on every start.
S3_PORT=55900
S3_BUCKET=launchbay-test

start_s3() {
    local d="$SERVICES_DIR/s3" venv="${LAUNCHBAY_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv}"
    mkdir -p "$d"
    [[ -x "$venv/bin/moto_server" ]] || die "s3: $venv/bin/moto_server missing (pip install 'moto[server]' into LAUNCHBAY_VENV)"
    if pid_alive s3 moto_server; then
        log "s3: moto_server already running (pid $(<"$(pid_file s3)"))"
    else
        spawn s3 "$d/moto.log" "$venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
        if ! wait_until -p s3 30 "moto_server on 127.0.0.1:$S3_PORT" s3_answers; then
            show_logs "$d/moto.log"
            die "moto_server did not become ready"
        fi
    fi
    curl -fsS --noproxy '*' -m 5 -X PUT "http://127.0.0.1:$S3_PORT/$S3_BUCKET" >/dev/null ||
        die "s3: creating bucket $S3_BUCKET failed"
    # moto accepts any keys; these are what boto3 signs with
    env_set s3 "LAUNCHBAY_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT" \
        "LAUNCHBAY_TEST_S3_BUCKET=$S3_BUCKET" LAUNCHBAY_TEST_S3_KEY_ID=testing \
        LAUNCHBAY_TEST_S3_SECRET=testing
}

s3_answers() { curl -fsS --noproxy '*' -m 2 "http://127.0.0.1:$S3_PORT/" >/dev/null 2>&1; }

# -------------------------------------------------------------- registry ---

# Debian's docker-registry (the Distribution project's registry 2.8), twice on
# loopback: an open one, and a private one with htpasswd (bcrypt) auth for the
# credentials case. dockerd lets 127.0.0.1 registries speak plain HTTP, so
# `docker push 127.0.0.1:PORT/NAME` needs no TLS. Storage is a folder each;
# images pushed there outlive a restart (stop.sh keeps the folders).
REGISTRY_PORT=55500
PRIVATE_REGISTRY_PORT=55501
REGISTRY_USER=launchbay

start_registry() {
    local d="$SERVICES_DIR/registry" pw
    ensure_apt docker-registry apache2-utils
    mkdir -p "$d/open" "$d/private"
    chmod 700 "$d"
    [[ -s "$d/password" ]] || {
        umask 077
        head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$d/password"
    }
    pw="$(<"$d/password")"
    htpasswd -Bbn "$REGISTRY_USER" "$pw" >"$d/htpasswd" 2>/dev/null || die "registry: htpasswd failed"
    write_registry_config "$d/open.yml" "$d/open" "$REGISTRY_PORT" ""
    write_registry_config "$d/private.yml" "$d/private" "$PRIVATE_REGISTRY_PORT" "$d/htpasswd"
    local name port
    for name in open private; do
        port="$REGISTRY_PORT"
        [[ "$name" == open ]] || port="$PRIVATE_REGISTRY_PORT"
        if pid_alive "registry-$name" docker-registry; then
            log "registry: $name one already running (pid $(<"$(pid_file "registry-$name")"))"
            continue
        fi
        spawn "registry-$name" "$d/$name.log" docker-registry serve "$d/$name.yml"
        if ! wait_until -p "registry-$name" 20 "registry on 127.0.0.1:$port" registry_answers "$port"; then
            show_logs "$d/$name.log"
            die "the $name registry did not become ready"
        fi
    done
    env_set registry "LAUNCHBAY_TEST_REGISTRY=127.0.0.1:$REGISTRY_PORT" \
        "LAUNCHBAY_TEST_PRIVATE_REGISTRY=127.0.0.1:$PRIVATE_REGISTRY_PORT" \
        "LAUNCHBAY_TEST_REGISTRY_USER=$REGISTRY_USER" "LAUNCHBAY_TEST_REGISTRY_PASSWORD=$pw"
    verify_registry "$pw"
}

write_registry_config() {
    local file="$1" root="$2" port="$3" htpasswd="$4"
    {
        printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$root"
        printf '  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$port"
        if [[ -n "$htpasswd" ]]; then
            printf 'auth:\n  htpasswd:\n    realm: launchbay-test\n    path: %s\n' "$htpasswd"
        fi
    } >"$file"
}

# /v2/ answers 200 (open) or 401 (auth): either way the registry is up.
registry_answers() {
    local code
    code="$(curl -s --noproxy '*' -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/")"
    [[ "$code" == 200 || "$code" == 401 ]]
}

verify_registry() {
    local code
    code="$(curl -s --noproxy '*' -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PRIVATE_REGISTRY_PORT/v2/")"
    [[ "$code" == 401 ]] || die "registry: the private one answered $code without credentials (want 401)"
    code="$(curl -s --noproxy '*' -m 5 -o /dev/null -w '%{http_code}' -u "$REGISTRY_USER:$1" \
        "http://127.0.0.1:$PRIVATE_REGISTRY_PORT/v2/")"
    [[ "$code" == 200 ]] || die "registry: the private one answered $code with the test credentials (want 200)"
}

# ------------------------------------------------------------------ main ---

main() {
    ((EUID == 0)) || die "must run as root (starts system daemons, may apt-get install)"
    expand_services "$@"
    mkdir -p "$SERVICES_DIR"
    touch "$ENV_FILE"
    local s t0 t1
    for s in "${SERVICES[@]}"; do
        t0="$(date +%s.%N)"
        "start_$s"
        t1="$(date +%s.%N)"
        log "$s ready ($(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s)"
    done
    log "environment: source $ENV_FILE"
}

main "$@"
