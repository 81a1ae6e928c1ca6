#!/usr/bin/env bash
# One entrypoint for every Slurm role; compose's `command` picks the role.
#   init       make the cluster's secrets once (munge key, database password)
#   slurmdbd   accounting daemon          slurmctld  controller
#   slurmd     compute node (dynamic)     login      where users work
# Each role waits for what it needs, then execs its daemon in the foreground.
# Anything else is run as a command (with munge up), e.g. `bash`.
set -euo pipefail

secrets=/run/lab-secrets
log() { echo "[$(date +%T)] $*" >&2; }

wait_for_port() {  # host port seconds
    local deadline=$((SECONDS + ${3:-120}))
    until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
        ((SECONDS < deadline)) || { log "error: $1:$2 did not answer"; exit 1; }
        sleep 0.5
    done
}

make_secrets() {
    umask 077
    mkdir -p "$secrets"
    if [ ! -s "$secrets/munge.key" ]; then
        dd if=/dev/urandom of="$secrets/munge.key.tmp" bs=1024 count=1 status=none
        mv "$secrets/munge.key.tmp" "$secrets/munge.key"
        log "made a new munge key"
    fi
    if [ ! -s "$secrets/db_password" ]; then
        dd if=/dev/urandom bs=64 count=1 status=none | sha256sum | cut -c1-40 >"$secrets/db_password.tmp"
        mv "$secrets/db_password.tmp" "$secrets/db_password"
        log "made a new database password"
    fi
    chmod 0400 "$secrets"/*
    chmod 0700 "$secrets"  # the volume's root: nobody but root lists it
}

start_munge() {
    [ -s "$secrets/munge.key" ] || { log "error: no munge key in $secrets (run the init service)"; exit 1; }
    install -o munge -g munge -m 0400 "$secrets/munge.key" /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged --force
}

# Docker's DNS knows each compute replica by its container name,
# <project>-compute-<n>, whatever its IP. That name is the node's address (so a
# recreated container with a new IP is still found), and compute-<n> is its
# short Slurm node name.
container_name() {
    local ip name
    ip=$(hostname -i | awk '{print $1}')
    name=$(host -W 2 "$ip" 127.0.0.11 2>/dev/null | awk '/pointer/ {print $NF}' | head -1)
    echo "${name%%.*}"
}

role=${1:-login}
case "$role" in
init)
    make_secrets
    ;;
slurmdbd)
    start_munge
    wait_for_port db 3306 180
    password=$(cat "$secrets/db_password")
    sed "s|@DB_PASSWORD@|$password|" /etc/slurm/slurmdbd.conf.in >/etc/slurm/slurmdbd.conf
    chown slurm:slurm /etc/slurm/slurmdbd.conf
    chmod 0600 /etc/slurm/slurmdbd.conf
    echo slurmdbd >/run/lab-role
    exec /usr/sbin/slurmdbd -D
    ;;
slurmctld)
    start_munge
    wait_for_port slurmdbd 6819 180
    chown slurm:slurm /var/spool/slurmctld
    # Register the cluster, its account and the lab user before any job can
    # be submitted (AccountingStorageEnforce). Idempotent across restarts.
    sacctmgr -i add cluster lab >/dev/null 2>&1 || true
    sacctmgr -i add account lab Cluster=lab Description=dask-slurm-lab >/dev/null 2>&1 || true
    sacctmgr -i add user learner Account=lab DefaultAccount=lab >/dev/null 2>&1 || true
    sacctmgr -n -P show assoc user=learner format=account | grep -qx lab \
        || { log "error: could not register user learner in accounting"; exit 1; }
    echo slurmctld >/run/lab-role
    exec runuser -u slurm -- /usr/sbin/slurmctld -D -i
    ;;
slurmd)
    start_munge
    wait_for_port slurmctld 6817 180
    address=$(container_name)
    if [[ $address =~ -(compute-[0-9]+)$ ]]; then
        name=${BASH_REMATCH[1]}
    else
        address=$(hostname) name=$(hostname)
    fi
    cpus=${NODE_CPUS:-2}
    conf="NodeAddr=$address NodeHostname=$(hostname) CPUs=$cpus Boards=1 SocketsPerBoard=1"
    conf+=" CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=${NODE_MEMORY:-2048} Feature=compute"
    # A node left from an earlier container may hold an old address: forget
    # it first (refused, harmlessly, while it still has jobs).
    scontrol delete nodename="$name" >/dev/null 2>&1 || true
    log "registering dynamic node $name ($conf)"
    echo slurmd >/run/lab-role
    echo "$name" >/run/lab-node
    exec /usr/sbin/slurmd -D -Z -N "$name" --conf "$conf"
    ;;
login)
    start_munge
    wait_for_port slurmctld 6817 180
    # The learner owns their home and the host folders bound into it.
    chown learner:learner /home/learner /home/learner/work /home/learner/results
    echo login >/run/lab-role
    log "login node ready"
    exec sleep infinity
    ;;
*)
    start_munge
    exec "$@"
    ;;
esac
