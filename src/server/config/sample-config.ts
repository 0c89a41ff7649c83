/**
 * The configuration written at first start when the data directory has none: valid as it
 * stands (an empty inventory), with every section shown in comments. The full reference is
 * docs/server-config.md; contrib/coffer.yaml is a complete example.
 */
export const FIRST_START_CONFIG = `# Coffer server configuration (docs/server-config.md lists every key).
# Edit this file and restart, or change it through the API (PUT /api/v1/config): every change
# is validated, versioned and audit-logged.

security:
  four-eyes: false          # true: deleting a user waits for a second administrator
  session-hours: 12

repositories: []
#  - name: main
#    url: /srv/coffer/main          # or s3:https://HOST/BUCKET/PREFIX
#    passphrase-file: /etc/coffer/main.passphrase

hosts: []
#  - name: hv1
#    address: hv1.example.org
#    datastores: [ssd1]

vms: []
#  - name: web1
#    host: hv1
#    datastore: ssd1
#    source: { qmp: /run/qemu/web1.qmp, scratch-dir: /var/lib/coffer/scratch }   # or { images: [paths] } or { libvirt: { uri, domain } }
#    tags: [web]
#    rpo: 26h

jobs: []
#  - name: nightly
#    select: { tags: [web] }
#    repository: main
#    schedule: "mon..fri 22:00"
#    timezone: Europe/Berlin
#    retention: { keep-daily: 7, keep-weekly: 4 }

limits:
  per-host: 1
`;
