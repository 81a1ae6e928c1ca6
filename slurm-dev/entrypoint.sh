#!/usr/bin/env bash
# One entrypoint for every Slurm role; compose's `command` picks the role.
#   init       make the cluster's secrets once (munge key, database password)
#   slurmdbd   accounting daemon          slurmctld  controller
#   slurmd     compute node (dynamic)     login      where users work
# Each role waits for what it needs, then execs its daemon in the foreground.
# Anything else is run as a command (with munge up), e.g. `bash`.
set -euo pipefail

secrets=/run/lab-secrets   # the database password: db, slurmdbd and init only
munge_dir=/run/lab-munge   # the munge key: every Slurm node
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
    mkdir -p "$secrets" "$munge_dir"
    # Clusters made before the key had a volume of its own kept it beside the
    # password: keep using that key, so their nodes still agree.
    if [ ! -s "$munge_dir/munge.key" ] && [ -s "$secrets/munge.key" ]; then
        cp "$secrets/munge.key" "$munge_dir/munge.key.tmp"
        mv "$munge_dir/munge.key.tmp" "$munge_dir/munge.key"
        log "moved the munge key to its own volume"
    fi
    rm -f "$secrets/munge.key"
    if [ ! -s "$munge_dir/munge.key" ]; then
        dd if=/dev/urandom of="$munge_dir/munge.key.tmp" bs=1024 count=1 status=none
        mv "$munge_dir/munge.key.tmp" "$munge_dir/munge.key"
        log "made a new munge key"
    fi
    if [ ! -s "$secrets/db_password" ]; then
        dd if=/dev/urandom bs=64 count=1 status=none | sha256sum | cut -c1-40 >"$secrets/db_password.tmp"
        mv "$secrets/db_password.tmp" "$secrets/db_password"
        log "made a new database password"
    fi
    chmod 0400 "$secrets"/* "$munge_dir"/*
    chmod 0700 "$secrets" "$munge_dir"  # the volumes' roots: nobody but root lists them
}

start_munge() {
    [ -s "$munge_dir/munge.key" ] || { log "error: no munge key in $munge_dir (run the init service)"; exit 1; }
    install -o munge -g munge -m 0400 "$munge_dir/munge.key" /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    # munged checks the key's and its folders' permissions itself: no --force.
    runuser -u munge -- /usr/sbin/munged
}

# The learner takes the uid and gid of the host folders' owner (LAB_UID,
# LAB_GID from make up), the same on every node, so files written in ~/work
# belong to them on the host. passwd and group are edited directly: usermod
# would also chown the home folder, host folders included.
map_learner() {
    local uid=${LAB_UID:-1000} gid=${LAB_GID:-1000} taken
    [[ $uid =~ ^[0-9]+$ && $gid =~ ^[0-9]+$ ]] && ((uid > 0 && gid > 0)) \
        || { log "error: LAB_UID and LAB_GID must be a user's uid and gid, not root's (got $uid:$gid)"; exit 1; }
    taken=$(getent passwd "$uid" | cut -d: -f1) || true  # none: getent exits 2
    if [ -n "$taken" ] && [ "$taken" != learner ]; then
        log "error: uid $uid (LAB_UID, the host folders' owner) is $taken's in the image; give the folders to another user"
        exit 1
    fi
    taken=$(getent group "$gid" | cut -d: -f1) || true
    case $taken in root|munge|slurm|shadow|mysql)
        log "error: gid $gid (LAB_GID) is the $taken group's in the image; give the folders to another group"
        exit 1 ;;
    esac
    if [ "$(id -u learner)" != "$uid" ] || [ "$(id -g learner)" != "$gid" ]; then
        sed -i -E "s/^learner:([^:]*):[0-9]+:[0-9]+:/learner:\1:$uid:$gid:/" /etc/passwd
        sed -i -E "s/^learner:([^:]*):[0-9]+:/learner:\1:$gid:/" /etc/group
    fi
}

# The strict site (make up SITE=strict: slurm-dev/strict.yaml sets LAB_STRICT
# and LAB_DIRECTORY): its Slurm settings over the plain ones, on every node
# alike, and its learners from the directory (nslcd), as on a site whose users
# are in LDAP and in no node's /etc/passwd.
strict_site() {
    [ "${LAB_STRICT:-0}" = 1 ] || return 0
    local conf=/etc/slurm/slurm.conf key
    if ! grep -q '^# strict site' "$conf"; then
        for key in $(grep -o '^[A-Za-z]*=' /etc/slurm/strict/slurm.conf); do sed -i "/^$key/d" "$conf"; done
        { echo "# strict site (slurm-dev/strict/slurm.conf)"; cat /etc/slurm/strict/slurm.conf; } >>"$conf"
        cp /etc/slurm/strict/job_submit.lua /etc/slurm/job_submit.lua
    fi
}

start_directory() {
    [ -n "${LAB_DIRECTORY:-}" ] || return 0
    printf 'uid nslcd\ngid nslcd\nuri %s\nbase dc=lab,dc=example\n' "$LAB_DIRECTORY" >/etc/nslcd.conf
    chmod 0640 /etc/nslcd.conf && chgrp nslcd /etc/nslcd.conf
    sed -i -E 's/^(passwd|group):.*/\1: files ldap/' /etc/nsswitch.conf
    install -d -o nslcd -g nslcd /run/nslcd
    /usr/sbin/nslcd
    local deadline=$((SECONDS + 120))
    until getent passwd learner01 >/dev/null; do
        ((SECONDS < deadline)) || { log "error: the directory ($LAB_DIRECTORY) has no learner01"; exit 1; }
        sleep 0.5
    done
}

# The directory's learners (uid, name), for accounts and homes.
directory_learners() { getent passwd | awk -F: '$4 == 2000 {print $3, $1}'; }

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
# /run/lab-role says this role's start is done (health check, `started`):
# a restarted container has it from its last run until then.
rm -f /run/lab-role
if [ "$role" != init ]; then
    map_learner
    strict_site
    start_directory
fi
# FUSE for the learners' Apptainer (squashfuse), where compose gives the node
# /dev/fuse (slurm-dev/apptainer.yaml): root's alone as Docker makes it.
[ -c /dev/fuse ] && chmod 0666 /dev/fuse
case "$role" in
init)
    make_secrets
    ;;
slurmdbd)
    start_munge
    wait_for_port db 3306 180
    password=$(cat "$secrets/db_password")
    # Private from its first byte: made 0600 before the password is written.
    install -o slurm -g slurm -m 0600 /dev/null /etc/slurm/slurmdbd.conf
    sed "s|@DB_PASSWORD@|$password|" /etc/slurm/slurmdbd.conf.in >/etc/slurm/slurmdbd.conf
    echo slurmdbd >/run/lab-role
    exec /usr/sbin/slurmdbd -D
    ;;
slurmctld)
    start_munge
    wait_for_port slurmdbd 6819 180
    chown slurm:slurm /var/spool/slurmctld
    # Register the cluster, its account and the lab user before any job can
    # be submitted (AccountingStorageEnforce). Idempotent across restarts.
    # (slurmdbd may answer its port a moment before it serves queries: retry.)
    deadline=$((SECONDS + 60))
    until sacctmgr -n -P show assoc user=learner format=account 2>/dev/null | grep -qx lab; do
        ((SECONDS < deadline)) || { log "error: could not register user learner in accounting"; exit 1; }
        sacctmgr -i add cluster lab >/dev/null 2>&1 || true
        sacctmgr -i add account lab Cluster=lab Description=dask-slurm-lab >/dev/null 2>&1 || true
        sacctmgr -i add user learner Account=lab DefaultAccount=lab >/dev/null 2>&1 || sleep 0.5
    done
    # The strict site's learners, in its workshop account named as Alliance
    # names one (def-<sponsor>_cpu), with per-user limits as sites set them.
    if [ -n "${LAB_DIRECTORY:-}" ]; then
        names=$(directory_learners | awk '{print $2}' | paste -sd,)
        sacctmgr -i add account def-prof1_cpu Cluster=lab Description="the workshop's allocation" >/dev/null 2>&1 || true
        sacctmgr -i add user "$names" Account=def-prof1_cpu DefaultAccount=def-prof1_cpu >/dev/null 2>&1 || true
        sacctmgr -i modify user where account=def-prof1_cpu set MaxJobs=8 MaxSubmitJobs=12 >/dev/null 2>&1 || true
        registered=$(sacctmgr -n -P show assoc account=def-prof1_cpu format=user | grep -c . || true)
        log "directory learners in account def-prof1_cpu: $registered"
    fi
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
    # The node's size, decided in compose.yaml: its CPUs from NODE_CPUS, its
    # memory what this container may use (mem_limit), read from its cgroup.
    cpus=${NODE_CPUS:?compose.yaml sets NODE_CPUS}
    limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
    case $limit in ''|max|*[!0-9]*) log "error: this node has no memory limit (compose.yaml's mem_limit)"; exit 1 ;; esac
    conf="NodeAddr=$address NodeHostname=$(hostname) CPUs=$cpus Boards=1 SocketsPerBoard=1"
    conf+=" CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$((limit / 1048576)) Feature=compute"
    # slurmctld keeps a dynamic node's address as the IP it registered from,
    # and a restarted container may have another IP (the old one may even be
    # another container's now). Point a remembered node at this container,
    # then forget it (refused, harmlessly, while it still has jobs from before
    # the stop; slurmd's registration then clears those).
    scontrol update nodename="$name" nodeaddr="$address" nodehostname="$(hostname)" >/dev/null 2>&1 || true
    scontrol delete nodename="$name" >/dev/null 2>&1 || true
    log "registering dynamic node $name ($conf)"
    echo slurmd >/run/lab-role
    echo "$name" >/run/lab-node
    # Pin the node (slurmd and every job it starts) to host cores of its own:
    # node N takes the NODE_CPUS cores after node N-1's, wrapping around the
    # host's. Where nodes x NODE_CPUS exceed the host's cores they share some,
    # and the study's limit column counts the cores its workers really have.
    pin=()
    if [[ $name =~ ^compute-([0-9]+)$ ]] && command -v taskset >/dev/null; then
        list=$(node-cores "${BASH_REMATCH[1]}" "$cpus")
        if [ -n "$list" ] && taskset -c "$list" true 2>/dev/null; then
            pin=(taskset -c "$list")
            log "node $name pinned to host cores $list"
        fi
    fi
    exec "${pin[@]}" /usr/sbin/slurmd -D -Z -N "$name" --conf "$conf"
    ;;
login)
    # The strict site's login node is on two networks; eth0 is the site
    # network, where the default route goes. Its route to the controller
    # names the cluster's address and interface, for two things:
    # - Docker names the node by the site address first; munge puts that in
    #   every credential, which the controller cannot look up (srun timed
    #   out). As on a site, the node's name is its cluster address.
    # - The dask config for the lesson's own scripts names that network, as a
    #   site that supports Dask writes it: the scheduler's interface only (a
    #   compute node has no such interface; its workers find the scheduler).
    if [ "${LAB_STRICT:-0}" = 1 ]; then
        route=$(ip -o route get "$(getent hosts slurmctld | awk '{print $1; exit}')")
        address=$(grep -o 'src [^ ]*' <<<"$route" | cut -d' ' -f2)
        cluster_if=$(grep -o 'dev [^ ]*' <<<"$route" | cut -d' ' -f2)
        hosts=$(grep -vE "[[:space:]]$(hostname)\$" /etc/hosts)
        printf '%s\t%s\n%s\n' "$address" "$(hostname)" "$hosts" >/etc/hosts  # in place: Docker binds the file
        if ! grep -q scheduler-options /etc/dask/lab.yaml; then
            sed -i -E -e "s/^( *)interface:.*/\1interface: null\n\1scheduler-options: {interface: $cluster_if}/" \
                -e 's/^( *)local-directory:.*/\1local-directory: $SLURM_TMPDIR/' /etc/dask/lab.yaml
            log "the lesson's scripts: the scheduler on $cluster_if, workers' space in \$SLURM_TMPDIR (/etc/dask/lab.yaml)"
        fi
    fi
    start_munge
    wait_for_port slurmctld 6817 180
    # Jobs from before this login node started have lost their client (lab
    # run, the lesson's script, its Dask scheduler): none may run again.
    # (cluster-ready waits for their nodes to be idle again.) First: they are
    # the learner's processes that could change the home while it is given.
    squeue -h -o %i >/run/lab-orphans 2>/dev/null || true
    cancel-jobs "from before the login node started" 0
    # The learner owns their home (the cluster's volume), after a change of
    # LAB_UID too: given by give-home, which follows no link and does nothing
    # when the uid is unchanged. The host folders in it keep their owner,
    # whose uid the learner has.
    give-home /home/learner learner work results
    for folder in /home/learner/work /home/learner/results; do
        [ "$(stat -c %u "$folder")" = "$(id -u learner)" ] || log "warning: $folder is owned by uid" \
            "$(stat -c %u "$folder"), the learner is $(id -u learner): start the cluster with make up"
    done
    # The directory's learners get a home on first start, as pam_mkhomedir
    # gives one, and the strict site's file systems a folder of each one's
    # (/scratch/<name>) and the workshop allocation's (/project/def-prof1,
    # its group's), as Alliance sites have them.
    directory_learners | while read -r uid name; do
        [ -d "/home/$name" ] || install -d -o "$uid" -g 2000 -m 0700 "/home/$name"
        [ ! -d /scratch ] || [ -d "/scratch/$name" ] || install -d -o "$uid" -g 2000 -m 0700 "/scratch/$name"
    done
    [ ! -d /project ] || [ -z "${LAB_DIRECTORY:-}" ] || install -d -g 2000 -m 2770 /project/def-prof1
    # Jobs accounting still shows running that the controller lost (every
    # container killed before it saved its state): end them in accounting too.
    sacctmgr -i show runawayjobs >/dev/null 2>&1 || true
    # Compute containers are named <prefix>compute-<n>: cluster-ready finds
    # the nodes whose container is gone by that name.
    self=$(container_name)
    echo "${self%login-*}" >/run/lab-prefix
    echo login >/run/lab-role
    log "login node ready"
    exec sleep infinity
    ;;
*)
    start_munge
    exec "$@"
    ;;
esac
