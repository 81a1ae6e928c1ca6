#!/usr/bin/env bash
# MariaDB for Slurm's accounting. The data directory lives on a volume; on
# first start it is initialised with the password made by the init service.
set -euo pipefail
rm -f /run/lab-role  # from a run before a restart: set again below
password=$(cat /run/lab-secrets/db_password)
datadir=/var/lib/mysql

if [ ! -d "$datadir/mysql" ]; then
    echo "initialising the accounting database in $datadir" >&2
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
    mariadbd --user=mysql --datadir="$datadir" --skip-networking --bootstrap <<SQL
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'%' IDENTIFIED BY '$password';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'%';
SQL
fi
# Slurm recommends a larger buffer pool and lock wait for slurmdbd.
echo db >/run/lab-role  # its start done (make bench reads when)
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 \
    --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900
