import type { SourceConsistency } from '../vm-source.js';
import type { Virsh } from './virsh.js';

/**
 * Freezes a libvirt domain's guest filesystems around the instant of capture, through the
 * guest agent channel libvirt holds (`virsh domfsfreeze` / `domfsthaw`: libvirt speaks
 * `guest-fsfreeze-freeze` / `-thaw` to qemu-ga for us; Coffer cannot reach the agent itself
 * while libvirt is connected to it). The thaw is sent after ANY freeze attempt, even one that
 * failed or timed out (the agent may have frozen anyway). What happened is the capture's
 * consistency: `application` with the count and the frozen time, or `crash` with the reason.
 *
 * A domain QEMU paused between the freeze and the thaw (a guest write the new job failed:
 * libvirt-source.ts) cannot be thawed then: libvirt refuses agent commands while a domain is
 * paused. The thaw waits for the resume ({@link LibvirtFreeze.thawAfterResume}); only when that
 * one fails too is the guest said to be perhaps still frozen.
 */
export class LibvirtFreeze {
  private attempted = false;
  private frozenAt = 0;
  private count = 0;
  /** The thaw met a paused domain: it is sent again once the domain runs. */
  private thawDeferred = false;
  private retriedThaw: Promise<void> | undefined;
  /** The snapshot's consistency once the capture is over. */
  consistency: SourceConsistency;

  constructor(
    private readonly virsh: Virsh,
    private readonly domain: string,
    private readonly enabled: boolean,
    private readonly onThawFailed?: (reason: string) => void,
  ) {
    this.consistency = enabled ? { level: 'crash', reason: 'the capture did not start' } : { level: 'crash', reason: 'freezing disabled (--no-freeze)' };
  }

  /** Right before the capture: freeze; a failure only makes the snapshot crash-consistent. */
  async freeze(): Promise<void> {
    if (!this.enabled) return;
    this.attempted = true;
    try {
      const out = await this.virsh.run(['domfsfreeze', this.domain]);
      this.frozenAt = performance.now();
      this.count = Number(/Froze (\d+) filesystem/.exec(out)?.[1] ?? 0);
      this.consistency = this.count > 0 ? { level: 'application', frozenFilesystems: this.count } : { level: 'crash', reason: 'the guest agent found no filesystem to freeze' };
    } catch (error) {
      this.consistency = { level: 'crash', reason: `freeze through libvirt failed: ${agentReason(error)}` };
    }
  }

  /** Right after the capture, always: thaw whatever the freeze attempt froze. */
  async thaw(): Promise<void> {
    if (!this.attempted) return;
    this.attempted = false;
    const frozenMs = this.frozenAt === 0 ? undefined : Math.round(performance.now() - this.frozenAt);
    if (this.consistency.level === 'application' && frozenMs !== undefined) this.consistency = { ...this.consistency, frozenMs };
    try {
      await this.virsh.run(['domfsthaw', this.domain]);
    } catch (error) {
      // Nothing frozen (the freeze failed) answers with an error too: warn only when it mattered.
      if (this.count === 0) return;
      if (await this.paused()) this.thawDeferred = true;
      else this.warnThawFailed(error);
    }
  }

  /** After the capture resumed a domain QEMU paused: the thaw that met the pause, again (once; callers share it). */
  thawAfterResume(): Promise<void> {
    if (!this.thawDeferred) return Promise.resolve();
    this.retriedThaw ??= this.virsh.run(['domfsthaw', this.domain]).then(() => undefined, (error: unknown) => this.warnThawFailed(error));
    return this.retriedThaw;
  }

  private warnThawFailed(error: unknown): void {
    this.onThawFailed?.(`virsh domfsthaw ${this.domain} failed, the guest's filesystems may still be frozen: ${agentReason(error)}`);
  }

  private async paused(): Promise<boolean> {
    return /^paused/.test(await this.virsh.run(['domstate', this.domain]).catch(() => ''));
  }
}

function agentReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/not configured/i.test(message)) return 'the domain has no guest agent channel';
  if (/not (connected|responding)/i.test(message)) return 'the guest agent is not running or not answering';
  return message;
}
