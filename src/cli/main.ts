/**
 * @module cli
 * The `coffer` command: parses the command line, runs a command with the process's streams,
 * and turns every {@link CofferError} into one line on stderr and a documented exit code
 * (exit-codes.ts). Anything else is a bug: one line plus a hint, and exit 1, never a hang.
 */
import { argumentsWithRawBytes } from './raw-arguments.js';
import { Command, CommanderError, Option } from 'commander';
import { CofferError, isCofferError } from '../errors/index.js';
import { carriesData } from '../disk/output-stream.js';
import type { CommandContext } from './context.js';
// Each command's module is imported when that command runs, not at start-up: a command pays
// only for what it uses (`coffer --version` starts in about half the time).
import { exitCodeOf, ExitCode } from './exit-codes.js';
import { keepYoungGenerationSmall } from './young-generation.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const LIMIT_UPLOAD = 'send at most this many bytes per second to repositories (e.g. 20M, 500K)';
const LIMIT_DOWNLOAD = 'receive at most this many bytes per second from repositories (e.g. 20M, 500K)';

/** Builds the program; each action stores its exit code in `result`. */
function buildProgram(context: CommandContext, result: { code: number }, json: boolean): Command {
  const program = new Command('coffer')
    .description('Image-level backup for virtual machines: deduplicated, compressed, encrypted, verifiable.')
    .version('0.1.0')
    .exitOverride()
    // With --json, a usage error is the JSON line runCli writes, not commander's text.
    .configureOutput({ writeOut: (text) => context.stdout.write(text), writeErr: (text) => (json ? undefined : context.stderr.write(text)) })
    .showHelpAfterError('(run with --help for usage)');

  const repoCommand = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .option('-r, --repo <location>', 'repository (default: $COFFER_REPOSITORY)')
      .option('--password-file <path>', 'read the passphrase from a file (default: $COFFER_PASSWORD, $COFFER_PASSWORD_FILE, or a prompt)')
      .option('--json', 'machine-readable output: one JSON document on stdout, progress as JSON lines on stderr')
      .option('--repo-token-file <path>', 'with -r https://…: the repository server token (default: $COFFER_REPO_TOKEN)')
      .option('--repo-fingerprint <sha256>', 'with -r https://…: trust only the server certificate with this SHA-256 fingerprint (default: $COFFER_REPO_FINGERPRINT)')
      .option('--cacert <file>', 'with -r https://…: trust the CA certificates in this PEM file instead of the system\'s');
  const run = (fn: () => Promise<number>) => async () => {
    result.code = await fn();
  };
  // scrypt on libuv's threads while the command's code loads (derive-keys-early.ts; never
  // fails; waits until scrypt is started, a few ms): for every command that opens the
  // repository with its passphrase.
  const deriveKeysEarly = async (command: Command): Promise<void> => {
    await (await import('./derive-keys-early.js')).deriveKeysEarly(command.opts(), context);
  };

  repoCommand('init', 'create a new repository')
    .option('--insecure-no-encryption', 'store data unencrypted (anyone with access to the storage can read it)')
    .option('--block-size <size>', 'block size for disk images, a power of two from 4K to 16M (default 256K)')
    .option('--compression-level <n>', 'zstd level 0-19, 0 for none (default 3)')
    .option('--lock-days <days>', 'S3 Object Lock: keep every snapshot and the data it needs immutable this many days (the bucket must have Object Lock enabled)')
    .option('--lock-mode <mode>', 'with --lock-days: compliance (nobody can shorten it, the default) or governance (users with the bypass right can)')
    .option('--format <n>', 'repository format: 2 (packs: fewer, larger objects, better compression; the default) or 1 (one object per chunk, as Coffer wrote before format 2; move a format 1 repository with coffer sync)')
    .action((options, command: Command) => run(async () => (await import('./commands/init.js')).initCommand(command.opts(), context))());

  repoCommand('backup', 'back up the disks of a VM into a new snapshot (or, with --files, directory trees)')
    .argument('[disk...]', 'disk images or block devices, in the VM\'s disk order; with --files, the paths to back up')
    .option('--files', 'back up the paths given as directory trees into a file snapshot (docs/file-backup.md)')
    .option('--force', 'with --files: read every file, even those unchanged since the last file backup')
    .option('--exclude <glob>', 'with --files: leave out what matches (a name like *.tmp, or a path like /var/cache/**; repeatable)', collect)
    .option('--exclude-file <file>', 'with --files: patterns to exclude, one a line (repeatable)', collect)
    .option('--exclude-caches', 'with --files: leave out the contents of directories holding a valid CACHEDIR.TAG')
    .option('--one-file-system', 'with --files: do not cross into other filesystems (mount points are kept, empty)')
    .option('--exclude-larger-than <size>', 'with --files: leave out files larger than this (e.g. 2G)')
    .option('--stdin', 'back up standard input as one file (a database dump: pg_dump | coffer backup --stdin --stdin-name db.sql)')
    .option('--stdin-name <name>', 'with --stdin: the name the stream is stored under')
    .option('--pre-hook <command>', 'with --files or --stdin: a shell command run before the backup; failing stops it')
    .option('--post-hook <command>', 'with --files or --stdin: a shell command run after the backup, always (also after a failure or Ctrl-C); COFFER_RESULT says how it went')
    .option('--hook-timeout <duration>', 'kill a hook (its whole process group) that runs longer than this (default 10m; e.g. 30s, 5m)')
    .option('--vm <name>', 'the VM\'s name (snapshots of one VM share their parent chain)')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', collect)
    .option('--time <iso8601>', 'record this capture time instead of now: 2026-11-29, 2026-11-29T08:30:00Z or with an offset (+01:00); a time of day needs its zone')
    .option('--host <name>', 'record this hostname instead of this machine\'s; with --files or --stdin, the name the file snapshots are grouped and listed under instead (shown as their VM, NAME:latest; their host stays this machine)')
    .option('--image-snapshot <name>', 'read each image at this internal snapshot (qcow2 qemu-img snapshot -c)')
    .option('--source-format <format>', 'read each image as this format (raw, qcow2, vmdk, vpc, vhdx) instead of the one its content shows: raw for raw disks and volumes, whose guests could write an image header at their start')
    .option('--changed-ranges <file>', 'what changed since --base, per disk in order: a JSON file ([[offset, length], ...] or qemu-img map --output=json of a delta), or an NBD URI with bitmap=NAME for a qemu:dirty-bitmap context (repeatable)', collect)
    .option('--base <snapshot>', 'the snapshot the changed ranges are relative to (blocks outside them are taken from it unread)')
    .option('--verify-unchanged <percent>', 'hash this share of the blocks said to be unchanged and compare with the parent; any mismatch means a full read')
    .option('--no-cache', 'neither use nor write this host\'s block fingerprints ($XDG_CACHE_HOME/coffer): every block read is hashed')
    .option('--pre-capture <command>', 'with --qemu or --libvirt: a shell command run just before the instant of capture (quiesce an application); failing stops the backup')
    .option('--post-capture <command>', 'with --qemu or --libvirt: a shell command run right after it, even when the capture failed')
    .option('--guest-agent <socket>', 'with --qemu: the host end of the VM\'s guest agent channel (default: found through QMP, the org.qemu.guest_agent.0 port)')
    .option('--no-freeze', 'with --qemu or --libvirt: do not freeze the guest\'s filesystems through its agent (the snapshot is crash-consistent)')
    .option('--freeze-timeout <seconds>', 'with --qemu: how long the guest agent may take to flush and freeze (default 60)')
    .option('--scratch-dir <dir>', 'with --qemu or --libvirt: where the VM\'s scratch images go (they hold the old data of what the VM overwrites during the backup; default: the system\'s temporary folder); QEMU must be able to write there')
    .option('--scratch-min-free <size>', 'with --qemu or --libvirt: keep this much free in the scratch filesystem (twice as much to start); with --qemu the backup ends, not the VM\'s writes, when it falls below (default: 5% of that filesystem, 16M to 256M)')
    .option('--qemu <qmp>', 'back up the running QEMU VM behind this QMP monitor (a unix socket, or HOST:PORT): every disk at one instant, only what changed since the last backup')
    .option('--libvirt <domain>', 'back up this running libvirt domain through libvirt\'s backup API (pull mode, checkpoints): every disk at one instant, only what changed since the last backup; --vm defaults to the domain\'s name')
    .option('--connect <uri>', 'with --libvirt: the libvirt URI (default: virsh\'s default, e.g. qemu:///system)')
    .option('--limit-upload <rate>', LIMIT_UPLOAD)
    .option('--limit-download <rate>', LIMIT_DOWNLOAD)
    .action((disks: string[], _options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/backup.js')).backupCommand(disks, command.opts(), context);
      })(),
    );

  repoCommand('sync', 'copy snapshots to another repository (other keys too), sending only the chunks it lacks')
    .option('--to <location>', 'the destination repository')
    .option('--to-password-file <path>', 'the destination\'s passphrase (default: $COFFER_TO_PASSWORD, $COFFER_TO_PASSWORD_FILE, or a prompt)')
    .option('--vm <name>', 'only the snapshots of this VM')
    .option('--since <duration>', 'only the snapshots captured within this long (e.g. 7d, 36h)')
    .option('--check', 'also check the copies already in the destination: every chunk they name must be there (their index pages and one listing), and those missing are sent again from the source')
    .option('--read-data', 'like --check, and read every chunk the copies name in the destination: those damaged there are sent again too')
    .option('--limit-upload <rate>', LIMIT_UPLOAD)
    .option('--limit-download <rate>', LIMIT_DOWNLOAD)
    .action((_options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/sync.js')).syncCommand(command.opts(), context);
      })(),
    );

  repoCommand('snapshots', 'list snapshots, oldest first')
    .option('--vm <name>', 'only this VM')
    .action((_options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/snapshots.js')).snapshotsCommand(command.opts(), context);
      })(),
    );

  repoCommand('restore', 'write the disks of a snapshot back as disk images, or as a new VM')
    .argument('[snapshot]', 'snapshot id or prefix, latest, or NAME:latest')
    .option('--disk <name|n>', 'only this disk (name or number)')
    .option('--to <path>', 'a file, a block device, - for stdout, or a directory for several disks')
    .option('--format <format>', 'image format to write: raw (default), qcow2, vhd, vhd-fixed, vhdx, vmdk (streamOptimized) or vmdk-sparse')
    .option('--overwrite', 'replace an existing file')
    .option('--as-vm <name>', 'restore as a new VM of this name: every disk into the --to folder, and the definition with a new UUID and MACs (NAME.xml for libvirt, NAME.sh for QEMU)')
    .option('--define', 'with --as-vm: register the new libvirt domain (virsh define)')
    .option('--connect <uri>', 'with --define: the libvirt connection (default: virsh\'s)')
    .option('--include <glob>', 'file snapshots: restore only what matches (and what is below it; repeatable)', collect)
    .option('--exclude <glob>', 'file snapshots: leave out what matches (repeatable)', collect)
    .option('--verify', 'file snapshots: read every restored file back and check it against the snapshot')
    .option('--numeric-owner', 'file snapshots: give owners their recorded ids, names ignored (default, as root: a recorded user or group name this host knows gets its id here, else the recorded id, as GNU tar extracts)')
    .option('--to-vm <qmp>', 'instead of a snapshot: move the running VM behind this QMP monitor (booted from coffer serve) onto local images in the --to folder while it runs (--format qcow2 or raw), so the export can end')
    .option('--limit-download <rate>', LIMIT_DOWNLOAD)
    .action((snapshot: string | undefined, _options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/restore.js')).restoreCommand(snapshot, command.opts(), context);
      })(),
    );

  repoCommand('files', 'browse and extract single files from a snapshot, without restoring the disks')
    .usage('[options] SNAPSHOT [ls|cat|get|find] [VOLUME:/PATH...]')
    .argument('<snapshot>', 'snapshot id or prefix, latest, or NAME:latest')
    .argument('[action]', 'ls, cat, get or find; none lists the volumes (partitions, LVM volumes, filesystems)')
    .argument('[targets...]', 'VOLUME:/PATH, where VOLUME is p1, p5, vg0/root or disk (a filesystem on the whole disk)')
    .option('--disk <name|n>', 'the disk whose partitions are meant (default: all disks)')
    .option('-l, --long', 'ls: modes, owners (a file snapshot\'s recorded names, else ids), sizes and times')
    .option('--to <dir>', 'get: the folder to write into (created if missing)')
    .option('--tar', 'get: stream a tar archive to stdout instead')
    .option('--overwrite', 'get: replace files that exist in the folder')
    .option('--numeric-owner', 'get: owners by their recorded ids, names ignored, and --tar headers without names; ls -l: ids (default: a file snapshot\'s recorded names are mapped, as restore does; a disk image\'s filesystems hold ids only)')
    .option('--name <glob>', 'find: names matching this pattern (*, ?, [abc])')
    .option('--stats', 'print the chunks and bytes read from the repository on stderr')
    .action((snapshot: string, action: string | undefined, targets: string[], _options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/files.js')).filesCommand(snapshot, action, targets, command.opts(), context);
      })(),
    );

  repoCommand('diff', 'show what changed between two snapshots: disks\' changed byte ranges, or files added, removed and changed')
    .usage('[options] SNAPSHOT_A SNAPSHOT_B')
    .argument('<snapshot-a>', 'the older snapshot: id or prefix, latest, or NAME:latest')
    .argument('<snapshot-b>', 'the newer snapshot, the same way')
    .option('--disk <name|n>', 'only this disk (a name, or a number in SNAPSHOT_B)')
    .option('--files', 'VM snapshots: also compare the files of each volume found on both (as coffer files finds them)')
    .action((snapshotA: string, snapshotB: string, _options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/diff.js')).diffCommand(snapshotA, snapshotB, command.opts(), context);
      })(),
    );

  repoCommand('serve', 'export a snapshot\'s disks over NBD, straight from the repository (instant recovery)')
    .argument('<snapshot>', 'snapshot id or prefix, latest, or NAME:latest')
    .option('--socket <path>', 'listen on this unix socket')
    .option('--listen <host:port>', 'listen on TCP (e.g. 127.0.0.1:10809; there is no TLS: keep it on a trusted network)')
    .option('--overlay <dir>', 'make the exports writable: writes go to overlay files in this folder, never to the repository')
    .action((snapshot: string, _options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/serve.js')).serveCommand(snapshot, command.opts(), context);
      })(),
    );

  repoCommand('verify', 'check that every snapshot can be restored')
    .option('--read-data', 'read, decrypt and rehash every chunk (otherwise only check they exist)')
    .option('--read-data-subset <N/M|P%>', 'read only a share of the chunks: the N-th of M slices by id (e.g. 3/7: a week of nightly runs covers all), or a random P% sample; the rest is checked to exist')
    .option('--since <duration>', 'with --read-data(-subset): skip chunks a run read and found intact within this long (e.g. 30d)')
    .option('--no-files', 'do not name the files that damaged ranges touch (naming them walks the affected filesystems\' metadata)')
    .option('--stored', 'without the passphrase (on the storage side): check every object\'s stored bytes against the key holder\'s signed digests')
    .option('--trust <fingerprint>', 'with --stored: the stored-digest key fingerprint the key holder gave you (coffer init and coffer key list print it); refuse any other key')
    .option('--strict', 'with --stored: objects no signed digest covers count as damage')
    .option('--stored-key', 'print the fingerprint of the stored-digest key as stored (no passphrase; unverified)')
    .option('--cover-stored', 'with the passphrase: sign digests for the objects that have none (written before stored digests existed), once each is authenticated')
    .action((_options, command: Command) =>
      run(async () => {
        const opts = command.opts();
        if (opts.coverStored) return (await import('./commands/verify-stored.js')).coverStoredCommand(opts, context);
        if (opts.storedKey) return (await import('./commands/verify-stored.js')).storedKeyCommand(opts, context);
        if (opts.stored && (opts.readData || opts.readDataSubset !== undefined || opts.since !== undefined)) throw new CofferError('E_USAGE', '--stored reads every object already: leave out --read-data, --read-data-subset and --since');
        if (opts.stored) return (await import('./commands/verify-stored.js')).verifyStoredCommand(opts, context);
        if (opts.trust !== undefined || opts.strict) throw new CofferError('E_USAGE', '--trust and --strict go with --stored');
        await deriveKeysEarly(command);
        return (await import('./commands/verify.js')).verifyCommand(opts, context);
      })(),
    );

  repoCommand('test-restore', 'prove a snapshot restores: read every disk back, walk and read every file, run each filesystem\'s checker; the result is stored with the snapshot')
    .argument('<snapshot>', 'snapshot id or prefix, latest, or NAME:latest')
    .option('--no-fsck', 'do not run the filesystems\' own checkers (they need a temporary copy of each volume)')
    .option('--work-dir <dir>', 'where the checkers\' temporary volume copies go (default: the system\'s temporary folder)')
    .option('--boot', 'also boot the VM from the backup (QEMU over an NBD export, no network, writes discarded) and wait for --boot-expect on its serial console')
    .option('--boot-expect <text>', 'the text that means the VM is up (default: login:)')
    .option('--boot-timeout <seconds>', 'how long to wait for it (default 300)')
    .option('--boot-bus <bus>', 'how the disks are attached: sata, virtio, ide or scsi (default: the VM\'s own, from its stored definition, else sata)')
    .option('--boot-memory <MiB>', 'guest memory (default: the VM\'s own, else 1024)')
    .option('--boot-machine <type>', 'QEMU machine type (default: the VM\'s own, e.g. pc-i440fx-7.2, else q35)')
    .option('--boot-firmware <firmware>', 'bios, uefi (the host\'s OVMF, found through QEMU\'s firmware descriptors) or auto (default: the VM\'s definition, else UEFI when its first disk has an EFI System Partition and no MBR boot code)')
    .option('--accel <accel>', 'auto (default: KVM when /dev/kvm opens, else TCG), kvm or tcg')
    .action((snapshot: string, _options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/test-restore.js')).testRestoreCommand(snapshot, command.opts(), context);
      })(),
    );

  repoCommand('repair', 'find the snapshots that cannot be restored and mark them; only when asked, salvage a copy or forget them')
    .option('--read-data', 'read every chunk (otherwise only check that each exists)')
    .option('--salvage', 'for each damaged snapshot, write a copy (tag salvaged) whose damaged blocks read as zeros')
    .option('--forget', 'remove the damaged snapshots (never a protected one)')
    .option('--no-files', 'do not name the files the damage touches')
    .option('--index', 'format 2: rebuild the index segments (deduplication across VMs) from the packs\' trailers, nothing else')
    .action((_options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/repair.js')).repairCommand(command.opts(), context);
      })(),
    );

  repoCommand('stats', 'sizes, and what deduplication and compression save').action((_options, command: Command) =>
    run(async () => {
      await deriveKeysEarly(command);
      return (await import('./commands/stats.js')).statsCommand(command.opts(), context);
    })(),
  );

  repoCommand('forget', 'remove snapshots by name, or those a retention policy does not keep (their data goes at the next prune)')
    .usage('[options] SNAPSHOT... | --keep-* [--vm NAME] [--dry-run]')
    .argument('[snapshot...]', 'snapshot ids or prefixes, latest, or NAME:latest (or a policy instead)')
    .option('--keep-last <n>', 'keep the n newest snapshots of each VM (a number, or unlimited)')
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the n newest hours that have one (UTC)')
    .option('--keep-daily <n>', 'the same for days (UTC)')
    .option('--keep-weekly <n>', 'the same for ISO weeks, Monday to Sunday (UTC)')
    .option('--keep-monthly <n>', 'the same for months (UTC)')
    .option('--keep-yearly <n>', 'the same for years (UTC)')
    .option('--keep-within <duration>', 'keep snapshots newer than this before the VM\'s newest one (e.g. 7d, 36h, 1y5m7d2h)')
    .option('--keep-tag <tags>', 'keep snapshots with these tags (TAG or TAG,TAG: all of them; repeatable)', collect)
    .option('--vm <name>', 'with a policy: only this VM (each VM is always counted on its own)')
    .option('-n, --dry-run', 'print what would be kept and removed, remove nothing')
    .option('--prune', 'then remove the data no snapshot uses any more (coffer prune)')
    .action((snapshots: string[], _options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/forget.js')).forgetCommand(snapshots, command.opts(), context);
      })(),
    );

  repoCommand('prune', 'remove the chunks and index pages no snapshot references (after forget), and report the space freed')
    .option('-n, --dry-run', 'count what would be removed, remove nothing')
    .option('--wait <minutes>', 'how long to wait for running backups to end (default 30; 0: fail at once)')
    .option('--repack-threshold <percent>', 'format 2: rewrite a pack once this share of its bytes is unused (default 20)')
    .action((_options, command: Command) =>
      run(async () => {
        await deriveKeysEarly(command);
        return (await import('./commands/prune.js')).pruneCommand(command.opts(), context);
      })(),
    );

  repoCommand('protect', 'protect a snapshot: no forget removes it (by policy or by name) until it is unprotected')
    .argument('<snapshot>', 'snapshot id or prefix, latest, or NAME:latest')
    .option('--reason <text>', 'why (shown by snapshots and forget)')
    .action((snapshot: string, _options, command: Command) => run(async () => (await import('./commands/protect.js')).protectCommand(snapshot, command.opts(), context))());

  repoCommand('unprotect', 'remove the protection of a snapshot')
    .argument('<snapshot>', 'snapshot id or prefix, latest, or NAME:latest')
    .action((snapshot: string, _options, command: Command) => run(async () => (await import('./commands/protect.js')).unprotectCommand(snapshot, command.opts(), context))());

  repoCommand('tag', 'change the tags of snapshots after the fact (a note: the newest one sets them whole; forget --keep-tag sees them)')
    .usage('[options] SNAPSHOT... (--add TAG | --remove TAG | --set TAG[,TAG...] | --clear)')
    .argument('<snapshot...>', 'snapshot ids or prefixes, latest, or NAME:latest')
    .option('--add <tag>', 'add this tag (repeatable)', collect)
    .option('--remove <tag>', 'remove this tag (repeatable)', collect)
    .option('--set <tags>', 'replace the tags with these (comma-separated; --set \'\' leaves none)', collect)
    .option('--clear', 'remove every tag (as --set \'\')')
    .action((snapshots: string[], _options, command: Command) => run(async () => (await import('./commands/tag.js')).tagCommand(snapshots, command.opts(), context))());

  repoCommand('key', 'manage the passphrases that open the repository')
    .addArgument(new Command().createArgument('<action>', 'list, add, remove or passwd').choices(['list', 'add', 'remove', 'passwd']))
    .argument('[id]', 'the key to remove')
    .addOption(new Option('--new-password-file <path>', 'the new passphrase (default: $COFFER_NEW_PASSWORD, $COFFER_NEW_PASSWORD_FILE, or a prompt)'))
    .action((action: string, id: string | undefined, _options, command: Command) => run(async () => (await import('./commands/key.js')).keyCommand(action, id, command.opts(), context))());

  repoCommand('lock', 'Object Lock (immutable backups): show each snapshot\'s lock, or extend what locked snapshots need')
    .addArgument(new Command().createArgument('<action>', 'status or extend').choices(['status', 'extend']))
    .action((action: string, _options, command: Command) => run(async () => (await import('./commands/lock.js')).lockCommand(action, command.opts(), context))());

  const tape = program.command('tape').description('write snapshots to a tape or a file as a self-contained tar stream, list it, and import it into a repository');
  const tapeCommand = (name: string, description: string, repository: boolean) => {
    const sub = tape.command(name).description(description);
    if (repository) {
      sub.option('-r, --repo <location>', 'repository (default: $COFFER_REPOSITORY)').option('--password-file <path>', 'read the passphrase from a file (default: $COFFER_PASSWORD, $COFFER_PASSWORD_FILE, or a prompt)');
    }
    return sub.option('--json', 'machine-readable output: one JSON document on stdout');
  };
  tapeCommand('export', 'write snapshots, every chunk they need, the repository\'s config and keys and an index as POSIX tar, readable by GNU tar', true)
    .argument('<snapshot...>', 'snapshot ids or prefixes, latest, or NAME:latest')
    .option('--to <file|device>', 'a file, or a tape drive (/dev/nst0)')
    .option('--volume-size <size>', 'start a new volume when the next object would not fit in this many bytes (files: FILE.1, FILE.2 …)')
    .option('--block-size <size>', 'record (tape block) size, a multiple of 512 (default 256K)')
    .option('--new-volume-command <command>', 'on a tape drive: a shell command that loads the next tape ($COFFER_TAPE_VOLUME, $COFFER_TAPE_DEVICE set)')
    .option('--overwrite', 'replace existing files')
    .action((snapshots: string[], _options, command: Command) => run(async () => (await import('./commands/tape.js')).tapeExportCommand(snapshots, command.opts(), context))());
  tapeCommand('import', 'restore a tape set into an empty folder (it becomes the tape\'s repository) or into the same repository', true)
    .option('--from <files>', 'the volumes, comma-separated or repeated, in any order', collect)
    .action((_options, command: Command) => run(async () => (await import('./commands/tape.js')).tapeImportCommand(command.opts(), context))());
  tapeCommand('list', 'what a tape set holds, from each volume\'s label and index (no passphrase needed); every member is read and checked', false)
    .option('--from <files>', 'the volumes, comma-separated or repeated', collect)
    .action((_options, command: Command) => run(async () => (await import('./commands/tape.js')).tapeListCommand(command.opts(), context))());
  tapeCommand('catalog', 'the media catalog: which tapes hold which snapshots, forgotten ones included', true)
    .action((_options, command: Command) => run(async () => (await import('./commands/tape.js')).tapeCatalogCommand(command.opts(), context))());

  const serveRepo = program
    .command('serve-repo')
    .description('serve repositories over HTTPS to backup agents: per-agent tokens, append-only agents, each agent sees only its own snapshots')
    .option('--repo <name=location>', 'serve the repository at LOCATION (a path or s3:…) as https://HOST:PORT/NAME (repeatable)', collect)
    .option('--listen <host:port>', 'address to listen on (default 0.0.0.0:8443; port 0 picks a free one)')
    .option('--state-dir <dir>', 'tokens, owner records and the self-signed certificate (default: $COFFER_REPO_SERVER_STATE or ~/.local/state/coffer/repo-server)')
    .option('--cert <file>', 'the server certificate, PEM (default: a self-signed one made at first start)')
    .option('--key <file>', 'its private key, PEM')
    .option('--json', 'print the address and fingerprint as one JSON line')
    .action((_options, command: Command) => run(async () => (await import('./commands/serve-repo.js')).serveRepoCommand(command.opts(), context))());
  const repoToken = serveRepo.command('token').description('manage the tokens agents and administrators use');
  const tokenCommand = (name: string, description: string) =>
    repoToken.command(name).description(description).option('--state-dir <dir>', 'the server\'s state folder (as for serve-repo)').option('--json', 'machine-readable output');
  tokenCommand('add', 'add a token and print its secret (once)')
    .argument('<name>', 'who it is for (a VM or host name); what the server records as the writer of its snapshots')
    .option('--append-only', 'may add chunks and snapshots, never delete or overwrite, and sees only its own snapshots (for agents)')
    .option('--expires <duration>', 'stop accepting it after this long (e.g. 90d, 12h, 30m)')
    .action((name: string, _options, command: Command) => run(async () => (await import('./commands/serve-repo.js')).tokenAddCommand(name, command.optsWithGlobals(), context))());
  tokenCommand('list', 'list the tokens (never their secrets)')
    .action((_options, command: Command) => run(async () => (await import('./commands/serve-repo.js')).tokenListCommand(command.optsWithGlobals(), context))());
  tokenCommand('remove', 'remove a token (refused from the next request on)')
    .argument('<name>', 'the token\'s name')
    .action((name: string, _options, command: Command) => run(async () => (await import('./commands/serve-repo.js')).tokenRemoveCommand(name, command.optsWithGlobals(), context))());

  // The service, and `server migrate` for its state database (SQLite or PostgreSQL).
  const server = program
    .command('server')
    .description('run the Coffer service: the REST API (and the console) over HTTPS, with its state in a data directory')
    .option('--data <dir>', 'the data directory: state.db, coffer.yaml (written at first start), tls/ (made at first start)')
    .option('--config <file>', 'the configuration file (default: DIR/coffer.yaml; see docs/server-config.md)')
    .option('--database <url>', 'the state database: postgres://USER@HOST/DB (shared by several servers) or an SQLite file (default: DIR/state.db, or $COFFER_DATABASE)')
    .option('--listen <host:port>', 'the address to listen on (default 0.0.0.0:8443; port 0: any free port)')
    .option('--tls-cert <file>', 'your own certificate (PEM) instead of the self-signed one')
    .option('--tls-key <file>', 'the key of --tls-cert (PEM)')
    .option('--insecure-http', 'plain HTTP, only on a loopback address (tests, or behind a local TLS proxy)')
    .option('--stop-timeout <seconds>', 'at SIGTERM, how long running requests and tasks get to finish (default 10)')
    .option('--no-local-worker', 'with --database postgres://…: run no task here, only the API and the scheduler (coffer worker processes run the tasks; docs/scale.md)')
    .option('--name <name>', 'with --database postgres://…: this server\'s name among servers and workers (default: server-HOSTNAME-PID)')
    .option('--lease <seconds>', 'with --database postgres://…: how long a task its local worker takes, and its leadership (notifications, upkeep, health), stay held without a renewal (default 30)')
    .option('--agent-repo-listen <host:port>', 'where agents write their backups (docs/agent.md; default: the API\'s host, its port + 1)')
    .action((_options, command: Command) => run(async () => (await import('./commands/server.js')).serverCommand(command.opts(), context))());

  server
    .command('migrate')
    .description('bring the state database (SQLite file or PostgreSQL) to this Coffer\'s schema, show its status, or copy an SQLite one into PostgreSQL')
    .option('--database <url>', 'postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE or an SQLite file (default: $COFFER_DATABASE)')
    .option('--status', 'print the applied and pending schema steps, change nothing')
    .option('--from-sqlite <file>', 'copy every row of this SQLite state database into the new, empty PostgreSQL --database')
    .option('--json', 'machine-readable output: one JSON document')
    .action((_options, command: Command) => run(async () => (await import('./commands/server-migrate.js')).serverMigrateCommand(command.optsWithGlobals(), context))());

  // A machine's file-backup agent, managed by coffer server (docs/agent.md).
  const agent = program
    .command('agent')
    .description('back up this machine\'s files for a coffer server: connects out only (long poll over HTTPS), runs the backups its jobs schedule (docs/agent.md)')
    .option('--server <url>', 'the server, https://HOST:PORT (what coffer server printed as listening on)')
    .option('--token-file <file>', 'a file holding the agent\'s token (coffer agent token add NAME on the server); else $COFFER_AGENT_TOKEN')
    .option('--token <token>', 'the token itself (visible in ps: prefer --token-file)')
    .option('--name <name>', 'the agent\'s name, checked against the token\'s (default: the token\'s)')
    .option('--fingerprint <sha256>', 'pin the server certificate\'s SHA-256 fingerprint (coffer server printed it); else $COFFER_SERVER_FINGERPRINT')
    .option('--ca <file>', 'a PEM file of CA certificates to trust instead of the system\'s')
    .option('--poll <seconds>', 'how long each long poll waits (1-30, default 25)')
    .action((_options, command: Command) => run(async () => (await import('./commands/agent.js')).agentCommand(command.opts(), context))());
  const agentToken = agent.command('token').description('agents\' tokens, on the server\'s machine (or POST/DELETE /api/v1/agents)');
  const agentTokenCommand = (name: string, description: string) =>
    agentToken.command(name).description(description).option('--data <dir>', 'the server\'s data directory (default: $COFFER_DATA)').option('--json', 'machine-readable output');
  agentTokenCommand('add', 'make an agent\'s token (append-only, bound to its name) and print it, once')
    .argument('<name>', 'the agent\'s name, as its VMs\' source names it (source: {agent: NAME})')
    .option('--expires <duration>', 'stop accepting it after this long (e.g. 365d, 12h)')
    .action((name: string, _options, command: Command) => run(async () => (await import('./commands/agent.js')).agentTokenAddCommand(name, command.opts(), context))());
  agentTokenCommand('list', 'list the agents\' tokens (never their secrets)')
    .action((_options, command: Command) => run(async () => (await import('./commands/agent.js')).agentTokenListCommand(command.opts(), context))());
  agentTokenCommand('remove', 'revoke an agent\'s token: refused from the next request on (its keys are removed at the server\'s next start)')
    .argument('<name>', 'the agent\'s name')
    .action((name: string, _options, command: Command) => run(async () => (await import('./commands/agent.js')).agentTokenRemoveCommand(name, command.opts(), context))());

  // Scale-out: a worker near the hypervisors, taking tasks from the shared PostgreSQL queue (docs/scale.md).
  const worker = program
    .command('worker')
    .description('take tasks from the queue in the shared PostgreSQL state database and run them here (docs/scale.md)')
    .option('--database <url>', 'the servers\' state database, postgres://USER@HOST/DB (default: $COFFER_DATABASE)')
    .option('--hosts <list>', 'the hosts (hypervisors) this machine reaches, comma-separated (default: every host)')
    .option('--tasks <n>', 'how many tasks run here at once (default 1)')
    .option('--name <name>', 'this worker\'s name (default: HOSTNAME-PID)')
    .option('--lease <seconds>', 'how long a task stays held without a heartbeat before another worker retries it (default 30)')
    .option('--stop-timeout <seconds>', 'at SIGTERM, how long running tasks get to finish (default 10)')
    .option('--trace-queue', 'print one line per hand-out from the queue with its timings (lock wait, time under the lock; docs/scale.md)')
    .action((_options, command: Command) => run(async () => (await import('./commands/worker.js')).workerCommand(command.opts(), context))());
  worker
    .command('drain')
    .description('ask a worker to take nothing new and exit when its tasks end')
    .argument('<name>', 'the worker\'s name')
    .option('--database <url>', 'the state database, postgres://… (default: $COFFER_DATABASE)')
    .action((name: string, _options, command: Command) => run(async () => (await import('./commands/worker.js')).workerDrainCommand(name, command.optsWithGlobals(), context))());

  program
    .command('disk')
    .description('inspect or convert a disk image of any supported format, without a repository')
    .addArgument(new Command().createArgument('<action>', 'info, map or convert').choices(['info', 'map', 'convert']))
    .argument('<image>', 'the image (a chain is given by its top image)')
    .argument('[output]', 'convert: the image to write (- for stdout, raw only)')
    .option('--format <format>', 'convert: the format to write, raw (default), qcow2, vhd, vhd-fixed, vhdx, vmdk (streamOptimized) or vmdk-sparse')
    .option('--overwrite', 'convert: replace an existing output file')
    .option('--image-snapshot <name>', 'read the image at this internal snapshot (qcow2)')
    .option('--source-format <format>', 'read the image as this format (raw, qcow2, vmdk, vpc, vhdx) instead of the one its content shows')
    .option('--json', 'machine-readable output')
    .action((action: string, image: string, output: string | undefined, _options, command: Command) =>
      run(async () => (await import('./commands/disk.js')).diskCommand(action, image, output, command.opts(), context))(),
    );

  // An empty --vm ('' from an unset shell variable) names no VM: as a filter it matched
  // nothing (snapshots printed none, sync and forget said "no snapshot of VM  in …").
  program.hook('preAction', (_program, command) => {
    if (command.opts()['vm'] === '') throw new CofferError('E_USAGE', `--vm '': give a VM's name (is the variable that should hold it empty?)`);
  });

  return program;
}

/** Runs `coffer` with `argv` (without node and the script) and returns the exit code. */
export async function runCli(argv: string[], context: CommandContext): Promise<number> {
  const result = { code: ExitCode.ok as number };
  const json = argv.includes('--json');
  const program = buildProgram(context, result, json);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; everything else commander rejects is a usage error.
      if (error.exitCode === 0) return ExitCode.ok;
      if (json) report(context, true, 'E_USAGE', error.message.replace(/^error: /, ''));
      return ExitCode.usage;
    }
    if (isCofferError(error)) {
      report(context, json, error.code, error.message);
      return exitCodeOf(error.code);
    }
    const message = error instanceof Error ? error.message : String(error);
    report(context, json, 'E_INTERNAL', `${message} (this is a bug in Coffer; set COFFER_DEBUG=1 for details)`);
    if (context.env.COFFER_DEBUG) context.stderr.write(`${error instanceof Error ? error.stack : ''}\n`);
    return ExitCode.failure;
  }
}

function report(context: CommandContext, json: boolean, code: string, message: string): void {
  context.stderr.write(json ? `${JSON.stringify({ type: 'error', code, message })}\n` : `coffer: ${message}\n`);
}

/** Entry point of the `coffer` binary: signals abort the running command. */
export async function main(): Promise<void> {
  keepYoungGenerationSmall();
  const controller = new AbortController();
  const json = process.argv.includes('--json');
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts > 1) process.exit(ExitCode.interrupted);
    const message = `${signal}: stopping (press Ctrl-C again to quit at once)`;
    process.stderr.write(json ? `${JSON.stringify({ type: 'notice', message })}\n` : `\ncoffer: ${message}\n`);
    controller.abort(new CofferError('E_INTERRUPTED', `interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A listing piped into `head` ends quietly when head goes (exit 0); data (an image, a file,
  // an archive) does not: its writer reports the reader gone (disk/output-stream.ts), exit 4.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE' && !carriesData(process.stdout)) process.exit(ExitCode.ok);
  });
  const code = await runCli(argumentsWithRawBytes(process.argv.slice(2)), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    signal: controller.signal,
  });
  process.exitCode = code;
}
