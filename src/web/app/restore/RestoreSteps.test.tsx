import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { renderInConsole } from '../testing/render';
import { proposedTarget } from './restore-target';
import { RestoreSteps } from './RestoreSteps';
import { actionsFor, backTo, currentStep, offeredOnly, readWizard, stepSummaries, writeWizard } from './wizard';

const q = (text: string) => new URLSearchParams(text);

describe('the restore wizard\'s state', () => {
  it('opens a step only when every earlier one is chosen', () => {
    expect(currentStep(readWizard(q('')))).toBe(0);
    expect(currentStep(readWizard(q('vm=web1')))).toBe(1);
    expect(currentStep(readWizard(q('vm=web1&repo=main')))).toBe(1);
    expect(currentStep(readWizard(q('vm=web1&repo=main&snapshot=abc')))).toBe(2);
    expect(currentStep(readWizard(q('vm=web1&repo=main&snapshot=abc&what=files')))).toBe(3);
    // A later choice without the earlier ones, or an unknown action, does not count.
    expect(currentStep(readWizard(q('repo=main&snapshot=abc&what=files')))).toBe(0);
    expect(currentStep(readWizard(q('vm=web1&repo=main&snapshot=abc&what=format-c')))).toBe(2);
  });

  it('round-trips through the address, and going back forgets the later choices', () => {
    const full = readWizard(q('vm=web1&repo=main&snapshot=abc&what=instant'));
    expect(readWizard(writeWizard(full))).toEqual(full);
    expect(backTo(full, 0)).toEqual({});
    expect(backTo(full, 1)).toEqual({ vm: 'web1' });
    expect(backTo(full, 2)).toEqual({ vm: 'web1', repo: 'main', snapshot: 'abc' });
    expect(writeWizard(backTo(full, 1)).toString()).toBe('vm=web1');
  });

  it('offers a file snapshot its files only, browsed or restored to a folder (it has no disks to serve, write out or clone), and forgets a disk action asked of it', () => {
    expect(actionsFor('disk')).toEqual(['files', 'instant', 'disks', 'clone']);
    expect(actionsFor(undefined)).toEqual(['files', 'instant', 'disks', 'clone']);
    expect(actionsFor('files')).toEqual(['files', 'files-to-folder']);
    const instant = readWizard(q('vm=web1-files&repo=main&snapshot=abc&what=instant'));
    expect(currentStep(offeredOnly(instant, 'files'))).toBe(2);
    expect(offeredOnly(instant, 'disk')).toEqual(instant);
    const files = readWizard(q('vm=web1-files&repo=main&snapshot=abc&what=files'));
    expect(offeredOnly(files, 'files')).toEqual(files);
  });

  it('restores a file snapshot\'s files to a folder from its address; a disk snapshot does not offer it', () => {
    const toFolder = readWizard(q('vm=web1-files&repo=main&snapshot=abc&what=files-to-folder'));
    expect(toFolder.what).toBe('files-to-folder');
    expect(currentStep(offeredOnly(toFolder, 'files'))).toBe(3);
    expect(readWizard(writeWizard(toFolder))).toEqual(toFolder);
    expect(currentStep(offeredOnly(toFolder, 'disk'))).toBe(2);
    expect(currentStep(offeredOnly(toFolder, undefined))).toBe(2);
    expect(stepSummaries(toFolder)[2]).toBe('Restore the files to a folder on the server');
  });

  it('proposes a restore folder inside the first folder the server allows, named for the VM and the snapshot', () => {
    expect(proposedTarget(['/srv/coffer/restores', '/mnt/other'], 'guest1-files', '0123456789abcdef')).toBe('/srv/coffer/restores/guest1-files-01234567');
    expect(proposedTarget(['/srv/restores/'], 'web1', 'abcdef0123')).toBe('/srv/restores/web1-abcdef01');
    expect(proposedTarget(['/'], 'a b/c', 'abc')).toBe('/a_b_c-abc');
    expect(proposedTarget([], 'web1', 'abc')).toBeUndefined();
  });

  it('summarises each chosen step', () => {
    expect(stepSummaries(readWizard(q('vm=web1&repo=main&snapshot=abcdef0123456789&what=clone')), 'Tue 24 Nov 2026, 22:00')).toEqual(['web1', 'main · Tue 24 Nov 2026, 22:00', 'Clone as a new VM', '']);
    expect(stepSummaries({})).toEqual(['', '', '', '']);
  });
});

describe('RestoreSteps', () => {
  it('shows the choices made, and a click on a done step goes back to it; later steps cannot be clicked', () => {
    const onBack = vi.fn();
    renderInConsole(<RestoreSteps state={readWizard(q('vm=web1&repo=main&snapshot=abcdef0123456789'))} snapshotTime="Tue 24 Nov 2026, 22:00" onBack={onBack} />);
    expect(screen.getByText('web1')).toBeTruthy();
    expect(screen.getByText('main · Tue 24 Nov 2026, 22:00')).toBeTruthy();
    fireEvent.click(screen.getByText('VM'));
    expect(onBack).toHaveBeenCalledWith(0);
    fireEvent.click(screen.getByText('Restore'));
    expect(onBack).toHaveBeenCalledTimes(1);
  });
});
