/**
 * A test restore's boot check (`--boot`, a job's `boot: true`): "Booted (UEFI, q35, KVM) in
 * 12.3 s" or "Boot failed (BIOS, q35): why", and the serial console's last lines, shown at once
 * when it failed and a click away when it booted.
 */
import { Code, ScrollArea, Text } from '@mantine/core';
import type { Answer } from '../../api/client';

export type Boot = NonNullable<NonNullable<Answer<'/api/v1/repositories/{repo}/snapshots/{snapshot}/records', 'get'>['testRestore']>['boot']>;

/** `UEFI with Secure Boot, q35, KVM`: what is known of how it ran (the firmware is not in older records). */
export function bootSetting(boot: Boot): string {
  const firmware = boot.firmware === null ? [] : [`${boot.firmware.toUpperCase()}${boot.secureBoot ? ' with Secure Boot' : ''}`];
  return [...firmware, ...(boot.machine === null ? [] : [boot.machine]), ...(boot.accel === null ? [] : [boot.accel.toUpperCase()])].join(', ');
}

/** The boot check's one line: booted in how many seconds, or why not. */
export function bootSummary(boot: Boot): string {
  const setting = bootSetting(boot);
  const how = setting === '' ? '' : ` (${setting})`;
  if (!boot.passed) return `Boot failed${how}: ${boot.reason ?? 'no reason was recorded'}`;
  const seen = boot.expect === null ? '' : ` ("${boot.expect}" on its serial console)`;
  return `Booted${how}${boot.secondsToText === null ? '' : ` in ${boot.secondsToText.toFixed(1)} s`}${seen}.`;
}

export function BootCheck({ boot }: { boot: Boot }) {
  return (
    <>
      <Text size="sm" mt={4} data-testid="snapshot-boot">
        {bootSummary(boot)}
      </Text>
      {boot.serialTail === '' ? (
        !boot.passed && (
          <Text size="sm" c="dimmed">
            Nothing appeared on its serial console.
          </Text>
        )
      ) : (
        <Text component="details" size="sm" open={!boot.passed} data-testid="snapshot-boot-serial">
          <summary>Its serial console's last lines</summary>
          <ScrollArea.Autosize mah={240} type="auto">
            <Code block tabIndex={0} aria-label="The serial console's last lines" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}>
              {boot.serialTail}
            </Code>
          </ScrollArea.Autosize>
        </Text>
      )}
    </>
  );
}
