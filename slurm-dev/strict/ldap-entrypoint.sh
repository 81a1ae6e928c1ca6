#!/bin/sh
# The strict site's directory: LAB_LEARNERS learners (learner01, learner02,
# ...; uids from 2001, group learners 2000), in LDAP alone, as a site's users
# are: no node has them in /etc/passwd. Read-only and anonymous, as nslcd reads
# a site's directory; no password is stored for anyone (learners reach the
# login node through docker compose exec, as the tests do, not by a login).
# Made anew at each start from LAB_LEARNERS: nothing in it is data to keep.
set -eu
count=${LAB_LEARNERS:-8}
case $count in ''|*[!0-9]*) echo "error: LAB_LEARNERS must be a whole number (got '$count')" >&2; exit 1 ;; esac
base=dc=lab,dc=example
data=/var/lib/ldap
rm -rf "${data:?}"/*
cat >/etc/ldap/slapd.conf <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile /run/slapd/slapd.pid
database mdb
suffix "$base"
directory $data
maxsize 16777216
index objectClass,uid,uidNumber,gidNumber,memberUid eq
access to * by * read
CONF
{
    printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: lab\no: dask-slurm-lab\n\n' "$base"
    for unit in people groups; do printf 'dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n' "$unit" "$base" "$unit"; done
    printf 'dn: cn=learners,ou=groups,%s\nobjectClass: posixGroup\ncn: learners\ngidNumber: 2000\n\n' "$base"
    i=1
    while [ "$i" -le "$count" ]; do
        name=$(printf 'learner%02d' "$i")
        printf 'dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n' "$name" "$base"
        printf 'uid: %s\ncn: %s\nsn: %s\nuidNumber: %d\ngidNumber: 2000\n' "$name" "$name" "$name" $((2000 + i))
        printf 'homeDirectory: /home/%s\nloginShell: /bin/bash\n\n' "$name"
        i=$((i + 1))
    done
} | slapadd -q -f /etc/ldap/slapd.conf
chown -R openldap:openldap "$data"
install -d -o openldap -g openldap /run/slapd
echo "directory ready: $count learners (learner01..$(printf 'learner%02d' "$count"))" >&2
exec slapd -d 0 -h ldap:/// -u openldap -g openldap -f /etc/ldap/slapd.conf
