import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { renderInConsole } from '../testing/render';
import { TagEditor, tagProblem } from './SnapshotTags';

describe('TagEditor: a snapshot\'s tags, added and removed on its page', () => {
  it('adds a tag: the whole new list, the field emptied', () => {
    const change = vi.fn();
    renderInConsole(<TagEditor tags={['nightly']} editable removalNeedsApproval={false} onChange={change} />);
    const field = screen.getByLabelText('New tag') as HTMLInputElement;
    fireEvent.change(field, { target: { value: 'legal-hold' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add tag' }));
    expect(change).toHaveBeenCalledWith(['nightly', 'legal-hold']);
    expect(field.value).toBe('');
  });

  it('removes a tag: the list without it; no word of approval when four eyes is off', () => {
    const change = vi.fn();
    renderInConsole(<TagEditor tags={['nightly', 'legal-hold']} editable removalNeedsApproval={false} onChange={change} />);
    fireEvent.click(screen.getByRole('button', { name: 'Remove tag legal-hold' }));
    expect(change).toHaveBeenCalledWith(['nightly']);
    expect(screen.queryByText(/second administrator/)).toBeNull();
  });

  it('with four eyes, says before the click that a removal waits for a second administrator', () => {
    const change = vi.fn();
    renderInConsole(<TagEditor tags={['legal-hold']} editable removalNeedsApproval onChange={change} />);
    const remove = screen.getByRole('button', { name: "Remove tag legal-hold (waits for a second administrator's approval)" });
    expect(screen.getByText(/removing a tag waits for a second administrator's approval/)).toBeTruthy();
    fireEvent.click(remove);
    expect(change).toHaveBeenCalledWith([]);
  });

  it('refuses a tag the server would refuse, or one the snapshot has, before asking', () => {
    const change = vi.fn();
    renderInConsole(<TagEditor tags={['nightly']} editable removalNeedsApproval={false} onChange={change} />);
    const field = screen.getByLabelText('New tag');
    for (const [value, message] of [['nightly', 'The snapshot has the tag nightly already.'], ['x'.repeat(201), 'A tag is 1 to 200 characters, without control characters.'], ['tab\there', 'A tag is 1 to 200 characters, without control characters.']] as const) {
      fireEvent.change(field, { target: { value } });
      expect(screen.getByText(message)).toBeTruthy();
      expect((screen.getByRole('button', { name: 'Add tag' }) as HTMLButtonElement).disabled).toBe(true);
      fireEvent.submit(screen.getByRole('form', { name: 'Add a tag' }));
    }
    expect(change).not.toHaveBeenCalled();
    expect(tagProblem('x'.repeat(200), [])).toBeUndefined();
    expect(tagProblem('Ünïcode and spaces', [])).toBeUndefined();
  });

  it('shows the tags without controls to whoever may not change them', () => {
    renderInConsole(<TagEditor tags={['nightly', 'legal-hold']} editable={false} removalNeedsApproval onChange={() => {}} />);
    expect(screen.getByTestId('snapshot-tags').textContent).toBe('Tags:nightlylegal-hold');
    expect(screen.queryByRole('button')).toBeNull();
    expect(screen.queryByLabelText('New tag')).toBeNull();
  });

  it('says "none" for a snapshot without tags', () => {
    renderInConsole(<TagEditor tags={[]} editable={false} removalNeedsApproval={false} onChange={() => {}} />);
    expect(screen.getByTestId('snapshot-tags').textContent).toBe('Tags:none');
  });
});
