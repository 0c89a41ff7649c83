import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderInConsole } from '../testing/render';
import { BootCheck, type Boot } from './BootCheck';

const booted: Boot = { passed: true, expect: 'login:', machine: 'q35', accel: 'kvm', firmware: 'uefi', secureBoot: false, secondsToText: 12.34, reason: null, serialTail: 'Debian GNU/Linux 12 web1 ttyS0\n\nweb1 login: ' };
const failed: Boot = { passed: false, expect: 'login:', machine: 'pc-i440fx-7.2', accel: 'tcg', firmware: 'bios', secureBoot: false, secondsToText: null, reason: '"login:" did not appear on the serial console within 300 s', serialTail: 'Booting from Hard Disk...\nKernel panic - not syncing: VFS: Unable to mount root fs' };

describe('BootCheck: did the test restore boot the VM', () => {
  it('says it booted, on which firmware, machine and accelerator, in how many seconds; its console a click away', () => {
    renderInConsole(<BootCheck boot={booted} />);
    expect(screen.getByTestId('snapshot-boot').textContent).toBe('Booted (UEFI, q35, KVM) in 12.3 s ("login:" on its serial console).');
    const serial = screen.getByTestId('snapshot-boot-serial') as HTMLDetailsElement;
    expect(serial.open).toBe(false);
    expect(screen.getByLabelText("The serial console's last lines").textContent).toBe(booted.serialTail);
  });

  it('names Secure Boot, and leaves out the firmware a record from before it was stored does not know', () => {
    const view = renderInConsole(<BootCheck boot={{ ...booted, secureBoot: true }} />);
    expect(screen.getByTestId('snapshot-boot').textContent).toBe('Booted (UEFI with Secure Boot, q35, KVM) in 12.3 s ("login:" on its serial console).');
    view.unmount();
    renderInConsole(<BootCheck boot={{ ...booted, firmware: null, accel: null, machine: null, expect: null, secondsToText: null }} />);
    expect(screen.getByTestId('snapshot-boot').textContent).toBe('Booted.');
  });

  it('says why it failed and shows the console\'s last lines at once', () => {
    renderInConsole(<BootCheck boot={failed} />);
    expect(screen.getByTestId('snapshot-boot').textContent).toBe('Boot failed (BIOS, pc-i440fx-7.2, TCG): "login:" did not appear on the serial console within 300 s');
    expect((screen.getByTestId('snapshot-boot-serial') as HTMLDetailsElement).open).toBe(true);
    expect(screen.getByLabelText("The serial console's last lines").textContent).toContain('Kernel panic - not syncing');
  });

  it('says when nothing appeared on the console, and when no reason was recorded', () => {
    renderInConsole(<BootCheck boot={{ ...failed, reason: null, serialTail: '' }} />);
    expect(screen.getByTestId('snapshot-boot').textContent).toBe('Boot failed (BIOS, pc-i440fx-7.2, TCG): no reason was recorded');
    expect(screen.getByText('Nothing appeared on its serial console.')).toBeTruthy();
    expect(screen.queryByTestId('snapshot-boot-serial')).toBeNull();
  });
});
